// conductor bootstrap: the fixed program every sandbox boots into.
//
// It opens the channel (fd 4: frames from the host, fd 3: frames to the host),
// drops deno's permission on those paths so the user's code cannot reopen
// them, announces "ready", waits for one "run" frame, and evaluates its code
// as a TypeScript module. A frame is a 4-byte big-endian length followed by
// UTF-8 JSON. Line and column numbers in errors are the user's own: the code
// is imported verbatim, and the module's URL is replaced by "main.ts".
const enc = new TextEncoder();
const dec = new TextDecoder();
const input = Deno.openSync("/proc/self/fd/4", { read: true });
const output = Deno.openSync("/proc/self/fd/3", { write: true });
Deno.permissions.revokeSync({ name: "read", path: "/proc/self/fd/4" });
Deno.permissions.revokeSync({ name: "write", path: "/proc/self/fd/3" });

function send(msg) {
  const body = enc.encode(JSON.stringify(msg));
  const buf = new Uint8Array(4 + body.length);
  new DataView(buf.buffer).setUint32(0, body.length);
  buf.set(body, 4);
  let off = 0;
  while (off < buf.length) off += output.writeSync(buf.subarray(off));
}

async function readExact(n) {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await input.read(buf.subarray(off));
    if (got === null) return null;
    off += got;
  }
  return buf;
}

async function readFrame() {
  const hdr = await readExact(4);
  if (hdr === null) return null;
  const body = await readExact(new DataView(hdr.buffer).getUint32(0));
  if (body === null) return null;
  return JSON.parse(dec.decode(body));
}

let moduleURL = "";
function clean(text) {
  let s = String(text);
  if (moduleURL) s = s.replaceAll(moduleURL, "main.ts");
  return s
    .split("\n")
    .filter((line) => !line.includes("file:///conductor/"))
    .join("\n");
}

function describe(err) {
  if (err instanceof Error) {
    return {
      name: clean(err.name),
      message: clean(err.message),
      stack: clean(err.stack ?? ""),
    };
  }
  let message;
  try {
    message = typeof err === "string" ? err : JSON.stringify(err);
  } catch {
    message = String(err);
  }
  return { name: "Uncaught", message: clean(message ?? String(err)), stack: "" };
}

function fail(err) {
  send({ type: "error", error: describe(err) });
  Deno.exit(1);
}

globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  fail(e.reason);
});
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  fail(e.error ?? e.message);
});

send({ type: "ready" });
const msg = await readFrame();
if (msg === null || msg.type !== "run" || typeof msg.code !== "string") {
  send({
    type: "error",
    error: { name: "ProtocolError", message: "expected a run frame", stack: "" },
  });
  Deno.exit(70);
}
moduleURL = "data:application/typescript," + encodeURIComponent(msg.code);
try {
  await import(moduleURL);
  send({ type: "evaluated" });
} catch (err) {
  fail(err);
}
