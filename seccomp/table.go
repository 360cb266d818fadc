package seccomp

import "golang.org/x/sys/unix"

// verdict is what the policy does with a syscall that a rule names.
type verdict int

const (
	// allow lets the syscall through (subject to the rule's argument checks).
	allow verdict = iota + 1
	// enosys fails the syscall with ENOSYS so that userspace takes its
	// fallback path (glibc falls back from clone3 to clone, for example).
	enosys
	// deny fails the syscall with EPERM. It is the default action anyway;
	// naming a syscall as deny documents the decision and places the
	// syscall below libcontainer's ENOSYS boundary (see doc.go), so it gets
	// EPERM rather than ENOSYS. libcontainer skips such rules when it
	// compiles the filter because they repeat the default action.
	deny
	// ignore makes the syscall do nothing and return 0 (SECCOMP_RET_ERRNO
	// with errno 0). Only for umask, whose callers cannot handle a failure:
	// glibc turns -EPERM into a mask of 0xffffffff and deno (nix) panics on it.
	ignore
)

// cmp is one comparison on one syscall argument. All comparisons are on the
// full 64-bit register: libseccomp compares both halves on 64-bit ABIs, so
// a value with stray high bits (TIOCSTI|1<<32) never equals an allowed one.
type cmp struct {
	index uint   // argument index, 0-based
	mask  uint64 // 0 means "compare for equality with value"
	value uint64 // expected value (after masking when mask != 0)
}

// rule is one row of the policy table.
type rule struct {
	name    string
	verdict verdict
	// when, if set, restricts the rule to calls whose arguments match.
	when *cmp
	// scope says in which policy variant the rule applies.
	scope scope
	// optional marks allowed syscalls that the linked libseccomp may not
	// know (newer than Debian 12's 2.5.4). libcontainer ignores a rule it
	// cannot resolve, so the syscall then falls above the ENOSYS boundary.
	// Other allow rules are required: Cache.Policy fails if one is unknown.
	// deny and enosys rules are never required (an unknown one is still
	// denied, with ENOSYS).
	optional bool
}

// ioctl requests from asm-generic/ioctls.h (the same on x86_64 and arm64)
// that golang.org/x/sys/unix does not define for Linux.
const (
	ioctlFIONREAD = unix.TIOCINQ // 0x541B
	ioctlFIONBIO  = 0x5421
	ioctlFIONCLEX = 0x5450
	ioctlFIOCLEX  = 0x5451
)

// scope selects the policy variants a rule belongs to.
type scope int

const (
	always         scope = iota // both variants
	withNetwork                 // only when Options.Network is set
	withoutNetwork              // only when it is not
)

// applies reports whether the rule belongs to the variant for o.
func (r rule) applies(o Options) bool {
	switch r.scope {
	case withNetwork:
		return o.Network
	case withoutNetwork:
		return !o.Network
	default:
		return true
	}
}

// cloneNamespaceFlags are the clone(2) flags that create namespaces:
// CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|
// CLONE_NEWPID|CLONE_NEWNET. clone is allowed only when none is set.
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

func allowAll(names ...string) []rule {
	rules := make([]rule, 0, len(names))
	for _, n := range names {
		rules = append(rules, rule{name: n, verdict: allow})
	}
	return rules
}

func allowIf(name string, index uint, values ...uint64) []rule {
	rules := make([]rule, 0, len(values))
	for _, v := range values {
		rules = append(rules, rule{name: name, verdict: allow, when: &cmp{index: index, value: v}})
	}
	return rules
}

func denyAll(names ...string) []rule {
	rules := make([]rule, 0, len(names))
	for _, n := range names {
		rules = append(rules, rule{name: n, verdict: deny})
	}
	return rules
}

