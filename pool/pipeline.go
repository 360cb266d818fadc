package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrClosed is returned to a request that waited for a booting sandbox when the pool closed.
var ErrClosed = errors.New("the sandbox pool was closed (the server is shutting down); the request was not run")

// box is what the pipeline needs of a sandbox; *sandbox.Sandbox is one, and so is the timing
// tests' fake.
type box interface {
	Exited() <-chan struct{}
	Close() error
}

// Stats are a pool's counters since it started, for benchmarks and logs.
type Stats struct {
	Warm   int64 // requests given a booted sandbox at once
	Waited int64 // requests that waited for a sandbox that was booting (none started cold)
	Cold   int64 // requests that started a sandbox cold: nothing was booting
	Failed int64 // boots that failed

	Target  int // sandboxes the pool currently aims to keep booted
	Ready   int // booted and on offer now
	Booting int // being booted now
	Running int // handed out and not yet exited
}

// Add sums two Stats (a Set's pools).
func (s Stats) Add(o Stats) Stats {
	return Stats{s.Warm + o.Warm, s.Waited + o.Waited, s.Cold + o.Cold, s.Failed + o.Failed,
		s.Target + o.Target, s.Ready + o.Ready, s.Booting + o.Booting, s.Running + o.Running}
}

// Pipeline timing.
const (
	firstBackoff = 500 * time.Millisecond
	maxBackoff   = 30 * time.Second
	// adaptEvery is the period of the target's decay: a period in which no request waited for
	// a boot lowers the target by one, toward the configured size.
	adaptEvery = 5 * time.Second
)

// waiter is a request waiting for the next sandbox that becomes ready. Its channel (buffer 1)
// gets exactly one hand-over: a sandbox, or cold (nothing is booting any more: start one).
type waiter[S box] struct {
	ch chan handover[S]
}

type handover[S box] struct {
	sb   S
	cold bool
}

// pipeline keeps booted sandboxes of one kind on offer and hands them out in arrival order.
// Invariants (under mu): ready and waiters are never both non-empty (a sandbox that becomes ready
// goes to the first waiter); a waiter exists only while a boot is in progress or may start
// (when the last boot fails, every waiter is released to start cold); boots in progress number
// at most bootLimit(); ready+booting never exceed target+len(waiters).
type pipeline[S box] struct {
	start    func(ctx context.Context) (S, error)
	size     int // the configured size: the target's floor
	max      int // the target's ceiling
	cpus     int // boots at once while nothing runs
	busyBoot int // boots at once while a handed-out sandbox runs
	log      *slog.Logger

	base   context.Context // ends with close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	ready     []S
	waiters   []*waiter[S]
	booting   int
	running   int
	target    int
	gen       context.Context // the boots' context; cancelled by an idle shrink
	genCancel context.CancelFunc
	shrunk    bool
	closed    bool
	retryAt   time.Time // no boot before (after a failure)
	backoff   time.Duration
	retry     *time.Timer
	lastUse   time.Time
	waitedNow bool // a request waited for a boot since the last adapt tick
	janitor   bool
	stats     Stats
}

func newPipeline[S box](start func(context.Context) (S, error), size, most, cpus int, log *slog.Logger) *pipeline[S] {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	p := &pipeline[S]{start: start, size: size, max: max(size, most), cpus: max(1, cpus), busyBoot: 1, log: log,
		base: base, cancel: cancel, target: size, backoff: firstBackoff, lastUse: time.Now()}
	p.gen, p.genCancel = context.WithCancel(base)
	if p.max > p.size && p.size > 0 {
		p.wg.Add(1)
		go p.everyTick(adaptEvery, p.adapt)
	}
	p.mu.Lock()
	p.kick()
	p.mu.Unlock()
	return p
}

// bootLimit is how many boots may run at once: while a handed-out sandbox still runs, busyBoot
// (booting takes about a CPU for tens of milliseconds: the running code keeps the other), else
// one per CPU. After a failure, one at a time. p.mu held.
func (p *pipeline[S]) bootLimit() int {
	switch {
	case p.backoff > firstBackoff:
		return 1
	case p.running > 0:
		return p.busyBoot
	default:
		return p.cpus
	}
}

// kick starts the boots the pool is short of, as far as bootLimit allows. p.mu held.
func (p *pipeline[S]) kick() {
	if p.closed || p.shrunk || p.size == 0 {
		return
	}
	if wait := time.Until(p.retryAt); wait > 0 {
		if p.retry == nil {
			p.retry = time.AfterFunc(wait, func() {
				p.mu.Lock()
				defer p.mu.Unlock()
				p.retry = nil
				p.kick()
			})
		}
		return
	}
	for len(p.ready)+p.booting < p.target+len(p.waiters) && p.booting < p.bootLimit() {
		p.booting++
		p.wg.Add(1)
		go p.boot(p.gen)
	}
}

