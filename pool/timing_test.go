package pool

import (
	"context"
	"errors"
	"fmt"
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
			p.pipe.mu.Lock()
			defer p.pipe.mu.Unlock()
			return p.pipe.shrunk
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

// fakeBox is a booted sandbox of the pipeline tests: it "runs" until Close.
type fakeBox struct {
	id     int
	exited chan struct{}
	once   sync.Once
	st     *fakeStarter
}

func (b *fakeBox) Exited() <-chan struct{} { return b.exited }

func (b *fakeBox) Close() error {
	b.once.Do(func() {
		close(b.exited)
		b.st.mu.Lock()
		b.st.live--
		b.st.mu.Unlock()
	})
	return nil
}

// fakeStarter boots a fakeBox in boot (on the bubble's clock), failing while fail is set; it
// counts boots, the most in flight at once, and boxes not yet closed.
type fakeStarter struct {
	boot time.Duration

	mu       sync.Mutex
	fail     bool
	boots    int
	inflight int
	peak     int
	live     int
}

func (f *fakeStarter) start(ctx context.Context) (*fakeBox, error) {
	f.mu.Lock()
	f.boots++
	id := f.boots
	f.inflight++
	f.peak = max(f.peak, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	select {
	case <-time.After(f.boot):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errNoStart
	}
	f.live++
	return &fakeBox{id: id, exited: make(chan struct{}), st: f}, nil
}

func (f *fakeStarter) get() (boots, peak, live int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.boots, f.peak, f.live
}

func (f *fakeStarter) resetPeak() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peak = f.inflight
}

// taken is what one request got from take.
type taken struct {
	box  *fakeBox
	cold bool
	err  error
	at   time.Duration // since the request
}

// request takes from p in a goroutine; the result arrives on the channel.
func request(ctx context.Context, p *pipeline[*fakeBox]) <-chan taken {
	out := make(chan taken, 1)
	go func() {
		t0 := time.Now()
		b, cold, err := p.take(ctx)
		out <- taken{b, cold, err, time.Since(t0)}
	}()
	synctest.Wait() // it has taken its place in the queue
	return out
}

const boot = 100 * time.Millisecond

// TestTakeWaitsForBooting: a request that finds nothing on offer while a sandbox boots waits for
// it (no cold start); one that finds nothing booting starts cold; a failed boot sends its waiters
// to start cold; ctx ends a wait, and the sandbox then booted stays on offer.
func TestTakeWaitsForBooting(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		after    time.Duration // the request comes this long after the pool started
		fail     bool
		timeout  time.Duration // the request's ctx; 0 = none
		wantAt   time.Duration
		wantCold bool
		wantErr  error
		want     Stats
	}{
		{"booting: waits for it", 1, 10 * time.Millisecond, false, 0, 90 * time.Millisecond, false, nil,
			Stats{Waited: 1, Target: 2, Running: 1, Booting: 1}},
		{"ready: at once", 1, 150 * time.Millisecond, false, 0, 0, false, nil,
			Stats{Warm: 1, Target: 1, Running: 1, Booting: 1}},
		{"size 0: cold at once", 0, 10 * time.Millisecond, false, 0, 0, true, nil,
			Stats{Cold: 1}},
		// The wait raised the target: a second boot started at 10 ms; the waiter starts cold when
		// both have failed.
		{"boots fail: the waiter starts cold", 1, 10 * time.Millisecond, true, 0, 100 * time.Millisecond, true, nil,
			Stats{Waited: 1, Failed: 2, Target: 2}},
		{"ctx ends the wait", 1, 10 * time.Millisecond, false, 30 * time.Millisecond, 30 * time.Millisecond, false, context.DeadlineExceeded,
			Stats{Waited: 1, Target: 2, Booting: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStarter{boot: boot, fail: tc.fail}
				p := newPipeline(st.start, tc.size, 4, 2, nil)
				time.Sleep(tc.after)
				if tc.timeout == 0 { // a waiter never released fails the row instead of hanging it
					tc.timeout = time.Minute
				}
				ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
				defer cancel()
				got := <-request(ctx, p)
				synctest.Wait()
				if got.at != tc.wantAt || got.cold != tc.wantCold || !errors.Is(got.err, tc.wantErr) {
					t.Errorf("took after %s cold=%v err=%v; want after %s cold=%v err=%v", got.at, got.cold, got.err, tc.wantAt, tc.wantCold, tc.wantErr)
				}
				if tc.wantErr == nil && !tc.wantCold && got.box == nil {
					t.Error("no sandbox handed out")
				}
				if s := p.snapshot(); s != tc.want {
					t.Errorf("stats %+v, want %+v", s, tc.want)
				}
				if tc.wantErr != nil { // the sandbox it waited for goes on offer, not lost
					time.Sleep(boot)
					if s := p.snapshot(); s.Ready < 1 {
						t.Errorf("after the abandoned wait: %+v, want its sandbox on offer", s)
					}
				}
				if got.box != nil {
					got.box.Close()
				}
				p.close()
				if _, _, live := st.get(); live != 0 {
					t.Errorf("%d sandboxes left open after close", live)
				}
			})
		})
	}
}

