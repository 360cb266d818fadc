package upstream

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// Not parallel, none of them: they count the whole process's open fds. And
// no garbage collection while they measure: a dropped *os.File's finalizer
// would close a leaked fd and hide it.

// TestStartFailuresLeakNoFDs: a stdio upstream that cannot start — before its pipes are made (no
// such command) or after (spawn fails) — leaves no fd of this process open, whether started
// directly or through the Manager (a call that starts the session).
func TestStartFailuresLeakNoFDs(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "not-a-program")
	if err := os.WriteFile(notExec, []byte("neither ELF nor a script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	missingDir := filepath.Join(t.TempDir(), "no-such-dir")
	tests := []struct {
		name    string
		cfg     ServerConfig
		wantErr string
	}{
		{"command not found", ServerConfig{Command: "no-such-mcp-server-binary"}, "not found in PATH"},
		{"working directory missing", ServerConfig{Command: helperExe(t), Cwd: missingDir}, "starting " + helperExe(t)},
		{"not an executable format", ServerConfig{Command: notExec}, "exec format error"},
	}
	for _, tt := range tests {
		tt.cfg.Name, tt.cfg.Transport = "broken", TransportStdio
		t.Run(tt.name, func(t *testing.T) {
			start := func() {
				t.Helper()
				c, stdout, err := startChild(&tt.cfg, os.LookupEnv, 100*time.Millisecond, testLogger(t), nil)
				if err == nil {
					c.kill()
					<-c.reaped
					stdout.Close()
					t.Fatal("started")
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
				}
			}
			start() // once unmeasured: what the runtime opens once for good is not a leak
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			before := testenv.OpenFDs(t)
			for range 3 {
				start()
			}
			testenv.AssertNoNewFDs(t, before, 0)
		})
		t.Run(tt.name+" through the Manager", func(t *testing.T) {
			call := func() {
				t.Helper()
				m := NewManager(&Config{Servers: []ServerConfig{tt.cfg}}, Options{Logger: testLogger(t), StopGrace: 100 * time.Millisecond})
				_, err := m.CallTool(context.Background(), "broken", "echo", nil)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("call = %v, want an error saying %q", err, tt.wantErr)
				}
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
			call()
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			before := testenv.OpenFDs(t)
			for range 3 {
				call()
			}
			testenv.AssertNoNewFDs(t, before, time.Second)
		})
	}
}

// TestStartedChildHoldsOnlyItsEnds: after a start this process holds exactly its three pipe ends
// (stdin's write end, stdout's and stderr's read ends) — the parent's copies of the child's ends
// are closed — and none once the child is stopped and the caller closed stdout.
func TestStartedChildHoldsOnlyItsEnds(t *testing.T) {
	cfg := helperStdio(t, "helper")
	run := func(check bool) {
		t.Helper()
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		before := testenv.OpenFDs(t)
		c, stdout, err := startChild(&cfg, os.LookupEnv, 100*time.Millisecond, testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var pipes []string
		for _, fd := range testenv.NewFDs(before, testenv.OpenFDs(t)) {
			if strings.Contains(fd, "pipe:") {
				pipes = append(pipes, fd)
			}
		}
		c.stop()
		<-c.reaped
		stdout.Close()
		if check && len(pipes) != 3 {
			t.Errorf("pipe ends open after the start: %v, want 3 (ours only)", pipes)
		}
		select { // stderr ends with the child only if no copy of its write end is left here
		case <-c.stderr.done:
		case <-time.After(5 * time.Second):
			t.Fatal("the child's stderr did not end after it was reaped: a copy of its write end is still open")
		}
		if !check {
			return
		}
		testenv.AssertNoNewFDs(t, before, time.Second)
	}
	run(false)
	run(true)
}
