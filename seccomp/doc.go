// Package seccomp is the syscall policy for a Deno sandbox: an allowlist
// compiled into a libcontainer configs.Seccomp, plus a tiny "arch guard"
// filter that kills the whole process on foreign-ABI syscalls.
//
// # Use
//
//	cache := seccomp.NewCache()                       // once, in the server
//	cfg, err := cache.Policy(seccomp.Options{Network: granted})
//	config.Seccomp = cfg                              // libcontainer configs.Config
//	config.NoNewPrivileges = true                     // required, see below
//
//	// in `conductor init`, before libcontainer.Init():
//	if err := seccomp.LoadArchGuard(); err != nil { ... }
//
// Build with cgo and the "seccomp" tag (libcontainer's loader needs
// libseccomp); without them Cache.Policy returns ErrNotSupported.
// The package is Linux-only and supports amd64 and arm64.
//
// # Policy
//
// The default action is EPERM: anything not listed fails closed.
// Allowed (the set deno 2.9 was observed to use under strace for scripts,
// TypeScript, Workers, WebAssembly, WebCrypto, timers, the file system,
// subprocesses and, with network, Deno.serve and fetch; plus the tail of
// `runc init` between loading the filter and execve):
//   - file I/O and metadata (statx, getdents64, fcntl locks,
//     rename/unlink/link/symlink, chown, inotify, copy_file_range, and on
//     x86_64 the legacy stat/access/... forms; openat, mkdir, chmod and
//     umask are below, with argument conditions);
//   - memory: mmap, mprotect including PROT_EXEC and W+X (V8's JIT),
//     madvise, mremap, pkey_* (V8 probes memory protection keys);
//   - threads, time and signals: futex, rseq, clone without namespace
//     flags (and fork/vfork on x86_64), execve, wait4, kill/tgkill (confined
//     by the pid namespace), getrandom, sysinfo, uname, sched_getaffinity,
//     epoll, ...;
//   - recvfrom, and sendto without a destination address: send(2)/recv(2)
//     on the AF_UNIX socketpair behind Deno.addSignalListener and
//     process.on("SIGINT") (deno panics if they fail). With connect and bind
//     denied no socket can reach anything but its socketpair peer.
//
// Allowed only for some arguments (compared on the full 64-bit register,
// so a value with stray high bits, e.g. TIOCSTI|1<<32, is denied):
//   - clone: when (flags & 0x7E020000) == 0, i.e. no CLONE_NEW* flag;
//   - socket: AF_UNIX, AF_INET, AF_INET6; socketpair: AF_UNIX (deno makes
//     a socketpair at startup even without network);
//   - ioctl: TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX
//     (so TIOCSTI, TIOCLINUX, TIOCSWINSZ are denied);
//   - prctl: PR_SET_NAME, PR_GET_NAME, PR_SET_VMA, PR_GET_DUMPABLE;
//   - prlimit64: pid 0 only (deno raises its own RLIMIT_NOFILE);
//   - file modes (issue 9: nothing the sandbox writes may reach the host
//     set-user-id, set-group-id or world-writable; the workspace is a host
//     directory and nosuid holds only inside the sandbox):
//     fchmod, fchmodat, fchmodat2 and chmod when (mode & 06002) == 0;
//     openat, open and creat when (flags & (O_CREAT|__O_TMPFILE)) == 0 or
//     (mode & 06000) == 0; mkdirat and mkdir when (mode & 06000) == 0;
//     umask when (mask & 02) == 02, so with the sandbox's umask of 0022
//     O_CREAT and mkdir never make o+w entries. A umask that would clear
//     S_IWOTH is ignored (returns 0, the mask stays): umask(2) cannot fail,
//     and deno panics if it does. Deno.umask() therefore reports 0.
//     mknod, mknodat and the xattr setters and removers are denied (a
//     security.capability xattr written through the workspace's idmapped
//     mount would be a file capability on the host; deno uses none of
//     them), and openat2 gets ENOSYS because its mode is in a struct the
//     filter cannot read. Link and rename across mounts fail with EXDEV.
//     See modeRules in table.go for the reasoning on each path.
//
// Only with Options.Network: connect, bind, listen, accept, accept4,
// sendto with an address, sendmsg, sendmmsg, recvmsg, recvmmsg, getsockopt,
// setsockopt, shutdown, getsockname, getpeername. Without network they fail
// with EPERM even on AF_UNIX sockets (so node's child_process IPC, which
// uses sendmsg, needs the network variant). The network namespace is the
// first wall; this is the second.
//
// ENOSYS, because userspace has a fallback or probes: clone3 (glibc falls
// back to clone), openat2 (to openat), io_uring_*, and the newest
// futex/shadow-stack calls.
//
// Named as EPERM (what the moby, nsjail and codex profiles block): keyctl,
// bpf, perf_event_open, userfaultfd, ptrace, process_vm_*, pidfd_getfd,
// mount and the new mount API, pivot_root, chroot, unshare, setns,
// memfd_create, seccomp, personality, open_by_handle_at, kexec_*, modules,
// reboot, swap, clock and host-name setters, syslog, quotactl, lsm_*, ...
//
// # The ENOSYS boundary
//
// libcontainer prepends a stub to the filter that returns ENOSYS for every
// syscall number above the highest one the config names (with any action,
// for the native architecture, as resolved by the linked libseccomp), so
// syscalls newer than the policy fail like on an older kernel. Naming the
// denied syscalls moves that boundary up to them: everything up to it is
// classified explicitly. With Debian 12's libseccomp 2.5.4 the boundary is
// 456 (futex_requeue) on x86_64; statmount, listmount and lsm_* (457-461)
// are unknown to it and get ENOSYS rather than EPERM, which still denies
// them. A newer libseccomp moves the boundary and TestNoGapBelowBoundary
// then asks for the new syscalls to be classified.
//
// # Foreign ABIs and the arch guard
//
// The policy names the native architecture only. libcontainer compiles it
// with libseccomp's default bad-arch action, KILL_THREAD, which in a
// multi-threaded deno leaves the process hung. LoadArchGuard installs a
// six-instruction filter that returns KILL_PROCESS for any foreign audit
// arch and for x32 syscall numbers; stacked filters take the strictest
// action, so the whole process dies with SIGSYS.
//
// # Requirements on the container config
//
// NoNewPrivileges must be true. libcontainer then loads the policy as late
// as possible, just before execve; with it false, libcontainer loads the
// policy before dropping privileges and `runc init` would need setresuid,
// capset, setgroups and more prctl options, which this policy denies.
//
// Policies returned by Cache.Policy are deep copies that the caller owns.
package seccomp
