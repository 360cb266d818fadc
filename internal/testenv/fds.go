package testenv

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// OpenFDs lists this process's open file descriptors: "N -> target" for
// each fd N, target being what /proc/self/fd/N links to ("pipe:[123]", a
// path). A pipe or socket's target names its inode, so a new one never
// equals an old one even when it gets a reused number.
func OpenFDs(tb testing.TB) map[string]bool {
	tb.Helper()
	const dir = "/proc/self/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		Unavailable(tb, "cannot list open fds: %v", err)
	}
	self := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	out := map[string]bool{}
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || target == self {
			continue // the listing's own fd, closed by now
		}
		out[e.Name()+" -> "+target] = true
	}
	return out
}

// NewFDs is what is open in after and was not in before, sorted.
func NewFDs(before, after map[string]bool) []string {
	var out []string
	for fd := range after {
		if !before[fd] {
			out = append(out, fd)
		}
	}
	slices.Sort(out)
	return out
}

// AssertNoNewFDs fails tb when fds opened since before are still open after
// within (output readers and the like may close theirs a moment after the
// call that started them returned), naming them. Fds for which an ignore
// function reports true are not counted (each use says whose they are and
// when they are closed).
func AssertNoNewFDs(tb testing.TB, before map[string]bool, within time.Duration, ignore ...func(fd string) bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		leaked := slices.DeleteFunc(NewFDs(before, OpenFDs(tb)), func(fd string) bool {
			return slices.ContainsFunc(ignore, func(ig func(string) bool) bool { return ig(fd) })
		})
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("%d fds leaked (open %s after, not before): %s", len(leaked), within, strings.Join(leaked, ", "))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
