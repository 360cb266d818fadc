package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestServeBadSettings: `conductor serve` refuses to start on a bad setting or
// flag: it exits non-zero at once, names the variable (or flag), the value
// (unless it is a secret) and what is allowed, and writes nothing to stdout,
// which in stdio mode belongs to the protocol.
func TestServeBadSettings(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0") // an address serve cannot bind
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	confDir := t.TempDir()
	brokenConf, badValueConf := filepath.Join(confDir, "broken.json"), filepath.Join(confDir, "bad.json")
	for p, data := range map[string]string{brokenConf: "{\"pool_size\": 4,\n \"identities\": {}}", badValueConf: `{"memory": "12Q"}`} {
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		env     []string
		args    []string
		exit    int
		mention []string
		hide    string // must not appear: a secret value
	}{
		{"config file with a reserved key", []string{"MCP_CONDUCTOR_CONFIG=" + brokenConf}, nil, 1,
			[]string{"MCP_CONDUCTOR_CONFIG " + brokenConf + `:2:2: key "identities": invalid identities: want an array`}, ""},
		{"config file over http with a bad value", []string{"MCP_CONDUCTOR_CONFIG=" + badValueConf}, []string{"--http", "127.0.0.1:0"}, 1,
			[]string{"MCP_CONDUCTOR_MEMORY (key memory in " + badValueConf + `)="12Q"`, "allowed:"}, ""},
		{"memory", []string{"MCP_CONDUCTOR_MEMORY=12Q"}, nil, 1,
			[]string{"MCP_CONDUCTOR_MEMORY", `"12Q"`, "allowed:", "64M"}, ""},
		{"memory over http", []string{"MCP_CONDUCTOR_MEMORY=12Q"}, []string{"--http", "127.0.0.1:0"}, 1,
			[]string{"MCP_CONDUCTOR_MEMORY", `"12Q"`, "allowed:"}, ""},
		{"max concurrency 0", []string{"MCP_CONDUCTOR_MAX_CONCURRENCY=0"}, nil, 1,
			[]string{"MCP_CONDUCTOR_MAX_CONCURRENCY", `"0"`, "allowed:", "1 to 256"}, ""},
		{"negative queue", []string{"MCP_CONDUCTOR_MAX_QUEUE=-1"}, nil, 1,
			[]string{"MCP_CONDUCTOR_MAX_QUEUE", `"-1"`, "allowed:"}, ""},
		{"max code not a size", []string{"MCP_CONDUCTOR_MAX_CODE=lots"}, nil, 1,
			[]string{"MCP_CONDUCTOR_MAX_CODE", `"lots"`, "allowed:"}, ""},
		{"timeout below minimum", []string{"MCP_CONDUCTOR_DEFAULT_TIMEOUT=5"}, nil, 1,
			[]string{"MCP_CONDUCTOR_DEFAULT_TIMEOUT", `"5"`, "allowed:"}, ""},
		{"short token, value hidden", []string{"MCP_CONDUCTOR_HTTP_TOKEN=hunter2"}, []string{"--http", "127.0.0.1:0"}, 1,
			[]string{"MCP_CONDUCTOR_HTTP_TOKEN", "allowed:", "16 to 4096"}, "hunter2"},
		{"package list with a shell character", []string{"MCP_CONDUCTOR_ALLOWED_PACKAGES=npm:zod@^3;rm"}, nil, 1,
			[]string{"MCP_CONDUCTOR_ALLOWED_PACKAGES", "allowed:"}, ""},
		{"package without npm: or jsr:", []string{"MCP_CONDUCTOR_ALLOWED_PACKAGES=left-pad@1"}, nil, 1,
			[]string{"MCP_CONDUCTOR_ALLOWED_PACKAGES", "left-pad"}, ""},
		{"relative state dir", []string{"MCP_CONDUCTOR_STATE_DIR=relative/dir"}, nil, 1,
			[]string{"MCP_CONDUCTOR_STATE_DIR", `"relative/dir"`, "allowed:", "absolute"}, ""},
		{"two bad variables, both named", []string{"MCP_CONDUCTOR_PIDS=-1", "MCP_CONDUCTOR_CPUS=many"}, nil, 1,
			[]string{"MCP_CONDUCTOR_PIDS", "MCP_CONDUCTOR_CPUS"}, ""},
		{"read grant of a path the sandbox lacks", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-read=/data,allow-write=/srv"}, nil, 1,
			[]string{"MCP_CONDUCTOR_RUN_ARGS grants what code cannot use in a sandbox", "allow-read=/data grants nothing: /data is not in the sandbox",
				"allow-write=/srv grants nothing", "set MCP_CONDUCTOR_WORKSPACE"}, ""},
		{"type-checking that cannot run here fails closed", []string{"MCP_CONDUCTOR_TYPECHECK=1", "MCP_CONDUCTOR_MEMORY=64M"}, nil, 1,
			[]string{"MCP_CONDUCTOR_TYPECHECK=1: the type checker cannot run here", "out of memory", "MCP_CONDUCTOR_MEMORY"}, ""},
		{"pool max below the pool size", []string{"MCP_CONDUCTOR_POOL_SIZE=4", "MCP_CONDUCTOR_POOL_MAX=3"}, nil, 1,
			[]string{"MCP_CONDUCTOR_POOL_MAX", `"3"`, "allowed:", "at least MCP_CONDUCTOR_POOL_SIZE (4)"}, ""},
		{"audit log to stdout on stdio", []string{"MCP_CONDUCTOR_AUDIT=stdout"}, nil, 1,
			[]string{"MCP_CONDUCTOR_AUDIT", `"stdout"`, "stdout is the MCP channel", "allowed:", "stdout with serve --http"}, ""},
		{"audit log in a missing directory", []string{"MCP_CONDUCTOR_AUDIT=/nonexistent-dir/audit.log"}, nil, 1,
			[]string{"MCP_CONDUCTOR_AUDIT", "/nonexistent-dir/audit.log", "cannot open", "no such file or directory", "allowed:"}, ""},
		{"audit log over http in a missing directory", []string{"MCP_CONDUCTOR_AUDIT=/nonexistent-dir/audit.log"}, []string{"--http", "127.0.0.1:0"}, 1,
			[]string{"MCP_CONDUCTOR_AUDIT", "cannot open"}, ""},
		{"audit code without an audit log", []string{"MCP_CONDUCTOR_AUDIT_CODE=1"}, nil, 1,
			[]string{"MCP_CONDUCTOR_AUDIT_CODE", "MCP_CONDUCTOR_AUDIT is not set"}, ""},
		{"metrics address with a host name", []string{"MCP_CONDUCTOR_METRICS_ADDR=metrics.example.com:9464"}, nil, 1,
			[]string{"MCP_CONDUCTOR_METRICS_ADDR", `"metrics.example.com:9464"`, "allowed:", "literal IP address or localhost"}, ""},
		{"metrics address without a port", []string{"MCP_CONDUCTOR_METRICS_ADDR=127.0.0.1"}, []string{"--http", "127.0.0.1:0"}, 1,
			[]string{"MCP_CONDUCTOR_METRICS_ADDR", "allowed:", "PORT from 1 to 65535"}, ""},
		{"metrics address in use", []string{"MCP_CONDUCTOR_METRICS_ADDR=" + held.Addr().String()}, nil, 1,
			[]string{"MCP_CONDUCTOR_METRICS_ADDR", held.Addr().String(), "address already in use", "or unset it"}, ""},
		{"bad --http address", nil, []string{"--http", "not-an-address"}, 2,
			[]string{"--http", "not-an-address"}, ""},
		{"relative unix socket", nil, []string{"--http", "unix:relative.sock"}, 2,
			[]string{"--http", "relative.sock", "absolute"}, ""},
		{"unix socket over a file", nil, []string{"--http", "unix:/etc/hostname"}, 1,
			[]string{"/etc/hostname", "not a socket", "refusing"}, ""},
		{"bad --log-level", nil, []string{"--log-level", "loud"}, 2,
			[]string{"--log-level", "loud", "debug, info, warn, error"}, ""},
		{"stray argument", nil, []string{"stdio"}, 2,
			[]string{"stdio", "usage: conductor serve"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := conductor(t, "", tc.env, append([]string{"serve"}, tc.args...)...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.exit, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q: a refused start must write nothing there (it is the stdio protocol channel)", out)
			}
			for _, m := range tc.mention {
				if !strings.Contains(errOut, m) {
					t.Errorf("stderr %q does not mention %q", errOut, m)
				}
			}
			if tc.hide != "" && strings.Contains(errOut, tc.hide) {
				t.Errorf("stderr %q reveals the secret value", errOut)
			}
		})
	}
}

