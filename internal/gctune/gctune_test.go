package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestServer(t *testing.T) {
	tests := []struct {
		name        string
		percent     int   // set before Server, as GOGC would
		limit       int64 // set before Server, as GOMEMLIMIT would
		wantPercent int
		wantLimit   int64
	}{
		{"defaults are tuned", defaultPercent, math.MaxInt64, Percent, Limit},
		{"GOGC kept", 50, math.MaxInt64, 50, Limit},
		{"GOGC=off kept", -1, math.MaxInt64, -1, Limit},
		{"GOMEMLIMIT kept", defaultPercent, 1 << 30, Percent, 1 << 30},
		{"both kept", 250, 64 << 20, 250, 64 << 20},
	}
	origPercent := debug.SetGCPercent(defaultPercent)
	origLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(origPercent); debug.SetMemoryLimit(origLimit) })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.percent)
			debug.SetMemoryLimit(tc.limit)
			restore := Server()
			gotPercent := debug.SetGCPercent(tc.percent)
			debug.SetGCPercent(gotPercent)
			if gotLimit := debug.SetMemoryLimit(-1); gotPercent != tc.wantPercent || gotLimit != tc.wantLimit {
				t.Errorf("after Server: percent %d, limit %d; want %d, %d", gotPercent, gotLimit, tc.wantPercent, tc.wantLimit)
			}
			restore()
			gotPercent = debug.SetGCPercent(defaultPercent)
			if gotLimit := debug.SetMemoryLimit(-1); gotPercent != tc.percent || gotLimit != tc.limit {
				t.Errorf("after restore: percent %d, limit %d; want %d, %d", gotPercent, gotLimit, tc.percent, tc.limit)
			}
		})
	}
}
