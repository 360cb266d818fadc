package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestWatchFile: each way an admin or an editor changes the config file (several events each)
// gives exactly one call once it is quiet, not one per event. Exactness without a sleep: after
// the first call the test changes a sibling file, the file's mode and the file once more, and when
// the second call comes the count is exactly 2 (a call per event of the first change would have
// made it more by then). That events of other files alone never call is not proven here: proving
// that nothing happens needs a wait.
func TestWatchFile(t *testing.T) {
	write := func(t *testing.T, p, data string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, file string)
	}{
		{"rewritten in place", func(t *testing.T, file string) { write(t, file, `{"pool_size": 3}`) }},
		{"an editor's rename over it", func(t *testing.T, file string) {
			write(t, file+".tmp", `{"pool_size": 3}`)
			if err := os.Rename(file+".tmp", file); err != nil {
				t.Fatal(err)
			}
		}},
		{"vim's backup dance", func(t *testing.T, file string) {
			if err := os.Rename(file, file+"~"); err != nil {
				t.Fatal(err)
			}
			write(t, file, `{"pool_size": 3}`)
			if err := os.Chmod(file, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(file + "~"); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed, then created", func(t *testing.T, file string) {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			write(t, file, `{"pool_size": 3}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "conductor.json")
			write(t, file, `{"pool_size": 2}`)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls atomic.Int32
			if err := watchFile(ctx, file, 50*time.Millisecond, func() { calls.Add(1) }, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			tt.change(t, file)
			testenv.WaitFor(t, "the call for the change", 10*time.Second, func() bool { return calls.Load() >= 1 })
			write(t, filepath.Join(dir, "other.json"), "{}")
			if err := os.Chmod(file, 0o600); err != nil {
				t.Fatal(err)
			}
			write(t, file, `{"pool_size": 4}`)
			testenv.WaitFor(t, "the call for the second change", 10*time.Second, func() bool { return calls.Load() >= 2 })
			if n := calls.Load(); n != 2 {
				t.Errorf("%d calls for two changes of the file, want 2", n)
			}
		})
	}
}
