// Escape-suite probe program: runs INSIDE a sandbox with deno's permissions
// fully open (--allow-all, FFI included) and calls the kernel directly (a raw
// syscall stub on x86_64, libc's syscall() elsewhere), so that what it
// observes is what the OS walls allow, not what deno's permission model
// allows. sandbox/escape_test.go prepends
//
//   const PARAMS = { mode, network, nr (syscall numbers by name), hostPort,
//                    hostPort6, hostAbstract, hostPid, hostPaths, loaders,
//                    maskedPaths };
//
// and asserts every field of the report, which is printed as ONE line
// "ESCAPE-REPORT <json>" on stdout. Syscall outcomes are the raw kernel
// convention: a value >= 0 on success, -errno on failure. Every probe is
// chosen so that it is harmless even if the wall it tests were missing
// (e.g. clone with namespace flags plus a flag combination the kernel
// rejects with EINVAL, settimeofday(NULL, NULL), reboot with a bad magic).
//
// Modes:
//   main        every non-fatal probe (run with and without network)
//   hostile     writes to every /proc/*/exe and /proc/*/fd/* it can open
//   x32         an x32-ABI syscall from the main thread (expected: SIGSYS)
//   x32-worker  the same from a Worker thread (the whole process must die)
//   int80       an i386 `int 0x80` syscall (expected: SIGSYS)
//   links       probe 22, in a sandbox with a workspace (PARAMS.ws): symlinks and
//               hard links out of the workspace, the spill directory replaced by
//               links (PARAMS.phase 1: at the workspace's top and .conductor,
//               with a child flipping .conductor/output; phase 2: a directory of
//               spill-named links); PARAMS.bait, baitFile and stateDir are HOST
//               paths the host watches

// deno-lint-ignore no-explicit-any
declare const PARAMS: any;

type Arg = number | bigint;

const enc = new TextEncoder();
const dec = new TextDecoder();
const keep: unknown[] = []; // buffers whose addresses were handed to the kernel

// Constants that are the same on x86_64 and arm64 (asm-generic).
const AT_FDCWD = -100;
const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2;
const O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000;
const O_CLOEXEC = 0o2000000, O_PATH = 0o10000000;
const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
const MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10, AF_KEY = 15, AF_NETLINK = 16, AF_PACKET = 17;
const AF_BLUETOOTH = 31, AF_ALG = 38, AF_VSOCK = 40, AF_XDP = 44;
const SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3, SOCK_SEQPACKET = 5, SOCK_CLOEXEC = 0o2000000;
const CLONE_FS = 0x200, CLONE_THREAD = 0x10000, SIGCHLD = 17;
const CLONE_NEWNS = 0x20000, CLONE_NEWCGROUP = 0x2000000, CLONE_NEWUTS = 0x4000000;
const CLONE_NEWIPC = 0x8000000, CLONE_NEWUSER = 0x10000000, CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000, CLONE_NEWTIME = 0x80;
const MS_BIND = 0x1000, MNT_DETACH = 2, OPEN_TREE_CLONE = 1;
const TIOCSTI = 0x5412, TIOCLINUX = 0x541c, TIOCSCTTY = 0x540e, TCGETS = 0x5401;
const PTRACE_TRACEME = 0, PTRACE_ATTACH = 16;
const X32_SYSCALL_BIT = 0x40000000n;

function firstExisting(paths: string[]): string {
  for (const p of paths) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* try the next */ }
  }
  throw new Error("none of these exists: " + paths.join(", "));
}

const LIBC = firstExisting([
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/lib/libc.so.6",
]);

const SYMBOLS = {
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const libc = Deno.dlopen(LIBC, SYMBOLS);
const errnoView = new Deno.UnsafePointerView(libc.symbols.__errno_location()!);

// On x86_64 syscalls go through a 26-byte stub that returns the kernel's raw
// result (-errno on failure), so no errno is read: between libc's syscall()
// returning and JS reading errno, the runtime may itself fail a call on the
// same thread (V8 allocating, say) and overwrite errno (seen: a sporadic
// ENOENT from pivot_root). Elsewhere libc's syscall() and errno are used,
// errno read as early as possible.
const rawStub = Deno.build.arch === "x86_64" ? makeRawStub() : null;

function makeRawStub() {
  const X86_64_MMAP = 9n;
  const prot = BigInt(PROT_READ | PROT_WRITE | PROT_EXEC);
  const page = BigInt(libc.symbols.syscall(X86_64_MMAP, 0n, 4096n, prot, BigInt(MAP_PRIVATE | MAP_ANONYMOUS), -1n, 0n));
  if (page === -1n) throw new Error("mmap of the syscall stub failed: errno " + errnoView.getInt32(0));
  const p = Deno.UnsafePointer.create<typeof SYMBOLS.syscall>(page)!;
  // deno-fmt-ignore
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, 32)).set([
    0x48, 0x89, 0xf8, // mov rax, rdi   (number)
    0x48, 0x89, 0xf7, // mov rdi, rsi
    0x48, 0x89, 0xd6, // mov rsi, rdx
    0x48, 0x89, 0xca, // mov rdx, rcx
    0x4d, 0x89, 0xc2, // mov r10, r8
    0x4d, 0x89, 0xc8, // mov r8, r9
    0x4c, 0x8b, 0x4c, 0x24, 0x08, // mov r9, [rsp+8]  (7th argument)
    0x0f, 0x05, // syscall
    0xc3, // ret
  ]);
  return new Deno.UnsafeFnPointer(p, SYMBOLS.syscall);
}

function nr(name: string): bigint {
  const n = PARAMS.nr[name];
  if (typeof n !== "number") throw new Error("the test passed no syscall number for " + name);
  return BigInt(n);
}

// rawBig calls syscall(number, args...) and returns the result, or -errno.
function rawBig(number: bigint, ...args: Arg[]): bigint {
  const a = [0, 1, 2, 3, 4, 5].map((i) => BigInt(args[i] ?? 0));
  if (rawStub) return BigInt(rawStub.call(number, a[0], a[1], a[2], a[3], a[4], a[5]));
  const r = libc.symbols.syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  const errno = errnoView.getInt32(0);
  return BigInt(r) === -1n ? -BigInt(errno) : BigInt(r);
}

