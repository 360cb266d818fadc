// Package pool keeps pre-started, single-use sandboxes ready: deno already
// booted into the bootstrap and waiting for code, so a request skips the
// container start and deno's boot. Each sandbox still runs code once and is
// destroyed after it; a replacement boots in the background.
//
// A Pool holds one kind of sandbox (sandbox.StartOptions, compared by Key); a
// Set holds one Pool per kind it is told about: run_deno_code's, and one per
// execute_code runtime (its launcher's flags and working directory), which
// starts on that runtime's first request.
package pool

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conductor-sandbox/conductor/sandbox"
)

// Starter starts sandboxes; *sandbox.Runner is one.
type Starter interface {
	StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error)
}

// Pool implements engine.Starter with pre-started sandboxes.
type Pool struct {
	r      Starter
	so     sandbox.StartOptions // what pooled sandboxes are started with
	size   int
	ready  chan *sandbox.Sandbox
	base   context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger
	refill time.Duration // longest wait for a taken sandbox's run before booting the next

	// offering counts the fillers that hold a booted sandbox and are about to offer it or
	// offer it now: tests wait for it instead of sleeping (no decision reads it).
	offering atomic.Int32

	mu         sync.Mutex
	filling    context.CancelFunc // stops the current fillers; nil while shrunk
	lastUse    time.Time
	janitorSet bool
}

// New keeps size sandboxes started with so ready. size 0 is a pool that
// always starts cold.
func New(r Starter, size int, so sandbox.StartOptions, log *slog.Logger) *Pool {
	return newWithRefill(r, size, so, log, refillDelay)
}

func newWithRefill(r Starter, size int, so sandbox.StartOptions, log *slog.Logger, refill time.Duration) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	p := &Pool{r: r, so: so, size: size, ready: make(chan *sandbox.Sandbox), base: base, cancel: cancel, log: log, refill: refill, lastUse: time.Now()}
	p.mu.Lock()
	p.grow()
	p.mu.Unlock()
	return p
}

// grow starts the fillers. p.mu must be held.
func (p *Pool) grow() {
	if p.filling != nil || p.size == 0 || p.base.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(p.base)
	p.filling = cancel
	for i := 0; i < p.size; i++ {
		p.wg.Add(1)
		go p.fill(ctx)
	}
}

// ShrinkWhenIdle destroys the pre-started sandboxes once no request has
// come for idle (an idle pool costs memory); the next request starts cold
// and the pool grows back.
func (p *Pool) ShrinkWhenIdle(idle time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.janitorSet || idle <= 0 {
		return
	}
	p.janitorSet = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(max(idle/4, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-p.base.Done():
				return
			case <-tick.C:
			}
			p.mu.Lock()
			if p.filling != nil && time.Since(p.lastUse) >= idle {
				p.filling()
				p.filling = nil
				p.log.Info("pool: no request for a while; pre-started sandboxes destroyed until the next one", "idle", idle)
			}
			p.mu.Unlock()
		}
	}()
}

// fill keeps one booted sandbox on offer until it is taken, then boots the
// next. Start failures back off, so a broken host does not spin.
func (p *Pool) fill(ctx context.Context) {
	defer p.wg.Done()
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		sb, err := p.r.StartWith(ctx, p.so)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("pool: pre-starting a sandbox failed; requests start cold meanwhile", "err", err, "retry_in", backoff)
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		p.offering.Add(1)
		select {
		case p.ready <- sb:
			p.offering.Add(-1)
		case <-ctx.Done():
			p.offering.Add(-1)
			_ = sb.Close()
			return
		}
		// Boot the replacement once the taken sandbox has run: booting takes
		// about a CPU for tens of milliseconds, and the request that just
		// took a sandbox should not share the CPUs with it. A long run does
		// not hold the pool empty for longer than p.refill.
		select {
		case <-sb.Exited():
		case <-time.After(p.refill):
		case <-ctx.Done():
			return
		}
	}
}

// refillDelay bounds how long a filler waits for the sandbox it handed out
// to finish before booting the next.
const refillDelay = 100 * time.Millisecond

// StartWith returns a pre-started sandbox when one is ready and so matches
// what the pool starts with; otherwise it starts one cold.
func (p *Pool) StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error) {
	p.mu.Lock()
	p.lastUse = time.Now()
	p.grow() // after an idle shrink: boot the pool again, this request starts cold
	p.mu.Unlock()
	if len(so.Command) == 0 && so.Key() == p.so.Key() {
		select {
		case sb := <-p.ready:
			return sb, nil
		default:
		}
	}
	return p.r.StartWith(ctx, so)
}

// Close destroys the sandboxes on offer and stops booting new ones.
func (p *Pool) Close() {
	p.cancel()
	p.wg.Wait()
}

// Set keeps one Pool per kind of sandbox (sandbox.StartOptions.Key) it is
// told about: run_deno_code's, started at once (Pool), and one launcher per
// execute_code runtime, whose pool starts on its first request (Lazy); that
// request starts cold, later ones are warm. Other kinds (an import map of
// one request, sandboxes that run their own Command) always start cold.
type Set struct {
	r    Starter
	size int
	idle time.Duration
	log  *slog.Logger

	mu    sync.Mutex
	lazy  map[string]bool
	pools map[string]*Pool
}

// NewSet returns a Set whose pools keep size sandboxes each and shrink
// after idle (0 = never).
func NewSet(r Starter, size int, idle time.Duration, log *slog.Logger) *Set {
	return &Set{r: r, size: size, idle: idle, log: log, lazy: map[string]bool{}, pools: map[string]*Pool{}}
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
		p = New(s.r, s.size, so, s.log)
		p.ShrinkWhenIdle(s.idle)
		s.pools[k] = p
	}
	return p
}

// StartWith takes a sandbox from so's pool when it has one, else starts one.
func (s *Set) StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error) {
	if len(so.Command) == 0 { // a sandbox running its own command is never pooled
		k := so.Key()
		s.mu.Lock()
		var p *Pool
		if s.pools[k] != nil || s.lazy[k] {
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
