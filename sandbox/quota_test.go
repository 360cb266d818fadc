package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/quota"
)

// Where the workspace's filesystem has no enforced project quotas, the quota
// is checked before each run: over it (spills included), the run is refused
// with an error naming the usage, the quota, the setting and the admin.
func TestWorkspaceQuotaChecked(t *testing.T) {
	ws, _ := newWorkspace(t)
	const limit = 2 << 20
	r := newTestRunner(t, func(o *Options) {
		o.Workspace = ws
		o.MaxOutput = 1024
		o.SpillMax = 4 << 20
		o.WorkspaceQuota = limit
	})
	if q := r.WorkspaceQuota(); q == nil || q.Mode() != quota.ModeChecked {
		testenv.Unavailable(t, "%s has enforced project quotas (%v), so the before-run check cannot be exercised there", ws, q.Describe())
	}
	ok := func(step string) {
		t.Helper()
		if res := runCode(t, r, `export default 1`, 20*time.Second); res.Status != StatusSuccess {
			t.Fatalf("%s: run refused: %s %+v", step, res.Status, res.Error)
		}
	}
	ok("empty workspace")
	if err := os.WriteFile(filepath.Join(ws, "data"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ok("1 MiB of 2")
	// A spill of 3 MiB takes the workspace over its quota: spills count.
	res := runCode(t, r, `console.log("z".repeat(3 << 20))`, 20*time.Second)
	if res.Status != StatusSuccess || res.StdoutFile == "" {
		t.Fatalf("spilling run: %s %+v %q", res.Status, res.Error, res.OutputNote)
	}
	res = runCode(t, r, `export default 1`, 20*time.Second)
	if res.Status != StatusError || res.Error == nil || res.Error.Type != ErrorQuota || res.LimitHit != LimitWorkspaceQuota {
		t.Fatalf("run over the quota: %s limit=%q %+v, want refused (%s)", res.Status, res.LimitHit, res.Error, ErrorQuota)
	}
	for _, want := range []string{"uses at least ", "quota is 2 MiB", "MCP_CONDUCTOR_WORKSPACE_QUOTA", "admin", ws} {
		if !strings.Contains(res.Error.Message, want) {
			t.Errorf("refusal %q does not say %q", res.Error.Message, want)
		}
	}
	for _, p := range []string{filepath.Join(ws, "data"), filepath.Join(ws, spillDirName)} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	ok("after the admin cleaned up")
}

// prjquotaWorkspace loop-mounts a fresh filesystem with project quotas
// enforced and returns a workspace directory on it owned by a test uid.
func prjquotaWorkspace(t *testing.T) string {
	t.Helper()
	mnt, why := testenv.TryLoopMount(t, 320<<20,
		testenv.Filesystem{Mkfs: []string{"mkfs.ext4", "-q", "-F", "-I", "256", "-O", "quota,project"}, Options: "prjquota"},
		testenv.Filesystem{Mkfs: []string{"mkfs.xfs", "-q", "-f"}, Options: "pquota"})
	if mnt == "" {
		// Tell a kernel built without quota formats (CONFIG_QFMT_V2,
		// CONFIG_XFS_QUOTA) from a host that cannot loop-mount at all: the
		// same filesystems mount without quotas. On such a kernel conductor
		// checks the quota before each run (TestWorkspaceQuotaChecked).
		testenv.LoopMount(t, 64<<20,
			testenv.Filesystem{Mkfs: []string{"mkfs.ext4", "-q", "-F"}},
			testenv.Filesystem{Mkfs: []string{"mkfs.xfs", "-q", "-f"}})
		testenv.KernelLacks(t, "project quotas on ext4 and xfs (%s)", strings.Join(why, "; "))
	}
	ws := filepath.Join(mnt, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ws, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	return ws
}

// With project quotas, the workspace quota holds while code writes: code
// with allow-write writing 64 MiB into an 8 MiB workspace gets EDQUOT, and
// the workspace never holds more than the quota (issue 9, finding 3).
func TestWorkspaceQuotaEnforced(t *testing.T) {
	if os.Geteuid() != 0 {
		// Rootless, project quotas cannot be set: the plan must say so and
		// fall back to the before-run check (TestWorkspaceQuotaChecked).
		q, err := quota.Plan(t.TempDir(), 8<<20)
		if err != nil {
			t.Fatal(err)
		}
		if q.Mode() != quota.ModeChecked || !strings.Contains(q.Describe(), "rootless") {
			t.Fatalf("rootless quota plan: %s, want checked before each run because rootless", q.Describe())
		}
		return
	}
	ws := prjquotaWorkspace(t)
	const limit = 8 << 20
	r := newTestRunner(t, func(o *Options) {
		o.Workspace = ws
		o.WorkspaceQuota = limit
		o.DenoFlags = []string{"--allow-read=" + ws, "--allow-write=" + ws}
	})
	q := r.WorkspaceQuota()
	if q.Mode() != quota.ModeProject {
		t.Fatalf("quota on a prjquota mount: %s", q.Describe())
	}
	code := fmt.Sprintf(`const f = Deno.openSync(%q, {write: true, create: true});
const c = new Uint8Array(1 << 20).fill(1); let n = 0;
try { for (let i = 0; i < 64; i++) { let o = 0; while (o < c.length) { o += f.writeSync(c.subarray(o)); } n++; } f.syncSync(); }
catch (e) { export_ = e.name + ": " + e.message; }
f.close();
var export_;
export default {written: n, error: export_ ?? null};`, ws+"/big")
	res := runCode(t, r, code, 60*time.Second)
	if res.Status != StatusSuccess {
		t.Fatalf("writer: %s %+v", res.Status, res.Error)
	}
	t.Logf("writer: %s", res.ReturnValue)
	if !strings.Contains(string(res.ReturnValue), "quota exceeded") {
		t.Errorf("writing 64 MiB into an 8 MiB workspace: %s, want a disk quota exceeded error", res.ReturnValue)
	}
	used, err := quota.Usage(context.Background(), ws, 0)
	if err != nil {
		t.Fatal(err)
	}
	if used > limit {
		t.Errorf("the workspace holds %d bytes, over its quota %d", used, limit)
	}
}
