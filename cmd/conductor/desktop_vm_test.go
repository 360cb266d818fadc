//go:build desktop

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// desktopPhaseVar says what TestDesktopStdio checks (built only with the tag desktop, so
// `make test` never has it to skip): `make test-vm` phase d sets it, as a fresh
// unprivileged user with a systemd user manager (scripts/vm/guest-run.sh), to
//   - "limits": the client starts the server as the README's Desktop section says;
//     every limit must hold and nothing may be left behind,
//   - "nobus": no user bus; the server must refuse, naming the bus and the fix.
const desktopPhaseVar = "CONDUCTOR_DESKTOP_PHASE"

// TestDesktopStdio: an MCP client starts `conductor serve` over stdio from the README's
// Desktop config, as a desktop app does (gated: see desktopPhaseVar).
func TestDesktopStdio(t *testing.T) {
	phase := os.Getenv(desktopPhaseVar)
	if phase == "" {
		t.Fatalf("%s is not set: this test is built only for `make test-vm` phase d (build tag desktop), which sets it", desktopPhaseVar)
	}
	if os.Geteuid() == 0 {
		t.Fatalf("%s is set but the test runs as root", desktopPhaseVar)
	}
	bin := os.Getenv("CONDUCTOR_BIN")
	if bin == "" {
		testenv.Unavailable(t, "CONDUCTOR_BIN (the installed bin/conductor) is not set")
	}
	srv := readmeDesktopConfig(t).MCPServers["conductor"]
	// Only the install path is substituted: /path/to/conductor is the checkout.
	command := filepath.Join(filepath.Dir(filepath.Dir(bin)), strings.TrimPrefix(srv.Command, "/path/to/conductor/"))
	env := os.Environ()
	for k, v := range srv.Env {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(command, srv.Args...)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr

	switch phase {
	case "nobus":
		cmd.Env = append(withoutEnv(env, "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"), "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent")
		cmd.Stdin = strings.NewReader("")
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("serve without a user bus: %v, want a refusal (non-zero exit)\nstderr: %s", err, stderr.String())
		}
		refusal := lastLine(stderr.String())
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, "unix:path=/nonexistent") {
				refusal = l
				break
			}
		}
		t.Logf("refused: %s", refusal)
		for _, want := range []string{"unix:path=/nonexistent", "did not start a transient scope with Delegate=yes", "loginctl enable-linger", "dbus-user-session", "systemd-run --user --scope -p Delegate=yes", "MCP_CONDUCTOR_ALLOW_DEGRADED=1"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("refusal lacks %q:\n%s", want, stderr.String())
			}
		}
	case "limits":
		cmd.Env = env
		desktopLimits(t, cmd, &stderr)
	default:
		t.Fatalf("unknown %s %q", desktopPhaseVar, phase)
	}
}

func desktopLimits(t *testing.T, cmd *exec.Cmd, stderr *testenv.SyncBuffer) {
	ctx := context.Background()
	client := sdk.NewClient(&sdk.Implementation{Name: "desktop-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nstderr: %s", err, stderr.String())
	}
	pid := cmd.Process.Pid
	unit := fmt.Sprintf("conductor-%d.scope", pid)
	timeout := min(testenv.Scale(30*time.Second), 290*time.Second).Milliseconds()
	call := func(tool string, args map[string]any, code string) map[string]any {
		t.Helper()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v\nstderr: %s", tool, err, stderr.String())
		}
		raw, _ := json.Marshal(res.StructuredContent)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		t.Logf("%.60q: %s", code, truncate(raw, 400))
		return out
	}
	run := func(code string) map[string]any {
		t.Helper()
		return call("run_deno_code", map[string]any{"deno_code": code, "timeout": timeout}, code)
	}
	hello := run(`console.log("hello"); "hello"`)
	if hello["status"] != "success" || hello["returnValue"] != "hello" {
		t.Errorf("hello: %v, want success returning hello\nstderr: %s", hello, stderr.String())
	}
	// The server moved itself into its own delegated scope's server leaf.
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	t.Logf("server %d in %s", pid, strings.TrimPrefix(strings.TrimSpace(string(cg)), "0::"))
	if want := "/" + unit + "/conductor-server\n"; !strings.HasSuffix(string(cg), want) {
		t.Errorf("server cgroup %q, want …%s", cg, want)
	}
	if out := userUnits(t, unit); !strings.Contains(out, unit) {
		t.Errorf("systemctl --user list-units does not list %s while the server runs:\n%s", unit, out)
	}
	oom := run("const a = []; for (let i = 0; i < 32; i++) a.push(new Uint8Array(64 << 20).fill(i));")
	if oom["status"] != "oom" || oom["limitHit"] != "memory" {
		t.Errorf("memory bomb: status %v limitHit %v, want oom/memory", oom["status"], oom["limitHit"])
	}
	// A process bomb: the README's config grants deno no --allow-run, so it is Python's
	// (execute_code), forking until pids.max refuses.
	bomb := call("execute_code", map[string]any{"language": "python", "timeout": timeout, "entrypoint_code": `import os, time
kids = []
try:
    for i in range(1000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
except OSError as e:
    print("processes", len(kids), "then", e)
for k in kids:
    os.kill(k, 9)
`}, "python fork bomb")
	if bomb["limitHit"] != "pids" {
		t.Errorf("process bomb: status %v limitHit %v, want pids", bomb["status"], bomb["limitHit"])
	}

	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	// After the client closed: the server is gone (reaped by the transport), systemd
	// has collected the scope, and no conductor cgroup remains.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server pid %d still exists after close (kill 0: %v)", pid, err)
	}
	testenv.WaitFor(t, "systemd to collect "+unit, testenv.Scale(10*time.Second), func() bool {
		return !strings.Contains(userUnits(t, "conductor-*"), "conductor-")
	})
	var left []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "conductor-") && !strings.HasPrefix(d.Name(), "conductor-vm-") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("conductor cgroups left after the client exited: %v", left)
	}
	if t.Failed() {
		t.Logf("server stderr:\n%s", stderr.String())
	}
}

// userUnits lists the user manager's units matching pattern, all states.
func userUnits(t *testing.T, pattern string) string {
	t.Helper()
	out, err := exec.Command("systemctl", "--user", "list-units", "--all", "--no-legend", "--plain", pattern).CombinedOutput()
	if err != nil {
		t.Fatalf("systemctl --user list-units: %v\n%s", err, out)
	}
	return string(out)
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(bytes.Clone(b[:n]), "…"...)
}
