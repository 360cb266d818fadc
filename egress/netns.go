package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenBacklog is the accept queue of the in-namespace listener.
const listenBacklog = 128

// listenIn creates a TCP listener on 127.0.0.1:port inside the network
// namespace at nsPath, and reports how ("setns" or "helper").
//
// First it tries setns(2) on a locked OS thread of this process. That needs
// CAP_SYS_ADMIN over the namespace's owning user namespace AND in this
// process's own user namespace: root has both. A rootless server has the
// first (it created the sandbox's user namespace) but not the second, and
// the kernel refuses with EPERM. It must join the sandbox's user namespace
// first, which a multi-threaded process (any Go program) cannot do, so the
// fallback re-executes this binary as a helper that joins the user and
// network namespaces in a C constructor, before the Go runtime starts, and
// passes the listening socket back over a socketpair (see helper_cgo.go).
func listenIn(ctx context.Context, nsPath string, port int) (*net.TCPListener, string, error) {
	nsFile, err := os.OpenFile(nsPath, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("egress: open network namespace: %w", err)
	}
	defer nsFile.Close()
	t, err := unix.IoctlRetInt(int(nsFile.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return nil, "", fmt.Errorf("egress: %s: not a namespace file: %w", nsPath, err)
	}
	if t != unix.CLONE_NEWNET {
		return nil, "", fmt.Errorf("egress: %s is not a network namespace", nsPath)
	}

	ln, err := listenSetns(nsFile, port)
	if err == nil {
		return ln, "setns", nil
	}
	if !errors.Is(err, unix.EPERM) {
		return nil, "", err
	}
	// Not privileged in our own user namespace. If the target is owned by a
	// user namespace we may join (one we created), a helper can do it.
	owner, oerr := ownerUserNS(nsFile)
	if oerr != nil {
		return nil, "", fmt.Errorf("%w (and the owning user namespace is unavailable: %v)", err, oerr)
	}
	defer owner.Close()
	if same, _ := sameNS(owner, "/proc/self/ns/user"); same {
		return nil, "", fmt.Errorf("%w: the network namespace belongs to this process's own user namespace, where it lacks CAP_SYS_ADMIN", err)
	}
	ln, herr := listenViaHelper(ctx, owner, nsFile, port)
	if herr != nil {
		return nil, "", fmt.Errorf("%w; joining its user namespace through a helper failed too: %w", err, herr)
	}
	return ln, "helper", nil
}

// listenSetns does the work on a dedicated, locked OS thread: remember the
// thread's network namespace, enter the target, create the socket, return.
// If returning fails the thread stays locked, so the runtime ends it with
// the goroutine instead of reusing a thread in the wrong namespace.
func listenSetns(target *os.File, port int) (*net.TCPListener, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("egress: open own network namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("egress: setns into the sandbox network namespace: %w", err)}
			return
		}
		fd, lerr := listenLoopback(port)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Deliberately no UnlockOSThread: this thread must die.
			if fd >= 0 {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("egress: setns back to the host network namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{fd, lerr}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return fileListener(r.fd)
}

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