// TestBurst: N requests arriving together get the sandboxes on offer first, then the ones that
// become ready, in arrival order; none starts cold.
func TestBurst(t *testing.T) {
	for _, n := range []int{2, 5, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStarter{boot: boot}
				p := newPipeline(st.start, 2, 4, 2, nil)
				defer p.close()
				time.Sleep(time.Second) // two on offer
				var chans []<-chan taken
				for range n {
					chans = append(chans, request(context.Background(), p))
				}
				seen := map[*fakeBox]bool{}
				prevAt := time.Duration(0)
				for i, c := range chans {
					got := <-c
					switch {
					case got.err != nil || got.cold || got.box == nil:
						t.Fatalf("request %d: %+v", i, got)
					case i < 2 && got.at != 0:
						t.Errorf("request %d waited %s with a sandbox on offer", i, got.at)
					case i >= 2 && got.at == 0:
						t.Errorf("request %d got a sandbox at once; only 2 were on offer", i)
					case seen[got.box]:
						t.Errorf("request %d got sandbox %d, handed out before", i, got.box.id)
					case got.at < prevAt:
						t.Errorf("request %d got its sandbox after %s, the one before it after %s (not in arrival order)", i, got.at, prevAt)
					}
					seen[got.box], prevAt = true, got.at
					defer got.box.Close()
				}
				s := p.snapshot()
				if s.Warm != 2 || s.Waited != int64(n-2) || s.Cold != 0 {
					t.Errorf("stats %+v, want 2 warm, %d waited, none cold", s, n-2)
				}
			})
		})
	}
}

// TestTargetFollowsRate: back-to-back requests that wait for boots raise the target one per wait
// up to the maximum; every 5 s without a wait lowers it by one to the size, and the sandboxes on
// offer beyond it are closed.
func TestTargetFollowsRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{boot: boot}
		p := newPipeline(st.start, 1, 3, 2, nil)
		defer p.close()
		var cold int
		for range 40 { // a request every 20 ms, each running 10 ms: faster than one boot at a time
			got := <-request(context.Background(), p)
			if got.cold {
				cold++
				continue
			}
			time.Sleep(10 * time.Millisecond)
			got.box.Close()
			time.Sleep(10 * time.Millisecond)
		}
		s := p.snapshot()
		if s.Target != 3 || s.Waited == 0 || cold != 0 {
			t.Fatalf("after a burst of requests: %+v, %d cold; want target 3 (the maximum), waits, none cold", s, cold)
		}
		time.Sleep(time.Second)
		if s := p.snapshot(); s.Ready != 3 {
			t.Fatalf("%+v: want 3 on offer at target 3", s)
		}
		// The tick of the period in which the burst ended sees its waits; each later one lowers the
		// target by one.
		var targets []int
		for range 5 {
			time.Sleep(adaptEvery)
			s := p.snapshot()
			if s.Ready != s.Target {
				t.Fatalf("%+v: want as many on offer as the target", s)
			}
			targets = append(targets, s.Target)
		}
		if want := [][]int{{2, 1, 1, 1, 1}, {3, 2, 1, 1, 1}}; !slices.Equal(targets, want[0]) && !slices.Equal(targets, want[1]) {
			t.Fatalf("targets every 5 s after the burst: %v, want one of %v", targets, want)
		}
		if _, _, live := st.get(); live != 1 {
			t.Errorf("%d sandboxes open, want the 1 on offer (the others closed)", live)
		}
	})
}

// TestBootLimit: while a sandbox handed out runs, one boot at a time; with none running, one per
// CPU.
func TestBootLimit(t *testing.T) {
	tests := []struct {
		name     string
		cpus     int
		runs     bool // the two taken sandboxes still run while the pool refills
		wantPeak int
	}{
		{"running: one at a time", 4, true, 1},
		{"idle: one per CPU", 4, false, 2},
		{"idle: at most the CPUs", 1, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStarter{boot: boot}
				p := newPipeline(st.start, 2, 2, tc.cpus, nil)
				defer p.close()
				time.Sleep(time.Second)
				a, b := <-request(context.Background(), p), <-request(context.Background(), p)
				if !tc.runs {
					a.box.Close()
					b.box.Close()
				}
				synctest.Wait()
				st.resetPeak()
				time.Sleep(time.Second)
				if _, peak, _ := st.get(); peak != tc.wantPeak {
					t.Errorf("%d boots at once, want %d", peak, tc.wantPeak)
				}
				if s := p.snapshot(); s.Ready != 2 {
					t.Errorf("%+v: the pool did not refill", s)
				}
				a.box.Close()
				b.box.Close()
			})
		})
	}
}

// TestCloseWhileWaiting: Close ends the waits with ErrClosed, at once, and leaves no sandbox open
// and no goroutine running (the bubble would not end).
func TestCloseWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStarter{boot: boot}
		p := newPipeline(st.start, 1, 1, 2, nil)
		a, b := request(context.Background(), p), request(context.Background(), p)
		time.Sleep(10 * time.Millisecond)
		closed := time.Now()
		p.close()
		for _, c := range []<-chan taken{a, b} {
			if got := <-c; !errors.Is(got.err, ErrClosed) || got.box != nil {
				t.Errorf("a request waiting at Close: %+v, want ErrClosed", got)
			}
		}
		if d := time.Since(closed); d != 0 {
			t.Errorf("Close took %s", d)
		}
		if _, _, live := st.get(); live != 0 {
			t.Errorf("%d sandboxes open after Close", live)
		}
		if got := <-request(context.Background(), p); !errors.Is(got.err, ErrClosed) {
			t.Errorf("a request after Close: %+v, want ErrClosed", got)
		}
	})
}
