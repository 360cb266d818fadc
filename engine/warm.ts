// conductor's execute_code boot module (StartOptions.Boot of a launcher sandbox whose runtime has
// a pre-started interpreter, runtimes.Runtime.Warm): evaluated while the sandbox boots, it starts
// the interpreter in the working directory with the runtime's environment, its output going to
// the sandbox's captured streams; launcher.ts sends it the entrypoint's name on stdin.
//
// With channel (a server with upstreams: run_python_code's mcpFactory), the interpreter also gets
// fd 3, one end of a socketpair whose other end the launcher holds (its relay, see launcher.ts). A
// socketpair needs no bind, listen or connect, which the seccomp policy refuses without network;
// only node:child_process gives a child a fourth descriptor (Deno.Command's internal extra-stdio
// option, which it uses, fails in the sandbox: "fd is not from BiPipe"). Loading it costs the
// boot ~55 ms of CPU in a sandbox, so a server without upstreams starts the interpreter with
// Deno.Command. Node's env replaces the inherited one, so the sandbox's own comes first, as
// Deno.Command passes it (the launcher may then read its environment: --allow-env).
type Exit = { code: number | null; signal: string | null; error?: string };
const W: { dir: string; argv: string[]; env: Record<string, string>; channel?: boolean } = __CONDUCTOR_WARM_SPEC__;
const enc = new TextEncoder();
let warm: { start(entry: string): Promise<void>; exited: Promise<Exit>; channel: any; close(): void };
if (W.channel) {
  const { spawn } = await import("node:child_process");
  const child = spawn(W.argv[0], W.argv.slice(1), {
    cwd: W.dir,
    env: { ...Deno.env.toObject(), ...W.env },
    stdio: ["pipe", "inherit", "inherit", "pipe"],
  });
  // Errors of the pipes (EPIPE once the interpreter is gone) show in its exit status; unhandled,
  // an "error" event would end deno. A start that failed is an exit with its error.
  for (const s of child.stdio) (s as { on?: (e: string, f: () => void) => void } | null)?.on?.("error", () => {});
  const exited = new Promise<Exit>((resolve) => {
    child.on("exit", (code: number | null, signal: string | null) => resolve({ code, signal }));
    child.on("error", (err: Error) => resolve({ code: null, signal: null, error: String(err?.message ?? err) }));
  });
  warm = {
    start: (entry) => new Promise((resolve) => child.stdin!.end(entry, () => resolve())),
    exited,
    channel: child.stdio[3],
    close: () => {
      (child.stdio[3] as { destroy(): void } | null)?.destroy();
      child.stdin?.destroy();
    },
  };
} else {
  const child = new Deno.Command(W.argv[0], {
    args: W.argv.slice(1),
    cwd: W.dir,
    env: W.env,
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  warm = {
    start: async (entry) => {
      const w = child.stdin.getWriter();
      await w.write(enc.encode(entry));
      await w.close();
    },
    exited: child.status.then((st) => ({ code: st.code, signal: st.signal })),
    channel: null,
    close: () => {},
  };
}
(globalThis as any).__conductor_warm = warm;
