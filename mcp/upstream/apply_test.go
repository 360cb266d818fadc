package upstream

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func (m *Manager) sessionOf(name string) *session {
	u, ok := m.get(name)
	if !ok {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sess
}

// TestApply: a new config keeps the sessions of unchanged servers, reconnects
// changed ones, closes removed ones on Retire, adds new ones, and a config
// Apply refuses changes nothing.
func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// next is the new config from the serving servers a and b.
		next                          func(a, b ServerConfig) []ServerConfig
		kept, changed, added, removed []string
		wantErr                       error
		names                         []string // Names() after
		newA                          bool     // a's session is a new one (a new process)
		aGone                         bool     // a's old process ends on Retire
	}{
		{name: "unchanged kept", next: func(a, b ServerConfig) []ServerConfig { return []ServerConfig{a, b} },
			kept: []string{"a", "b"}, names: []string{"a", "b"}},
		{name: "changed reconnected", next: func(a, b ServerConfig) []ServerConfig {
			a.Env = map[string]string{helperEnv: "server", "X": "new"}
			return []ServerConfig{a, b}
		}, kept: []string{"b"}, changed: []string{"a"}, names: []string{"a", "b"}, newA: true, aGone: true},
		{name: "removed closed", next: func(a, b ServerConfig) []ServerConfig { return []ServerConfig{b} },
			kept: []string{"b"}, removed: []string{"a"}, names: []string{"b"}, aGone: true},
		{name: "added connected", next: func(a, b ServerConfig) []ServerConfig {
			c := b
			c.Name = "c"
			return []ServerConfig{a, b, c}
		}, kept: []string{"a", "b"}, added: []string{"c"}, names: []string{"a", "b", "c"}},
		{name: "invalid refused", next: func(a, b ServerConfig) []ServerConfig { return []ServerConfig{a, b, b} },
			wantErr: ErrApplyInvalid, names: []string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := ServerConfig{Name: "b", Transport: TransportStreamableHTTP, URL: helperHTTP(t, false, "").URL}
			a := helperStdio(t, "a")
			m := newTestManager(t, Options{}, a, b)
			for _, s := range []string{"a", "b"} {
				if _, err := m.CallTool(ctx, s, "echo", map[string]any{"text": "hi"}); err != nil {
					t.Fatalf("%s before: %v", s, err)
				}
			}
			oldA, oldB, pidA, verA := m.sessionOf("a"), m.sessionOf("b"), m.childPid("a"), m.ToolsVersion("a")

			ap, err := m.Apply(&Config{Servers: tc.next(a, b)})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Apply: %v, want %v", err, tc.wantErr)
			}
			for what, got := range map[string][2][]string{"kept": {ap.Kept, tc.kept}, "changed": {ap.Changed, tc.changed}, "added": {ap.Added, tc.added}, "removed": {ap.Removed, tc.removed}} {
				if !slices.Equal(got[0], got[1]) {
					t.Errorf("%s: %v, want %v", what, got[0], got[1])
				}
			}
			if got := m.Names(); !slices.Equal(got, tc.names) {
				t.Errorf("Names: %v, want %v", got, tc.names)
			}
			if m.sessionOf("b") != oldB {
				t.Error("b's session was replaced; b's entry did not change")
			}
			for _, s := range tc.names {
				if _, err := m.CallTool(ctx, s, "echo", map[string]any{"text": "hi"}); err != nil {
					t.Fatalf("%s after: %v", s, err)
				}
			}
			if !slices.Contains(tc.names, "a") {
				_, err := m.CallTool(ctx, "a", "echo", nil)
				if !errors.Is(err, ErrUnknownServer) || !strings.Contains(err.Error(), "configured: "+strings.Join(tc.names, ", ")) {
					t.Fatalf("removed a: %v", err)
				}
			} else if got := m.sessionOf("a"); (got != oldA) != tc.newA {
				t.Errorf("a's session replaced: %v, want %v", got != oldA, tc.newA)
			}
			if tc.newA {
				if m.childPid("a") == pidA || m.ToolsVersion("a") == verA {
					t.Errorf("changed a: pid %d (was %d), tools version %d (was %d)", m.childPid("a"), pidA, m.ToolsVersion("a"), verA)
				}
			}
			if tc.aGone && processGone(pidA) {
				t.Fatal("a's old process ended before Retire")
			}
			ap.Retire()
			if tc.aGone {
				waitGone(t, pidA, 5*time.Second)
			} else if processGone(pidA) {
				t.Fatal("a's process ended though a was kept")
			}
		})
	}
}
