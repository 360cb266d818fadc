package seccomp

// Options selects the policy variant. The zero value is the strictest
// policy (no network syscalls).
type Options struct {
	// Network is set when the admin granted the run network access. It
	// allows connect, bind, listen, accept, accept4, sendto, sendmsg,
	// sendmmsg, recvfrom, recvmsg, recvmmsg, getsockopt, setsockopt,
	// shutdown, getsockname and getpeername. socket(AF_UNIX/AF_INET/AF_INET6)
	// and socketpair(AF_UNIX) are allowed in both variants.
	Network bool
}
