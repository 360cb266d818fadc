// conductor bootstrap: the fixed program every sandbox boots into.
//
// It opens the channel (fd 4: frames from the host, fd 3: frames to the host),
// drops deno's permission on those paths so the user's code cannot reopen
// them, evaluates the boot module the host sends first when it is started
// with --boot (StartOptions.Boot), announces "ready", waits for one "run" frame, defines its globals,
// evaluates its code as a TypeScript module, and reports the module's default
// export (awaited) as the result. A frame is a 4-byte big-endian length followed by
// UTF-8 JSON. Line and column numbers in errors are the user's own: the code
// is imported verbatim, and the module's URL is replaced by "main.ts".
// display.js defines the global display(): files returned through the outputs directory.
import "./display.js";
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
// Deno abbreviates long data: URLs in stack traces ("data:…%22%......%2F…"),
// so the module is recognised by its form: encodeURIComponent leaves no ":"
// and no white space in it, so it ends where ":line:column" begins.
const dataModule = /data:application\/typescript,[^\s:]*/g;
function clean(text) {
  let s = String(text);
  if (moduleURL) s = s.replaceAll(moduleURL, "main.ts");
  s = s.replace(dataModule, "main.ts");
  return s
    .split("\n")
    .filter((line) => !line.includes("file:///conductor/"))
    .join("\n");
}

// maxCauseText bounds the text withCause adds to a message.
const maxCauseText = 500;

// withCause is err's message followed by the texts of its cause chain (an
// Error's message, or a string) that the message does not already hold:
// "fetch failed: ... Connection refused (os error 111)". A failed fetch is
// deno's TypeError("fetch failed") with the reason only in its cause, which
// e.message, String(e) and the error's report leave out.
function withCause(err) {
  let message = String(err.message);
  try {
    const parts = [];
    let c = err.cause;
    for (let depth = 0; depth < 5 && c !== undefined && c !== null; depth++) {
      let text;
      if (c instanceof Error) text = String(c.message || (c.name !== "Error" ? c.name : ""));
      else if (typeof c === "string") text = c;
      else break;
      text = text.trim();
      if (text !== "" && !message.includes(text) && !parts.some((p) => p.includes(text))) parts.push(text);
      c = c instanceof Error ? c.cause : undefined;
    }
    let added = parts.join(": ");
    if (added.length > maxCauseText) added = added.slice(0, maxCauseText) + "…";
    if (added !== "") message = message === "" ? added : message + ": " + added;
  } catch {
    // a cause whose getters throw adds nothing
  }
  return message;
}

// fetch is deno's, with withCause's message on the error of a failed request, so that code
// catching it reads why (connection refused, a reset, a name that does not resolve). The stack is
// formatted first and stays deno's (V8 formats it when first read, with the message then).
const denoFetch = globalThis.fetch;
async function fetch(...args) {
  try {
    return await denoFetch(...args);
  } catch (err) {
    if (err instanceof Error && err.cause !== undefined) {
      try {
        void err.stack;
        err.message = withCause(err);
      } catch {
        // a frozen error keeps its message
      }
    }
    throw err;
  }
}
Object.defineProperty(fetch, "length", { value: denoFetch.length });
globalThis.fetch = fetch;