function sysBig(name: string, ...args: Arg[]): bigint {
  return rawBig(nr(name), ...args);
}

function sys(name: string, ...args: Arg[]): number {
  return Number(sysBig(name, ...args));
}

function ptr(buf: Uint8Array): bigint {
  keep.push(buf);
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
}

function cstr(s: string): bigint {
  return ptr(enc.encode(s + "\0"));
}

function zeros(n: number): bigint {
  return ptr(new Uint8Array(n));
}

// closeOnSuccess turns an fd-returning outcome into a plain outcome.
function closeOnSuccess(fd: number): number {
  if (fd >= 0) sys("close", fd);
  return fd;
}

function openat(path: string, flags: number, mode = 0): number {
  return sys("openat", AT_FDCWD, cstr(path), flags | O_CLOEXEC, mode);
}

function readFd(fd: number, max: number): number {
  const b = new Uint8Array(max);
  return sys("read", fd, ptr(b), max);
}

function sockaddrIn(a: number[], port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  b.set(a, 4);
  return b;
}

function sockaddrIn6(a: number[], port: number): Uint8Array {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  b.set(a, 8);
  return b;
}

// connectTo makes a TCP socket and connects it; the outcome is connect's.
function connectTo(family: number, addr: Uint8Array): number {
  const fd = sys("socket", family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fd;
  const r = sys("connect", fd, ptr(addr), addr.length);
  sys("close", fd);
  return r;
}

function sendtoUDP(family: number, addr: Uint8Array): number {
  const fd = sys("socket", family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fd;
  const msg = enc.encode("conductor escape probe");
  const r = sys("sendto", fd, ptr(msg), msg.length, 0, ptr(addr), addr.length);
  sys("close", fd);
  return r;
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    return "ERROR " + describe(e);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.name + ": " + e.message;
  return String(e);
}

function readLink(path: string): string {
  try {
    return Deno.readLinkSync(path);
  } catch (e) {
    return "ERROR " + describe(e);
  }
}

function listDir(path: string): string[] {
  return [...Deno.readDirSync(path)].map((e) => e.name).sort();
}

function numericEntries(path: string): number[] {
  return listDir(path).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

function getcwd(): string {
  const b = new Uint8Array(4096);
  const r = sys("getcwd", ptr(b), b.length);
  if (r < 0) return "ERROR errno " + -r;
  return dec.decode(b.subarray(0, b.indexOf(0)));
}

// spawn runs a program to completion and describes how that went.
function spawn(cmd: string, args: string[]): Record<string, unknown> {
  try {
    const out = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).outputSync();
    return { spawned: true, code: out.code, stdout: dec.decode(out.stdout).slice(0, 400), stderr: dec.decode(out.stderr).slice(0, 400) };
  } catch (e) {
    return { spawned: false, error: describe(e) };
  }
}

// report is what the test asserts. sys holds syscall outcomes by probe name.
// deno-lint-ignore no-explicit-any
const R: Record<string, any> = { mode: PARAMS.mode, sys: {}, errors: {} };
const S = (name: string, outcome: number | bigint) => {
  R.sys[name] = Number(outcome);
};

function group(name: string, fn: () => void | Promise<void>): Promise<void> | void {
  try {
    const r = fn();
    if (r instanceof Promise) return r.catch((e) => void (R.errors[name] = describe(e) + "\n" + (e?.stack ?? "")));
  } catch (e) {
    R.errors[name] = describe(e) + "\n" + ((e as Error)?.stack ?? "");
  }
}

function emit() {
  console.log("ESCAPE-REPORT " + JSON.stringify(R));
}

// ---------------------------------------------------------------------------
// Fatal modes: each runs in its own sandbox; the process must die of SIGSYS.

if (PARAMS.mode === "x32") {
  console.log("before x32 syscall");
  const r = rawBig(nr("getpid") | X32_SYSCALL_BIT);
  console.log("SURVIVED x32 syscall: result " + r);
  Deno.exit(0);
}

if (PARAMS.mode === "int80") {
  // mmap one RWX page, write `mov eax, 20 (i386 getpid); int 0x80; ret`, call it.
  const page = sysBig("mmap", 0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page < 0n) {
    console.log("SURVIVED: mmap RWX failed with errno " + -page);
    Deno.exit(0);
  }
  const code = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(page)!, 16));
  code.set([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]);
  const fn = new Deno.UnsafeFnPointer(Deno.UnsafePointer.create(page)!, { parameters: [], result: "i32" } as const);
  console.log("before int 0x80");
  const r = fn.call();
  console.log("SURVIVED int 0x80: result " + r);
  Deno.exit(0);
}

if (PARAMS.mode === "x32-worker") {
  const src = `
    const libc = Deno.dlopen(${JSON.stringify(LIBC)}, ${JSON.stringify(SYMBOLS)});
    const say = (s) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\\n"));
    const tid = libc.symbols.syscall(${PARAMS.nr.gettid}n, 0n, 0n, 0n, 0n, 0n, 0n);
    say("worker before x32 syscall: thread " + tid + " of process " + Deno.pid);
    const r = libc.symbols.syscall(${PARAMS.nr.getpid}n | ${X32_SYSCALL_BIT}n, 0n, 0n, 0n, 0n, 0n, 0n);
    say("SURVIVED x32 syscall in worker: result " + r);
  `;
  const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
  new Worker(url, { type: "module" });
  console.log("main thread waiting");
  // The main thread idles: if only the worker's thread were killed, the
  // process would hang here until the sandbox's timeout.
  await new Promise((r) => setTimeout(r, 60_000));
  console.log("SURVIVED: main thread still alive after 60 s");
  Deno.exit(0);
}

// ---------------------------------------------------------------------------
// Hostile mode (probe 10): try to write every /proc/*/exe and /proc/*/fd/*.

