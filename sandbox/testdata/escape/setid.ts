// Set-id escape probe (issue 9, finding 1): runs INSIDE a sandbox with deno's
// permissions fully open (--allow-all, FFI included) and tries every way to
// leave a set-user-id, set-group-id or world-writable entry (or a file
// capability) in the workspace, which is a host directory. It calls the
// kernel directly (a raw syscall stub on x86_64, libc's syscall()
// elsewhere), then through deno's and node's file APIs.
// sandbox/escape_setid_test.go prepends
//
//   const PARAMS = { ws (a fresh directory in the workspace), nr (syscall
//                    numbers by name, legacy ones only on x86_64),
//                    O_TMPFILE, O_DIRECTORY (they differ by architecture) };
//
// and, after the run, walks the workspace on the host. The report is ONE line
// "SETID-REPORT <json>" on stdout: sys maps probe names to the raw kernel
// outcome (>= 0 success, -errno failure); api maps deno/node calls to "ok" or
// the error they threw; modes maps created paths to their mode as seen inside.

// deno-lint-ignore no-explicit-any
declare const PARAMS: any;

type Arg = number | bigint;

const enc = new TextEncoder();
const keep: unknown[] = []; // buffers whose addresses were handed to the kernel

// asm-generic constants, the same on x86_64 and arm64.
const AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000, AT_SYMLINK_FOLLOW = 0x400;
const O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0o100, O_EXCL = 0o200, O_CLOEXEC = 0o2000000, O_PATH = 0o10000000;
const S_IFREG = 0o100000;
const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
const O_TMPFILE: number = PARAMS.O_TMPFILE;
const HIGH = 1n << 32n; // a stray high bit in a 64-bit register

const LIBC = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/lib/libc.so.6",
].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
if (!LIBC) throw new Error("no libc in the sandbox root");

const SYMBOLS = {
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;
const libc = Deno.dlopen(LIBC, SYMBOLS);
const errnoView = new Deno.UnsafePointerView(libc.symbols.__errno_location()!);

// On x86_64 a 26-byte stub returns the kernel's raw result, so errno (which
// the runtime may overwrite between libc's syscall() and JS) is never read.
const rawStub = Deno.build.arch === "x86_64" ? makeRawStub() : null;

function makeRawStub() {
  const prot = BigInt(PROT_READ | PROT_WRITE | PROT_EXEC);
  const page = BigInt(libc.symbols.syscall(9n, 0n, 4096n, prot, BigInt(MAP_PRIVATE | MAP_ANONYMOUS), -1n, 0n));
  if (page === -1n) throw new Error("mmap of the syscall stub failed: errno " + errnoView.getInt32(0));
  const p = Deno.UnsafePointer.create<typeof SYMBOLS.syscall>(page)!;
  // deno-fmt-ignore
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, 32)).set([
    0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca, // rax<-rdi, rdi<-rsi, rsi<-rdx, rdx<-rcx
    0x4d, 0x89, 0xc2, 0x4d, 0x89, 0xc8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, // r10<-r8, r8<-r9, r9<-[rsp+8]
    0x0f, 0x05, 0xc3, // syscall; ret
  ]);
  return new Deno.UnsafeFnPointer(p, SYMBOLS.syscall);
}

function sys(name: string, ...args: Arg[]): number {
  const n = PARAMS.nr[name];
  if (typeof n !== "number") throw new Error("the test passed no syscall number for " + name);
  const a = [0, 1, 2, 3, 4, 5].map((i) => BigInt(args[i] ?? 0));
  if (rawStub) return Number(rawStub.call(BigInt(n), a[0], a[1], a[2], a[3], a[4], a[5]));
  const r = libc.symbols.syscall(BigInt(n), a[0], a[1], a[2], a[3], a[4], a[5]);
  const errno = errnoView.getInt32(0);
  return BigInt(r) === -1n ? -errno : Number(r);
}

function ptr(buf: Uint8Array): bigint {
  keep.push(buf);
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
}