// TestServeRunsFromSealedCopy: `serve` re-executes itself from a sealed
// memfd, so no sandbox start copies or overlays the binary again, and it
// still finds its data directory next to the binary on disk.
func TestServeRunsFromSealedCopy(t *testing.T) {
	cmd := exec.Command(binary(t), "serve")
	env := []string{"MCP_CONDUCTOR_STATE_DIR=" + t.TempDir(), "MCP_CONDUCTOR_POOL_SIZE=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCP_CONDUCTOR_DATA_DIR=") { // found through the binary's path
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	ctx := context.Background()
	client := sdk.NewClient(&sdk.Implementation{Name: "seal-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nstderr: %s", err, stderr.String())
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(exe, "/memfd:") {
		t.Errorf("serve runs from %q; want a sealed memfd copy", exe)
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_deno_code", Arguments: map[string]any{"deno_code": "6 * 7"}})
	if err != nil || res.IsError {
		t.Fatalf("run_deno_code from the sealed server: %v %+v\nstderr: %s", err, res, stderr.String())
	}
	raw, _ := json.Marshal(res.StructuredContent)
	if !strings.Contains(string(raw), `"returnValue":42`) {
		t.Errorf("result %s, want 42", raw)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if strings.Contains(stderr.String(), "serving from the binary on disk") {
		t.Errorf("server reports it is not sealed:\n%s", stderr.String())
	}
}

// TestServeGCSetting: serve collects at internal/gctune's percentage (the
// heap may grow to about 5x what the last collection kept, not 2x), unless
// the environment sets GOGC, which the runtime applied and serve keeps. Read
// from the runtime's own trace (GODEBUG=gctrace=1 on stderr): each cycle's
// goal against the heap the cycle before it marked, on the last pair whose
// marked heap is at least 3 MB (the trace rounds to whole MB); the server's
// idle memory release forces a last collection after the calls.
func TestServeGCSetting(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		tuned bool // want goal/marked >= 3.5 (Percent 400), else <= 3.5 (100)
	}{
		{"tuned", nil, true},
		{"GOGC from the environment kept", []string{"GOGC=100"}, false},
	}
	gcLine := regexp.MustCompile(`(?m)^gc \d+ @.* (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary(t), "serve")
			env := []string{"MCP_CONDUCTOR_STATE_DIR=" + t.TempDir(), "MCP_CONDUCTOR_POOL_SIZE=0", "GODEBUG=gctrace=1"}
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GODEBUG=") {
					env = append(env, kv)
				}
			}
			cmd.Env = append(env, tc.env...)
			var stderr testenv.SyncBuffer
			cmd.Stderr = &stderr
			ctx := context.Background()
			client := sdk.NewClient(&sdk.Implementation{Name: "gc-test", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
			if err != nil {
				t.Fatalf("connect: %v\nstderr: %s", err, stderr.String())
			}
			defer cs.Close()
			for range 3 {
				res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_deno_code", Arguments: map[string]any{"deno_code": "6 * 7"}})
				if err != nil || res.IsError {
					t.Fatalf("run_deno_code: %v %+v\nstderr: %s", err, res, stderr.String())
				}
			}
			testenv.WaitFor(t, "the idle release's forced collection", 10*time.Second, func() bool {
				return strings.Contains(stderr.String(), "(forced)")
			})
			ms := gcLine.FindAllStringSubmatch(stderr.String(), -1)
			ratio := 0.0
			for i := 1; i < len(ms); i++ {
				marked, _ := strconv.Atoi(ms[i-1][3])
				goal, _ := strconv.Atoi(ms[i][4])
				if marked >= 3 {
					ratio = float64(goal) / float64(marked)
				}
			}
			if ratio == 0 {
				t.Fatalf("no two collections with >= 3 MB marked in the trace:\n%s", stderr.String())
			}
			if tuned := ratio >= 3.5; tuned != tc.tuned {
				t.Errorf("goal/marked = %.2f (tuned %v), want tuned %v\ntrace: %q", ratio, tuned, tc.tuned, ms)
			}
		})
	}
}

// TestDoctorMetricsCheck: doctor's line for MCP_CONDUCTOR_METRICS_ADDR names where the metrics
// are served, warns beyond loopback or when the address is taken, and fails when this host
// cannot bind it (serve refuses to start then).
func TestDoctorMetricsCheck(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	_ = free.Close()
	_, freePort, _ := net.SplitHostPort(freeAddr)
	tests := []struct {
		addr    string
		ok      bool
		mention []string
		lacks   string
	}{
		{freeAddr, true, []string{"WITHOUT a token at http://" + freeAddr}, "WARNING"},
		{":" + freePort, true, []string{"http://127.0.0.1:" + freePort}, "WARNING"},
		{held.Addr().String(), true, []string{"WARNING: in use now"}, ""},
		{"0.0.0.0:" + freePort, true, []string{"WARNING: beyond loopback"}, ""},
		// TEST-NET-1 is no address of this host: binding it fails without sending anything.
		{"192.0.2.1:9464", false, []string{"cannot be served", "serve refuses to start"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			c := metricsCheck(config.Settings{MetricsAddr: tc.addr})
			if c.OK != tc.ok {
				t.Errorf("OK = %v, want %v: %+v", c.OK, tc.ok, c)
			}
			for _, m := range tc.mention {
				if !strings.Contains(c.Detail, m) {
					t.Errorf("detail %q lacks %q", c.Detail, m)
				}
			}
			if tc.lacks != "" && strings.Contains(c.Detail, tc.lacks) {
				t.Errorf("detail %q has %q", c.Detail, tc.lacks)
			}
			if !tc.ok && !strings.Contains(c.Fix, "MCP_CONDUCTOR_METRICS_ADDR") {
				t.Errorf("fix %q does not name the variable", c.Fix)
			}
		})
	}
}
