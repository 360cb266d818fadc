package sandbox

import (
	"fmt"
	"os"
	"runtime"

	_ "github.com/opencontainers/cgroups/devices" // device cgroup rules
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // namespace setup, runs before the Go runtime

	"github.com/conductor-sandbox/conductor/seccomp"
)

// MaybeInit turns this process into a container's init when libcontainer has
// re-executed it as "<argv0> init"; otherwise it returns at once. Call it
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
	if len(os.Args) < 2 || os.Args[1] != "init" {
		runtime.LockOSThread()
		return
	}
	if err := seccomp.LoadArchGuard(); err != nil {
		fmt.Fprintln(os.Stderr, "conductor init: arch guard:", err)
		os.Exit(255)
	}
	libcontainer.Init() // never returns
}
