package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// doorHelperEnv turns this binary into the rootless door helper: its C
// constructor (helper_cgo.go) joins the sandbox's user and network
// namespaces before the Go runtime starts, and MaybeDoorHelper then wires
// the namespace and hands the door's two sockets back.
const doorHelperEnv = "_CONDUCTOR_EGRESS_DOOR"

// helperTimeout bounds one helper run (fork+exec+setns+wiring, normally
// ~10 ms).
const helperTimeout = 10 * time.Second

// MaybeDoorHelper runs the rootless door helper when this process is one,
// and never returns then; otherwise it returns at once. Call it first thing
// in main (sandbox.MaybeInit does) and in test binaries that start doors.
func MaybeDoorHelper() {
	if os.Getenv(doorHelperEnv) == "" {
		return
	}
	os.Exit(runDoorHelper())
}

// runDoorHelper: fd 3 is the SOCK_SEQPACKET socket back to the server.
func runDoorHelper() int {
	back := os.NewFile(3, "door-helper")
	fail := func(err error) int {
		_, _ = unix.Write(int(back.Fd()), []byte("error: "+err.Error()))
		return 1
	}
	s, err := configureHere()
	if err != nil {
		return fail(err)
	}
	tf, err := s.tcp.File()
	if err != nil {
		return fail(err)
	}
	uf, err := s.udp.(*net.UDPConn).File()
	if err != nil {
		return fail(err)
	}
	rights := unix.UnixRights(int(tf.Fd()), int(uf.Fd()))
	if err := unix.Sendmsg(int(back.Fd()), []byte("ok"), rights, nil, 0); err != nil {
		return 1
	}
	return 0
}

// setupViaHelper wires the namespace from a helper process that joined the
// sandbox's user namespace (where a rootless server has the capabilities a
// netns needs) and receives the door's sockets.
func setupViaHelper(ctx context.Context, userns, netns *os.File) (doorSockets, error) {
	if !haveHelper {
		return doorSockets{}, errors.New("the rootless door helper needs a cgo build")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return doorSockets{}, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "door-helper-parent")
	child := os.NewFile(uintptr(fds[1]), "door-helper-child")
	defer parent.Close()

	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"conductor-egress-door-helper"}
	cmd.Env = []string{doorHelperEnv + "=1"}
	cmd.ExtraFiles = []*os.File{child, userns, netns}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		child.Close()
		return doorSockets{}, fmt.Errorf("start door helper: %w", err)
	}
	child.Close()
	conn, err := net.FileConn(parent)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return doorSockets{}, fmt.Errorf("door helper socket: %w", err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetReadDeadline(dl)
	}
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(8))
	n, oobn, _, _, rerr := uc.ReadMsgUnix(buf, oob)
	werr := cmd.Wait()
	var got []int
	if rerr == nil && oobn > 0 {
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if rights, err := unix.ParseUnixRights(&m); err == nil {
					got = append(got, rights...)
				}
			}
		}
	}
	msg := string(buf[:n])
	if msg == "ok" && len(got) == 2 {
		return socketsFromFds(got[0], got[1])
	}
	for _, fd := range got {
		unix.Close(fd)
	}
	if strings.HasPrefix(msg, "error: ") {
		return doorSockets{}, errors.New(strings.TrimPrefix(msg, "error: "))
	}
	return doorSockets{}, fmt.Errorf("door helper answered %q (read: %v; exit: %v) %s", msg, rerr, werr, strings.TrimSpace(stderr.String()))
}

func socketsFromFds(tcpFd, udpFd int) (doorSockets, error) {
	tcp, err := fileListener(tcpFd)
	if err != nil {
		unix.Close(udpFd)
		return doorSockets{}, err
	}
	f := os.NewFile(uintptr(udpFd), "door-dns")
	defer f.Close()
	udp, err := net.FilePacketConn(f)
	if err != nil {
		tcp.Close()
		return doorSockets{}, err
	}
	return doorSockets{tcp: tcp, udp: udp}, nil
}

// limitedWriter keeps the first n bytes written (the helper's stderr).
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
