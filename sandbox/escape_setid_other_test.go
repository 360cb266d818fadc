//go:build !amd64

package sandbox

// legacySetidSyscalls: the generic syscall table has no pre-*at forms.
var legacySetidSyscalls map[string]uintptr
