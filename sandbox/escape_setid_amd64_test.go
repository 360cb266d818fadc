package sandbox

import "golang.org/x/sys/unix"

// legacySetidSyscalls are the pre-*at forms of the calls TestEscapeSetID
// probes; only x86_64 has them.
var legacySetidSyscalls = map[string]uintptr{
	"chmod": unix.SYS_CHMOD, "open": unix.SYS_OPEN, "creat": unix.SYS_CREAT,
	"mknod": unix.SYS_MKNOD, "mkdir": unix.SYS_MKDIR,
}
