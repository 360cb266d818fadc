package testenv

import (
	"os"
	"strings"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, and fails tb with what (the state waited for) when it does
// not within Scale(within). It is for waits on real processes and sandboxes, whose progress has
// no event a test can receive: the bound is a limit, never a speed the test relies on. Code that
// only uses channels and timers is tested in a testing/synctest bubble instead.
func WaitFor(tb testing.TB, what string, within time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Scale(within))
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", Scale(within), what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// InstanceDir waits (up to Scale(within)) for a conductor server's instance directory to appear
// under stateDir and returns its name ("conductor-<hex>"), the marker its containers and
// cgroups carry.
func InstanceDir(tb testing.TB, stateDir string, within time.Duration) string {
	tb.Helper()
	var instance string
	WaitFor(tb, "a conductor-* instance directory in "+stateDir, within, func() bool {
		entries, _ := os.ReadDir(stateDir)
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "conductor-") {
				instance = e.Name()
				return true
			}
		}
		return false
	})
	return instance
}