function describe(err) {
  if (err instanceof Error) {
    return {
      name: clean(err.name),
      message: clean(withCause(err)),
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

// ---- return values -------------------------------------------------------
// encode turns any JavaScript value into JSON-compatible data, faithfully:
// JSON-native values stay as they are; everything else becomes an object
// tagged with "$type" (undefined, non-finite numbers and -0, bigint, symbol,
// function, Date, RegExp, Error, Map, Set, typed arrays, ArrayBuffer,
// DataView, Promise, WeakMap/WeakSet, circular references, class instances,
// and plain objects that themselves have a "$type" key). The output is kept
// under a byte budget; whatever does not fit becomes {"$type":"truncated"}.
function encode(root, budget) {
  let used = 0;
  let truncated = false;
  const seen = new Map(); // object -> path, for cycles
  const MAX_DEPTH = 200;
  const charge = (n) => {
    used += n;
    return used <= budget;
  };
  const cut = () => {
    truncated = true;
    return { $type: "truncated" };
  };
  // A property whose getter throws reads as an Unreadable, which user code
  // cannot construct, so it is never mistaken for the user's own data.
  class Unreadable {
    constructor(err) {
      this.message = String(err?.message ?? err);
    }
  }
  const read = (obj, key) => {
    try {
      return obj[key];
    } catch (err) {
      return new Unreadable(err);
    }
  };
  function enc(v, path, depth) {
    if (used > budget) return cut();
    switch (typeof v) {
      case "undefined":
        charge(20);
        return { $type: "undefined" };
      case "boolean":
        charge(5);
        return v;
      case "number":
        charge(24);
        if (Number.isNaN(v)) return { $type: "number", value: "NaN" };
        if (v === Infinity) return { $type: "number", value: "Infinity" };
        if (v === -Infinity) return { $type: "number", value: "-Infinity" };
        if (Object.is(v, -0)) return { $type: "number", value: "-0" };
        return v;
      case "bigint": {
        const s = v.toString();
        charge(s.length + 30);
        return { $type: "bigint", value: s };
      }
      case "string": {
        const room = budget - used;
        if (v.length + 2 > room) {
          truncated = true;
          const keep = Math.max(0, room - 80);
          charge(keep + 80);
          return { $type: "string", value: v.slice(0, keep), length: v.length, truncated: true };
        }
        charge(v.length + 2);
        return v;
      }
      case "symbol":
        charge(40);
        return { $type: "symbol", description: v.description ?? null };
      case "function":
        charge(40);
        return { $type: "function", name: v.name || null };
    }
    if (v === null) {
      charge(4);
      return null;
    }
    if (seen.has(v)) {
      charge(40);
      return { $type: "circular", path: seen.get(v) };
    }
    if (depth > MAX_DEPTH) return cut();
    seen.set(v, path);
    try {
      return encObject(v, path, depth);
    } finally {
      seen.delete(v);
    }
  }
  function encObject(v, path, depth) {
    charge(2);
    if (v instanceof Unreadable) return { $type: "unreadable", message: v.message };
    const child = (x, p) => enc(x, p, depth + 1);
    if (Array.isArray(v)) {
      const out = [];
      for (let i = 0; i < v.length; i++) {
        if (used > budget) {
          out.push(cut());
          break;
        }
        out.push(child(read(v, i), `${path}[${i}]`));
      }
      return out;
    }
    if (v instanceof Date) {
      charge(40);
      return { $type: "Date", value: Number.isNaN(v.getTime()) ? null : v.toISOString() };
    }
    if (v instanceof RegExp) {
      charge(v.source.length + 40);
      return { $type: "RegExp", source: v.source, flags: v.flags };
    }
    if (v instanceof Error) {
      const out = {
        $type: "Error",
        name: child(v.name, `${path}.name`),
        message: child(v.message, `${path}.message`),
        stack: child(clean(v.stack ?? ""), `${path}.stack`),
      };
      if ("cause" in v) out.cause = child(read(v, "cause"), `${path}.cause`);
      return out;
    }
    if (v instanceof Map) {
      const entries = [];
      let i = 0;
      for (const [k, val] of v) {
        if (used > budget) {
          entries.push(cut());
          break;
        }
        entries.push([child(k, `${path}.<key ${i}>`), child(val, `${path}.<value ${i}>`)]);
        i++;
      }
      return { $type: "Map", entries };
    }
    if (v instanceof Set) {
      const values = [];
      let i = 0;
      for (const val of v) {
        if (used > budget) {
          values.push(cut());
          break;
        }
        values.push(child(val, `${path}.<value ${i++}>`));
      }
      return { $type: "Set", values };
    }
    if (ArrayBuffer.isView(v)) {
      const type = v.constructor?.name ?? "TypedArray";
      if (v instanceof DataView) {
        return { $type: "DataView", base64: base64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
      }
      const values = [];
      for (let i = 0; i < v.length; i++) {
        if (!charge(String(v[i]).length + 1)) {
          values.push(cut());
          break;
        }
        values.push(typeof v[i] === "bigint" ? v[i].toString() : v[i]);
      }
      return { $type: type, values };
    }
    if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer)) {
      return { $type: v.constructor.name, base64: base64(new Uint8Array(v)) };
    }
    if (v instanceof Promise) {
      charge(20);
      return { $type: "Promise" };
    }
    if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) {
      charge(20);
      return { $type: v.constructor.name };
    }
    const proto = Object.getPrototypeOf(v);
    const plain = proto === Object.prototype || proto === null;
    if (!plain && typeof read(v, "toJSON") === "function") {
      try {
        return child(v.toJSON(), path);
      } catch (err) {
        return { $type: "unreadable", message: String(err?.message ?? err) };
      }
    }
    const obj = {};
    for (const key of Object.keys(v)) {
      if (used > budget) {
        obj["$truncated"] = cut();
        break;
      }
      charge(key.length + 4);
      obj[key] = child(read(v, key), `${path}.${key}`);
    }
    if (!plain) {
      return { $type: "object", class: proto?.constructor?.name ?? null, value: obj };
    }
    if (Object.hasOwn(obj, "$type")) return { $type: "object", value: obj };
    return obj;
  }
  function base64(bytes) {
    const room = Math.max(0, Math.floor(((budget - used) * 3) / 4) - 64);
    const take = bytes.length > room ? bytes.subarray(0, room) : bytes;
    if (take.length < bytes.length) truncated = true;
    let bin = "";
    for (let i = 0; i < take.length; i += 0x8000) {
      bin += String.fromCharCode(...take.subarray(i, i + 0x8000));
    }
    charge(Math.ceil((take.length * 4) / 3) + 40);
    return btoa(bin);
  }
  const value = enc(root, "$", 0);
  return { value, truncated };
}

// ---- mcpFactory ------------------------------------------------------------
// Calls go to the host as {type:"call", id, method, params} frames on fd 3;
// replies come back as {type:"reply", id, result | error} frames on fd 4, in
// any order, so Promise.all runs calls in parallel. Replies are read only
// while a call is pending: an idle read would keep deno's event loop alive
// after the user's code is done.
class McpError extends Error {
  constructor(message) {
    super(message);
    this.name = "McpError";
  }
}
// callError is the McpError a call rejects with. It is made when the code makes the call, so its
// stack is the code's (made when the reply arrives it would hold no frame of the code, and an
// uncaught one no line of the user's); V8 formats the stack when it is first read, with the
// message set by then. (A stack replaced by hand makes deno re-wrap a module's error.)
function callError(pending, message) {
  pending.error.message = message;
  return pending.error;
}
let nextCallId = 1;
const pendingCalls = new Map();
let readingReplies = false;

async function pumpReplies() {
  readingReplies = true;
  try {
    while (pendingCalls.size > 0) {
      const f = await readFrame();
      if (f === null) {
        for (const p of pendingCalls.values()) p.reject(callError(p, "conductor closed the channel"));
        pendingCalls.clear();
        return;
      }
      if (f.type !== "reply") continue;
      const p = pendingCalls.get(f.id);
      if (!p) continue;
      pendingCalls.delete(f.id);
      if (f.error) p.reject(callError(p, String(f.error.message)));
      else p.resolve(f.result);
    }
  } finally {
    readingReplies = false;
  }
}

function hostCall(method, params) {
  const id = nextCallId++;
  const error = new McpError(""); // see callError
  const promise = new Promise((resolve, reject) => pendingCalls.set(id, { resolve, reject, error }));
  send({ type: "call", id, method, params });
  if (!readingReplies) pumpReplies();
  return promise;
}

function makeMcpFactory() {
  const load = (server) => {
    if (typeof server !== "string" || server === "") {
      throw new TypeError("mcpFactory.load(name): name must be a server name string");
    }
    const call = (method, params = {}) => hostCall(method, { server, ...params });
    return Object.freeze({
      name: server,
      listTools: () => call("listTools"),
      callTool: (tool, args = {}) => call("callTool", { tool, args }),
      listResources: () => call("listResources"),
      readResource: (uri) => call("readResource", { uri }),
      listPrompts: () => call("listPrompts"),
      getPrompt: (name, args = {}) => call("getPrompt", { name, args }),
    });
  };
  return Object.freeze({ listServers: () => hostCall("listServers", {}), load });
}

// makeServers is the global `servers`: servers.<server>.<tool>(args) (or
// servers["my-server"]["tool-name"](args)) is
// mcpFactory.load(server).callTool(tool, args). Frozen proxies: nothing can
// be assigned or deleted; "then" is never a tool (so `await servers.x` is
// not taken for a thenable), nor "toJSON" or a symbol. An unknown server or
// tool rejects with the host's error when called.
function makeServers() {
  const frozen = () => Object.freeze(Object.create(null));
  const readOnly = {
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    setPrototypeOf: () => false,
  };
  const notTool = (key) => typeof key !== "string" || key === "then" || key === "toJSON";
  const byServer = new Map();
  const serverProxy = (server) => {
    const tools = new Map();
    return new Proxy(frozen(), {
      ...readOnly,
      get(_target, tool) {
        if (notTool(tool)) return undefined;
        let fn = tools.get(tool);
        if (!fn) {
          fn = (args = {}) => hostCall("callTool", { server, tool, args });
          Object.defineProperty(fn, "name", { value: tool });
          tools.set(tool, fn);
        }
        return fn;
      },
    });
  };
  return new Proxy(frozen(), {
    ...readOnly,
    get(_target, server) {
      if (notTool(server)) return undefined;
      let p = byServer.get(server);
      if (!p) {
        p = serverProxy(server);
        byServer.set(server, p);
      }
      return p;
    },
  });
}

// ---- playbooks -------------------------------------------------------------
// playbooks.run(name, args) asks the host for the playbook's module (its arguments checked against
// its inputs schema there and bound to `const args` on its first line), imports it from a blob:
// URL (one per run, so the module runs again each time) and resolves to its default export, the
// playbook's value. An error in it rejects with a PlaybookError made at the call (its stack is the
// caller's) whose message names the playbook and the position in its own file, mapped by the host.
class PlaybookError extends Error {
  constructor(message) {
    super(message);
    this.name = "PlaybookError";
  }
}
const playbookPosition = /main\.ts:(\d+):(\d+)/;

async function playbookFailure(name, token, url, err) {
  // The playbook's frames become main.ts for the host's mapping; the caller's keep their data: URL.
  const what = describe(err);
  let text = err instanceof Error ? withCause(err) + "\n" + String(err.stack ?? "") : what.message;
  text = text.replaceAll(url, "main.ts");
  try {
    text = String(await hostCall("playbooks.map", { token, text }));
  } catch {
    // unmapped positions are still the file's lines
  }
  const at = playbookPosition.exec(text);
  const where = at ? ` at its line ${at[1]}, column ${at[2]}` : "";
  const message = text.split("\n")[0].replace(/main\.ts:(\d+):(\d+)/g, `${name}.ts line $1, column $2`);
  return `playbook "${name}" failed${where}: ${what.name === "Uncaught" ? "" : what.name + ": "}${message}`;
}

function makePlaybooks() {
  async function run(name, args = {}) {
    const error = new PlaybookError(""); // before any await: its stack is the caller's
    if (typeof name !== "string" || name === "") {
      error.message = "playbooks.run(name, args): name must be a playbook name string; playbooks.list() lists them";
      throw error;
    }
    let reply;
    try {
      reply = await hostCall("playbooks.run", { name, args: args ?? {} });
    } catch (err) {
      error.message = err.message;
      throw error;
    }
    const url = URL.createObjectURL(new Blob([reply.module], { type: "application/typescript" }));
    try {
      const mod = await import(url);
      return await mod.default;
    } catch (err) {
      error.message = await playbookFailure(name, reply.token, url, err);
      error.playbook = name;
      throw error;
    } finally {
      URL.revokeObjectURL(url);
    }
  }
  return Object.freeze({ run, list: () => hostCall("playbooks.list", {}) });
}

// defineGlobals makes each admin- or model-supplied global a read-only
// property of globalThis, so both `city` and `globalThis.city` work.
function defineGlobals(globals) {
  if (globals === null || globals === undefined) return;
  for (const [key, value] of Object.entries(globals)) {
    if (key in globalThis) {
      throw new TypeError(`global "${key}" would shadow a built-in global; choose another name`);
    }
    Object.defineProperty(globalThis, key, {
      value,
      writable: false,
      enumerable: true,
      configurable: false,
    });
  }
}

// The first dynamic import sets up deno's module loading and TypeScript
// transpiling (about half a millisecond); do it while booting, not on the
// request.
await import("data:application/typescript,export%20default%200");
// With --boot, the host's first frame is a module to evaluate while booting
// (conductor's own, e.g. execute_code's launcher starting the interpreter);
// an error in it ends the boot, reported by the host with deno's stderr.
if (Deno.args.includes("--boot")) {
  const boot = await readFrame();
  if (boot === null || boot.type !== "boot" || typeof boot.code !== "string") {
    send({
      type: "error",
      error: { name: "ProtocolError", message: "expected a boot frame", stack: "" },
    });
    Deno.exit(70);
  }
  try {
    await import("data:application/typescript," + encodeURIComponent(boot.code));
  } catch (err) {
    // Before "ready" the host reads deno's exit and stderr, not frames.
    console.error("conductor: boot module failed:", err);
    Deno.exit(70);
  }
}
send({ type: "ready" });
const msg = await readFrame();
if (msg === null || msg.type !== "run" || typeof msg.code !== "string") {
  send({
    type: "error",
    error: { name: "ProtocolError", message: "expected a run frame", stack: "" },
  });
  Deno.exit(70);
}
try {
  defineGlobals(msg.globals);
  if (msg.mcp) {
    Object.defineProperty(globalThis, "mcpFactory", {
      value: makeMcpFactory(),
      writable: false,
      enumerable: false,
      configurable: false,
    });
    if ("servers" in globalThis) {
      throw new TypeError(
        'global "servers" is taken by the typed MCP bindings (servers.<server>.<tool>(args)) on this server; choose another name',
      );
    }
    Object.defineProperty(globalThis, "servers", {
      value: makeServers(),
      writable: false,
      enumerable: false,
      configurable: false,
    });
  }
  if (msg.playbooks) {
    Object.defineProperty(globalThis, "playbooks", {
      value: makePlaybooks(),
      writable: false,
      enumerable: false,
      configurable: false,
    });
  }
} catch (err) {
  send({ type: "error", error: { name: "GlobalsError", message: String(err.message), stack: "" } });
  Deno.exit(1);
}
moduleURL = "data:application/typescript," + encodeURIComponent(msg.code);
try {
  const mod = await import(moduleURL);
  const result = await mod.default;
  const { value, truncated } = encode(result, msg.resultLimit ?? 1048576);
  send({ type: "evaluated", result: value, resultTruncated: truncated });
} catch (err) {
  fail(err);
}
// Once the event loop has drained (timers and pending work of the code have
// run) and the unload listeners the code added while it ran have been called,
// exit at once with the exit code so far (Deno.exitCode is honoured): the
// sandbox is single-use, so tearing the isolate down first would only delay
// the result.
globalThis.addEventListener("unload", () => Deno.exit());
