package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	const defaultPercent = 100
	tests := []struct {
		name        string
		env         map[string]string
		percent     int   // set before, as the runtime does from GOGC
		limit       int64 // set before, as the runtime does from GOMEMLIMIT
		wantPercent int
		wantLimit   int64
	}{
		{"defaults are tuned", nil, defaultPercent, math.MaxInt64, Percent, Limit},
		{"GOGC=100 kept", map[string]string{"GOGC": "100"}, defaultPercent, math.MaxInt64, defaultPercent, Limit},
		{"GOGC=50 kept", map[string]string{"GOGC": "50"}, 50, math.MaxInt64, 50, Limit},
		{"GOGC=off kept", map[string]string{"GOGC": "off"}, -1, math.MaxInt64, -1, Limit},
		{"GOMEMLIMIT kept", map[string]string{"GOMEMLIMIT": "1GiB"}, defaultPercent, 1 << 30, Percent, 1 << 30},
		{"both kept", map[string]string{"GOGC": "250", "GOMEMLIMIT": "64MiB"}, 250, 64 << 20, 250, 64 << 20},
	}
	origPercent := debug.SetGCPercent(defaultPercent)
	origLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(origPercent); debug.SetMemoryLimit(origLimit) })
	read := func() (int, int64) {
		p := debug.SetGCPercent(defaultPercent)
		debug.SetGCPercent(p)
		return p, debug.SetMemoryLimit(-1)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.percent)
			debug.SetMemoryLimit(tc.limit)
			restore := apply(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if p, l := read(); p != tc.wantPercent || l != tc.wantLimit {
				t.Errorf("after apply: percent %d, limit %d; want %d, %d", p, l, tc.wantPercent, tc.wantLimit)
			}
			restore()
			if p, l := read(); p != tc.percent || l != tc.limit {
				t.Errorf("after restore: percent %d, limit %d; want %d, %d", p, l, tc.percent, tc.limit)
			}
		})
	}
}