function cstr(s: string): bigint {
  return ptr(enc.encode(s + "\0"));
}

const R = {
  sys: {} as Record<string, number>,
  api: {} as Record<string, string>,
  modes: {} as Record<string, number>,
  umaskAtStart: -1,
  umaskAtEnd: -1,
  errors: {} as Record<string, string>,
};

// S records a syscall outcome; an fd it returns is closed.
function S(name: string, outcome: number, fdResult = false): number {
  R.sys[name] = outcome;
  if (fdResult && outcome >= 0) sys("close", outcome);
  return outcome;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.name + ": " + e.message : String(e);
}

// api records what a deno/node call did: "ok" or the error it threw.
async function api(name: string, fn: () => unknown) {
  try {
    await fn();
    R.api[name] = "ok";
  } catch (e) {
    R.api[name] = describe(e);
  }
}

function modeOf(path: string): number {
  try {
    return Deno.lstatSync(path).mode ?? -1;
  } catch {
    return -1;
  }
}

const ws: string = PARAMS.ws;
const p = (name: string) => ws + "/" + name;
const ELF = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // an ELF header start is enough: the mode is the attack

// /proc/self/status says which umask the process has, without changing it.
function umaskFromStatus(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(/^Umask:\s+([0-7]+)/m);
  return m ? parseInt(m[1], 8) : -1;
}
R.umaskAtStart = umaskFromStatus();

