package quota

import (
	"context"
	"errors"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func writeFile(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Usage counts allocated blocks once per inode and never follows a link
// out of the workspace.
func TestUsage(t *testing.T) {
	ws, outside := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(outside, "big"), 8<<20)
	if err := os.MkdirAll(filepath.Join(ws, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ws, "a", "b", "f"), 1<<20)
	if err := os.Link(filepath.Join(ws, "a", "b", "f"), filepath.Join(ws, "hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(ws, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "big"), filepath.Join(ws, "bigLink")); err != nil {
		t.Fatal(err)
	}
	got, err := Usage(context.Background(), ws, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got < 1<<20 || got > 1<<20+64<<10 {
		t.Errorf("usage = %d, want 1 MiB plus directory blocks (hard link once, links not followed)", got)
	}
	if got, _ := Usage(context.Background(), ws, 4096); got <= 4096 || got > 1<<20+64<<10 {
		t.Errorf("usage stopping above 4096 = %d", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Usage(ctx, ws, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("usage with an ended context = %v, want context.Canceled", err)
	}
}

// Where project quotas are not enforced, Check measures the workspace and
// refuses at or over the quota with an error naming the usage, the quota,
// the variable and who can act.
func TestCheckBeforeRun(t *testing.T) {
	ws := t.TempDir()
	q, err := Setup(context.Background(), ws, 2<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Mode() != ModeChecked {
		testenv.Unavailable(t, "%s has enforced project quotas, so the before-run check cannot be exercised there (use a temp dir without them)", ws)
	}
	if d := q.Describe(); !strings.Contains(d, "checked before each run: ") || !strings.Contains(d, "2 MiB") {
		t.Errorf("Describe = %q", d)
	}
	tests := []struct {
		name    string
		size    int
		refused bool
	}{
		{"under the quota", 1 << 20, false},
		{"over the quota", 3 << 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, filepath.Join(ws, "data"), tc.size)
			err := q.Check(context.Background())
			if !tc.refused {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrOverQuota) {
				t.Fatalf("Check = %v, want ErrOverQuota", err)
			}
			for _, want := range []string{ws, "uses at least 3.0 MiB", "quota is 2 MiB", Variable, "admin"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not say %q", err, want)
				}
			}
		})
	}
}

// A scan that cannot finish in time refuses the run (fail closed).
func TestCheckUnmeasurable(t *testing.T) {
	ws := t.TempDir()
	q, err := Plan(ws, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if q.Mode() != ModeChecked {
		testenv.Unavailable(t, "%s has enforced project quotas, so the before-run check cannot be exercised there", ws)
	}
	q.scan = time.Nanosecond
	if err := q.Check(context.Background()); !errors.Is(err, ErrUnmeasurable) {
		t.Fatalf("Check with no time to scan = %v, want ErrUnmeasurable", err)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 8 << 20: "8 MiB", 3<<29 + 0: "1.5 GiB", 1536: "1.5 KiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// The kernel structures, as sized by linux/fs.h, linux/quota.h and
// linux/dqblk_xfs.h.
func TestKernelLayouts(t *testing.T) {
	for name, got := range map[string]uintptr{
		"fsxattr": unsafe.Sizeof(fsxattr{}), "if_dqblk": unsafe.Sizeof(dqblk{}), "fs_quota_statv": unsafe.Sizeof(quotaStatV{}),
	} {
		want := map[string]uintptr{"fsxattr": 28, "if_dqblk": 72, "fs_quota_statv": 160}[name]
		if got != want {
			t.Errorf("sizeof(%s) = %d, want %d", name, got, want)
		}
	}
	if off := unsafe.Offsetof(quotaStatV{}.PQuota); off != 56 {
		t.Errorf("offset of qs_pquota = %d, want 56", off)
	}
}
