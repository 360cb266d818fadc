package pool

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/conductor-sandbox/conductor/sandbox"
)

// failingStarter is a Starter whose every start fails at once, noting when (on the bubble's
// clock): it drives the pool's timing without a sandbox.
type failingStarter struct {
	mu    sync.Mutex
	calls []time.Duration // since t0
	t0    time.Time
}

var errNoStart = errors.New("test starter: no sandbox")

func (f *failingStarter) StartWith(context.Context, sandbox.StartOptions) (*sandbox.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Since(f.t0))
	return nil, errNoStart
}

func (f *failingStarter) at() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.calls...)
}

// TestFillBackoff: a filler whose starts fail tries again after 0.5 s, doubling up to 30 s, and
// Close stops it at once even in the middle of a wait. In a synctest bubble: the waits are
// exact, on the bubble's clock.
func TestFillBackoff(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration // how long the pool runs before Close
		want  []time.Duration
	}{
		{"first start at once", 0, []time.Duration{0}},
		{"doubling", 4 * time.Second, []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond}},
		{"capped at 30 s", 2 * time.Minute, []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond,
			7500 * time.Millisecond, 15500 * time.Millisecond, 31500 * time.Millisecond, 61500 * time.Millisecond, 91500 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &failingStarter{t0: time.Now()}
				p := New(st, 1, sandbox.StartOptions{}, nil)
				time.Sleep(tc.after)
				synctest.Wait()
				closed := time.Now()
				p.Close()
				if waited := time.Since(closed); waited != 0 {
					t.Errorf("Close waited %s for a filler in its backoff", waited)
				}
				got := st.at()
				if !slices.Equal(got, tc.want) {
					t.Fatalf("starts at %v, want %v", got, tc.want)
				}
				time.Sleep(time.Hour)
				if n := len(st.at()); n != len(tc.want) {
					t.Errorf("%d starts after Close, want none", n-len(tc.want))
				}
			})
		})
	}
}

// TestShrinkWhenIdleTiming: the fillers stop on the janitor's first tick (idle/4) at which no
// request has come for idle, and the next request (which starts cold) restarts them; a pool of
// size 0 never starts one.
func TestShrinkWhenIdleTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 8 * time.Second // ticks every 2 s
		st := &failingStarter{t0: time.Now()}
		p := New(st, 1, sandbox.StartOptions{}, nil)
		defer p.Close()
		p.ShrinkWhenIdle(idle)
		// A request at 5 s (its cold start fails) keeps the pool until 13 s: the tick at 14 s stops it.
		time.Sleep(5 * time.Second)
		if _, err := p.StartWith(context.Background(), sandbox.StartOptions{}); !errors.Is(err, errNoStart) {
			t.Fatalf("cold start: %v, want the starter's error", err)
		}
		shrunk := func() bool {
			synctest.Wait()
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.filling == nil
		}
		time.Sleep(13500*time.Millisecond - 5*time.Second)
		if shrunk() {
			t.Fatal("the pool shrank at 13.5 s, before the first tick (14 s) after 8 s without a request")
		}
		time.Sleep(500 * time.Millisecond)
		if !shrunk() {
			t.Fatal("the pool did not shrink on the first tick (14 s) after 8 s without a request")
		}
		// Filler: 0, 0.5, 1.5, 3.5, 7.5; the request's cold start: 5; the filler's next would be 15.5.
		want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond,
			5 * time.Second, 7500 * time.Millisecond}
		if got := st.at(); !slices.Equal(got, want) {
			t.Fatalf("starts at %v, want %v", got, want)
		}
		time.Sleep(time.Hour)
		if got := st.at(); len(got) != len(want) {
			t.Fatalf("starts while shrunk: %v", got[len(want):])
		}
		// The next request starts cold and boots the pool again.
		before := time.Since(st.t0)
		if _, err := p.StartWith(context.Background(), sandbox.StartOptions{}); !errors.Is(err, errNoStart) {
			t.Fatalf("cold start after the shrink: %v", err)
		}
		synctest.Wait()
		if got := st.at(); len(got) != len(want)+2 || got[len(got)-1] != before || got[len(got)-2] != before {
			t.Fatalf("starts after the request at %s: %v, want its cold start and the regrown filler's", before, got[len(want):])
		}
	})
	synctest.Test(t, func(t *testing.T) {
		st := &failingStarter{t0: time.Now()}
		p := New(st, 0, sandbox.StartOptions{}, nil)
		p.ShrinkWhenIdle(time.Second)
		time.Sleep(time.Hour)
		p.Close()
		if got := st.at(); len(got) != 0 {
			t.Fatalf("a pool of size 0 started sandboxes at %v", got)
		}
	})
}