if (PARAMS.mode === "hostile") {
  R.tmpMarkerAtStart = exists("/tmp/conductor-escape-marker");
  R.devMarkerAtStart = exists("/dev/conductor-escape-marker");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "setTimeout(() => {}, 30000)"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 150));
  const junk = enc.encode("conductor-escape-probe\n");
  const attempts: Record<string, number> = {}; // target -> outcome of open(O_WRONLY), or bytes written
  const opened: Record<string, string> = {}; // target -> what it pointed to
  const deadline = Date.now() + 400;
  let passes = 0;
  // The channel to the host (fd 3 and 4, and their dups) is left alone:
  // junk there ends the execution at once, by design; TestHostileChannel
  // covers it.
  const channel = new Set([readLink("/proc/self/fd/3"), readLink("/proc/self/fd/4")]);
  while (Date.now() < deadline) {
    passes++;
    for (const pid of numericEntries("/proc")) {
      const targets = [`/proc/${pid}/exe`];
      for (const sub of ["fd", "map_files"]) {
        try {
          for (const n of listDir(`/proc/${pid}/${sub}`)) targets.push(`/proc/${pid}/${sub}/${n}`);
        } catch (e) {
          attempts[`/proc/${pid}/${sub}/(readdir)`] =
            -(e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable ? 1 : 2);
        }
      }
      try {
        for (const tid of listDir(`/proc/${pid}/task`)) targets.push(`/proc/${pid}/task/${tid}/exe`);
      } catch { /* the process is gone */ }
      for (const t of targets) {
        const link = readLink(t);
        if (channel.has(link)) continue;
        const fd = sys("openat", AT_FDCWD, cstr(t), O_WRONLY | O_CLOEXEC, 0);
        if (fd < 0) {
          attempts[t] = fd;
          continue;
        }
        const w = sys("write", fd, ptr(junk), junk.length);
        sys("close", fd);
        attempts[t] = w >= 0 ? 1000000 + w : w; // 1000000+n: opened, n bytes written
        opened[t] = link;
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await child.status;
  R.passes = passes;
  R.childPid = child.pid;
  R.attempts = attempts;
  R.opened = opened;
  emit();
  Deno.exit(0);
}

// ---------------------------------------------------------------------------
// Links mode (probe 22): plant links in the workspace that point out of it,
// to host paths this sandbox cannot see (PARAMS.bait, PARAMS.baitFile,
// PARAMS.stateDir), then make the host spill output while they are there.
// What must hold is checked on the host: nothing outside the workspace was
// opened, read or written through them. Here: the outcomes, raw errnos.

if (PARAMS.mode === "links") {
  const ws: string = PARAMS.ws;
  const conductor = ws + "/.conductor";
  const output = conductor + "/output";
  const links: Record<string, number> = {};
  R.links = links;
  const symlink = (target: string, path: string) => sys("symlinkat", cstr(target), AT_FDCWD, cstr(path));
  const rename = (from: string, to: string) => sys("renameat2", AT_FDCWD, cstr(from), AT_FDCWD, cstr(to), 0);
  // moveAside renames whatever is at path out of the way (0: nothing there).
  let asides = 0;
  const moveAside = (path: string) => {
    const r = rename(path, `${path}.sandbox-${asides++}`);
    return r === -2 ? 0 : r; // ENOENT
  };
  const flood = (stream: "stdout" | "stderr") => {
    const chunk = enc.encode("x".repeat(1023) + "\n");
    const w = stream === "stdout" ? Deno.stdout : Deno.stderr;
    for (let n = 0; n < PARAMS.flood; n += chunk.length) w.writeSync(chunk);
  };
  const up = "../".repeat(16);
  if (PARAMS.phase === 1) {
    // Symlinks at the workspace's top: absolute, a `..` chain, to a
    // directory, to the server's state dir, to itself.
    links["symlink shadow"] = symlink(PARAMS.baitFile, ws + "/shadow");
    links["symlink dotdot"] = symlink(up + PARAMS.baitFile.replace(/^\/+/, ""), ws + "/dotdot");
    links["symlink dirlink"] = symlink(PARAMS.bait, ws + "/dirlink");
    links["symlink statelink"] = symlink(PARAMS.stateDir, ws + "/statelink");
    links["symlink loop"] = symlink(ws + "/loop", ws + "/loop");
    links["symlink etc-shadow"] = symlink("/etc/shadow", ws + "/etc-shadow");
    // Through them from inside: the targets are host paths this sandbox
    // does not have.
    for (const n of ["shadow", "dotdot", "dirlink/secret", "statelink", "loop"]) {
      links["open " + n] = closeOnSuccess(openat(ws + "/" + n, O_RDONLY));
    }
    // Hard links: only within one mount; the workspace is a bind mount of
    // its own. own.txt is the control that must work.
    Deno.writeTextFileSync(ws + "/own.txt", "the sandbox's own file\n");
    Deno.writeTextFileSync("/tmp/tmpfile", "on the sandbox's /tmp\n");
    const link = (from: string, to: string, flags = 0) => sys("linkat", AT_FDCWD, cstr(from), AT_FDCWD, cstr(to), flags);
    links["link own.txt"] = link(ws + "/own.txt", ws + "/own-hardlink");
    links["link bait"] = link(PARAMS.baitFile, ws + "/hl-bait");
    links["link root file"] = link("/etc/passwd", ws + "/hl-passwd");
    links["link tmp file"] = link("/tmp/tmpfile", ws + "/hl-tmp");
    const fd = openat("/etc/passwd", O_RDONLY);
    links["link proc fd"] = link(`/proc/self/fd/${fd}`, ws + "/hl-procfd", 0x400); // AT_SYMLINK_FOLLOW
    links["link empty path"] = sys("linkat", fd, cstr(""), AT_FDCWD, cstr(ws + "/hl-emptypath"), 0x1000); // AT_EMPTY_PATH
    closeOnSuccess(fd);
    // The spill directory's parent, a link to the server's state dir,
    // before the first byte of stderr makes the host open a spill file.
    links["aside .conductor"] = moveAside(conductor);
    links["symlink .conductor"] = symlink(PARAMS.stateDir, conductor);
    emit();
    flood("stderr");
    Deno.exit(0);
  }
  // Phase 2: .conductor is one of the sandbox's making, and so is its
  // output directory, holding spill-named entries: links to the bait, a
  // hard link to the sandbox's own file. (The host's output directory, as
  // root, belongs to a uid this sandbox's mount does not map: it cannot be
  // renamed or removed from here, EOVERFLOW; its parent can.)
  links["aside .conductor"] = moveAside(conductor);
  links["mkdir .conductor"] = sys("mkdirat", AT_FDCWD, cstr(conductor), 0o755);
  links["mkdir output"] = sys("mkdirat", AT_FDCWD, cstr(output), 0o755);
  links["symlink spill-named"] = symlink(PARAMS.baitFile, output + "/" + "a".repeat(32) + ".stdout.txt");
  links["symlink spill-named dir"] = symlink(PARAMS.bait, output + "/" + "b".repeat(32) + ".stderr.txt");
  links["link spill-named"] = sys("linkat", AT_FDCWD, cstr(ws + "/own.txt"), AT_FDCWD, cstr(output + "/" + "c".repeat(32) + ".stdout.txt"), 0);
  emit();
  flood("stderr");
  // Then a child flips .conductor between a link to the bait, a directory
  // whose output is such a link, and a directory with its own output,
  // while stdout spills; it leaves its count in flips.txt.
  await new Promise((r) => setTimeout(r, 300));
  const flipper = new Deno.Command(Deno.execPath(), {
    args: ["eval", `
      const ws = ${JSON.stringify(ws)}, dir = ${JSON.stringify(conductor)}, bait = ${JSON.stringify(PARAMS.bait)};
      const end = Date.now() + 1000, pause = new Int32Array(new SharedArrayBuffer(4));
      let n = 0;
      for (; Date.now() < end && n < 400; n++, Atomics.wait(pause, 0, 0, 2)) {
        try { Deno.renameSync(dir, dir + ".flip-" + n); } catch { /* gone */ }
        try {
          if (n % 3 === 0) Deno.symlinkSync(bait, dir);
          else {
            Deno.mkdirSync(dir);
            if (n % 3 === 1) Deno.symlinkSync(bait, dir + "/output");
            else Deno.mkdirSync(dir + "/output");
          }
        } catch { /* raced */ }
      }
      Deno.writeTextFileSync(ws + "/flips.txt", String(n));`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 100));
  flood("stdout");
  await flipper.status;
  Deno.exit(0);
}

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

// resolves reports whether p, following symlinks, names something.
function resolves(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Main mode.

R.network = PARAMS.network;
R.tmpMarkerAtStart = exists("/tmp/conductor-escape-marker");
R.devMarkerAtStart = exists("/dev/conductor-escape-marker");

// 1: privileges.
group("01", () => {
  R.status = readText("/proc/self/status");
  R.uidMap = readText("/proc/self/uid_map");
  R.gidMap = readText("/proc/self/gid_map");
  R.setgroups = readText("/proc/self/setgroups");
  R.limits = readText("/proc/self/limits");
  S("prctl(PR_SET_DUMPABLE, 1)", sys("prctl", 4, 1, 0, 0, 0));
  S("prctl(PR_SET_PTRACER, ANY)", sys("prctl", 0x59616d61, -1, 0, 0, 0));
  S("prctl(PR_CAPBSET_READ, 0)", sys("prctl", 23, 0, 0, 0, 0));
  S("prctl(PR_CAP_AMBIENT, RAISE)", sys("prctl", 47, 2, 0, 0, 0));
  S("prctl(PR_SET_MM)", sys("prctl", 35, 8, 0, 0, 0));
  S("setgroups(0)", sys("setgroups", 0, 0));
  S("setuid(0)", sys("setuid", 0));
  S("capset", sys("capset", zeros(8), zeros(24)));
});

// 2: namespaces and mounts.
group("02", () => {
  const ns: Record<string, string> = {};
  for (const n of ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]) ns[n] = readLink("/proc/self/ns/" + n);
  R.namespaces = ns;
  S("unshare(NEWUSER|NEWNS)", sys("unshare", CLONE_NEWUSER | CLONE_NEWNS));
  const flags: Record<string, number> = {
    NEWUSER: CLONE_NEWUSER,
    NEWNS: CLONE_NEWNS,
    NEWNET: CLONE_NEWNET,
    NEWPID: CLONE_NEWPID,
    NEWIPC: CLONE_NEWIPC,
    NEWUTS: CLONE_NEWUTS,
    NEWCGROUP: CLONE_NEWCGROUP,
    NEWTIME: CLONE_NEWTIME,
  };
  for (const [name, f] of Object.entries(flags)) {
    S(`unshare(${name})`, sys("unshare", f));
    if (f === CLONE_NEWTIME) continue; // 0x80 is the exit-signal byte for clone(2)
    // CLONE_THREAD without CLONE_SIGHAND is rejected by the kernel with
    // EINVAL before anything is created, so even a filter that let the
    // namespace flag through could never fork here: EPERM proves the filter.
    S(`clone(${name}|THREAD)`, sys("clone", f | CLONE_THREAD | SIGCHLD, 0, 0, 0, 0));
  }
  S("clone(NEWUSER|FS)", sys("clone", CLONE_NEWUSER | CLONE_FS | SIGCHLD, 0, 0, 0, 0));
  // clone3 with a NULL, zero-sized argument: EINVAL if the kernel saw it.
  S("clone3", sys("clone3", 0, 0));
  const nsfd = openat("/proc/self/ns/net", O_RDONLY);
  R.nsNetOpen = nsfd;
  S("setns(net)", nsfd >= 0 ? sys("setns", nsfd, CLONE_NEWNET) : nsfd);
  if (nsfd >= 0) sys("close", nsfd);
  const userfd = openat("/proc/self/ns/user", O_RDONLY);
  S("setns(user)", userfd >= 0 ? sys("setns", userfd, CLONE_NEWUSER) : userfd);
  if (userfd >= 0) sys("close", userfd);
  S("mount(tmpfs on /tmp)", sys("mount", cstr("none"), cstr("/tmp"), cstr("tmpfs"), 0, 0));
  S("mount(bind / on /tmp)", sys("mount", cstr("/"), cstr("/tmp"), 0, MS_BIND, 0));
  S("umount2(/proc/timer_list)", sys("umount2", cstr("/proc/timer_list"), MNT_DETACH));
  S("umount2(/proc/sys)", sys("umount2", cstr("/proc/sys"), MNT_DETACH));
  S("fsopen(tmpfs)", closeOnSuccess(sys("fsopen", cstr("tmpfs"), 0)));
  S("fspick(/)", closeOnSuccess(sys("fspick", AT_FDCWD, cstr("/"), 0)));
  S("fsmount", closeOnSuccess(sys("fsmount", -1, 0, 0)));
  S("move_mount", sys("move_mount", -1, cstr(""), AT_FDCWD, cstr("/tmp"), 0));
  S("mount_setattr(/)", sys("mount_setattr", AT_FDCWD, cstr("/"), 0, zeros(32), 32));
  S("open_tree(/, CLONE)", closeOnSuccess(sys("open_tree", AT_FDCWD, cstr("/"), OPEN_TREE_CLONE | O_CLOEXEC)));
  S("pivot_root(/tmp,/tmp)", sys("pivot_root", cstr("/tmp"), cstr("/tmp")));
  S("chroot(/tmp)", sys("chroot", cstr("/tmp")));
});

// 3: kernel attack surface.
group("03", () => {
  S("io_uring_setup", closeOnSuccess(sys("io_uring_setup", 1, zeros(120))));
  S("io_uring_enter", sys("io_uring_enter", -1, 0, 0, 0, 0, 0));
  S("io_uring_register", sys("io_uring_register", -1, 0, 0, 0));
  S("bpf(MAP_CREATE)", closeOnSuccess(sys("bpf", 0, zeros(128), 128)));
  S("bpf(PROG_LOAD)", closeOnSuccess(sys("bpf", 5, zeros(128), 128)));
  const attr = new Uint8Array(128);
  new DataView(attr.buffer).setUint32(4, 128, true); // attr.size; type 0 = PERF_TYPE_HARDWARE
  S("perf_event_open", closeOnSuccess(sys("perf_event_open", ptr(attr), 0, -1, -1, 0)));
  S("userfaultfd", closeOnSuccess(sys("userfaultfd", O_CLOEXEC)));
  S("keyctl(GET_KEYRING_ID)", sys("keyctl", 0, -3, 0));
  S("add_key(user)", sys("add_key", cstr("user"), cstr("conductor-probe"), cstr("x"), 1, -2));
  S("request_key(user)", sys("request_key", cstr("user"), cstr("conductor-probe"), 0, -2));
  S("kexec_load", sys("kexec_load", 0, 0, 0, 0));
  S("kexec_file_load", sys("kexec_file_load", -1, -1, 0, cstr(""), 0));
  S("memfd_create", closeOnSuccess(sys("memfd_create", cstr("x"), 1)));
  S("seccomp(GET_ACTION_AVAIL)", sys("seccomp", 2, 0, zeros(4)));
  S("personality(query)", sys("personality", 0xffffffff));
  S("name_to_handle_at(/)", sys("name_to_handle_at", AT_FDCWD, cstr("/"), zeros(136), zeros(4), 0));
  S("open_by_handle_at", closeOnSuccess(sys("open_by_handle_at", AT_FDCWD, zeros(136), O_RDONLY)));
  S("vmsplice", sys("vmsplice", -1, 0, 0, 0));
  // Syscalls newer than the policy's table (numbers shared by all
  // architectures since Linux 5.1) and a number no kernel has.
  for (
    const [name, n] of [["setxattrat", 463], ["removexattrat", 466], ["open_tree_attr", 467], ["file_setattr", 469], [
      "syscall 999",
      999,
    ]] as const
  ) {
    S(name, rawBig(BigInt(n), AT_FDCWD, cstr("/tmp"), 0, 0, 0, 0));
  }
  S("mknodat(/tmp/null, chr 1:3)", sys("mknodat", AT_FDCWD, cstr("/tmp/conductor-null"), 0o20666, (1 << 8) | 3));
});

// 5: terminal.
group("05", () => {
  const c = new Uint8Array([0x41]);
  S("ioctl(0, TIOCSTI)", sys("ioctl", 0, TIOCSTI, ptr(c)));
  S("ioctl(0, TIOCSTI|1<<32)", sys("ioctl", 0, BigInt(TIOCSTI) | (1n << 32n), ptr(c)));
  S("ioctl(1, TIOCSTI)", sys("ioctl", 1, TIOCSTI, ptr(c)));
  S("ioctl(0, TIOCLINUX)", sys("ioctl", 0, TIOCLINUX, ptr(new Uint8Array([6, 0]))));
  S("ioctl(0, TIOCSCTTY)", sys("ioctl", 0, TIOCSCTTY, 0));
  S("ioctl(0, TCGETS)", sys("ioctl", 0, TCGETS, zeros(64)));
  S("open(/dev/tty)", closeOnSuccess(openat("/dev/tty", O_RDWR)));
  S("getpid", sys("getpid"));
  S("getsid(0)", sys("getsid", 0));
  S("getpgid(0)", sys("getpgid", 0));
  S("setsid", sys("setsid"));
});

// 6: socket families.
group("06", () => {
  const fams: [string, number, number, number][] = [
    ["AF_NETLINK", AF_NETLINK, SOCK_RAW, 0],
    ["AF_PACKET", AF_PACKET, SOCK_RAW, 0x0300],
    ["AF_VSOCK", AF_VSOCK, SOCK_STREAM, 0],
    ["AF_ALG", AF_ALG, SOCK_SEQPACKET, 0],
    ["AF_KEY", AF_KEY, SOCK_RAW, 2],
    ["AF_BLUETOOTH", AF_BLUETOOTH, SOCK_RAW, 0],
    ["AF_XDP", AF_XDP, SOCK_RAW, 0],
    ["AF_INET raw", AF_INET, SOCK_RAW, 255],
    ["AF_INET6 raw", AF_INET6, SOCK_RAW, 255],
    ["AF_INET ping", AF_INET, SOCK_DGRAM, 1],
    ["AF_UNIX stream", AF_UNIX, SOCK_STREAM, 0],
    ["AF_INET stream", AF_INET, SOCK_STREAM, 0],
  ];
  for (const [name, fam, type, proto] of fams) {
    S(`socket(${name})`, closeOnSuccess(sys("socket", fam, type | SOCK_CLOEXEC, proto)));
  }
  // The kernel reads the domain as an int; the filter must compare all 64
  // bits, so stray high bits cannot turn a denied family into an allowed one.
  S("socket(AF_NETLINK|1<<32)", closeOnSuccess(sys("socket", BigInt(AF_NETLINK) | (1n << 32n), SOCK_RAW | SOCK_CLOEXEC, 0)));
});

// 7: network.
await group("07", async () => {
  R.netDev = readText("/proc/net/dev");
  const testNet = [192, 0, 2, 1]; // TEST-NET-1: no route exists, nothing is sent
  const loop = [127, 0, 0, 1];
  const docV6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const loopV6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  S("connect(192.0.2.1:80)", connectTo(AF_INET, sockaddrIn(testNet, 80)));
  S("connect(host 127.0.0.1 listener)", connectTo(AF_INET, sockaddrIn(loop, PARAMS.hostPort)));
  S("connect([2001:db8::1]:80)", connectTo(AF_INET6, sockaddrIn6(docV6, 80)));
  if (PARAMS.hostPort6) S("connect(host [::1] listener)", connectTo(AF_INET6, sockaddrIn6(loopV6, PARAMS.hostPort6)));
  S("sendto(udp 192.0.2.1:53)", sendtoUDP(AF_INET, sockaddrIn(testNet, 53)));
  // The host's abstract unix sockets live in the host's network namespace
  // (the containerd-shim class, CVE-2020-15257).
  const name = enc.encode(PARAMS.hostAbstract);
  const sun = new Uint8Array(2 + 1 + name.length);
  new DataView(sun.buffer).setUint16(0, AF_UNIX, true);
  sun.set(name, 3); // sun_path[0] = 0: abstract
  S("connect(host abstract unix socket)", connectTo(AF_UNIX, sun));
  const dconnect = async (hostname: string, port: number) => {
    try {
      const c = await Deno.connect({ hostname, port });
      c.close();
      return "connected";
    } catch (e) {
      return describe(e);
    }
  };
  R.denoConnectTestNet = await dconnect("192.0.2.1", 80);
  R.denoConnectHost = await dconnect("127.0.0.1", PARAMS.hostPort);
  // The sandbox's own loopback: listening on the very port the host's
  // listener holds must work (a separate stack), and connect to itself.
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port: PARAMS.hostPort });
    const accepted = l.accept();
    const c = await Deno.connect({ hostname: "127.0.0.1", port: PARAMS.hostPort });
    (await accepted).close();
    c.close();
    l.close();
    R.ownLoopback = "listened and connected on 127.0.0.1:" + PARAMS.hostPort;
  } catch (e) {
    R.ownLoopback = describe(e);
  }
});

