// conductor's execute_code launcher: the module the bootstrap evaluates in a launcher sandbox.
// Its deno may read and write only the working directory and run only the runtime's program.
// It writes the request's files there, runs the program (or hands the entrypoint to the
// interpreter the sandbox started while booting, warm.ts) with its output going to the sandbox's
// captured streams, and exits with the program's exit code.
const L = (globalThis as any).__conductor_launch as {
  dir: string;
  files: { name: string; content: string }[];
  argv: string[];
  env: Record<string, string>;
  entry: string;
  result?: string;
};
// The runtime's pre-started interpreter, when its sandbox booted one (warm.ts).
const warm = (globalThis as any).__conductor_warm as Deno.ChildProcess | undefined;
const enc = new TextEncoder();
for (const f of L.files) {
  const p = L.dir + "/" + f.name;
  Deno.mkdirSync(p.slice(0, p.lastIndexOf("/")), { recursive: true });
  Deno.writeFileSync(p, enc.encode(f.content), { createNew: true });
}
let child: Deno.ChildProcess;
if (warm) {
  // It runs the entrypoint as argv would, once it has its name.
  const w = warm.stdin.getWriter();
  await w.write(enc.encode(L.entry + "\n"));
  await w.close();
  child = warm;
} else {
  child = new Deno.Command(L.argv[0], {
    args: L.argv.slice(1),
    cwd: L.dir,
    env: L.env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
}
const st = await child.status;
if (!st.success) {
  // No result frame: the sandbox reports deno's exit code, which is the program's (128 + the
  // signal's number when a signal ended it), and a memory-limit kill as such.
  const signals: Record<string, number> = { SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15, SIGXCPU: 24, SIGSYS: 31 };
  Deno.exit(st.signal ? 128 + (signals[st.signal] ?? 0) : st.code);
}
// With a result file (run_python_code's runner writes its outcome there), its text is the result.
let result: unknown = { exitCode: 0 };
if (L.result) {
  try {
    result = new TextDecoder().decode(Deno.readFileSync(L.dir + "/" + L.result));
  } catch {
    result = null; // the program ended without writing it (os._exit)
  }
}
export default result;
