//go:build cgo && seccomp

package seccomp

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Expected probe outcomes. Errno names are those of unix.ErrnoName.
const (
	resOK      = "OK"     // the syscall succeeded
	resNotPerm = "!EPERM" // any outcome except EPERM (the filter let it through)
	resKilled  = "KILLED" // the whole process dies of SIGSYS
)

// probe is one syscall the helper performs under the loaded filters.
type probe struct {
	name string
	// run performs the syscall and returns the raw result and errno.
	run func() (uintptr, unix.Errno)
	// want is the expected outcome without network; wantNet, if set, the
	// outcome with Options.Network. wantFn, if set, overrides both and is
	// computed from the policy's ENOSYS boundary (see enosysBoundary).
	want, wantNet string
	wantFn        func(boundary int) string
	// control marks probes that are harmless without any filter and whose
	// unfiltered outcome (as root) differs from want: running them
	// unfiltered proves the filter produced the expected errno.
	control bool
}

func (p probe) expected(network bool, boundary int) string {
	switch {
	case p.wantFn != nil:
		return p.wantFn(boundary)
	case network && p.wantNet != "":
		return p.wantNet
	default:
		return p.want
	}
}

// probes returns every probe for this architecture.
func probes() []probe {
	return append(commonProbes(), archProbes()...)
}

func probeByName(name string) (probe, bool) {
	for _, p := range probes() {
		if p.name == name {
			return p, true
		}
	}
	return probe{}, false
}

// runProbes is the helper side: it runs the named probes and prints a JSON
// object mapping each name to its outcome.
func runProbes(names []string) int {
	out := map[string]string{}
	for _, n := range names {
		p, ok := probeByName(n)
		if !ok {
			fmt.Fprintln(os.Stderr, "helper: unknown probe", n)
			return 2
		}
		_, errno := p.run()
		out[n] = outcome(errno)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 2
	}
	return 0
}

func outcome(errno unix.Errno) string {
	if errno == 0 {
		return resOK
	}
	if name := unix.ErrnoName(errno); name != "" {
		return name
	}
	return fmt.Sprintf("errno(%d)", int(errno))
}

// matches reports whether outcome got satisfies expectation want.
func matches(want, got string) bool {
	if want == resNotPerm {
		return got != "EPERM"
	}
	return want == got
}

// sys performs a raw syscall with up to six arguments.
func sys(nr uintptr, args ...uintptr) (uintptr, unix.Errno) {
	var a [6]uintptr
	copy(a[:], args)
	r, _, e := unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return r, e
}

// closing runs fn and closes the fd it returned on success.
func closing(fn func() (uintptr, unix.Errno)) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) {
		r, e := fn()
		if e == 0 {
			unix.Close(int(r))
		}
		return r, e
	}
}

func sysFd(nr uintptr, args ...uintptr) func() (uintptr, unix.Errno) {
	return closing(func() (uintptr, unix.Errno) { return sys(nr, args...) })
}

func sysCall(nr uintptr, args ...uintptr) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) { return sys(nr, args...) }
}

// withString calls fn with a pointer to a NUL-terminated copy of s, kept
// alive for the duration of the call.
func withString(s string, fn func(p uintptr) (uintptr, unix.Errno)) (uintptr, unix.Errno) {
	b, err := unix.BytePtrFromString(s)
	if err != nil {
		return 0, unix.EINVAL
	}
	r, e := fn(uintptr(unsafe.Pointer(b)))
	runtime.KeepAlive(b)
	return r, e
}

// withPipe calls fn with the read end of a fresh pipe.
func withPipe(fn func(fd uintptr) (uintptr, unix.Errno)) (uintptr, unix.Errno) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, err.(unix.Errno)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	return fn(uintptr(p[0]))
}

// ioctlOnPipe issues ioctl(pipe, req, &int).
func ioctlOnPipe(req uint64) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) {
		return withPipe(func(fd uintptr) (uintptr, unix.Errno) {
			var v [64]byte
			r, e := sys(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(&v[0])))
			runtime.KeepAlive(&v)
			return r, e
		})
	}
}

// connectLoopback connects a fresh AF_INET socket to 127.0.0.1:1, where
// nothing listens: ECONNREFUSED when allowed, EPERM when filtered.
func connectLoopback() (uintptr, unix.Errno) {
	fd, e := sys(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return 0, e
	}
	defer unix.Close(int(fd))
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: 0x0100, Addr: [4]byte{127, 0, 0, 1}}
	r, e := sys(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	runtime.KeepAlive(&sa)
	return r, e
}