// 8: inherited fds and environment.
group("08", () => {
  const fds: Record<string, string> = {};
  for (const n of listDir("/proc/self/fd")) fds[n] = readLink("/proc/self/fd/" + n);
  R.fds = fds;
  R.netUnix = readText("/proc/net/unix");
  R.env = Deno.env.toObject();
  R.environ = readText("/proc/self/environ");
  R.cmdline = readText("/proc/self/cmdline");
});

// 9: file-system root and host paths.
group("09", () => {
  R.cwdAtStart = getcwd();
  R.denoCwd = Deno.cwd();
  S("chdir(/)", sys("chdir", cstr("/")));
  for (let i = 0; i < 32; i++) sys("chdir", cstr(".."));
  R.cwdAfterDotDot = getcwd();
  const root = Deno.statSync("/");
  const up = Deno.statSync("/../../../../../..");
  R.dotDotIsRoot = root.ino === up.ino && root.dev === up.dev;
  sys("chdir", cstr("/tmp"));
  R.procSelfRoot = readLink("/proc/self/root");
  R.procSelfCwd = readLink("/proc/self/cwd");
  const host: Record<string, number> = {};
  for (const p of PARAMS.hostPaths as string[]) host[p] = closeOnSuccess(openat(p, O_PATH));
  R.hostPaths = host;
  R.rootEntries = listDir("/");
  R.etcEntries = listDir("/etc");
  R.mountinfo = readText("/proc/self/mountinfo");
});