function chmodFamily() {
  Deno.writeFileSync(p("target"), ELF, { mode: 0o644 });
  const t = cstr(p("target"));
  S("fchmodat(06755)", sys("fchmodat", AT_FDCWD, t, 0o6755));
  S("fchmodat(04755)", sys("fchmodat", AT_FDCWD, t, 0o4755));
  S("fchmodat(02755)", sys("fchmodat", AT_FDCWD, t, 0o2755));
  S("fchmodat(0757)", sys("fchmodat", AT_FDCWD, t, 0o757));
  S("fchmodat(04755|1<<32)", sys("fchmodat", AT_FDCWD, t, BigInt(0o4755) | HIGH));
  S("fchmodat(0755)", sys("fchmodat", AT_FDCWD, t, 0o755));
  S("fchmodat(0755|1<<32)", sys("fchmodat", AT_FDCWD, t, BigInt(0o755) | HIGH));

  const fd = sys("openat", AT_FDCWD, t, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw new Error("open target: " + fd);
  S("fchmod(06755)", sys("fchmod", fd, 0o6755));
  S("fchmod(0666)", sys("fchmod", fd, 0o666));
  S("fchmod(0750)", sys("fchmod", fd, 0o750));
  // The same file through /proc/self/fd: still the mode argument decides.
  S("fchmodat(/proc/self/fd/N, 06755)", sys("fchmodat", AT_FDCWD, cstr("/proc/self/fd/" + fd), 0o6755));
  sys("close", fd);

  // fchmodat2 (kernel 6.6): AT_SYMLINK_NOFOLLOW, and AT_EMPTY_PATH on an O_PATH fd.
  S("fchmodat2(06755)", sys("fchmodat2", AT_FDCWD, t, 0o6755, 0));
  S("fchmodat2(0755)", sys("fchmodat2", AT_FDCWD, t, 0o755, 0));
  const pfd = sys("openat", AT_FDCWD, t, O_PATH | O_CLOEXEC);
  S("fchmodat2(O_PATH fd, \"\", 04755, AT_EMPTY_PATH)", sys("fchmodat2", pfd, cstr(""), 0o4755, AT_EMPTY_PATH));
  S("fchmodat2(O_PATH fd, \"\", 0755, AT_EMPTY_PATH)", sys("fchmodat2", pfd, cstr(""), 0o755, AT_EMPTY_PATH));
  if (pfd >= 0) sys("close", pfd);

  if (PARAMS.nr.chmod !== undefined) {
    S("chmod(06755)", sys("chmod", t, 0o6755));
    S("chmod(0777)", sys("chmod", t, 0o777));
    S("chmod(0755)", sys("chmod", t, 0o755));
  }
  R.modes["target"] = modeOf(p("target"));
}

function creation() {
  const flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  S("openat(O_CREAT, 06755)", sys("openat", AT_FDCWD, cstr(p("open-06755")), flags, 0o6755), true);
  S("openat(O_CREAT, 04755|1<<32)", sys("openat", AT_FDCWD, cstr(p("open-04755-high")), flags, BigInt(0o4755) | HIGH), true);
  S("openat(O_CREAT, 0644)", sys("openat", AT_FDCWD, cstr(p("open-0644")), flags, 0o644), true);
  S("openat(O_CREAT, 0666)", sys("openat", AT_FDCWD, cstr(p("open-0666")), flags, 0o666), true);
  R.modes["open-0666"] = modeOf(p("open-0666"));
  // Without O_CREAT the mode is ignored by the kernel, and by the filter.
  S("openat(O_RDONLY, 06755)", sys("openat", AT_FDCWD, cstr(p("open-0644")), O_RDONLY | O_CLOEXEC, 0o6755), true);

  // O_TMPFILE: an unnamed file, then linked into the workspace.
  const dir = cstr(ws);
  S("openat(O_TMPFILE, 06755)", sys("openat", AT_FDCWD, dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o6755), true);
  const tfd = S("openat(O_TMPFILE, 0644)", sys("openat", AT_FDCWD, dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o644));
  if (tfd >= 0) {
    S("fchmod(O_TMPFILE fd, 04755)", sys("fchmod", tfd, 0o4755));
    S("linkat(O_TMPFILE fd)", sys("linkat", AT_FDCWD, cstr("/proc/self/fd/" + tfd), AT_FDCWD, cstr(p("tmpfile-linked")), AT_SYMLINK_FOLLOW));
    S("fchmodat(linked tmpfile, 06755)", sys("fchmodat", AT_FDCWD, cstr(p("tmpfile-linked")), 0o6755));
    sys("close", tfd);
  }

  // openat2's mode sits in struct open_how, out of the filter's reach.
  const how = new Uint8Array(24);
  const v = new DataView(how.buffer);
  v.setBigUint64(0, BigInt(flags), true);
  v.setBigUint64(8, BigInt(0o6755), true);
  S("openat2(O_CREAT, 06755)", sys("openat2", AT_FDCWD, cstr(p("openat2-06755")), ptr(how), 24), true);
  v.setBigUint64(8, BigInt(0o644), true);
  S("openat2(O_CREAT, 0644)", sys("openat2", AT_FDCWD, cstr(p("openat2-0644")), ptr(how), 24), true);

  S("mknodat(S_IFREG|06755)", sys("mknodat", AT_FDCWD, cstr(p("mknod-06755")), S_IFREG | 0o6755, 0));
  S("mknodat(S_IFREG|0644)", sys("mknodat", AT_FDCWD, cstr(p("mknod-0644")), S_IFREG | 0o644, 0));
  S("mkdirat(02755)", sys("mkdirat", AT_FDCWD, cstr(p("dir-02755")), 0o2755));
  S("mkdirat(04755)", sys("mkdirat", AT_FDCWD, cstr(p("dir-04755")), 0o4755));
  S("mkdirat(0755)", sys("mkdirat", AT_FDCWD, cstr(p("dir-0755")), 0o755));
  S("mkdirat(0777)", sys("mkdirat", AT_FDCWD, cstr(p("dir-0777")), 0o777));
  R.modes["dir-0777"] = modeOf(p("dir-0777"));

  if (PARAMS.nr.open !== undefined) {
    S("open(O_CREAT, 06755)", sys("open", cstr(p("legacy-open-06755")), flags, 0o6755), true);
    S("open(O_CREAT, 0644)", sys("open", cstr(p("legacy-open-0644")), flags, 0o644), true);
    S("creat(06755)", sys("creat", cstr(p("creat-06755")), 0o6755), true);
    S("creat(0644)", sys("creat", cstr(p("creat-0644")), 0o644), true);
    S("mknod(S_IFREG|04755)", sys("mknod", cstr(p("legacy-mknod")), S_IFREG | 0o4755, 0));
    S("mkdir(02755)", sys("mkdir", cstr(p("legacy-dir-02755")), 0o2755));
    S("mkdir(0755)", sys("mkdir", cstr(p("legacy-dir-0755")), 0o755));
  }
}

function umaskProbes() {
  S("umask(0o020)", sys("umask", 0o020));
  S("umask(0o022|1<<32)", sys("umask", BigInt(0o022) | HIGH));
  S("umask(0o027)", sys("umask", 0o027));
  S("umask(0o022)", sys("umask", 0o022)); // returns the previous mask, 0o027
  S("umask(0)", sys("umask", 0)); // ignored: returns 0, the mask stays 0o022
  S("umask after the probes", sys("umask", 0o022));
  // Whatever the attempts above did, O_CREAT with 0666 and mkdir with 0777
  // must not produce o+w.
  S("openat(O_CREAT, 0666) after umask(0)", sys("openat", AT_FDCWD, cstr(p("after-umask-0666")), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666), true);
  S("mkdirat(0777) after umask(0)", sys("mkdirat", AT_FDCWD, cstr(p("after-umask-dir")), 0o777));
  R.modes["after-umask-0666"] = modeOf(p("after-umask-0666"));
  R.modes["after-umask-dir"] = modeOf(p("after-umask-dir"));
}

function xattrs() {
  Deno.writeFileSync(p("xattr-target"), ELF, { mode: 0o755 });
  const t = cstr(p("xattr-target"));
  // struct vfs_cap_data, revision 2: cap_setuid|cap_setgid permitted and effective.
  const cap = new Uint8Array(20);
  const v = new DataView(cap.buffer);
  v.setUint32(0, 0x02000000 | 1, true); // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
  v.setUint32(4, (1 << 6) | (1 << 7), true); // permitted: CAP_SETGID, CAP_SETUID
  const name = cstr("security.capability");
  S("setxattr(security.capability)", sys("setxattr", t, name, ptr(cap), cap.length, 0));
  S("lsetxattr(security.capability)", sys("lsetxattr", t, name, ptr(cap), cap.length, 0));
  const fd = sys("openat", AT_FDCWD, t, O_RDONLY | O_CLOEXEC);
  S("fsetxattr(security.capability)", sys("fsetxattr", fd, name, ptr(cap), cap.length, 0));
  sys("close", fd);
  const val = enc.encode("x");
  S("setxattr(user.probe)", sys("setxattr", t, cstr("user.probe"), ptr(val), val.length, 0));
  S("setxattr(system.posix_acl_access)", sys("setxattr", t, cstr("system.posix_acl_access"), ptr(val), val.length, 0));
  S("removexattr(security.capability)", sys("removexattr", t, name));
}

function acrossMounts() {
  // A file made in the sandbox's own /tmp cannot be moved or linked in.
  Deno.writeFileSync("/tmp/setid-probe", ELF, { mode: 0o755 });
  S("linkat(/tmp -> workspace)", sys("linkat", AT_FDCWD, cstr("/tmp/setid-probe"), AT_FDCWD, cstr(p("from-tmp-link")), 0));
  S("renameat2(/tmp -> workspace)", sys("renameat2", AT_FDCWD, cstr("/tmp/setid-probe"), AT_FDCWD, cstr(p("from-tmp-rename")), 0));
  S("fchmodat(/tmp file, 04755)", sys("fchmodat", AT_FDCWD, cstr("/tmp/setid-probe"), 0o4755));
}

async function runtimeAPIs() {
  const fs = await import("node:fs");
  const process = (await import("node:process")).default;
  Deno.writeFileSync(p("api-target"), ELF, { mode: 0o755 });
  // Refused.
  await api("Deno.chmodSync(04755)", () => Deno.chmodSync(p("api-target"), 0o4755));
  await api("Deno.chmod(02755)", () => Deno.chmod(p("api-target"), 0o2755));
  await api("Deno.chmodSync(0777)", () => Deno.chmodSync(p("api-target"), 0o777));
  await api("Deno.writeFileSync(mode 06755)", () => Deno.writeFileSync(p("api-write-06755"), ELF, { mode: 0o6755 }));
  await api("Deno.writeFile(mode 0666)", () => Deno.writeFile(p("api-write-0666"), ELF, { mode: 0o666 }));
  await api("Deno.mkdirSync(mode 02755)", () => Deno.mkdirSync(p("api-dir-02755"), { mode: 0o2755 }));
  await api("Deno.openSync(create, mode 04755)", () => Deno.openSync(p("api-open-04755"), { write: true, create: true, mode: 0o4755 }).close());
  await api("Deno.umask(0)", () => {
    Deno.umask(0);
  });
  await api("node fs.chmodSync(06755)", () => fs.chmodSync(p("api-target"), 0o6755));
  await api("node fs.writeFileSync(mode 04755)", () => fs.writeFileSync(p("api-node-04755"), ELF, { mode: 0o4755 }));
  await api("node fs.mkdirSync(mode 02777)", () => fs.mkdirSync(p("api-node-dir-02777"), { mode: 0o2777 }));
  await api("node process.umask(0)", () => {
    process.umask(0);
  });
  // Allowed, and what code normally does.
  await api("Deno.umask()", () => {
    R.modes["Deno.umask()"] = Deno.umask();
  });
  await api("Deno.chmodSync(0700)", () => Deno.chmodSync(p("api-target"), 0o700));
  await api("Deno.writeFileSync(mode 0755)", () => Deno.writeFileSync(p("api-write-0755"), ELF, { mode: 0o755 }));
  await api("Deno.writeTextFileSync", () => Deno.writeTextFileSync(p("api-text"), "hello"));
  await api("Deno.mkdirSync(recursive)", () => Deno.mkdirSync(p("api-tree/a/b"), { recursive: true }));
  await api("Deno.makeTempFileSync", () => Deno.makeTempFileSync({ dir: ws }));
  await api("Deno.makeTempDirSync", () => Deno.makeTempDirSync({ dir: ws }));
  await api("Deno.copyFileSync", () => Deno.copyFileSync(p("api-write-0755"), p("api-copy")));
  await api("Deno.renameSync", () => Deno.renameSync(p("api-copy"), p("api-renamed")));
  await api("Deno.openSync(create, mode 0640)", () => Deno.openSync(p("api-open-0640"), { write: true, create: true, mode: 0o640 }).close());
  await api("node fs.writeFileSync", () => fs.writeFileSync(p("api-node"), "hello"));
  await api("node fs.mkdtempSync", () => fs.mkdtempSync(p("api-node-tmp-")));
  await api("node fs.chmodSync(0755)", () => fs.chmodSync(p("api-node"), 0o755));
  await api("node fs.copyFileSync", () => fs.copyFileSync(p("api-node"), p("api-node-copy")));
  await api("node process.umask()", () => {
    R.modes["process.umask()"] = process.umask();
  });
  R.umaskAtEnd = umaskFromStatus();
  for (const n of ["api-dir-02755", "api-open-04755", "api-node-dir-02777", "api-target", "api-write-0755", "api-text", "api-open-0640", "api-node", "api-node-copy", "api-renamed"]) {
    R.modes[n] = modeOf(p(n));
  }
}

for (const [name, fn] of Object.entries({ chmodFamily, creation, umaskProbes, xattrs, acrossMounts, runtimeAPIs })) {
  try {
    await fn();
  } catch (e) {
    R.errors[name] = describe(e) + "\n" + ((e as Error)?.stack ?? "");
  }
}
console.log("SETID-REPORT " + JSON.stringify(R));
