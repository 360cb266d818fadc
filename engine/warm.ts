// conductor's execute_code boot module (StartOptions.Boot of a launcher sandbox whose runtime has
// a pre-started interpreter, runtimes.Runtime.Warm): evaluated while the sandbox boots, it starts
// the interpreter in the working directory with the runtime's environment, its output going to
// the sandbox's captured streams; launcher.ts sends it the entrypoint's name on stdin.
//
// node:child_process, not Deno.Command: only it gives the child a fourth descriptor, fd 3, one
// end of a socketpair whose other end the launcher holds (the mcpFactory relay of run_python_code,
// see launcher.ts). A socketpair needs no bind, listen or connect, which the seccomp policy refuses
// without network. Its env replaces the inherited one, so the sandbox's own comes first, as
// Deno.Command would have passed it (the launcher may read its environment: --allow-env).
import { spawn } from "node:child_process";

const W: { dir: string; argv: string[]; env: Record<string, string> } = __CONDUCTOR_WARM_SPEC__;
const child = spawn(W.argv[0], W.argv.slice(1), {
  cwd: W.dir,
  env: { ...Deno.env.toObject(), ...W.env },
  stdio: ["pipe", "inherit", "inherit", "pipe"],
});
// The exit, recorded from the start: the launcher may look after the interpreter has gone. A
// start that failed is an exit with its error.
const exited = new Promise<{ code: number | null; signal: string | null; error?: string }>((resolve) => {
  child.on("exit", (code: number | null, signal: string | null) => resolve({ code, signal }));
  child.on("error", (err: Error) => resolve({ code: null, signal: null, error: String(err?.message ?? err) }));
});
// Errors of the pipes (EPIPE once the interpreter is gone) are the launcher's to notice through
// the exit status; unhandled, an "error" event would end deno.
for (const s of child.stdio) (s as { on?: (e: string, f: () => void) => void } | null)?.on?.("error", () => {});
(globalThis as any).__conductor_warm = { child, exited };
