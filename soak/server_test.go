//go:build soak

package soak_test

// The server under test and what it leaves on the host: `conductor serve`
// over stdio or streamable HTTP, its own state dir and TMPDIR, and the
// counts taken before and after each phase.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/leftovers"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// tools are the programs the soak needs, each checked with the reason when
// missing (a failure on CI, a skip elsewhere).
type tools struct {
	conductor  string
	deno       string
	node       string
	everything string // server-everything's dist/index.js
}

func needTools(t *testing.T) tools {
	t.Helper()
	root := testenv.RepoRoot()
	path := func(env, def, fix string) string {
		p := os.Getenv(env)
		if p == "" {
			p = filepath.Join(root, def)
		}
		if _, err := os.Stat(p); err != nil {
			testenv.Unavailable(t, "%s not found (set %s or run `%s`): %v", p, env, fix, err)
		}
		return p
	}
	tl := tools{
		conductor: path("CONDUCTOR_BIN", "bin/conductor", "make build"),
		deno:      path("CONDUCTOR_DENO", ".build/deno", "make build"),
	}
	mcpTools := path("CONDUCTOR_MCP_TOOLS", ".build/mcp-tools", "make mcp-tools")
	tl.everything = filepath.Join(mcpTools, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if _, err := os.Stat(tl.everything); err != nil {
		testenv.Unavailable(t, "server-everything not found (run `make mcp-tools`): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Unavailable(t, "node is not on PATH (apt-get install -y nodejs npm): %v", err)
	}
	tl.node = node
	return tl
}

// upstreamName is the upstream server-everything is configured as.
const upstreamName = "everything"

// token is the bearer token of the HTTP server.
const token = "soak-token-0123456789abcdef"

// server is one `conductor serve` under test.
type server struct {
	transport string // "stdio" or "http"
	cmd       *exec.Cmd
	pid       int
	cs        *sdk.ClientSession
	stderr    *testenv.SyncBuffer
	stateDir  string
	tmpDir    string // the server's TMPDIR
	instance  string // conductor-<hex>: the marker its sandboxes' cgroups carry
	exited    chan struct{}
	httpTr    *http.Transport
	nudges    int // small runs made so far to have the server release memory (settle)
}

// serverEnv is this test's environment without conductor settings (host
// ones stay), plus the soak's.
func serverEnv(extra ...string) []string {
	keep := map[string]bool{"MCP_CONDUCTOR_DATA_DIR": true, "MCP_CONDUCTOR_CGROUP_PARENT": true, "MCP_CONDUCTOR_ALLOW_DEGRADED": true}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(name, "MCP_CONDUCTOR_") && !keep[name]) || name == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// settings are the server's: 8 executions at once, limits small enough
// that bombs end in seconds, 64 KiB of each stream inline (a flood is
// counted, not kept), allow-run so code can start processes.
func settings(stateDir, tmpDir, cfg string) []string {
	return []string{
		"MCP_CONDUCTOR_STATE_DIR=" + stateDir,
		"TMPDIR=" + tmpDir,
		"MCP_CONDUCTOR_MCP_CONFIG=" + cfg,
		"MCP_CONDUCTOR_MAX_CONCURRENCY=8",
		"MCP_CONDUCTOR_MAX_QUEUE=64",
		"MCP_CONDUCTOR_MEMORY=256M",
		"MCP_CONDUCTOR_MAX_OUTPUT=64K",
		"MCP_CONDUCTOR_PIDS=24",
		"MCP_CONDUCTOR_RUN_ARGS=allow-run",
	}
}

// start starts `conductor serve` over transport and connects a go-sdk
// client. Cleanup stops whatever still runs.
func start(t *testing.T, tl tools, transport string) *server {
	t.Helper()
	s := &server{transport: transport, stderr: &testenv.SyncBuffer{}, stateDir: t.TempDir(), tmpDir: t.TempDir(), exited: make(chan struct{})}
	cfgPath := filepath.Join(t.TempDir(), "mcp-config.json")
	cfg, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{
		upstreamName: map[string]any{"command": tl.node, "args": []string{tl.everything, "stdio"}},
	}})
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	env := serverEnv(settings(s.stateDir, s.tmpDir, cfgPath)...)
	client := sdk.NewClient(&sdk.Implementation{Name: "conductor-soak", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch transport {
	case "stdio":
		s.cmd = exec.Command(tl.conductor, "serve")
		s.cmd.Env = env
		s.cmd.Stderr = s.stderr
		cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: s.cmd, TerminateDuration: 20 * time.Second}, nil)
		if err != nil {
			t.Fatalf("connect to `conductor serve` over stdio: %v\nstderr:\n%s", err, s.stderr)
		}
		s.cs = cs
		s.pid = s.cmd.Process.Pid
		go func() {
			for leftovers.Alive(s.pid) {
				time.Sleep(50 * time.Millisecond)
			}
			close(s.exited)
		}()
	case "http":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s.cmd = exec.Command(tl.conductor, "serve", "--http", addr)
		s.cmd.Env = append(env, "MCP_CONDUCTOR_HTTP_TOKEN="+token)
		s.cmd.Stderr = s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s.pid = s.cmd.Process.Pid
		go func() { _ = s.cmd.Wait(); close(s.exited) }()
		if !waitFor(30*time.Second, func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}) {
			_ = s.cmd.Process.Kill()
			t.Fatalf("`conductor serve --http %s` not healthy within 30 s\nstderr:\n%s", addr, s.stderr)
		}
		s.httpTr = &http.Transport{MaxIdleConnsPerHost: 16}
		cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{
			Endpoint: "http://" + addr + "/mcp", HTTPClient: &http.Client{Transport: bearer{s.httpTr}}, MaxRetries: -1,
		}, nil)
		if err != nil {
			t.Fatalf("connect over HTTP: %v\nstderr:\n%s", err, s.stderr)
		}
		s.cs = cs
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	s.instance = instanceOf(t, s.stateDir)
	t.Cleanup(func() {
		_ = s.cs.Close()
		if s.httpTr != nil {
			s.httpTr.CloseIdleConnections()
		}
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(20 * time.Second):
				_ = s.cmd.Process.Kill()
				t.Errorf("server %d still ran 20 s after SIGTERM", s.pid)
			}
		}
		if t.Failed() {
			t.Logf("server stderr (last 6000 bytes):\n%s", tail(s.stderr.String(), 6000))
		}
	})
	return s
}

