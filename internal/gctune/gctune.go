// Package gctune sets the garbage collector of the long-running server
// (`conductor serve`). The server's heap is small and lives long (sessions,
// the engine, upstream clients), while every execution allocates and drops
// a few megabytes (libcontainer's config and state, output buffers, JSON):
// at Go's default GOGC=100 that is a collection every execution or two,
// ~1.1 ms of CPU per execution in issue 16's profile. A higher percentage
// collects less often for a heap a few times the live one; a soft memory
// limit brings collections back earlier should the heap ever near it.
//
// GOGC and GOMEMLIMIT are the Go runtime's own variables, not conductor's
// settings: when the environment has one, the runtime has applied it and
// Server leaves that one alone.
package gctune

import (
	"os"
	"runtime/debug"
)

const (
	// Percent is the server's GC percentage (Go's default is 100).
	Percent = 400
	// Limit is the server's soft memory limit, in bytes, for the Go heap
	// and runtime (not the sandboxes: they are other processes).
	Limit = 128 << 20
)

// Server applies Percent and Limit, each unless the environment sets the
// runtime's own variable for it (GOGC, GOMEMLIMIT), and returns a func that
// restores what was there before.
func Server() (restore func()) { return apply(os.LookupEnv) }

func apply(lookup func(string) (string, bool)) (restore func()) {
	prevPercent := debug.SetGCPercent(-1) // reads it; restored just below
	debug.SetGCPercent(prevPercent)
	prevLimit := debug.SetMemoryLimit(-1) // -1 reads it
	if _, set := lookup("GOGC"); !set {
		debug.SetGCPercent(Percent)
	}
	if _, set := lookup("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(Limit)
	}
	return func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}
}