// 10: the binaries behind /proc/*/exe.
group("10", () => {
  S("open(/proc/self/exe, O_WRONLY)", closeOnSuccess(openat("/proc/self/exe", O_WRONLY)));
  S("open(/proc/self/exe, O_RDWR)", closeOnSuccess(openat("/proc/self/exe", O_RDWR)));
  S("open(/proc/self/exe, O_WRONLY|O_TRUNC)", closeOnSuccess(openat("/proc/self/exe", O_WRONLY | O_TRUNC)));
  S("open(/proc/1/exe, O_WRONLY)", closeOnSuccess(openat("/proc/1/exe", O_WRONLY)));
  S("open(/usr/bin/deno, O_WRONLY)", closeOnSuccess(openat("/usr/bin/deno", O_WRONLY)));
  // CVE-2019-5736 style: hold an O_PATH fd of the exe, re-open it for writing.
  const p = openat("/proc/self/exe", O_PATH);
  R.exeOPath = p;
  S("reopen(/proc/self/fd/<O_PATH exe>, O_WRONLY)", p >= 0 ? closeOnSuccess(openat(`/proc/self/fd/${p}`, O_WRONLY)) : p);
  if (p >= 0) sys("close", p);
  R.exeLink = readLink("/proc/self/exe");
});

// 11: writable paths, noexec, persistence.
group("11", () => {
  const creates: Record<string, number> = {};
  for (
    const d of [
      "/",
      "/usr",
      "/usr/bin",
      "/usr/lib",
      "/lib",
      "/lib64",
      "/etc",
      "/conductor",
      "/deno-dir",
      "/proc",
      "/proc/self",
      "/dev",
      "/tmp",
    ]
  ) {
    const f = (d === "/" ? "" : d) + "/conductor-probe-file";
    const fd = openat(f, O_CREAT | O_EXCL | O_WRONLY, 0o644);
    creates[d] = fd;
    if (fd >= 0) {
      sys("close", fd);
      sys("unlinkat", AT_FDCWD, cstr(f), 0);
    }
  }
  R.creates = creates;
  const mkdirs: Record<string, number> = {};
  for (const d of ["/", "/usr/bin", "/deno-dir", "/etc", "/dev", "/tmp"]) {
    const f = (d === "/" ? "" : d) + "/conductor-probe-dir";
    const r = sys("mkdirat", AT_FDCWD, cstr(f), 0o755);
    mkdirs[d] = r;
    if (r >= 0) sys("unlinkat", AT_FDCWD, cstr(f), 0x200 /* AT_REMOVEDIR */);
  }
  R.mkdirs = mkdirs;
  const writes: Record<string, number> = {};
  for (const f of ["/usr/bin/deno", "/etc/passwd", "/etc/hosts", "/etc/resolv.conf", "/conductor/bootstrap.js", LIBC]) {
    writes[f] = closeOnSuccess(openat(f, O_WRONLY));
  }
  R.writes = writes;
  // unlink and rename take the mount's write access before any permission
  // check: EROFS proves the read-only mount itself.
  const unlinks: Record<string, number> = {};
  for (const f of ["/usr/bin/deno", "/etc/passwd", "/conductor/bootstrap.js", "/deno-dir", LIBC]) {
    unlinks["unlink " + f] = sys("unlinkat", AT_FDCWD, cstr(f), f === "/deno-dir" ? 0x200 : 0);
    unlinks["rename " + f] = sys("renameat2", AT_FDCWD, cstr(f), AT_FDCWD, cstr(f + ".moved"), 0);
  }
  R.unlinks = unlinks;
  S("mknodat(/dev/conductor-null, chr 1:3)", sys("mknodat", AT_FDCWD, cstr("/dev/conductor-null"), 0o20666, (1 << 8) | 3));
  // noexec: copy libc (an executable ELF: it prints its version when run)
  // into /tmp, make it executable, try to run it directly, through the
  // dynamic loader, and to map it executable.
  const copy = "/tmp/conductor-probe-libc.so.6";
  Deno.writeFileSync(copy, Deno.readFileSync(LIBC), { mode: 0o755 });
  Deno.chmodSync(copy, 0o755);
  R.copyMode = (Deno.statSync(copy).mode! & 0o777).toString(8);
  R.execTmp = spawn(copy, []);
  const loader = firstExisting(PARAMS.loaders);
  R.loader = loader;
  // Controls: exec works from the root, and so does the loader trick there.
  R.execRootControl = spawn(loader, ["--version"]);
  R.execViaLoaderControl = spawn(loader, [LIBC]);
  R.execTmpViaLoader = spawn(loader, [copy]);
  try {
    Deno.dlopen(copy, { getpid: { parameters: [], result: "i32" } }).close();
    R.dlopenTmp = "loaded";
  } catch (e) {
    R.dlopenTmp = describe(e);
  }
  const fd = openat(copy, O_RDONLY);
  S("mmap(/tmp file, PROT_EXEC)", fd >= 0 ? sysBig("mmap", 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) : fd);
  if (R.sys["mmap(/tmp file, PROT_EXEC)"] > 0) sys("munmap", BigInt(R.sys["mmap(/tmp file, PROT_EXEC)"]), 4096);
  const m = fd >= 0 ? sysBig("mmap", 0, 4096, PROT_READ, MAP_PRIVATE, fd, 0) : BigInt(fd);
  S("mprotect(/tmp mapping, PROT_EXEC)", m >= 0n ? sys("mprotect", m, 4096, PROT_READ | PROT_EXEC) : m);
  if (m >= 0n) sys("munmap", m, 4096);
  if (fd >= 0) sys("close", fd);
  // The same for /dev, the other writable tmpfs.
  const devFile = "/dev/conductor-probe-exec";
  const dfd = openat(devFile, O_CREAT | O_WRONLY | O_TRUNC, 0o755);
  R.devCreate = dfd;
  if (dfd >= 0) {
    const body = enc.encode("#!/usr/bin/deno\n");
    sys("write", dfd, ptr(body), body.length);
    sys("close", dfd);
    R.execDev = spawn(devFile, []);
    sys("unlinkat", AT_FDCWD, cstr(devFile), 0);
  }
  Deno.removeSync(copy);
});

