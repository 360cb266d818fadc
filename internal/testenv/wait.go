package testenv

import (
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
