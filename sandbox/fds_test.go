package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestStartFailuresLeakNoFDs: a sandbox start that fails — on a bad option before the container's
// init starts (an install file that cannot be written), when the init cannot start its program,
// or when deno exits while booting — leaves no fd of this process open once it returned, and
// neither does a sandbox started and closed unused. Not parallel: it counts the whole process's
// open fds (/proc/self/fd).
func TestStartFailuresLeakNoFDs(t *testing.T) {
	r := newTestRunner(t, nil)
	root := testRoot(t)
	installDir := func(t *testing.T) string {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "taken"), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name    string
		so      func(t *testing.T) StartOptions
		wantErr string // "" = the start succeeds, and the sandbox is closed unused
	}{
		{"file cannot be written", func(t *testing.T) StartOptions {
			return StartOptions{Command: []string{root.DenoPath}, Isolated: true, Writable: &Mount{Host: installDir(t), Path: root.DenoDir},
				Files: map[string][]byte{"taken": []byte("a directory has this name")}}
		}, "files: "},
		{"command missing", func(t *testing.T) StartOptions {
			return StartOptions{Command: []string{"/no-such-installer"}, Isolated: true, Writable: &Mount{Host: installDir(t), Path: root.DenoDir}}
		}, "/no-such-installer"},
		{"deno exits while booting", func(t *testing.T) StartOptions {
			return StartOptions{Boot: "throw new Error('boot broke')"}
		}, "boot broke"},
		{"started and closed unused", func(t *testing.T) StartOptions { return StartOptions{} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := func() {
				t.Helper()
				sb, err := r.StartWith(context.Background(), tt.so(t))
				if tt.wantErr == "" {
					if err != nil {
						t.Fatal(err)
					}
					if err := sb.Close(); err != nil {
						t.Fatal(err)
					}
					return
				}
				if err == nil {
					sb.Close()
					t.Fatal("started")
				}
				if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("start = %v, want ErrStart saying %q", err, tt.wantErr)
				}
			}
			start() // once unmeasured: what the runtime opens once for good is not a leak
			// No garbage collection while measuring: a dropped *os.File's finalizer would
			// close a leaked fd and hide it.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			before := testenv.OpenFDs(t)
			for range 2 {
				start()
			}
			// The output readers close their ends when the killed sandbox's pipes end.
			testenv.AssertNoNewFDs(t, before, testenv.Scale(5*time.Second), execFifo(r))
			// libcontainer (runc v1.5.2, Container.Start) closes the exec fifo's O_PATH fd only
			// when the init started; after a failed start its *os.File keeps it until the
			// garbage collector finalizes the dropped Container. Nothing else remains then.
			deadline := time.Now().Add(testenv.Scale(5 * time.Second))
			for len(testenv.NewFDs(before, testenv.OpenFDs(t))) > 0 && time.Now().Before(deadline) {
				runtime.GC()
				time.Sleep(20 * time.Millisecond)
			}
			testenv.AssertNoNewFDs(t, before, 0)
		})
	}
}

// execFifo matches libcontainer's O_PATH fd of a sandbox's exec fifo
// (<state dir>/<sandbox id>/exec.fifo) of r.
func execFifo(r *Runner) func(fd string) bool {
	return func(fd string) bool {
		_, target, _ := strings.Cut(fd, " -> ")
		target = strings.TrimSuffix(target, " (deleted)")
		return filepath.Base(target) == "exec.fifo" && strings.HasPrefix(filepath.Base(filepath.Dir(target)), r.Instance()+"-")
	}
}
