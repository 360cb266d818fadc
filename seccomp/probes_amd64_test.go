//go:build cgo && seccomp

package seccomp

import (
	"runtime"
	"unsafe"

	"github.com/conductor-sandbox/conductor/seccomp/internal/i386"
	"golang.org/x/sys/unix"
)

// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl).
const i386Getpid = 20

// archProbes are the x86_64-only probes.
func archProbes() []probe {
	return []probe{
		// Foreign ABIs: the arch guard kills the whole process.
		{name: "x32 getpid", run: sysCall(unix.SYS_GETPID | archAMD64.uintptrX32()), want: resKilled},
		{name: "i386 int 0x80 getpid", run: func() (uintptr, unix.Errno) {
			r := i386.Syscall(i386Getpid, 0, 0, 0)
			if int32(r) < 0 {
				return 0, unix.Errno(-int32(r))
			}
			return r, 0
		}, want: resKilled},

		// x86-only calls.
		{name: "fork()", run: forkSyscallAndReap, want: resOK},
		{name: "modify_ldt(read)", run: sysCall(unix.SYS_MODIFY_LDT, 0, 0, 0), want: "EPERM", control: true},
		{name: "iopl(3)", run: sysCall(unix.SYS_IOPL, 3), want: "EPERM"},
		{name: "arch_prctl(ARCH_GET_FS)", run: func() (uintptr, unix.Errno) {
			var fs uint64
			r, e := sys(unix.SYS_ARCH_PRCTL, 0x1003, uintptr(unsafe.Pointer(&fs)))
			runtime.KeepAlive(&fs)
			return r, e
		}, want: resOK},
		{name: "open(/dev/null)", run: func() (uintptr, unix.Errno) {
			return withString("/dev/null", func(p uintptr) (uintptr, unix.Errno) {
				r, e := sys(unix.SYS_OPEN, p, unix.O_RDONLY|unix.O_CLOEXEC)
				if e == 0 {
					unix.Close(int(r))
				}
				return r, e
			})
		}, want: resOK},
	}
}

func (a arch) uintptrX32() uintptr { return uintptr(a.x32Bit) }

// forkSyscallAndReap uses the legacy fork(2) syscall; the child exits at
// once with status 42 and the parent checks that status.
func forkSyscallAndReap() (uintptr, unix.Errno) {
	pid, e := rawForkSyscall()
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

//go:nosplit
//go:norace
func rawForkSyscall() (uintptr, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_FORK, 0, 0, 0)
	if e == 0 && r == 0 {
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 42, 0, 0)
	}
	return r, e
}
