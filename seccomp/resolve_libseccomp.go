//go:build cgo && seccomp

package seccomp

import (
	"fmt"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// syscallNumber resolves name for the architecture whose libseccomp name is
// scmpArch, the same way libcontainer does when it compiles the filter.
// ok is false when the linked libseccomp does not know the syscall on that
// architecture.
func syscallNumber(name, scmpArch string) (nr int, ok bool, err error) {
	a, err := libseccomp.GetArchFromString(scmpArch)
	if err != nil {
		return 0, false, fmt.Errorf("seccomp: libseccomp arch %q: %w", scmpArch, err)
	}
	n, err := libseccomp.GetSyscallFromNameByArch(name, a)
	if err != nil || n < 0 {
		// Negative numbers are libseccomp's pseudo-syscalls for names that
		// exist on other architectures only.
		return 0, false, nil
	}
	return int(n), true, nil
}

// libseccompAvailable reports whether libcontainer can load a policy in
// this build.
const libseccompAvailable = true
