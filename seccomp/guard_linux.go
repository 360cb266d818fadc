package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LoadArchGuard installs, in the calling process, a small seccomp filter
// that kills the whole process (SECCOMP_RET_KILL_PROCESS) on any syscall
// made through a foreign ABI: an audit arch other than the native one
// (i386 int 0x80 on x86_64, AArch32 on arm64), or an x32 syscall number
// (nr & 0x40000000) on x86_64. Everything else is allowed; the real policy
// is the one libcontainer loads later.
//
// Why: libcontainer compiles its filter with libseccomp's default bad-arch
// action, KILL_THREAD, and offers no way to change it. In a multi-threaded
// runtime like deno a killed thread leaves the process hung until the wall
// clock timeout. When filters are stacked the kernel applies the strictest
// action, so this guard's KILL_PROCESS wins.
//
// Call it in the container init process (`conductor init`) before
// libcontainer's Init. The filter is installed with
// SECCOMP_FILTER_FLAG_TSYNC, so it covers every thread of the Go runtime
// regardless of which one later calls execve, and it is inherited across
// execve. PR_SET_NO_NEW_PRIVS is set only if the kernel requires it (the
// caller lacks CAP_SYS_ADMIN in its user namespace). The call is cheap
// (a few microseconds: the program has six instructions).
func LoadArchGuard() error {
	a, err := archFor(runtime.GOARCH)
	if err != nil {
		return err
	}
	prog, err := assembleGuard(a)
	if err != nil {
		return err
	}
	// no_new_privs is per thread: set it, if needed, on the thread that
	// installs the filter. TSYNC then propagates it with the filter.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	err = installFilter(prog, unix.SECCOMP_FILTER_FLAG_TSYNC)
	if errors.Is(err, unix.EACCES) {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("seccomp: arch guard: %w", os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err))
		}
		err = installFilter(prog, unix.SECCOMP_FILTER_FLAG_TSYNC)
	}
	if err != nil {
		return fmt.Errorf("seccomp: arch guard: %w", err)
	}
	return nil
}

// installFilter loads prog with seccomp(SECCOMP_SET_MODE_FILTER, flags).
func installFilter(prog []unix.SockFilter, flags uintptr) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return os.NewSyscallError("seccomp(SECCOMP_SET_MODE_FILTER)", errno)
	}
	if r != 0 {
		// With TSYNC a positive return is the id of a thread that could
		// not be synchronised (it already runs a different filter).
		return fmt.Errorf("%w: thread %d has a diverging seccomp filter", errTSync, r)
	}
	return nil
}

var errTSync = errors.New("cannot synchronise threads")
