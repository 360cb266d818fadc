// The network escape probe: deno's own net checks bypassed with FFI, libc's
// socket/connect/sendto called directly. Each probe reports "OK ...",
// "E<errno>", or "timeout". PARAMS: { listed: port of the host's HTTP
// server, other: an unlisted host port, wait: the time unit of the waits
// in ms (1000; more on slow hosts: testenv.Scale) }.
declare const PARAMS: { listed: number; other: number; wait?: number };
const WAIT = PARAMS.wait ?? 1000;

const libcPaths = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/lib/libc.so.6",
];
let LIBC = "";
for (const p of libcPaths) {
  try {
    Deno.statSync(p);
    LIBC = p;
    break;
  } catch { /* next */ }
}

const libc = Deno.dlopen(LIBC, {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});
const errnoView = new Deno.UnsafePointerView(libc.symbols.__errno_location()!);
const errno = () => "E" + errnoView.getInt32(0);

const AF_INET = 2, AF_INET6 = 10, AF_PACKET = 17;
const SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3, SOCK_NONBLOCK = 0o4000;
const IPPROTO_ICMP = 1, IPPROTO_UDP = 17;
const POLLIN = 1, POLLOUT = 4;
const SOL_SOCKET = 1, SO_ERROR = 4;
const EINPROGRESS = 115, EINTR = 4, EAGAIN = 11;

function in4(a: number[], port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  b.set(a, 4);
  return b;
}

function in6(a: number[], port: number): Uint8Array {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  b.set(a, 8);
  return b;
}

function pollFd(fd: number, events: number, ms: number): number {
  const p = new Uint8Array(8);
  const v = new DataView(p.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, events, true);
  return libc.symbols.poll(p, 1n, ms);
}

// tcp connects (non-blocking, 2 s), sends req if given, and reads the
// answer: "OK <text>", "E<errno>" (connect or read), or "timeout".
function tcp(family: number, addr: Uint8Array, req: string): string {
  const fd = libc.symbols.socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno();
  try {
    if (libc.symbols.connect(fd, addr, addr.length) !== 0) {
      const e = errnoView.getInt32(0);
      if (e !== EINPROGRESS) return "E" + e;
      if (pollFd(fd, POLLOUT, 2 * WAIT) === 0) return "timeout";
      const err = new Uint8Array(4), len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, 4, true);
      libc.symbols.getsockopt(fd, SOL_SOCKET, SO_ERROR, err, len);
      const soErr = new DataView(err.buffer).getInt32(0, true);
      if (soErr !== 0) return "E" + soErr;
    }
    const msg = new TextEncoder().encode(req);
    if (libc.symbols.send(fd, msg, BigInt(msg.length), 0) < 0) return errno() + "@send";
    let text = "";
    const buf = new Uint8Array(4096);
    // A wake-up without data (EINTR from poll, EAGAIN from recv: seen under
    // TCG emulation) waits again, until the deadline.
    const deadline = Date.now() + 3 * WAIT;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return text ? "OK " + text : "timeout";
      const ready = pollFd(fd, POLLIN, left);
      if (ready === 0) return text ? "OK " + text : "timeout";
      if (ready < 0) {
        const e = errnoView.getInt32(0);
        if (e === EINTR) continue;
        return text ? "OK " + text : "E" + e + "@poll";
      }
      const n = Number(libc.symbols.recv(fd, buf, BigInt(buf.length), 0));
      if (n < 0) {
        const e = errnoView.getInt32(0);
        if (e === EAGAIN || e === EINTR) continue;
        return text ? "OK " + text : "E" + e + "@recv";
      }
      if (n === 0) return "OK " + text;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    libc.symbols.close(fd);
  }
}

function udp(addr: Uint8Array, msg: Uint8Array, wantReply: boolean): string {
  const fd = libc.symbols.socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  if (fd < 0) return errno();
  try {
    // errno is read at once, yet the runtime can clobber it between two FFI calls (the v2 VM
    // under TCG saw E2 once where every other run saw E1): a refused send is tried again, at most
    // three times, until its errno is EPERM; one that goes through is reported as sent.
    for (let i = 0; ; i++) {
      if (libc.symbols.sendto(fd, msg, BigInt(msg.length), 0, addr, addr.length) >= 0) break;
      const e = errno();
      if (e === "E1" || i === 2) return e;
    }
    if (!wantReply) return "OK sent";
    if (pollFd(fd, POLLIN, 3 * WAIT) === 0) return "timeout";
    const buf = new Uint8Array(512);
    const n = Number(libc.symbols.recv(fd, buf, BigInt(buf.length), 0));
    return n < 0 ? errno() : "OK " + n + " bytes";
  } finally {
    libc.symbols.close(fd);
  }
}

function sock(family: number, type: number, proto: number): string {
  const fd = libc.symbols.socket(family, type, proto);
  if (fd < 0) return errno();
  libc.symbols.close(fd);
  return "OK";
}

// A DNS query for name, type A.
function dnsQuery(name: string): Uint8Array {
  const parts = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const label of name.split(".")) {
    parts.push(label.length, ...new TextEncoder().encode(label));
  }
  parts.push(0, 0, 1, 0, 1);
  return new Uint8Array(parts);
}

const loop = [127, 0, 0, 1];
const get = "GET /ffi HTTP/1.0\r\nHost: x\r\n\r\n";
const out: Record<string, string> = {
  "tcp listed": tcp(AF_INET, in4(loop, PARAMS.listed), get),
  "tcp unlisted port": tcp(AF_INET, in4(loop, PARAMS.other), get),
  "tcp 127.0.0.2 listed port": tcp(AF_INET, in4([127, 0, 0, 2], PARAMS.listed), get),
  "tcp 10.1.2.3:80": tcp(AF_INET, in4([10, 1, 2, 3], 80), get),
  "tcp 169.254.169.254:80": tcp(AF_INET, in4([169, 254, 169, 254], 80), get),
  "tcp6 [::1] listed port": tcp(AF_INET6, in6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], PARAMS.listed), get),
  "udp 127.0.0.1:5353": udp(in4(loop, 5353), new Uint8Array([1, 2, 3]), false),
  "udp 10.1.2.3:53": udp(in4([10, 1, 2, 3], 53), dnsQuery("example.com"), false),
  "udp responder": udp(in4([127, 0, 0, 53], 53), dnsQuery("example.com"), true),
  "raw icmp socket": sock(AF_INET, SOCK_RAW, IPPROTO_ICMP),
  "packet socket": sock(AF_PACKET, SOCK_RAW, 0x0300),
};
export default out;