// 12: /proc and /sys.
group("12", () => {
  const w: Record<string, number> = {};
  for (
    const f of [
      "/proc/sys/kernel/core_pattern",
      "/proc/sysrq-trigger",
      "/proc/sys/kernel/hostname",
      "/proc/sys/net/ipv4/ip_forward",
      "/proc/sys/vm/overcommit_memory",
    ]
  ) {
    w[f] = closeOnSuccess(openat(f, O_WRONLY));
  }
  R.procWrites = w;
  // Lowering the OOM score needs CAP_SYS_RESOURCE.
  const oom = openat("/proc/self/oom_score_adj", O_WRONLY);
  const v = enc.encode("-1000");
  S("write(/proc/self/oom_score_adj, -1000)", oom >= 0 ? sys("write", oom, ptr(v), v.length) : oom);
  if (oom >= 0) sys("close", oom);
  R.oomScoreAdj = readText("/proc/self/oom_score_adj").trim();
  const masked: Record<string, Record<string, unknown>> = {};
  for (const f of PARAMS.maskedPaths as string[]) {
    let isDir = false;
    try {
      isDir = Deno.statSync(f).isDirectory;
    } catch { /* absent */ }
    if (isDir) {
      masked[f] = { dir: true, entries: listDir(f) };
      continue;
    }
    const fd = openat(f, O_RDONLY);
    masked[f] = { open: fd, read: fd >= 0 ? readFd(fd, 4096) : null };
    if (fd >= 0) sys("close", fd);
  }
  R.masked = masked;
  R.sysPaths = {
    "/sys": closeOnSuccess(openat("/sys", O_PATH)),
    "/sys/fs/cgroup": closeOnSuccess(openat("/sys/fs/cgroup", O_PATH)),
    "/sys/kernel": closeOnSuccess(openat("/sys/kernel", O_PATH)),
  };
  R.procCgroup = readText("/proc/self/cgroup");
  // Kernel addresses (a KASLR bypass) and root-only kernel state.
  R.kallsyms = readText("/proc/kallsyms").split("\n").slice(0, 20);
  R.iomem = readText("/proc/iomem").split("\n").slice(0, 20);
  const restricted: Record<string, number> = {};
  for (
    const f of [
      "/proc/kmsg",
      "/proc/vmallocinfo",
      "/proc/slabinfo",
      "/proc/pagetypeinfo",
      "/proc/kpagecount",
      "/proc/kpageflags",
      "/proc/self/stack",
    ]
  ) {
    const fd = openat(f, O_RDONLY);
    restricted[f] = fd >= 0 ? readFd(fd, 4096) : fd; // opened: bytes read (or -errno of read)
    if (fd >= 0) sys("close", fd);
  }
  R.procRestricted = restricted;
});

