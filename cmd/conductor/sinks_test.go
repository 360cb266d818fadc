package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestAuditSink: the audit log serve would use, or its refusal naming the variable, what is wrong
// and what is allowed; a file gets a SIGHUP hook, a stream none.
func TestAuditSink(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		s       config.Settings
		stdio   bool
		sink    bool
		hup     bool
		wantErr []string
	}{
		{"off", config.Settings{}, true, false, false, nil},
		{"stderr on stdio", config.Settings{Audit: "stderr"}, true, true, false, nil},
		{"stdout over http", config.Settings{Audit: "stdout"}, false, true, false, nil},
		{"stdout on stdio", config.Settings{Audit: "stdout"}, true, false, false,
			[]string{config.VarAudit + `="stdout"`, "stdout is the MCP channel", "allowed:", "stdout with serve --http", "the admin"}},
		{"file", config.Settings{Audit: filepath.Join(dir, "audit.log"), AuditCode: true}, true, true, true, nil},
		{"file in a missing directory", config.Settings{Audit: filepath.Join(dir, "no", "audit.log")}, false, false, false,
			[]string{config.VarAudit, "cannot open", "no such file or directory", "its directory must exist"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := auditSink(tc.s, tc.stdio, slog.New(slog.DiscardHandler))
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if !errors.Is(err, config.ErrInvalid) {
					t.Errorf("error %v is not a config.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (r.sink != nil) != tc.sink || (r.hup != nil) != tc.hup {
				t.Errorf("sink %v hup %v, want sink %v hup %v", r.sink != nil, r.hup != nil, tc.sink, tc.hup)
			}
			if r.close != nil {
				if err := r.close(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestAuditCheck: doctor names the destination, and fails with a fix when serve could not open it.
func TestAuditCheck(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		s    config.Settings
		ok   bool
		want string
	}{
		{"off", config.Settings{}, true, "no audit log"},
		{"stderr", config.Settings{Audit: "stderr"}, true, "stderr"},
		{"stdout", config.Settings{Audit: "stdout", AuditCode: true}, true, "only with serve --http"},
		{"new file", config.Settings{Audit: filepath.Join(dir, "a.log")}, true, "appended to " + filepath.Join(dir, "a.log")},
		{"missing directory", config.Settings{Audit: filepath.Join(dir, "no", "a.log")}, false, "no such file or directory"},
		{"a directory", config.Settings{Audit: dir}, false, "is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := auditCheck(tc.s)
			if c.OK != tc.ok || !strings.Contains(c.Detail, tc.want) {
				t.Errorf("check %+v, want ok %v and %q", c, tc.ok, tc.want)
			}
			if !c.OK && !strings.Contains(c.Fix, config.VarAudit) {
				t.Errorf("fix %q does not name %s", c.Fix, config.VarAudit)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "a.log")); err == nil {
		t.Error("doctor created the audit file; only serve does")
	}
}

// TestHUPHooks: a SIGHUP runs every hook, in order, each time, even after one failed.
func TestHUPHooks(t *testing.T) {
	ran := make(chan string, 10)
	var h hupHooks
	h.add(hupHook{name: "fails", run: func() error { ran <- "fails"; return errors.New("cannot") }})
	h.add(hupHook{name: "works", run: func() error { ran <- "works"; return nil }})
	var logged testenv.SyncBuffer
	stop := h.listen(slog.New(slog.NewTextHandler(&logged, nil)))
	defer stop()
	for round := range 2 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"fails", "works"} {
			select {
			case got := <-ran:
				if got != want {
					t.Fatalf("round %d: hook %q ran, want %q", round, got, want)
				}
			case <-time.After(testenv.Scale(10 * time.Second)):
				t.Fatalf("round %d: hook %q did not run after SIGHUP", round, want)
			}
		}
	}
	testenv.WaitFor(t, "the failed hook logged", 10*time.Second, func() bool {
		return strings.Contains(logged.String(), "hook=fails err=cannot")
	})
}