// sendOnSocketpair sends one byte over an AF_UNIX socketpair with sendto.
func sendOnSocketpair() (uintptr, unix.Errno) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err.(unix.Errno)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	b := [1]byte{1}
	r, e := sys(unix.SYS_SENDTO, uintptr(fds[0]), uintptr(unsafe.Pointer(&b[0])), 1, 0, 0, 0)
	runtime.KeepAlive(&b)
	return r, e
}

// recvOnSocketpair does a non-blocking recv(2) on an empty socketpair.
func recvOnSocketpair() (uintptr, unix.Errno) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err.(unix.Errno)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var b [1]byte
	r, e := sys(unix.SYS_RECVFROM, uintptr(fds[0]), uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_DONTWAIT, 0, 0)
	runtime.KeepAlive(&b)
	return r, e
}

// sendmsgOnSocketpair sends one byte over a socketpair with sendmsg.
func sendmsgOnSocketpair() (uintptr, unix.Errno) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err.(unix.Errno)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	b := [1]byte{1}
	iov := unix.Iovec{Base: &b[0], Len: 1}
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1}
	r, e := sys(unix.SYS_SENDMSG, uintptr(fds[0]), uintptr(unsafe.Pointer(&msg)), 0)
	runtime.KeepAlive(&msg)
	runtime.KeepAlive(&iov)
	runtime.KeepAlive(&b)
	return r, e
}

// sendtoUDPLoopback sends a datagram to 127.0.0.1:9 (discard) from an
// unconnected UDP socket: the address travels in sendto's fifth argument.
func sendtoUDPLoopback() (uintptr, unix.Errno) {
	fd, e := sys(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return 0, e
	}
	defer unix.Close(int(fd))
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: 0x0900, Addr: [4]byte{127, 0, 0, 1}}
	b := [1]byte{1}
	r, e := sys(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), 1, 0,
		uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	runtime.KeepAlive(&sa)
	runtime.KeepAlive(&b)
	return r, e
}

// mprotectExec maps an anonymous page and makes it RWX, as V8's JIT does.
func mprotectExec() (uintptr, unix.Errno) {
	mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return 0, err.(unix.Errno)
	}
	defer unix.Munmap(mem)
	return sys(unix.SYS_MPROTECT, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)),
		unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC)
}

// prlimitNofile reads RLIMIT_NOFILE of pid with prlimit64.
func prlimitNofile(pid func() int) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) {
		var old unix.Rlimit
		r, e := sys(unix.SYS_PRLIMIT64, uintptr(pid()), unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&old)))
		runtime.KeepAlive(&old)
		return r, e
	}
}

// forkAndReap forks with the given clone flags; the child exits at once
// with status 42 and the parent checks that status.
func forkAndReap(flags uintptr) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) {
		pid, e := rawFork(flags)
		if e != 0 {
			return 0, e
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(int(pid), &ws, 0, nil); err != nil {
			return 0, err.(unix.Errno)
		}
		if !ws.Exited() || ws.ExitStatus() != 42 {
			return 0, unix.ECHILD
		}
		return 0, 0
	}
}

// rawFork is a fork via clone(2) whose child only calls exit_group(42). It
// must not split the stack or touch the Go runtime in the child.
//
//go:nosplit
//go:norace
func rawFork(flags uintptr) (uintptr, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_CLONE, flags|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e == 0 && r == 0 {
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 42, 0, 0)
	}
	return r, e
}

// boundaryWant is the outcome for syscall nr that the policy does not
// allow: EPERM at or below the ENOSYS boundary, ENOSYS above it.
func boundaryWant(nr int) func(int) string {
	return func(boundary int) string {
		if nr > boundary {
			return "ENOSYS"
		}
		return "EPERM"
	}
}

