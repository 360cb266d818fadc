//go:build cgo

package egress

/*
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// The rootless door helper, first half. It runs when this binary is
// executed with _CONDUCTOR_EGRESS_DOOR in its environment, before the Go
// runtime starts (a Go process is multi-threaded from its first
// instruction, and setns(CLONE_NEWUSER) refuses multi-threaded callers).
// Inherited fds:
//   3: a SOCK_SEQPACKET socket back to the server
//   4: the user namespace owning the target network namespace
//   5: the target network namespace
// It joins 4 then 5 and returns: the Go runtime then starts inside them,
// with the capabilities they grant, and MaybeDoorHelper does the rest. On
// failure it reports on 3 and exits without ever starting Go. Every other
// execution of the binary returns from this function at the getenv.

static void egress_helper_fail(const char *step, int err) {
	char msg[200];
	int n = snprintf(msg, sizeof msg, "error: %s: %s", step, strerror(err));
	if (n > 0) {
		(void)send(3, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, MSG_NOSIGNAL);
	}
	_exit(1);
}

__attribute__((constructor)) static void conductor_egress_door_helper(void) {
	if (getenv("_CONDUCTOR_EGRESS_DOOR") == NULL) {
		return;
	}
	if (setns(4, CLONE_NEWUSER) != 0) {
		egress_helper_fail("setns user namespace", errno);
	}
	if (setns(5, CLONE_NEWNET) != 0) {
		egress_helper_fail("setns network namespace", errno);
	}
}
*/
import "C"

// haveHelper: this build has the C constructor the door helper needs.
const haveHelper = true
