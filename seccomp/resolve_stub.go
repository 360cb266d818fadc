//go:build !cgo || !seccomp

package seccomp

// syscallNumber cannot resolve anything without libseccomp.
func syscallNumber(string, string) (int, bool, error) { return 0, false, ErrNotSupported }

// libseccompAvailable reports whether libcontainer can load a policy in
// this build.
const libseccompAvailable = false
