package seccomp

import "errors"

var (
	// ErrUnsupportedArch is returned for a CPU architecture the policy has no
	// table for (only amd64 and arm64 are supported).
	ErrUnsupportedArch = errors.New("seccomp: unsupported architecture")

	// ErrNotSupported is returned by Cache.Policy when the binary was built
	// without cgo or without the "seccomp" build tag: libcontainer could not
	// load the policy, so refusing early gives a clearer error.
	ErrNotSupported = errors.New("seccomp: built without cgo and the \"seccomp\" build tag")

	// ErrUnknownSyscall is returned when the linked libseccomp does not know
	// a syscall the policy requires (libseccomp older than 2.5). libcontainer
	// would silently drop such a rule and the sandbox would fail in odd ways.
	ErrUnknownSyscall = errors.New("seccomp: syscall unknown to libseccomp")
)
