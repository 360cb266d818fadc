package egress

// Namespace files and in-namespace sockets, shared by the two ways the
// door is wired: setns as root (setupNetNS) and the rootless helper.

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// listenBacklog is the accept queue of the door's in-namespace listener.
const listenBacklog = 128

// listenLoopback creates a listening TCP socket on 127.0.0.1:port in the
// calling thread's network namespace, with raw system calls so nothing can
// move the work to another thread.
func listenLoopback(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("egress: socket: %w", err)
	}
	sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("egress: bind 127.0.0.1:%d in the sandbox network namespace: %w", port, err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("egress: listen: %w", err)
	}
	return fd, nil
}

// fileListener turns a listening socket fd into a *net.TCPListener (and
// closes fd: the listener holds its own duplicate).
func fileListener(fd int) (*net.TCPListener, error) {
	f := os.NewFile(uintptr(fd), "egress-listener")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("egress: listener from fd: %w", err)
	}
	tl, ok := l.(*net.TCPListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("egress: listener is %T, not TCP", l)
	}
	return tl, nil
}

// ownerUserNS opens the user namespace owning a namespace (NS_GET_USERNS).
func ownerUserNS(ns *os.File) (*os.File, error) {
	fd, err := unix.IoctlRetInt(int(ns.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return nil, fmt.Errorf("NS_GET_USERNS: %w", err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "userns"), nil
}

// sameNS reports whether f and the namespace file at path are the same
// namespace (same nsfs inode).
func sameNS(f *os.File, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false, err
	}
	if err := unix.Stat(path, &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}
