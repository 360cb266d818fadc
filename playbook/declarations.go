package playbook

// Declarations are the TypeScript declarations of what the sandbox's bootstrap defines for
// playbooks: the global `playbooks` and the PlaybookError it rejects with. Type-checking code that
// runs playbooks needs them next to the other globals' (mcpFactory, servers).
const Declarations = `/** A playbook as playbooks.list() describes it. */
interface PlaybookInfo {
  /** Its name: run it with playbooks.run(name, args). */
  name: string;
  /** What it does. */
  description: string;
  /** The JSON Schema of its args, when it takes any. */
  inputs?: Record<string, unknown>;
}

/** The error playbooks.run rejects with: the arguments did not match the playbook's inputs, it
 * does not exist, or it failed (the message names it and the line and column in its own file). */
interface PlaybookError extends Error {
  name: "PlaybookError";
  /** The playbook that failed, when it ran. */
  playbook?: string;
}

/** The server's saved playbooks (list_playbooks). */
declare const playbooks: {
  /** Runs the playbook with args (checked against its inputs schema first) in this sandbox and
   * resolves to its value: its last expression, or its top-level return. */
  run(name: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Lists the playbooks. */
  list(): Promise<PlaybookInfo[]>;
};
`

// ArgsDeclaration declares what a playbook's own code sees: its arguments, the constant args
// (checked against its inputs schema before it runs).
const ArgsDeclaration = "/** The playbook's arguments, checked against its inputs schema. */\ndeclare const args: any;\n"
