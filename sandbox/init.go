package sandbox

import (
	"fmt"
	"os"
	"runtime"

	_ "github.com/opencontainers/cgroups/devices" // device cgroup rules
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // namespace setup, runs before the Go runtime

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/seccomp"
)

// MaybeInit turns this process into a container's init when libcontainer has
// re-executed it as "<argv0> init", or into the rootless network door helper
// (egress.MaybeDoorHelper); otherwise it returns at once. Call it
// first thing, from an init func of package main (and of test binaries that
// start sandboxes). The arch guard goes in before libcontainer sets anything
// up, so a non-native-ABI syscall kills the whole process whatever the main
// policy says.
//
// In every other process MaybeInit pins the main goroutine to the main thread
// for good. libcontainer runs helper goroutines that lock their thread, join a
// container's mount namespace and exit so the thread dies; when such a
// goroutine lands on the main thread, Go cannot end that thread and parks it,
// still inside the container's namespace, and /proc/self (which follows the
// main thread) then shows the container's mounts to the whole server. With
// the main thread taken, no other goroutine ever runs on it.
func MaybeInit() {
	egress.MaybeDoorHelper() // the rootless door helper never returns
	if len(os.Args) < 2 || os.Args[1] != "init" {
		runtime.LockOSThread()
		return
	}
	// libcontainer asks for a parent-death signal only on the first "init"
	// process; nsexec's forks clear it, so the container's real init (this
	// process, and deno after execve) would outlive a killed server. Set it
	// here: libcontainer reads it back and restores it after its setuid. A
	// server that died before this point is noticed anyway: the init's next
	// read of its sync socket returns EOF and it exits.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "conductor init: parent-death signal:", err)
		os.Exit(255)
	}
	if err := seccomp.LoadArchGuard(); err != nil {
		fmt.Fprintln(os.Stderr, "conductor init: arch guard:", err)
		os.Exit(255)
	}
	libcontainer.Init() // never returns
}
