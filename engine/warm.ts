// conductor's execute_code boot module (StartOptions.Boot of a launcher sandbox whose runtime has
// a pre-started interpreter, runtimes.Runtime.Warm): evaluated while the sandbox boots, it starts
// the interpreter in the working directory with the runtime's environment, its output going to
// the sandbox's captured streams; launcher.ts sends it the entrypoint's name on stdin.
const W: { dir: string; argv: string[]; env: Record<string, string> } = __CONDUCTOR_WARM_SPEC__;
(globalThis as any).__conductor_warm = new Deno.Command(W.argv[0], {
  args: W.argv.slice(1),
  cwd: W.dir,
  env: W.env,
  stdin: "piped",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
