// Package pool keeps pre-started, single-use sandboxes ready: deno already
// booted into the bootstrap and waiting for code, so a request skips the
// container start and deno's boot. Each sandbox still runs code once and is
// destroyed after it; a replacement boots in the background.
//
// A Pool is a pipeline: a request takes a sandbox on offer, else the next that becomes ready,
// in arrival order; it starts one cold only when none is booting. See Pool for how many boot
// at once and how the number kept ready follows the requests.
//
// A Pool holds one kind of sandbox (sandbox.StartOptions, compared by Key); a
// Set holds one Pool per kind it is told about: run_deno_code's, and one per
// execute_code runtime (its launcher's flags and working directory), which
// starts on that runtime's first request.
package pool

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/conductor-sandbox/conductor/sandbox"
)

// Starter starts sandboxes; *sandbox.Runner is one.
type Starter interface {
	StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error)
}

// Pool implements engine.Starter with pre-started sandboxes, as a pipeline: a request takes a
// sandbox on offer, else waits for the next one that becomes ready (in arrival order), and
// starts one cold only when none is booting — the pool is off (size 0), shrunk after being
// idle, or its starts fail and back off. Requests that had to wait raise the pool's target by
// one each, up to its maximum; every 5 s in which none waited lower it by one, back toward
// its size. While a sandbox handed out still runs, at most one replacement boots at a time
// (a boot takes about a CPU for tens of milliseconds: the running code keeps the other);
// with nothing running, up to one per CPU.
type Pool struct {
	r    Starter
	so   sandbox.StartOptions // what pooled sandboxes are started with
	pipe *pipeline[*sandbox.Sandbox]
}

// New keeps size sandboxes started with so ready, never more. size 0 is a pool that
// always starts cold.
func New(r Starter, size int, so sandbox.StartOptions, log *slog.Logger) *Pool {
	return NewGrowing(r, size, size, so, log)
}

// NewGrowing keeps size sandboxes started with so ready, and up to most when requests
// arrive faster than size can serve (see Pool). most below size counts as size.
func NewGrowing(r Starter, size, most int, so sandbox.StartOptions, log *slog.Logger) *Pool {
	p := &Pool{r: r, so: so}
	p.pipe = newPipeline(func(ctx context.Context) (*sandbox.Sandbox, error) { return r.StartWith(ctx, so) },
		size, most, runtime.NumCPU(), log)
	return p
}

// ShrinkWhenIdle destroys the pre-started sandboxes once no request has
// come for idle (an idle pool costs memory); the next request starts cold
// and the pool grows back.
func (p *Pool) ShrinkWhenIdle(idle time.Duration) { p.pipe.shrinkWhenIdle(idle) }

// StartWith returns a pre-started sandbox when so matches what the pool starts with: one on
// offer, else the next that becomes ready (it returns ctx's error, or ErrClosed, if that
// ends the wait first). Otherwise, and when nothing is booting, it starts one cold.
func (p *Pool) StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error) {
	if len(so.Command) == 0 && so.Key() == p.so.Key() {
		sb, cold, err := p.pipe.take(ctx)
		if err != nil || !cold {
			return sb, err
		}
	}
	return p.r.StartWith(ctx, so)
}

// Stats returns the pool's counters and its current state.
func (p *Pool) Stats() Stats { return p.pipe.snapshot() }

// Close destroys the sandboxes on offer, stops booting new ones and ends every request
// waiting for one with ErrClosed.
func (p *Pool) Close() { p.pipe.close() }

// Set keeps one Pool per kind of sandbox (sandbox.StartOptions.Key) it is
// told about: run_deno_code's, started at once (Pool), and one launcher per
// execute_code runtime, whose pool starts on its first request (Lazy); that
// request waits for its pool's first boot, later ones are warm. A kind with an
// identity's workspace (WorkspaceOf, NoWorkspace) gets a lazy pool of its own
// when its kind without one has a pool: one pool per identity and kind (each up
// to the pool's size, shrinking when idle). Other kinds (an import map of
// one request, sandboxes that run their own Command) always start cold.
type Set struct {
	r    Starter
	size int
	idle time.Duration
	log  *slog.Logger

	mu    sync.Mutex
	most  int // each pool's maximum (GrowUpTo); size by default
	lazy  map[string]bool
	pools map[string]*Pool
}

// NewSet returns a Set whose pools keep size sandboxes each and shrink
// after idle (0 = never).
func NewSet(r Starter, size int, idle time.Duration, log *slog.Logger) *Set {
	return &Set{r: r, size: size, most: size, idle: idle, log: log, lazy: map[string]bool{}, pools: map[string]*Pool{}}
}

// GrowUpTo lets each pool the Set starts from now on grow to most sandboxes when requests
// wait for boots (NewGrowing); below size it counts as size.
func (s *Set) GrowUpTo(most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.most = max(s.size, most)
}

// Stats sums the counters of the Set's pools.
func (s *Set) Stats() Stats {
	s.mu.Lock()
	pools := make([]*Pool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, p)
	}
	s.mu.Unlock()
	var st Stats
	for _, p := range pools {
		st = st.Add(p.Stats())
	}
	return st
}

// Pool starts the pool of sandboxes started with so, now.
func (s *Set) Pool(so sandbox.StartOptions) *Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.poolLocked(so.Key(), so)
}

// Lazy makes so a kind that gets a pool on its first request.
func (s *Set) Lazy(so sandbox.StartOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lazy[so.Key()] = true
}

func (s *Set) poolLocked(k string, so sandbox.StartOptions) *Pool {
	p, ok := s.pools[k]
	if !ok {
		p = NewGrowing(s.r, s.size, s.most, so, s.log)
		p.ShrinkWhenIdle(s.idle)
		s.pools[k] = p
	}
	return p
}

// StartWith takes a sandbox from so's pool when it has one, else starts one.
func (s *Set) StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error) {
	if len(so.Command) == 0 { // a sandbox running its own command is never pooled
		k := so.Key()
		base := so
		base.WorkspaceOf, base.NoWorkspace = "", false
		bk := base.Key()
		s.mu.Lock()
		var p *Pool
		if s.pools[k] != nil || s.lazy[k] || s.pools[bk] != nil || s.lazy[bk] {
			// An identity's own workspace is a kind of its own: its pool starts on its first
			// request, as a lazy kind's.
			p = s.poolLocked(k, so)
		}
		s.mu.Unlock()
		if p != nil {
			return p.StartWith(ctx, so)
		}
	}
	return s.r.StartWith(ctx, so)
}

// Close closes every pool.
func (s *Set) Close() {
	s.mu.Lock()
	pools := s.pools
	s.pools = map[string]*Pool{}
	s.mu.Unlock()
	for _, p := range pools {
		p.Close()
	}
}
