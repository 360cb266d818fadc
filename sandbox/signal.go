package sandbox

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// unixSignalName returns the conventional name ("SIGKILL") of s, or "".
func unixSignalName(s syscall.Signal) string {
	return unix.SignalName(s)
}