func concat(groups ...[]rule) []rule {
	var out []rule
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// commonRules hold on every supported architecture. The names are those of
// the generic (asm-generic/unistd.h) table, which x86_64 also has.
// The table is never modified after package initialisation.
var commonRules = concat(
	// Files and directories. Deno's fs API, DENO_DIR and its sqlite caches
	// (fcntl F_SETLK locks), glibc and the tail of `runc init`
	// (pathrs-lite re-opens the exec fifo via statx/fstatfs, and openat2,
	// which gets ENOSYS here: it then falls back to openat; see modeRules).
	allowAll("read", "write", "readv", "writev", "pread64", "pwrite64",
		"preadv", "pwritev", "preadv2", "pwritev2",
		"close", "close_range", "lseek",
		"fstat", "newfstatat", "statx", "statfs", "fstatfs", "getdents64",
		"fcntl", "flock", "fsync", "fdatasync", "ftruncate", "truncate",
		"unlinkat", "renameat2", "linkat", "symlinkat", "readlinkat",
		"faccessat", "faccessat2",
		"fchown", "fchownat", "utimensat",
		"getcwd", "chdir", "fchdir", "dup", "dup3", "pipe2",
		"copy_file_range", "sendfile", "fadvise64",
		"inotify_init1", "inotify_add_watch", "inotify_rm_watch"),
	// File modes: nothing the sandbox creates may carry S_ISUID or S_ISGID
	// (the workspace is a writable bind mount of a host directory, idmapped
	// to its owner, and nosuid holds only inside the sandbox), nor be
	// world-writable. See modeRules.
	modeRules(),
	// Event loop (tokio/mio) and blocking waits.
	allowAll("eventfd2", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2",
		"ppoll", "pselect6"),
	// Memory. V8 mprotects with PROT_EXEC and even RWX for its JIT, and
	// probes memory protection keys.
	allowAll("brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync",
		"pkey_alloc", "pkey_free", "pkey_mprotect"),
	// mseal only restricts the caller's own mappings; newer V8 may use it.
	[]rule{{name: "mseal", verdict: allow, optional: true}},
	// Threads, processes, scheduling. execve is the initial exec of deno
	// (and lets a Deno.Command spawn fail cleanly instead of hanging).
	allowAll("execve", "exit", "exit_group", "wait4", "waitid",
		"set_tid_address", "set_robust_list", "rseq", "futex",
		"sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler",
		"sched_get_priority_max", "sched_get_priority_min", "getcpu",
		"getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid",
		"getresuid", "getresgid", "getgroups", "getpgid", "getsid",
		"getrlimit", "getrusage", "times", "sysinfo", "uname", "getrandom",
		"pidfd_open"),
	// Signals. kill and tgkill cannot reach outside the pid namespace.
	allowAll("rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend",
		"rt_sigtimedwait", "rt_sigpending", "sigaltstack", "restart_syscall",
		"kill", "tgkill"),
	// Time (normally served by the vDSO; the syscalls are its fallback).
	allowAll("clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday"),

	// clone without namespace flags only: threads, fork and vfork-style
	// spawns. Namespace flags get EPERM.
	[]rule{{name: "clone", verdict: allow, when: &cmp{index: 0, mask: cloneNamespaceFlags, value: 0}}},
	// prlimit64 only on the caller itself (pid 0): deno raises RLIMIT_NOFILE.
	allowIf("prlimit64", 0, 0),
	// Sockets: only the local and IP families. Deno creates an AF_UNIX
	// socketpair at startup even without network.
	allowIf("socket", 0, unix.AF_UNIX, unix.AF_INET, unix.AF_INET6),
	allowIf("socketpair", 0, unix.AF_UNIX),
	// Terminal and fd ioctls only: isatty (TCGETS), console size, FIONREAD
	// (glibc's resolver) and the non-blocking / close-on-exec toggles.
	allowIf("ioctl", 1, unix.TCGETS, unix.TIOCGWINSZ, ioctlFIONREAD, ioctlFIONBIO,
		ioctlFIOCLEX, ioctlFIONCLEX),
	// Thread names (tokio, V8), anonymous VMA names (V8/abseil), and two
	// harmless reads.
	allowIf("prctl", 0, unix.PR_SET_NAME, unix.PR_GET_NAME, unix.PR_SET_VMA, unix.PR_GET_DUMPABLE),

	// Network calls, only when the admin granted network. The sandbox's
	// network namespace holds only loopback; this is the second wall.
	networkRules("connect", "bind", "listen", "accept", "accept4",
		"sendto", "sendmsg", "sendmmsg", "recvmsg", "recvmmsg",
		"getsockopt", "setsockopt", "shutdown", "getsockname", "getpeername"),
	// Without network, deno still needs send(2)/recv(2) on the AF_UNIX
	// socketpair behind Deno.addSignalListener and process.on("SIGINT")
	// (signal-hook; EPERM there makes deno panic). send is sendto with no
	// destination address: with connect and bind denied, no socket can
	// reach anything but its socketpair peer, and an address-less sendto
	// on an unconnected socket fails with EDESTADDRREQ.
	[]rule{
		{name: "sendto", verdict: allow, scope: withoutNetwork, when: &cmp{index: 4, value: 0}},
		{name: "recvfrom", verdict: allow},
	},

	// ENOSYS: userspace has a fallback, or the feature is probed.
	[]rule{
		{name: "clone3", verdict: enosys},
		{name: "io_uring_setup", verdict: enosys},
		{name: "io_uring_enter", verdict: enosys},
		{name: "io_uring_register", verdict: enosys},
		{name: "futex_waitv", verdict: enosys},
		{name: "map_shadow_stack", verdict: enosys},
		{name: "futex_wake", verdict: enosys},
		{name: "futex_wait", verdict: enosys},
		{name: "futex_requeue", verdict: enosys},
	},

	// Explicit EPERM: what the well-known profiles (moby, nsjail, codex)
	// block. Everything not allowed is EPERM anyway; see verdict deny.
	denyAll(
		// keys, tracing, bpf, other processes' memory
		"keyctl", "add_key", "request_key", "userfaultfd", "bpf", "perf_event_open",
		"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise",
		// mounts and namespaces
		"mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree",
		"move_mount", "mount_setattr", "pivot_root", "chroot", "unshare", "setns",
		// host administration
		"quotactl", "quotactl_fd", "syslog", "sethostname", "setdomainname",
		"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
		"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
		"reboot", "swapon", "swapoff", "acct",
		// file handles (CVE-2014-3519 "shocker"), memfds, seccomp itself
		"name_to_handle_at", "open_by_handle_at", "memfd_create", "memfd_secret", "seccomp",
		// device nodes, fifos and files made by mknod (deno never calls it;
		// a regular file from mknod keeps its mode's set-id bits: the
		// kernel strips them only for mkdir)
		"mknodat",
		// extended attributes: a security.capability xattr written through
		// the workspace's idmapped mount is a file capability on the host,
		// and system.posix_acl_* would grant access modes cannot show.
		// deno never sets or removes xattrs.
		"setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
		"personality", "process_mrelease", "set_mempolicy_home_node", "cachestat",
		"mbind", "set_mempolicy", "migrate_pages", "move_pages", "fanotify_init",
		"vmsplice",
		// newer than libseccomp 2.5.4 knows; classified ahead of time so
		// a newer libseccomp moves the ENOSYS boundary without a gap
		"statmount", "listmount", "lsm_get_self_attr", "lsm_set_self_attr",
		"lsm_list_modules", "setxattrat", "getxattrat", "listxattrat", "removexattrat",
		"open_tree_attr", "file_getattr", "file_setattr"),
)

func networkRules(names ...string) []rule {
	rules := allowAll(names...)
	for i := range rules {
		rules[i].scope = withNetwork
	}
	return rules
}

// amd64Rules are the x86_64-only syscalls: the pre-*at file calls that
// glibc and Rust's std still use there, arch_prctl (TLS setup), fork and
// vfork (dash spawns with vfork; both equal clone without namespace flags),
// and the x86-only dangerous calls.
var amd64Rules = concat(
	allowAll("stat", "lstat", "access", "readlink", "rename", "renameat",
		"rmdir", "unlink", "link", "symlink", "chown", "lchown",
		"dup2", "pipe", "poll", "select", "epoll_wait", "epoll_create",
		"getpgrp", "time", "pause", "arch_prctl", "fork", "vfork"),
	// The legacy forms of the mode rules (see modeRules): open(path, flags,
	// mode), creat(path, mode), mkdir(path, mode), chmod(path, mode).
	createRules("open", 1, 2),
	setidFreeMode("creat", 1),
	setidFreeMode("mkdir", 1),
	safeChmod("chmod", 1),
	denyAll("iopl", "ioperm", "modify_ldt", "uselib", "vhangup", "mknod"),
)

// arm64Rules are the arm64-only syscalls (none needed beyond the generic table).
var arm64Rules []rule

// Mode bits the sandbox may never set (include/uapi/linux/stat.h).
const (
	modeSetID     = unix.S_ISUID | unix.S_ISGID // 06000
	modeOtherW    = unix.S_IWOTH                // 00002
	modeForbidden = modeSetID | modeOtherW      // 06002
)

// openCreateFlags are the open flags with which the mode argument is used:
// O_CREAT, and __O_TMPFILE (O_TMPFILE is __O_TMPFILE|O_DIRECTORY; the kernel
// reads the mode whenever the __O_TMPFILE bit is set, see build_open_flags).
// Both values are the same on x86_64 and arm64.
const openCreateFlags = unix.O_CREAT | (unix.O_TMPFILE &^ unix.O_DIRECTORY)

// modeRules keep set-id and world-writable bits off everything the sandbox
// creates or changes, on every path the kernel offers, with masked
// comparisons on the mode argument (full register; the mask ignores bits the
// kernel ignores):
//   - chmod family (fchmod, fchmodat, fchmodat2; chmod on x86_64): allowed
//     only when (mode & 06002) == 0. This also covers chmod through
//     /proc/self/fd/N and an O_PATH fd with AT_EMPTY_PATH. An explicit
//     world-writable mode is refused too: Deno.writeFile(p, d, {mode: 0o666})
//     (deno fchmods the mode after opening) fails with EPERM.
//   - openat (open, creat on x86_64): allowed when the call creates nothing
//     ((flags & (O_CREAT|__O_TMPFILE)) == 0) or when (mode & 06000) == 0.
//     An O_TMPFILE file linked in later with linkat keeps this mode.
//   - mkdirat (mkdir): allowed only when (mode & 06000) == 0. The kernel
//     already drops S_ISUID/S_ISGID from mkdir's mode (a directory becomes
//     setgid only by inheriting it from its parent); the rule holds even if
//     that changed.
//   - umask: allowed when the new mask keeps S_IWOTH ((mask & 02) == 02),
//     so O_CREAT and mkdir, whose usual modes are 0666 and 0777, never make
//     world-writable entries; libcontainer starts the process with umask
//     0022 (set explicitly in sandbox/config.go). A mask without S_IWOTH
//     (umask(0)) is ignored: the call returns 0 and the mask stays. It is
//     not failed with EPERM because umask(2) cannot fail: glibc would return
//     0xffffffff and deno's Deno.umask(0) and node's process.umask(0) panic
//     on that ("umask returned invalid Mode"), and the common
//     old = umask(0); umask(old) idiom would then set a mask of 0777.
//     Deno.umask() with no argument queries with that idiom, so it reports
//     0 while the mask stays 0022.
//   - openat2: its mode is inside struct open_how, which seccomp cannot
//     read, so it gets ENOSYS and userspace falls back to openat (deno never
//     calls it; runc's pathrs-lite probes it and falls back).
//   - mknod, mknodat and the xattr setters are denied (see the deny list).
//
// Other ways to a set-id or world-writable entry are closed elsewhere:
// link and rename across mounts fail with EXDEV, copy_file_range copies
// data only, writing to a set-id file clears its set-id bits, ioctl
// (FS_IOC_SETFLAGS and the rest) and io_uring are denied.
func modeRules() []rule {
	return concat(
		safeChmod("fchmod", 1),
		safeChmod("fchmodat", 2),
		// glibc >= 2.39 implements fchmodat(AT_SYMLINK_NOFOLLOW) with
		// fchmodat2 and falls back only on ENOSYS.
		optionalRules(safeChmod("fchmodat2", 2)),
		createRules("openat", 2, 3),
		setidFreeMode("mkdirat", 2),
		[]rule{
			{name: "umask", verdict: allow, when: &cmp{index: 0, mask: modeOtherW, value: modeOtherW}},
			{name: "umask", verdict: ignore, when: &cmp{index: 0, mask: modeOtherW, value: 0}},
		},
		[]rule{{name: "openat2", verdict: enosys}},
	)
}

// safeChmod allows name only when its mode argument (at index) has no
// S_ISUID, S_ISGID or S_IWOTH bit.
func safeChmod(name string, index uint) []rule {
	return []rule{{name: name, verdict: allow, when: &cmp{index: index, mask: modeForbidden, value: 0}}}
}

// setidFreeMode allows name only when its mode argument (at index) has no
// S_ISUID or S_ISGID bit.
func setidFreeMode(name string, index uint) []rule {
	return []rule{{name: name, verdict: allow, when: &cmp{index: index, mask: modeSetID, value: 0}}}
}

// createRules allows an open-like call (flags at flagsIndex, mode at
// modeIndex) when it creates nothing, or when its mode has no set-id bit.
// The two rules are alternatives (libseccomp ORs rules of one syscall).
func createRules(name string, flagsIndex, modeIndex uint) []rule {
	return []rule{
		{name: name, verdict: allow, when: &cmp{index: flagsIndex, mask: openCreateFlags, value: 0}},
		{name: name, verdict: allow, when: &cmp{index: modeIndex, mask: modeSetID, value: 0}},
	}
}

// optionalRules marks rules for a syscall the linked libseccomp may not know.
func optionalRules(rules []rule) []rule {
	for i := range rules {
		rules[i].optional = true
	}
	return rules
}
