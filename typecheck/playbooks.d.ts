
/** The server's saved playbooks (reusable code). */
declare const playbooks: {
  run(name: string, args?: Record<string, unknown>): Promise<unknown>;
  list(): Promise<{ name: string; description: string }[]>;
};
