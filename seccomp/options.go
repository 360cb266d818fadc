package seccomp

// Options selects the policy variant. The zero value is the strictest
// policy (no network syscalls).
type Options struct {
	// Network is set when the admin granted the run network access. It
	// allows connect, bind, listen, accept, accept4, sendto with a
	// destination address, sendmsg, sendmmsg, recvmsg, recvmmsg,
	// getsockopt, setsockopt, shutdown, getsockname and getpeername.
	// Both variants allow socket(AF_UNIX/AF_INET/AF_INET6),
	// socketpair(AF_UNIX), recvfrom, and sendto without an address.
	Network bool
}
