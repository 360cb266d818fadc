package i386

// Syscall performs the i386 system call nr (an i386 syscall number, not an
// x86_64 one) with up to three arguments via int 0x80 and returns the raw
// result register (a negative errno on failure).
//
//go:noescape
func Syscall(nr, a1, a2, a3 uintptr) (r uintptr)