// 13: other processes.
await group("13", async () => {
  const traceme = sys("ptrace", PTRACE_TRACEME, 0, 0, 0);
  if (traceme >= 0) {
    // The host process (deno's parent) is now its tracer: the next signal
    // would stop deno and the host's wait would report the stop as an end.
    // Leave at once, before any signal arrives, so that the test fails
    // cleanly instead of wedging the host.
    console.log("ptrace(PTRACE_TRACEME) SUCCEEDED: the host became deno's tracer; exiting with 99");
    rawBig(nr("exit_group"), 99);
  }
  S("ptrace(TRACEME)", traceme);
  S("ptrace(ATTACH, 1)", sys("ptrace", PTRACE_ATTACH, 1, 0, 0));
  // The kernel and the filter both read the syscall number as 32 bits.
  S("ptrace via nr|1<<32", Number(rawBig(nr("ptrace") | (1n << 32n), PTRACE_ATTACH, 1, 0, 0)));
  const local = new Uint8Array(64);
  const iov = new Uint8Array(16);
  const v = new DataView(iov.buffer);
  v.setBigUint64(0, ptr(local), true);
  v.setBigUint64(8, 64n, true);
  S("process_vm_readv(1)", sys("process_vm_readv", 1, ptr(iov), 1, ptr(iov), 1, 0));
  S("process_vm_writev(1)", sys("process_vm_writev", 1, ptr(iov), 1, ptr(iov), 1, 0));
  // The host's pids are not addressable from inside the pid namespace.
  S("kill(host test pid, 0)", sys("kill", PARAMS.hostPid, 0));
  S("pidfd_open(host test pid)", closeOnSuccess(sys("pidfd_open", PARAMS.hostPid, 0)));
  // SIGIO ownership cannot name a host process either.
  S("fcntl(1, F_SETOWN, host test pid)", sys("fcntl", 1, 8, PARAMS.hostPid));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "console.log(JSON.stringify({ pid: Deno.pid, procs: [...Deno.readDirSync('/proc')].map((e) => e.name).filter((n) => /^\\d+$/.test(n)) })); setTimeout(() => {}, 30000)",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    line += dec.decode(value);
  }
  R.childView = line.trim();
  R.childPid = child.pid;
  R.procPids = numericEntries("/proc");
  S("ptrace(ATTACH, child)", sys("ptrace", PTRACE_ATTACH, child.pid, 0, 0));
  S("process_vm_readv(child)", sys("process_vm_readv", child.pid, ptr(iov), 1, ptr(iov), 1, 0));
  S("open(/proc/child/exe, O_WRONLY)", closeOnSuccess(openat(`/proc/${child.pid}/exe`, O_WRONLY)));
  S("open(/proc/child/mem, O_RDWR)", closeOnSuccess(openat(`/proc/${child.pid}/mem`, O_RDWR)));
  const pidfd = sys("pidfd_open", child.pid, 0);
  R.pidfdOpen = pidfd;
  S("pidfd_getfd(child, 0)", pidfd >= 0 ? closeOnSuccess(sys("pidfd_getfd", pidfd, 0, 0)) : pidfd);
  if (pidfd >= 0) sys("close", pidfd);
  child.kill("SIGKILL");
  reader.releaseLock();
  await child.stdout.cancel();
  await child.stderr.cancel();
  R.childStatus = await child.status;
});