func commonProbes() []probe {
	const bigPid = 0x3fffffff // no such process
	return []probe{
		// Namespaces and mounts.
		{name: "unshare(CLONE_NEWUSER)", run: sysCall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER), want: "EPERM", control: true},
		{name: "unshare(CLONE_NEWNS)", run: sysCall(unix.SYS_UNSHARE, unix.CLONE_NEWNS), want: "EPERM"},
		{name: "setns(-1)", run: sysCall(unix.SYS_SETNS, ^uintptr(0), 0), want: "EPERM", control: true},
		{name: "mount(NULL)", run: sysCall(unix.SYS_MOUNT, 0, 0, 0, 0, 0), want: "EPERM", control: true},
		{name: "umount2(/nonexistent)", run: func() (uintptr, unix.Errno) {
			return withString("/nonexistent-conductor", func(p uintptr) (uintptr, unix.Errno) { return sys(unix.SYS_UMOUNT2, p, 0) })
		}, want: "EPERM", control: true},
		{name: "fsopen(NULL)", run: sysFd(unix.SYS_FSOPEN, 0, 0), want: "EPERM", control: true},
		{name: "open_tree(NULL)", run: sysFd(unix.SYS_OPEN_TREE, ^uintptr(0), 0, 0), want: "EPERM", control: true},
		{name: "mount_setattr(-1)", run: sysCall(unix.SYS_MOUNT_SETATTR, ^uintptr(0), 0, 0, 0, 0), want: "EPERM", control: true},
		{name: "pivot_root(NULL)", run: sysCall(unix.SYS_PIVOT_ROOT, 0, 0), want: "EPERM", control: true},
		{name: "chroot(NULL)", run: sysCall(unix.SYS_CHROOT, 0), want: "EPERM", control: true},
		{name: "clone(CLONE_NEWNS)", run: forkAndReap(unix.CLONE_NEWNS), want: "EPERM"},
		{name: "clone(CLONE_NEWUSER)", run: forkAndReap(unix.CLONE_NEWUSER), want: "EPERM"},
		{name: "clone(CLONE_NEWNET)", run: forkAndReap(unix.CLONE_NEWNET), want: "EPERM"},
		{name: "clone(fork)", run: forkAndReap(0), want: resOK},
		{name: "clone3(NULL)", run: sysCall(unix.SYS_CLONE3, 0, 0), want: "ENOSYS", control: true},

		// Kernel attack surface and other processes.
		{name: "bpf(-1)", run: sysCall(unix.SYS_BPF, ^uintptr(0), 0, 0), want: "EPERM", control: true},
		{name: "perf_event_open(NULL)", run: sysFd(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0), want: "EPERM", control: true},
		{name: "userfaultfd(bad flags)", run: sysFd(unix.SYS_USERFAULTFD, 0xdead0000), want: "EPERM", control: true},
		{name: "keyctl(-1)", run: sysCall(unix.SYS_KEYCTL, 0xffff), want: "EPERM", control: true},
		{name: "add_key(NULL)", run: sysCall(unix.SYS_ADD_KEY, 0, 0, 0, 0, 0), want: "EPERM", control: true},
		{name: "request_key(NULL)", run: sysCall(unix.SYS_REQUEST_KEY, 0, 0, 0, 0), want: "EPERM", control: true},
		{name: "io_uring_setup(NULL)", run: sysFd(unix.SYS_IO_URING_SETUP, 1, 0), want: "ENOSYS", control: true},
		{name: "io_uring_enter(-1)", run: sysCall(unix.SYS_IO_URING_ENTER, ^uintptr(0), 0, 0, 0, 0, 0), want: "ENOSYS", control: true},
		{name: "io_uring_register(-1)", run: sysCall(unix.SYS_IO_URING_REGISTER, ^uintptr(0), 0, 0, 0), want: "ENOSYS", control: true},
		{name: "ptrace(PEEKDATA, nopid)", run: sysCall(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, bigPid, 0, 0), want: "EPERM", control: true},
		{name: "process_vm_readv(nopid)", run: sysCall(unix.SYS_PROCESS_VM_READV, bigPid, 0, 0, 0, 0, 0), want: "EPERM", control: true},
		{name: "pidfd_getfd(-1)", run: sysFd(unix.SYS_PIDFD_GETFD, ^uintptr(0), 0, 0), want: "EPERM", control: true},
		{name: "memfd_create(NULL)", run: sysFd(unix.SYS_MEMFD_CREATE, 0, 0), want: "EPERM", control: true},
		{name: "seccomp(GET_ACTION_AVAIL, NULL)", run: sysCall(unix.SYS_SECCOMP, 2, 0, 0), want: "EPERM", control: true},
		{name: "personality(query)", run: sysCall(unix.SYS_PERSONALITY, 0xffffffff), want: "EPERM", control: true},
		{name: "kexec_load(bad flags)", run: sysCall(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xdead0000), want: "EPERM"},
		{name: "init_module(NULL)", run: sysCall(unix.SYS_INIT_MODULE, 0, 0, 0), want: "EPERM"},
		{name: "finit_module(-1)", run: sysCall(unix.SYS_FINIT_MODULE, ^uintptr(0), 0, 0), want: "EPERM"},
		{name: "reboot(bad magic)", run: sysCall(unix.SYS_REBOOT, 0, 0, 0, 0), want: "EPERM"},
		{name: "sethostname(len 4096)", run: sysCall(unix.SYS_SETHOSTNAME, 0, 4096), want: "EPERM"},
		{name: "settimeofday(NULL)", run: sysCall(unix.SYS_SETTIMEOFDAY, 0, 0), want: "EPERM"},
		{name: "clock_settime(bad clock)", run: sysCall(unix.SYS_CLOCK_SETTIME, 999, 0), want: "EPERM"},
		{name: "swapoff(NULL)", run: sysCall(unix.SYS_SWAPOFF, 0), want: "EPERM"},
		{name: "syslog(SIZE_BUFFER)", run: sysCall(unix.SYS_SYSLOG, 10, 0, 0), want: "EPERM"},
		{name: "quotactl(0)", run: sysCall(unix.SYS_QUOTACTL, 0, 0, 0, 0), want: "EPERM"},
		{name: "open_by_handle_at(-1)", run: sysFd(unix.SYS_OPEN_BY_HANDLE_AT, ^uintptr(0), 0, 0), want: "EPERM"},
		{name: "process_madvise(-1)", run: sysCall(unix.SYS_PROCESS_MADVISE, ^uintptr(0), 0, 0, 0, 0), want: "EPERM", control: true},
		{name: "landlock_create_ruleset(unlisted)", run: sysFd(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 0xdead), want: "EPERM", control: true},
		{name: "lsm_list_modules", run: sysCall(unix.SYS_LSM_LIST_MODULES, 0, 0, 0), wantFn: boundaryWant(unix.SYS_LSM_LIST_MODULES)},
		{name: "statmount", run: sysCall(unix.SYS_STATMOUNT, 0, 0, 0, 0), wantFn: boundaryWant(unix.SYS_STATMOUNT)},
		{name: "syscall 1000", run: sysCall(1000), want: "ENOSYS"},
		{name: "boundary+1", run: func() (uintptr, unix.Errno) { return sys(uintptr(helperBoundary() + 1)) }, want: "ENOSYS"},

		// Sockets: families.
		{name: "socket(AF_UNIX)", run: sysFd(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0), want: resOK},
		{name: "socket(AF_INET)", run: sysFd(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0), want: resOK},
		{name: "socket(AF_INET6)", run: sysFd(unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM, 0), want: resNotPerm},
		{name: "socket(AF_INET|1<<32)", run: sysFd(unix.SYS_SOCKET, unix.AF_INET|1<<32, unix.SOCK_STREAM, 0), want: "EPERM", control: true},
		{name: "socket(AF_NETLINK)", run: sysFd(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE), want: "EPERM", control: true},
		{name: "socket(AF_PACKET)", run: sysFd(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW, 0), want: "EPERM"},
		{name: "socket(AF_VSOCK)", run: sysFd(unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM, 0), want: "EPERM"},
		{name: "socket(AF_ALG)", run: sysFd(unix.SYS_SOCKET, unix.AF_ALG, unix.SOCK_SEQPACKET, 0), want: "EPERM"},
		{name: "socketpair(AF_UNIX)", run: func() (uintptr, unix.Errno) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				return 0, err.(unix.Errno)
			}
			unix.Close(fds[0])
			unix.Close(fds[1])
			return 0, 0
		}, want: resOK},
		{name: "socketpair(AF_INET)", run: func() (uintptr, unix.Errno) {
			var fds [2]int32
			r, e := sys(unix.SYS_SOCKETPAIR, unix.AF_INET, unix.SOCK_STREAM, 0, uintptr(unsafe.Pointer(&fds)))
			runtime.KeepAlive(&fds)
			return r, e
		}, want: "EPERM", control: true},

		// Sockets: network calls follow Options.Network.
		{name: "connect(AF_INET 127.0.0.1:1)", run: connectLoopback, want: "EPERM", wantNet: "ECONNREFUSED", control: true},
		{name: "sendto(AF_UNIX socketpair)", run: sendOnSocketpair, want: resOK},
		{name: "recvfrom(AF_UNIX socketpair, DONTWAIT)", run: recvOnSocketpair, want: "EAGAIN"},
		{name: "sendto(UDP, 127.0.0.1:9)", run: sendtoUDPLoopback, want: "EPERM", wantNet: resOK, control: true},
		{name: "sendmsg(AF_UNIX socketpair)", run: sendmsgOnSocketpair, want: "EPERM", wantNet: resOK, control: true},
		{name: "listen(-1)", run: sysCall(unix.SYS_LISTEN, ^uintptr(0), 1), want: "EPERM", wantNet: "EBADF", control: true},

		// ioctl: full 64-bit comparison of the request.
		{name: "ioctl(TIOCSTI)", run: ioctlOnPipe(unix.TIOCSTI), want: "EPERM", control: true},
		{name: "ioctl(TIOCSTI|1<<32)", run: ioctlOnPipe(unix.TIOCSTI | 1<<32), want: "EPERM", control: true},
		{name: "ioctl(TIOCLINUX)", run: ioctlOnPipe(unix.TIOCLINUX), want: "EPERM", control: true},
		{name: "ioctl(TIOCSWINSZ)", run: ioctlOnPipe(unix.TIOCSWINSZ), want: "EPERM", control: true},
		{name: "ioctl(FIONREAD)", run: ioctlOnPipe(ioctlFIONREAD), want: resOK},
		{name: "ioctl(FIONREAD|1<<32)", run: ioctlOnPipe(ioctlFIONREAD | 1<<32), want: "EPERM", control: true},
		{name: "ioctl(FIONBIO)", run: ioctlOnPipe(ioctlFIONBIO), want: resOK},
		{name: "ioctl(FIOCLEX)", run: ioctlOnPipe(ioctlFIOCLEX), want: resOK},
		{name: "ioctl(TCGETS)", run: ioctlOnPipe(unix.TCGETS), want: "ENOTTY"},
		{name: "ioctl(TIOCGWINSZ)", run: ioctlOnPipe(unix.TIOCGWINSZ), want: "ENOTTY"},

		// prctl.
		{name: "prctl(PR_SET_SECCOMP)", run: sysCall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, 0xff), want: "EPERM", control: true},
		{name: "prctl(PR_SET_DUMPABLE)", run: sysCall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 5), want: "EPERM", control: true},
		{name: "prctl(PR_SET_NO_NEW_PRIVS)", run: sysCall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 5), want: "EPERM", control: true},
		{name: "prctl(PR_CAP_AMBIENT)", run: sysCall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, 0xff), want: "EPERM", control: true},
		{name: "prctl(PR_SET_NAME)", run: func() (uintptr, unix.Errno) {
			return withString("probe", func(p uintptr) (uintptr, unix.Errno) { return sys(unix.SYS_PRCTL, unix.PR_SET_NAME, p) })
		}, want: resOK},
		{name: "prctl(PR_GET_DUMPABLE)", run: sysCall(unix.SYS_PRCTL, unix.PR_GET_DUMPABLE), want: resOK},

		// What deno needs.
		{name: "mprotect(RWX)", run: mprotectExec, want: resOK},
		{name: "prlimit64(0, NOFILE)", run: prlimitNofile(func() int { return 0 }), want: resOK},
		{name: "prlimit64(getpid(), NOFILE)", run: prlimitNofile(unix.Getpid), want: "EPERM", control: true},
		{name: "kill(self, 0)", run: func() (uintptr, unix.Errno) { return sys(unix.SYS_KILL, uintptr(unix.Getpid()), 0) }, want: resOK},
		{name: "getrandom", run: func() (uintptr, unix.Errno) {
			var b [8]byte
			r, e := sys(unix.SYS_GETRANDOM, uintptr(unsafe.Pointer(&b[0])), 8, 0)
			runtime.KeepAlive(&b)
			return r, e
		}, want: resOK},
	}
}

// helperBoundary is the ENOSYS boundary of the policy the helper loaded.
func helperBoundary() int {
	cfg, err := NewCache().Policy(Options{Network: os.Getenv(envNetwork) == "1"})
	if err != nil {
		return 1 << 20 // makes the probe fail loudly
	}
	b, err := enosysBoundary(cfg)
	if err != nil {
		return 1 << 20
	}
	return b
}