type bearer struct{ next http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return b.next.RoundTrip(r)
}

// waitFor polls cond every 100 ms until it holds or d passes (a count
// walks /proc and the cgroup tree: not more often on a shared host).
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// instanceOf is the server's instance directory under stateDir.
func instanceOf(t *testing.T, stateDir string) string {
	t.Helper()
	return testenv.InstanceDir(t, stateDir, 20*time.Second)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// counts is what the server holds on the host at one moment, only its own.
type counts struct {
	RSS        int64 // VmRSS of the server, bytes (0 once it exited)
	Sandboxes  int   // live processes in cgroups carrying the instance marker
	Cgroups    int   // cgroup directories carrying the instance marker
	States     int   // entries in the state dir (the instance dir and, inside it, the containers' state dirs)
	Mounts     int   // host mounts under the state dir or TMPDIR
	FDs        int   // the server's open fds that are not sockets
	Sockets    int   // the server's open sockets (clients' connections come and go)
	Children   int   // the server's live child processes (the upstream, helpers)
	TempFiles  int   // files and directories under the server's TMPDIR
	upstreamPs []int // pids of the upstream's processes (server-everything)
}

// diff compares c with base: the counts that must come back, and how
// far each is off ("" when all are back).
func (c counts) diff(base counts) string {
	var off []string
	add := func(name string, got, want int) {
		if got != want {
			off = append(off, fmt.Sprintf("%s %d (baseline %d)", name, got, want))
		}
	}
	add("sandbox processes", c.Sandboxes, base.Sandboxes)
	add("cgroups", c.Cgroups, base.Cgroups)
	add("state entries", c.States, base.States)
	add("mounts", c.Mounts, base.Mounts)
	add("fds", c.FDs, base.FDs)
	add("child processes", c.Children, base.Children)
	add("temp files", c.TempFiles, base.TempFiles)
	if c.Sockets > base.Sockets+concurrency {
		off = append(off, fmt.Sprintf("sockets %d (baseline %d, + at most %d client connections)", c.Sockets, base.Sockets, concurrency))
	}
	return strings.Join(off, ", ")
}

// count takes the server's counts now.
func (s *server) count() counts {
	var c counts
	c.RSS = rss(s.pid)
	c.Sandboxes = len(leftovers.Processes(s.instance))
	c.Cgroups = len(leftovers.CgroupDirs(s.instance))
	c.States = countTree(s.stateDir, 2)
	c.TempFiles = countTree(s.tmpDir, 8)
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, s.stateDir) || strings.Contains(line, s.tmpDir) || strings.Contains(line, s.instance) {
				c.Mounts++
			}
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid))
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", s.pid, fd.Name()))
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, "socket:") {
			c.Sockets++
		} else {
			c.FDs++
		}
	}
	for pid, cmdline := range childrenOf(s.pid) {
		c.Children++
		if strings.Contains(cmdline, "server-everything") {
			c.upstreamPs = append(c.upstreamPs, pid)
		}
	}
	return c
}

// countTree counts the entries under dir, depth levels deep.
func countTree(dir string, depth int) int {
	n := 0
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n++
		if e.IsDir() && depth > 1 {
			n += countTree(filepath.Join(dir, e.Name()), depth-1)
		}
	}
	return n
}

// rss is pid's VmRSS in bytes, 0 when it is gone.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// childrenOf maps pid's live child processes to their command lines.
func childrenOf(pid int) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		st := string(stat)
		i := strings.LastIndexByte(st, ')')
		if i < 0 || i+2 >= len(st) {
			continue
		}
		f := strings.Fields(st[i+2:])
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[child] = strings.ReplaceAll(string(cmdline), "\x00", " ")
	}
	return out
}

// upstreamReads is the bytes the upstream's processes have read so far
// (rchar): it moves when a request reaches the server.
func upstreamReads(pids []int) int64 {
	var n int64
	for _, pid := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "rchar:"); ok {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}
