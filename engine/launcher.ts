// conductor's execute_code launcher: the module the bootstrap evaluates in a launcher sandbox.
// Its deno may read and write only the working directory, run only the runtime's program and,
// with the mcpFactory relay, read its environment. It writes the request's files there, runs the
// program (or hands the entrypoint to the interpreter the sandbox started while booting, warm.ts)
// with its output going to the sandbox's captured streams, and exits with the program's exit code.
//
// With mcpFactory (run_python_code on a server with upstreams), it relays the interpreter's
// calls: see relay below.
const L = (globalThis as any).__conductor_launch as {
  dir: string;
  files: { name: string; content: string }[];
  argv: string[];
  env: Record<string, string>;
  entry: string;
  result?: string;
  mcpMaxLine?: number;
};
type Exit = { code: number | null; signal: string | null; error?: string };
// The runtime's pre-started interpreter, when its sandbox booted one (warm.ts), with the relay's
// end of its channel when it has one.
const warm = (globalThis as any).__conductor_warm as
  | { start(entry: string): Promise<void>; exited: Promise<Exit>; channel: any; close(): void }
  | undefined;
const enc = new TextEncoder();
for (const f of L.files) {
  const p = L.dir + "/" + f.name;
  Deno.mkdirSync(p.slice(0, p.lastIndexOf("/")), { recursive: true });
  Deno.writeFileSync(p, enc.encode(f.content), { createNew: true });
}

// ---- the mcpFactory relay ----------------------------------------------------------------------
// The interpreter's fd 3 is one end of a socketpair; this deno holds the other (warm.ts), and
// stays the only owner of the host's channel (fds 3 and 4 of this deno, the bootstrap's
// mcpFactory). No path names the socket, so nothing in the sandbox can connect to it before the
// runner or instead of it; the runner takes it over before the user's code runs.
//
// The protocol: the relay first writes one line, {"maxLine": N}, or closes its end when there is
// no mcpFactory (the runner reads that line, or the end of file, before the code runs). Then
// newline-delimited JSON requests {id, method, params} come in, each answered by one line,
// {id, result} or {id, error: {message}}, in any order. Everything on the socket is the user's
// code's to write, so it is hostile: a line over maxLine bytes is answered {id: null, closed:
// true, error} and the socket closed; a line that is not a request is answered {id (when it has
// a usable one) or null, error}; no error of the relay reaches the launcher's result. Calls still
// in flight when the interpreter exits are answered to no one (the host cancels them when the
// run ends).
type Factory = {
  listServers(): Promise<unknown>;
  load(name: string): Record<string, (...a: unknown[]) => Promise<unknown>>;
};
const methods: Record<string, (f: Factory, p: Record<string, unknown>) => Promise<unknown>> = {
  listServers: (f) => f.listServers(),
  listTools: (f, p) => f.load(str(p, "server")).listTools(),
  callTool: (f, p) => f.load(str(p, "server")).callTool(str(p, "tool"), obj(p, "args")),
  listResources: (f, p) => f.load(str(p, "server")).listResources(),
  readResource: (f, p) => f.load(str(p, "server")).readResource(str(p, "uri")),
  listPrompts: (f, p) => f.load(str(p, "server")).listPrompts(),
  getPrompt: (f, p) => f.load(str(p, "server")).getPrompt(str(p, "name"), obj(p, "args")),
};
function str(p: Record<string, unknown>, k: string): string {
  if (typeof p[k] !== "string") throw new TypeError(`params.${k} must be a string`);
  return p[k] as string;
}
function obj(p: Record<string, unknown>, k: string): Record<string, unknown> {
  const v = p[k] ?? {};
  if (typeof v !== "object" || Array.isArray(v)) throw new TypeError(`params.${k} must be an object`);
  return v as Record<string, unknown>;
}
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function relay(sock: any, factory: Factory, maxLine: number) {
  // Replies wait in the socket's buffer while the interpreter does not read them; past this many
  // bytes the relay stops reading requests until they drain.
  const highWater = 16 << 20;
  let chunks: Uint8Array[] = [];
  let held = 0;
  const send = (msg: unknown) => {
    if (sock.destroyed || sock.writableEnded) return;
    if (!sock.write(JSON.stringify(msg) + "\n") && sock.writableLength > highWater) sock.pause();
  };
  sock.on("drain", () => sock.resume());
  const answer = (id: unknown, p: Promise<unknown>) =>
    p.then(
      (result) => send({ id, result: result ?? null }),
      (err) => send({ id, error: { message: String(err?.message ?? err) } }),
    );
  const request = (line: string) => {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return send({ id: null, error: { message: "the request is not JSON" } });
    }
    if (!isObject(msg)) return send({ id: null, error: { message: "the request is not a JSON object" } });
    const id = msg.id;
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      return send({ id: null, error: { message: "the request's id must be a non-negative integer" } });
    }
    const m = typeof msg.method === "string" && Object.hasOwn(methods, msg.method) ? methods[msg.method] : undefined;
    if (!m) return send({ id, error: { message: `unknown mcpFactory method ${JSON.stringify(msg.method)}` } });
    const params = msg.params ?? {};
    if (!isObject(params)) return send({ id, error: { message: "the request's params must be an object" } });
    // A synchronous throw (a bad parameter) becomes the same rejection as the host's refusals.
    answer(id, new Promise((resolve) => resolve(m(factory, params))));
  };
  sock.on("data", (data: Uint8Array) => {
    let from = 0;
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, from)) {
      const n = held + nl - from;
      if (n > maxLine) return tooLong();
      chunks.push(data.subarray(from, nl));
      const line = new TextDecoder().decode(held === 0 ? chunks[0] : concat(chunks, n));
      chunks = [];
      held = 0;
      from = nl + 1;
      if (line.trim() !== "") request(line);
    }
    if (from < data.length) {
      chunks.push(data.subarray(from));
      held += data.length - from;
      if (held > maxLine) tooLong();
    }
  });
  const tooLong = () => {
    chunks = [];
    held = 0;
    sock.removeAllListeners("data");
    send({ id: null, closed: true, error: { message: `a request line over ${maxLine} bytes; the mcpFactory channel is closed` } });
    sock.end(() => sock.destroy());
  };
  send({ maxLine });
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

let exit: Exit;
if (warm) {
  const factory = (globalThis as any).mcpFactory as Factory | undefined;
  if (warm.channel) {
    if (factory && L.mcpMaxLine) relay(warm.channel, factory, L.mcpMaxLine);
    else warm.channel.destroy(); // the runner reads the end of file: no mcpFactory
  }
  // It runs the entrypoint as argv would, once it has its name.
  await warm.start(L.entry + "\n");
  exit = await warm.exited;
  // The interpreter is gone: the relay ends with it (calls still in flight are answered to no one).
  warm.close();
  if (exit.error) throw new Error(`${L.argv[0]} could not be started: ${exit.error}`);
} else {
  const st = await new Deno.Command(L.argv[0], {
    args: L.argv.slice(1),
    cwd: L.dir,
    env: L.env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  exit = { code: st.code, signal: st.signal };
}
if (exit.code !== 0) {
  // No result frame: the sandbox reports deno's exit code, which is the program's (128 + the
  // signal's number when a signal ended it), and a memory-limit kill as such.
  const signals: Record<string, number> = { SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15, SIGXCPU: 24, SIGSYS: 31 };
  Deno.exit(exit.signal ? 128 + (signals[exit.signal] ?? 0) : (exit.code ?? 1));
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
