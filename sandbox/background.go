package sandbox

import (
	"sync"

	"github.com/conductor-sandbox/conductor/cgroups"
	cgcfg "github.com/opencontainers/cgroups"
)

// Background marks a start nobody waits for yet (a pool's refill). Its cgroup is created at a
// low CPU weight (cgroups.Host.LowerWeight) where the cpu controller is usable, so the boot
// takes the CPU that running executions leave idle rather than theirs; Raise gives it the
// default weight, at once or as soon as its cgroup exists, and StartWith raises it when the
// boot ends — a booted sandbox always runs code at the default weight. One per start; safe for
// concurrent use.
type Background struct {
	mu      sync.Mutex
	raised  bool              // Raise was called: a request waits for this boot
	lowered bool              // the cgroup was created at the low weight
	paths   map[string]string // the cgroup's directories once it exists
	host    *cgroups.Host
}

// Raise gives the boot the default CPU weight: a request now waits for it. Idempotent.
func (b *Background) Raise() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.raised = true
	if b.lowered && b.paths != nil {
		// A failure leaves the boot at the low weight until it ends, where StartWith's
		// own raise (restore) fails the start if the file still cannot be written.
		if b.host.DefaultWeight(b.paths) == nil {
			b.lowered = false
		}
	}
}

// Raised reports whether Raise was called.
func (b *Background) Raised() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.raised
}

// lower decides, as the start's cgroup config is built, whether it begins at the low weight:
// not when a request already waits for it. It reports whether cg was changed.
func (b *Background) lower(h *cgroups.Host, cg *cgcfg.Cgroup) bool {
	if b == nil || h == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.raised || !h.LowerWeight(cg) {
		return false
	}
	b.lowered, b.host = true, h
	return true
}

// created records the cgroup's directories once the container has started; a Raise that came
// before is carried out now.
func (b *Background) created(paths map[string]string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paths = paths
	if b.raised && b.lowered {
		if err := b.host.DefaultWeight(paths); err != nil {
			return err
		}
		b.lowered = false
	}
	return nil
}

// restore gives the booted sandbox the default weight if it still has the low one.
func (b *Background) restore() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.lowered {
		return nil
	}
	if err := b.host.DefaultWeight(b.paths); err != nil {
		return err
	}
	b.lowered = false
	return nil
}
