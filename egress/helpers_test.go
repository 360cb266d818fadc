package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holderEnv makes the test binary a "namespace holder": a process born in
// a new user+network namespace that brings lo up, says "ready" and then
// serves client commands on stdin (so even an unprivileged test has a client
// inside the namespace).
const holderEnv = "EGRESS_TEST_NETNS_HOLDER"

func TestMain(m *testing.M) {
	MaybeDoorHelper()
	if os.Getenv(holderEnv) == "1" {
		os.Exit(runHolder())
	}
	os.Exit(m.Run())
}

func runHolder() int {
	if err := loopbackUp(); err != nil {
		fmt.Println("error bringing lo up:", err)
		return 1
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "echo": // echo <addr> <payload>: one round trip
			fmt.Println(holderEcho(f[1], f[2]))
		case len(f) == 2 && f[0] == "lookup": // lookup <name>, at the door's responder
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "udp", "127.0.0.53:53")
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			addrs, err := r.LookupHost(ctx, f[1])
			cancel()
			if err != nil {
				fmt.Println("error", oneLine(err))
				continue
			}
			fmt.Println("ok", strings.Join(addrs, ","))
		default:
			fmt.Println("error unknown command")
		}
	}
	return 0
}

// holderEcho connects to addr, sends payload and reads as much back.
func holderEcho(addr, payload string) string {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "error " + oneLine(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, payload); err != nil {
		return "error " + oneLine(err)
	}
	buf := make([]byte, len(payload))
	if _, err := io.ReadFull(c, buf); err != nil {
		return "error " + oneLine(err)
	}
	return "echo " + string(buf)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// loopbackUp sets IFF_UP on lo with an ioctl (no iproute2 needed).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// testNS is a network namespace this test created: a holder child in new
// user and network namespaces (owned by the test's euid, like a sandbox's
// are owned by the server's).
type testNS struct {
	pid  int
	path string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	mu   sync.Mutex
}

var errNoUserNS = errors.New("cannot create a user namespace")

func startNetNS() (*testNS, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = []string{holderEnv + "=1", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("%w: %v", errNoUserNS, err)
		}
		return nil, err
	}
	ns := &testNS{pid: cmd.Process.Pid, cmd: cmd, in: in, out: bufio.NewReader(outPipe)}
	ns.path = fmt.Sprintf("/proc/%d/ns/net", ns.pid)
	line, err := ns.readLine(10 * time.Second)
	if err != nil || line != "ready" {
		ns.close()
		return nil, fmt.Errorf("namespace holder did not start: %q %v; stderr: %s", line, err, stderr.String())
	}
	return ns, nil
}

func newNetNS(t testing.TB) *testNS {
	t.Helper()
	ns, err := startNetNS()
	if err != nil {
		t.Fatalf("creating the test network namespace: %v", err)
	}
	t.Cleanup(ns.close)
	return ns
}

func (ns *testNS) readLine(timeout time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := ns.out.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(timeout):
		return "", errors.New("timeout waiting for the namespace holder")
	}
}

// command runs one holder command (the client inside the namespace).
func (ns *testNS) command(t testing.TB, args ...string) string {
	t.Helper()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if _, err := fmt.Fprintln(ns.in, strings.Join(args, " ")); err != nil {
		t.Fatalf("holder command: %v", err)
	}
	line, err := ns.readLine(15 * time.Second)
	if err != nil {
		t.Fatalf("holder command %v: %v", args, err)
	}
	return line
}

func (ns *testNS) close() {
	ns.in.Close()
	_ = ns.cmd.Process.Kill() // our own child, by pid
	_ = ns.cmd.Wait()
}

// inNS runs fn on an OS thread inside the namespace (root only). Sockets
// created by fn stay in the namespace; processes started by fn are born
// in it. The thread is discarded if it cannot return.
func (ns *testNS) inNS(fn func()) error {
	target, err := os.Open(ns.path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	return <-errc
}

// dial connects from inside the namespace.
func (ns *testNS) dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := ns.tryDial(addr)
	if err != nil {
		t.Fatalf("dial %s in the test namespace: %v", addr, err)
	}
	return c
}

func (ns *testNS) tryDial(addr string) (net.Conn, error) {
	var c net.Conn
	var derr error
	if err := ns.inNS(func() { c, derr = net.DialTimeout("tcp", addr, 3*time.Second) }); err != nil {
		return nil, err
	}
	return c, derr
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root: the test's client enters the test network namespace with setns(2), which an " +
		"unprivileged process may not do without joining its user namespace (TestRootless covers the unprivileged path)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// echoServer is a raw TCP echo on the host loopback.
type echoServer struct {
	addr     string
	port     int
	accepted atomic.Int32
	conns    sync.WaitGroup
}

func newEcho(t testing.TB) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			e.conns.Add(1)
			go func() {
				defer e.conns.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
	})
	return e
}

// countingListener returns a host loopback port with a listener that counts (and
// closes) connections, so "nothing dialed it" is observable.
func countingListener(t testing.TB) (int, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port, &n
}

// hooks record resolver and dialer calls.
type hooks struct {
	mu       sync.Mutex
	resolved []string
	dialed   []string
	names    map[string][]netip.Addr // fake DNS
	failDial bool                    // record, never connect
}

func (h *hooks) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resolved = append(h.resolved, host)
	if a, ok := h.names[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (h *hooks) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	h.dialed = append(h.dialed, addr)
	fail := h.failDial
	h.mu.Unlock()
	if fail {
		return nil, errors.New("test dialer refuses to connect")
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		// Machine rule: tests talk to loopback only.
		return nil, fmt.Errorf("test dialer: %q is not a loopback ip:port", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (h *hooks) calls() (resolved, dialed []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.resolved...), append([]string(nil), h.dialed...)
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
