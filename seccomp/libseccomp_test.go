//go:build cgo && seccomp

package seccomp

import libseccomp "github.com/seccomp/libseccomp-golang"

// syscallName is the name libseccomp gives syscall nr on scmpArch.
func syscallName(nr int, scmpArch string) (string, error) {
	a, err := libseccomp.GetArchFromString(scmpArch)
	if err != nil {
		return "", err
	}
	return libseccomp.ScmpSyscall(nr).GetNameByArch(a)
}
