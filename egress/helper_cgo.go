//go:build cgo

package egress

/*
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

// The rootless listener helper. It runs when this binary is executed with
// _CONDUCTOR_EGRESS_LISTEN=<port> in its environment, before the Go runtime
// starts (a Go process is multi-threaded from its first instruction, and
// setns(CLONE_NEWUSER) refuses multi-threaded callers). Inherited fds:
//   3: a SOCK_SEQPACKET socket back to the server
//   4: the user namespace owning the target network namespace
//   5: the target network namespace
// It joins 4 then 5, listens on 127.0.0.1:<port>, sends the socket back with
// SCM_RIGHTS and exits without ever starting Go. Every other execution of the
// binary returns from this function at the getenv.

static void egress_helper_fail(const char *step, int err) {
	char msg[200];
	int n = snprintf(msg, sizeof msg, "error: %s: %s", step, strerror(err));
	if (n > 0) {
		(void)send(3, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, MSG_NOSIGNAL);
	}
	_exit(1);
}

__attribute__((constructor)) static void conductor_egress_listen_helper(void) {
	// The door helper: join the sandbox's user and network namespaces
	// while the process is still single-threaded, then let the Go runtime
	// start inside them (MaybeDoorHelper does the rest in Go). Same fds.
	if (getenv("_CONDUCTOR_EGRESS_DOOR") != NULL) {
		if (setns(4, CLONE_NEWUSER) != 0) {
			egress_helper_fail("setns user namespace", errno);
		}
		if (setns(5, CLONE_NEWNET) != 0) {
			egress_helper_fail("setns network namespace", errno);
		}
		return;
	}
	const char *v = getenv("_CONDUCTOR_EGRESS_LISTEN");
	if (v == NULL) {
		return;
	}
	char *end = NULL;
	errno = 0;
	long port = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || port < 0 || port > 65535) {
		egress_helper_fail("bad port", EINVAL);
	}
	if (setns(4, CLONE_NEWUSER) != 0) {
		egress_helper_fail("setns user namespace", errno);
	}
	if (setns(5, CLONE_NEWNET) != 0) {
		egress_helper_fail("setns network namespace", errno);
	}
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		egress_helper_fail("socket", errno);
	}
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
		egress_helper_fail("bind 127.0.0.1 in the sandbox network namespace", errno);
	}
	if (listen(s, 128) != 0) {
		egress_helper_fail("listen", errno);
	}
	char ok[2] = {'o', 'k'};
	struct iovec iov = {.iov_base = ok, .iov_len = sizeof ok};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.buf;
	m.msg_controllen = sizeof u.buf;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &s, sizeof(int));
	if (sendmsg(3, &m, MSG_NOSIGNAL) < 0) {
		_exit(1);
	}
	_exit(0);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// haveHelper: this build has the C constructor the helpers need.
const haveHelper = true

// helperEnv names the variable that turns this binary into the helper.
const helperEnv = "_CONDUCTOR_EGRESS_LISTEN"

// helperTimeout bounds one helper run (fork+exec+setns, normally ~2 ms).
const helperTimeout = 10 * time.Second

// listenViaHelper runs this binary as the listener helper (see the C
// constructor above) and receives the listening socket it created.
func listenViaHelper(ctx context.Context, userns, netns *os.File, port int) (*net.TCPListener, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "egress-helper-parent")
	child := os.NewFile(uintptr(fds[1]), "egress-helper-child")
	defer parent.Close()

	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"conductor-egress-listen-helper"}
	cmd.Env = []string{helperEnv + "=" + strconv.Itoa(port)}
	cmd.ExtraFiles = []*os.File{child, userns, netns}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		child.Close()
		return nil, fmt.Errorf("start helper: %w", err)
	}
	child.Close()

	conn, err := net.FileConn(parent)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("helper socket: %w", err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetReadDeadline(dl)
	}
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, rerr := uc.ReadMsgUnix(buf, oob)
	werr := cmd.Wait()

	var fd = -1
	if rerr == nil && oobn > 0 {
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if rights, err := unix.ParseUnixRights(&m); err == nil {
					for _, r := range rights {
						if fd < 0 {
							fd = r
						} else {
							unix.Close(r)
						}
					}
				}
			}
		}
	}
	msg := string(buf[:n])
	switch {
	case fd >= 0 && msg == "ok":
		return fileListener(fd)
	case fd >= 0:
		unix.Close(fd)
	}
	if strings.HasPrefix(msg, "error: ") {
		return nil, errors.New(strings.TrimPrefix(msg, "error: "))
	}
	detail := strings.TrimSpace(stderr.String())
	if rerr != nil {
		return nil, fmt.Errorf("no answer from helper (%v; exit: %v) %s", rerr, werr, detail)
	}
	return nil, fmt.Errorf("helper answered %q (exit: %v) %s", msg, werr, detail)
}

type limitedWriter struct {
	w *strings.Builder
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if k := min(len(p), l.n); k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
