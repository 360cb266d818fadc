package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/cgroups"
)

// TestBackgroundWeight: a Background start's cgroup begins at the low CPU weight; Raise in the
// middle of the boot gives it the default at once; a boot nobody raised gets the default when it
// is ready; a start without a Background is never lowered. Where the cpu controller is not
// usable, a Background start boots as any other.
func TestBackgroundWeight(t *testing.T) {
	r := newTestRunner(t, nil)
	ctx := context.Background()
	h := r.opts.Cgroups
	file, low, def := "cpu.shares", "64", "1024"
	dirOf := func(paths map[string]string) string { return paths["cpu"] }
	if h.Mode == cgroups.ModeUnified {
		file, low, def = "cpu.weight", "6", "100"
		dirOf = func(paths map[string]string) string { return paths[""] }
	}
	weight := func(paths map[string]string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dirOf(paths), file))
		if err != nil {
			t.Fatalf("read the sandbox's %s: %v", file, err)
		}
		return strings.TrimSpace(string(b))
	}
	slowBoot := "await new Promise((ok) => setTimeout(ok, 400));"
	type started struct {
		sb  *Sandbox
		err error
	}

	if !h.CanLowerWeight() {
		t.Logf("the cpu controller is not usable here (mode %s): checking that a Background start boots at all", h.Mode)
		sb, err := r.StartWith(ctx, StartOptions{Background: &Background{}})
		if err != nil {
			t.Fatalf("Background start without a cpu controller: %v", err)
		}
		sb.Close()
		return
	}
	for _, raise := range []bool{false, true} {
		bg := &Background{}
		done := make(chan started, 1)
		go func() {
			sb, err := r.StartWith(ctx, StartOptions{Boot: slowBoot, Background: bg})
			done <- started{sb, err}
		}()
		var paths map[string]string
		for deadline := time.Now().Add(30 * time.Second); paths == nil; time.Sleep(time.Millisecond) {
			bg.mu.Lock()
			paths = bg.paths
			bg.mu.Unlock()
			select {
			case s := <-done:
				if s.sb != nil {
					s.sb.Close()
				}
				t.Fatalf("raise=%v: the start ended (%v) before its cgroup was seen", raise, s.err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("raise=%v: no cgroup after 30 s", raise)
			}
		}
		if got := weight(paths); got != low {
			t.Errorf("raise=%v: while booting in the background, %s = %s, want %s", raise, file, got, low)
		}
		if raise {
			bg.Raise()
			if got := weight(paths); got != def {
				t.Errorf("raised in the middle of the boot: %s = %s, want %s at once", file, got, def)
			}
		}
		s := <-done
		if s.err != nil {
			t.Fatalf("raise=%v: start: %v", raise, s.err)
		}
		if got := weight(paths); got != def {
			t.Errorf("raise=%v: booted, %s = %s, want the default %s", raise, file, got, def)
		}
		s.sb.Close()
	}
	plain, err := r.StartWith(ctx, StartOptions{Boot: slowBoot})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	st, err := plain.ctr.State()
	if err != nil {
		t.Fatal(err)
	}
	if got := weight(st.CgroupPaths); got != def {
		t.Errorf("a start without a Background: %s = %s, want %s", file, got, def)
	}
}