// 18: host administration.
group("18", () => {
  S("sethostname", sys("sethostname", cstr("pwned"), 5));
  S("setdomainname", sys("setdomainname", cstr("pwned"), 5));
  S("settimeofday(NULL, NULL)", sys("settimeofday", 0, 0));
  S("clock_settime(REALTIME, NULL)", sys("clock_settime", 0, 0));
  S("adjtimex(read)", sys("adjtimex", zeros(208)));
  // A wrong second magic number: EINVAL if the kernel ever got that far.
  S("reboot(CAD_OFF, bad magic)", sys("reboot", 0xfee1dead, 0, 0, 0));
  S("init_module", sys("init_module", 0, 0, cstr("")));
  S("finit_module", sys("finit_module", -1, cstr(""), 0));
  S("delete_module", sys("delete_module", cstr("conductor_probe"), 0o4000));
  S("swapon", sys("swapon", cstr("/tmp/conductor-no-swap"), 0));
  S("swapoff", sys("swapoff", cstr("/tmp/conductor-no-swap")));
  S("acct(NULL)", sys("acct", 0));
  S("syslog(SIZE_BUFFER)", sys("syslog", 10, 0, 0));
  S("quotactl", sys("quotactl", 0, cstr("/"), 0, 0));
  const uts = new Uint8Array(390);
  sys("uname", ptr(uts));
  R.nodename = dec.decode(uts.subarray(65, 65 + uts.subarray(65).indexOf(0)));
});

// 19: /dev.
group("19", () => {
  const devs: Record<string, Record<string, unknown>> = {};
  for (const e of Deno.readDirSync("/dev")) {
    const p = "/dev/" + e.name;
    const st = Deno.lstatSync(p);
    devs[e.name] = {
      type: st.isSymlink
        ? "symlink"
        : st.isCharDevice
        ? "char"
        : st.isBlockDevice
        ? "block"
        : st.isDirectory
        ? "dir"
        : st.isFile
        ? "file"
        : "other",
      rdev: st.rdev,
      link: st.isSymlink ? readLink(p) : "",
      resolves: resolves(p),
    };
  }
  R.dev = devs;
});

// 11, continued: leave a marker in each writable tmpfs; the next run on the
// same runner must not see them.
group("11-markers", () => {
  Deno.writeTextFileSync("/tmp/conductor-escape-marker", "run N");
  R.devMarkerWritten = closeOnSuccess(openat("/dev/conductor-escape-marker", O_CREAT | O_WRONLY, 0o644));
});

emit();
