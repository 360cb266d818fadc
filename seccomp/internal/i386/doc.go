// Package i386 issues a system call through the i386 compatibility entry
// (int 0x80) from a 64-bit process. It exists only so that the seccomp tests
// can check that foreign-ABI syscalls are killed; nothing else should use it.
package i386
