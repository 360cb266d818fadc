// Package pool keeps pre-started, single-use sandboxes ready: deno already
// booted into the bootstrap and waiting for code, so a request skips the
// container start and deno's boot. Each sandbox still runs code once and is
// destroyed after it; a replacement boots in the background.
package pool

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
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
	ready  chan *sandbox.Sandbox
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger
}

// New keeps size sandboxes started with so ready. size 0 is a pool that
// always starts cold.
func New(r Starter, size int, so sandbox.StartOptions, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{r: r, so: so, ready: make(chan *sandbox.Sandbox), cancel: cancel, log: log}
	for i := 0; i < size; i++ {
		p.wg.Add(1)
		go p.fill(ctx)
	}
	return p
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
		select {
		case p.ready <- sb:
		case <-ctx.Done():
			_ = sb.Close()
			return
		}
	}
}

// StartWith returns a pre-started sandbox when one is ready and so matches
// what the pool starts with; otherwise it starts one cold.
func (p *Pool) StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error) {
	if so.Install == nil && bytes.Equal(so.ImportMap, p.so.ImportMap) {
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
