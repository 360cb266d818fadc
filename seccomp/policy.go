package seccomp

import (
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"
	libctrseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// build compiles the policy table for a into a libcontainer seccomp config.
// It checks every required allowed syscall against the linked libseccomp so
// a name libcontainer would silently drop fails here instead.
func build(o Options, a arch) (*configs.Seccomp, error) {
	if !libseccompAvailable {
		return nil, ErrNotSupported
	}
	scmpArch, err := libctrseccomp.ConvertStringToArch(a.ociName)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	cfg := &configs.Seccomp{
		DefaultAction:   configs.Errno,
		DefaultErrnoRet: errnoPtr(unix.EPERM),
		Architectures:   []string{scmpArch},
	}
	for _, r := range a.rules() {
		if !r.applies(o) {
			continue
		}
		_, known, err := syscallNumber(r.name, scmpArch)
		if err != nil {
			return nil, err
		}
		if !known && r.verdict == allow && !r.optional {
			return nil, fmt.Errorf("%w: %s on %s", ErrUnknownSyscall, r.name, a.goarch)
		}
		cfg.Syscalls = append(cfg.Syscalls, r.syscall())
	}
	return cfg, nil
}

// syscall converts the rule into libcontainer's form.
func (r rule) syscall() *configs.Syscall {
	s := &configs.Syscall{Name: r.name}
	switch r.verdict {
	case allow:
		s.Action = configs.Allow
	case enosys:
		s.Action = configs.Errno
		s.ErrnoRet = errnoPtr(unix.ENOSYS)
	case deny:
		s.Action = configs.Errno
		s.ErrnoRet = errnoPtr(unix.EPERM)
	case ignore:
		s.Action = configs.Errno
		s.ErrnoRet = errnoPtr(0)
	}
	if c := r.when; c != nil {
		arg := &configs.Arg{Index: c.index, Value: c.value, Op: configs.EqualTo}
		if c.mask != 0 {
			// libcontainer passes Value as libseccomp's mask and ValueTwo
			// as the datum: (arg & Value) == ValueTwo.
			arg.Op = configs.MaskEqualTo
			arg.Value, arg.ValueTwo = c.mask, c.value
		}
		s.Args = []*configs.Arg{arg}
	}
	return s
}

func errnoPtr(e unix.Errno) *uint {
	v := uint(e)
	return &v
}
