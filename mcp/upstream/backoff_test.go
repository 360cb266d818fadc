package upstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestBackoffSchedule: an upstream that keeps failing to connect is tried again at once after
// its first failure, then refused without an attempt until backoff(n) has passed since the n-th
// failure (0.5 s doubling up to 30 s), the refusal saying how long is left; the attempt due then
// is made. In a synctest bubble: the stdio command is not on PATH, so each attempt fails
// before any process or pipe exists, and the bubble's clock makes every wait exact.
func TestBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewManager(&Config{Servers: []ServerConfig{{Name: "missing", Transport: TransportStdio, Command: "no-such-mcp-server-binary"}}},
			Options{Logger: testLogger(t)})
		defer m.Close()
		ctx := context.Background()
		call := func() error {
			_, err := m.CallTool(ctx, "missing", "echo", nil)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("want ErrUnavailable, got %v", err)
			}
			return err
		}
		// The first two attempts come at once (a broken session is reconnected without a wait).
		call()
		call()
		if n := m.connectsOf("missing"); n != 2 {
			t.Fatalf("%d attempts after two calls, want 2", n)
		}
		waits := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, 30 * time.Second, 30 * time.Second} // after failures 2, 3, …
		for i, wait := range waits {
			failures := i + 2
			tests := []struct {
				after    time.Duration // since the failure
				attempts int           // attempts made by then
				left     string        // in the refusal; "" = the call makes an attempt
			}{
				{0, failures, wait.String()},
				{wait - time.Millisecond, failures, "1ms"},
				{wait, failures + 1, ""},
			}
			start := time.Now()
			for _, tc := range tests {
				time.Sleep(time.Until(start.Add(tc.after)))
				err := call()
				if tc.left != "" && !strings.Contains(err.Error(), fmt.Sprintf("next connection attempt in %s", tc.left)) {
					t.Fatalf("after failure %d, +%s: %v; want the refusal saying %s is left", failures, tc.after, err, tc.left)
				}
				if tc.left == "" && strings.Contains(err.Error(), "next connection attempt in") {
					t.Fatalf("after failure %d, +%s (its backoff %s): still refused: %v", failures, tc.after, wait, err)
				}
				if n := m.connectsOf("missing"); n != tc.attempts {
					t.Fatalf("after failure %d, +%s: %d attempts, want %d", failures, tc.after, n, tc.attempts)
				}
			}
		}
	})
}
