package sandbox

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/cgroups"
	"github.com/conductor-sandbox/conductor/seccomp"
)

// TestRootless runs in the rootless phase of `make test`
// (scripts/test-rootless.sh), as an unprivileged user, once without and once
// with a delegated cgroup subtree. In the root phase it has nothing to prove:
// the root phase's own tests cover root mode.
func TestRootless(t *testing.T) {
	phase := os.Getenv("CONDUCTOR_ROOTLESS_PHASE")
	if phase == "" {
		t.Skip("rootless phase only: scripts/test-rootless.sh runs it as an unprivileged user")
	}
	if os.Geteuid() == 0 {
		t.Fatal("CONDUCTOR_ROOTLESS_PHASE is set but the test runs as root")
	}
	root := testRoot(t)
	limits := cgroups.Limits{Memory: 512 << 20, Pids: cgroups.DefaultPids(runtime.NumCPU())}
	host, err := testHost(t)
	if err != nil {
		t.Fatalf("cgroup setup: %v", err)
	}
	opts := func(degraded bool) Options {
		return Options{StateDir: t.TempDir(), Root: root, Cgroups: host, Seccomp: seccomp.NewCache(), Limits: limits, AllowDegraded: degraded}
	}

	switch phase {
	case "undelegated":
		_, err := New(context.Background(), opts(false))
		if !errors.Is(err, ErrUnenforceable) {
			t.Fatalf("rootless without delegated cgroups: New = %v, want ErrUnenforceable", err)
		}
		for _, want := range []string{"memory", "pids", "MCP_CONDUCTOR_ALLOW_DEGRADED"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not mention %q", err, want)
			}
		}
		o := opts(true)
		r, err := New(context.Background(), o)
		if err != nil {
			t.Fatalf("degraded mode allowed, New = %v", err)
		}
		defer func() { r.Close(); assertNoLeftovers(t, o.StateDir, r.Instance()) }()
		res := runCode(t, r, "console.log('degraded but running')", 20*time.Second)
		if res.Status != StatusSuccess {
			t.Fatalf("degraded run: %s %+v %q", res.Status, res.Error, res.Stderr)
		}
		joined := strings.Join(res.Degraded, "; ")
		if !strings.Contains(joined, "memory") || !strings.Contains(joined, "pids") {
			t.Fatalf("degraded result lists %q; want memory and pids named", joined)
		}
	case "delegated":
		if m := host.Missing(limits); len(m) > 0 {
			t.Fatalf("delegated subtree %q: limits still missing: %v", os.Getenv("MCP_CONDUCTOR_CGROUP_PARENT"), m)
		}
		o := opts(false)
		o.DenoFlags = []string{"--allow-all"} // /proc/self/uid_map is special-cased by deno
		r, err := New(context.Background(), o)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer func() { r.Close(); assertNoLeftovers(t, o.StateDir, r.Instance()) }()
		res := runCode(t, r, "console.log(Deno.readTextFileSync('/proc/self/uid_map').trim().split(/\\s+/).join(' '))", 20*time.Second)
		if res.Status != StatusSuccess {
			t.Fatalf("run: %s %+v %q", res.Status, res.Error, res.Stderr)
		}
		if want := "0 " + strconv.Itoa(os.Geteuid()) + " 1\n"; res.Stdout != want {
			t.Errorf("uid_map = %q, want %q (sandbox root is the user's own uid)", res.Stdout, want)
		}
		if len(res.Degraded) != 0 {
			t.Errorf("degraded with delegation: %v", res.Degraded)
		}
	default:
		t.Fatalf("unknown CONDUCTOR_ROOTLESS_PHASE %q", phase)
	}
}