// boot starts one sandbox and hands it to the first waiter, else puts it on offer.
func (p *pipeline[S]) boot(ctx context.Context) {
	defer p.wg.Done()
	sb, err := p.start(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.booting--
	if err != nil {
		if ctx.Err() == nil {
			p.stats.Failed++
			p.log.Warn("pool: pre-starting a sandbox failed; requests start cold meanwhile", "err", err, "retry_in", p.backoff)
			p.retryAt = time.Now().Add(p.backoff)
			p.backoff = min(2*p.backoff, maxBackoff)
		}
		if p.booting == 0 {
			p.releaseCold()
		}
		p.kick()
		return
	}
	p.backoff = firstBackoff
	if ctx.Err() != nil || p.closed {
		_ = sb.Close()
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.handOut(sb)
		w.ch <- handover[S]{sb: sb}
		p.kick()
		return
	}
	if len(p.ready) >= p.target {
		_ = sb.Close() // the target fell while it booted
		return
	}
	p.ready = append(p.ready, sb)
	p.log.Debug("pool: sandbox ready", "ready", len(p.ready), "booting", p.booting, "target", p.target)
	p.kick()
}

// releaseCold tells every waiter to start cold: nothing is booting. p.mu held.
func (p *pipeline[S]) releaseCold() {
	for _, w := range p.waiters {
		w.ch <- handover[S]{cold: true}
	}
	p.waiters = nil
}

// handOut counts sb as running until it exits, and boots its replacement by the bootLimit rule.
// p.mu held.
func (p *pipeline[S]) handOut(sb S) {
	p.running++
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-sb.Exited():
		case <-p.base.Done():
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.running--
		p.kick()
	}()
}

// take returns a booted sandbox — one on offer, else the next to become ready, in arrival
// order — or cold when nothing is booting (the pool is off, shrunk, or its starts fail): the
// caller then starts one itself.
func (p *pipeline[S]) take(ctx context.Context) (sb S, cold bool, err error) {
	p.mu.Lock()
	p.lastUse = time.Now()
	if p.closed {
		p.mu.Unlock()
		return sb, false, ErrClosed
	}
	wasShrunk := p.shrunk
	if wasShrunk { // after an idle shrink: this request starts cold, the pool boots again
		p.shrunk = false
		p.target = p.size
		p.backoff, p.retryAt = firstBackoff, time.Time{}
		p.gen, p.genCancel = context.WithCancel(p.base)
	}
	if len(p.ready) > 0 {
		sb = p.ready[0]
		p.ready = p.ready[1:]
		p.stats.Warm++
		p.handOut(sb)
		p.kick()
		p.mu.Unlock()
		return sb, false, nil
	}
	if p.booting == 0 || wasShrunk {
		p.stats.Cold++
		p.kick()
		p.log.Debug("pool: nothing booting; starting a sandbox cold", "target", p.target, "running", p.running)
		p.mu.Unlock()
		return sb, true, nil
	}
	w := &waiter[S]{ch: make(chan handover[S], 1)}
	p.waiters = append(p.waiters, w)
	p.stats.Waited++
	p.waitedNow = true
	if p.target < p.max {
		p.target++
	}
	p.kick()
	p.log.Debug("pool: waiting for a booting sandbox", "queue", len(p.waiters), "booting", p.booting, "target", p.target)
	p.mu.Unlock()

	select {
	case h := <-w.ch:
		return h.sb, h.cold, nil
	case <-ctx.Done():
		err = fmt.Errorf("waiting for a pre-started sandbox: %w", ctx.Err())
	case <-p.base.Done():
		err = ErrClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range p.waiters {
		if o == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return sb, false, err
		}
	}
	// It was handed a sandbox (or told to start cold) as it gave up: pass a sandbox on.
	if h := <-w.ch; !h.cold {
		if len(p.waiters) > 0 && !p.closed {
			next := p.waiters[0]
			p.waiters = p.waiters[1:]
			next.ch <- h // still counted running: handOut's watcher follows it
		} else {
			_ = h.sb.Close() // never run: its watcher sees it exit
		}
	}
	return sb, false, err
}

// everyTick runs f under p.mu every period until the pool closes. Its caller has added it to p.wg.
func (p *pipeline[S]) everyTick(period time.Duration, f func()) {
	defer p.wg.Done()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-p.base.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		f()
		p.mu.Unlock()
	}
}

// adapt lowers the target by one, toward size, after each adaptEvery in which no request waited
// for a boot, closing the sandboxes on offer beyond it. p.mu held.
func (p *pipeline[S]) adapt() {
	if !p.waitedNow && p.target > p.size {
		p.target--
		for len(p.ready) > p.target {
			last := p.ready[len(p.ready)-1]
			p.ready = p.ready[:len(p.ready)-1]
			_ = last.Close()
		}
		p.log.Debug("pool: fewer requests waited; target lowered", "target", p.target)
	}
	p.waitedNow = false
}

// shrinkWhenIdle: see Pool.ShrinkWhenIdle.
func (p *pipeline[S]) shrinkWhenIdle(idle time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.janitor || idle <= 0 {
		return
	}
	p.janitor = true
	p.wg.Add(1)
	go p.everyTick(max(idle/4, 10*time.Millisecond), func() {
		if !p.shrunk && p.size > 0 && time.Since(p.lastUse) >= idle {
			p.shrunk = true
			p.genCancel()
			for _, sb := range p.ready {
				_ = sb.Close()
			}
			p.ready = nil
			p.releaseCold()
			if p.retry != nil {
				p.retry.Stop()
				p.retry = nil
			}
			p.log.Info("pool: no request for a while; pre-started sandboxes destroyed until the next one", "idle", idle)
		}
	})
}

func (p *pipeline[S]) snapshot() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Target, s.Ready, s.Booting, s.Running = p.target, len(p.ready), p.booting, p.running
	return s
}

// close destroys the sandboxes on offer, stops booting and ends every wait with ErrClosed;
// it returns once nothing of the pipeline runs.
func (p *pipeline[S]) close() {
	p.mu.Lock()
	p.closed = true
	for _, sb := range p.ready {
		_ = sb.Close()
	}
	p.ready = nil
	if p.retry != nil {
		p.retry.Stop()
		p.retry = nil
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}
