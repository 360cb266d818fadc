// Package gctune sets the garbage collector of the long-running server
// (`conductor serve`). The server's heap is small and lives long (sessions,
// the engine, upstream clients), while every execution allocates and drops
// a few megabytes (libcontainer's config and state, output buffers, JSON):
// at Go's default GOGC=100 that is a collection every execution or two,
// ~1.1 ms of CPU per execution in issue 16's profile. A higher percentage
// collects less often for a heap a few times the live one; a soft memory
// limit brings collections back earlier should the heap ever near it.
//
// The Go runtime's own GOGC and GOMEMLIMIT stay the admin's: a value they
// set is kept (Server sees it as a setting other than the default and
// leaves it alone), so nothing here reads the environment.
package gctune

import (
	"math"
	"runtime/debug"
)

const (
	// Percent is the server's GC percentage (Go's default is 100).
	Percent = 400
	// Limit is the server's soft memory limit, in bytes, for the Go heap
	// and runtime (not the sandboxes: they are other processes).
	Limit = 256 << 20
	// defaultPercent is the runtime's GC percentage when GOGC is unset.
	defaultPercent = 100
)

// Server applies Percent and Limit where the environment left Go's
// defaults, and returns a func that restores what was there before.
func Server() (restore func()) {
	prevPercent := debug.SetGCPercent(Percent)
	if prevPercent != defaultPercent {
		debug.SetGCPercent(prevPercent) // GOGC set: the admin's
	}
	prevLimit := debug.SetMemoryLimit(-1) // -1 reads it
	if prevLimit == math.MaxInt64 {
		debug.SetMemoryLimit(Limit)
	}
	return func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}
}
