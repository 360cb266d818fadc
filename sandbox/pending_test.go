package sandbox

import (
	"testing"
	"time"
)

// TestPendingWorkAfterResult: a timer (or other work) left behind once the
// module's result is known no longer turns the run into a timeout holding
// its slot until then (issue 9, finding 8). Work that finishes within
// AfterResultGrace still runs; the rest is stopped and the result says so.
func TestPendingWorkAfterResult(t *testing.T) {
	r := newTestRunner(t, nil)
	tests := []struct {
		name    string
		code    string
		stopped bool
		stdout  string
		result  string
	}{
		{"timer far in the future", "setTimeout(() => console.log('never'), 600000); export default 5", true, "", "5"},
		{"interval", "setInterval(() => {}, 10); export default 'v'", true, "", `"v"`},
		{"unawaited promise that never settles", "new Promise(() => { setInterval(() => {}, 1000) }); export default [1]", true, "", "[1]"},
		{"short timer still runs", "setTimeout(() => console.log('late'), 20); export default 1", false, "late\n", "1"},
		{"nothing pending", "export default null", false, "", "null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 20 * time.Second
			t0 := time.Now()
			res := runCode(t, r, tc.code, timeout)
			took := time.Since(t0)
			if res.Status != StatusSuccess || res.Error != nil {
				t.Fatalf("status %s, error %+v, stderr %q; want success", res.Status, res.Error, res.Stderr)
			}
			if string(res.ReturnValue) != tc.result {
				t.Errorf("returnValue %s, want %s", res.ReturnValue, tc.result)
			}
			if res.PendingStopped != tc.stopped {
				t.Errorf("pendingWorkStopped = %v, want %v", res.PendingStopped, tc.stopped)
			}
			if res.Stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", res.Stdout, tc.stdout)
			}
			if res.Signal != "" || res.LimitHit != "" {
				t.Errorf("signal %q limitHit %q: the host's stop must not read as the code's", res.Signal, res.LimitHit)
			}
			// The run ends about AfterResultGrace after the result, far from
			// the timeout (a generous bound: this is not a speed test).
			if took > timeout/2 {
				t.Errorf("run took %s: it waited for the pending work", took)
			}
		})
	}
}
