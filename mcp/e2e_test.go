package mcp_test

// End-to-end tests of the BUILT binary (`make build`): `conductor serve` over
// stdio and streamable HTTP, driven by the go-sdk client, raw JSON-RPC and
// HTTP requests. The official npm tools (inspector CLI, conformance suite)
// are in e2e_tools_test.go.
//
// Inputs: CONDUCTOR_BIN (default ../bin/conductor), CONDUCTOR_DENO (default
// ../.build/deno), CONDUCTOR_MCP_TOOLS (default ../.build/mcp-tools, made by
// `make mcp-tools`). When one is missing the tests skip, or fail on CI
// (CI=true).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/leftovers"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

const toolName = "run_deno_code"

// ---------------------------------------------------------------------------
// Prerequisites

// prerequisite returns path when it exists; otherwise it fails the test on
// CI and skips it elsewhere, saying what to run.
func prerequisite(t *testing.T, what, envVar, path, fix string) string {
	t.Helper()
	if v := os.Getenv(envVar); v != "" {
		path = v
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%s not found at %s (set %s or run `%s`): %v", what, path, envVar, fix, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

func conductorBin(t *testing.T) string {
	return prerequisite(t, "the conductor binary", "CONDUCTOR_BIN", "../bin/conductor", "make build")
}

func denoBin(t *testing.T) string {
	return prerequisite(t, "deno", "CONDUCTOR_DENO", "../.build/deno", "make build")
}

// mcpTools is the directory `make mcp-tools` installs the npm tools in.
func mcpTools(t *testing.T) string {
	t.Helper()
	dir := prerequisite(t, "the MCP npm tools", "CONDUCTOR_MCP_TOOLS", "../.build/mcp-tools", "make mcp-tools")
	prerequisite(t, "the MCP inspector CLI", "CONDUCTOR_MCP_INSPECTOR",
		filepath.Join(dir, "node_modules", ".bin", "mcp-inspector"), "make mcp-tools")
	return dir
}

// serverEnv is the environment of a server under test: the test's own,
// without conductor settings that would change what is tested (host-related
// ones stay), plus a private state dir and extra.
func serverEnv(stateDir string, extra ...string) []string {
	keep := map[string]bool{
		"MCP_CONDUCTOR_DATA_DIR":       true,
		"MCP_CONDUCTOR_CGROUP_PARENT":  true,
		"MCP_CONDUCTOR_ALLOW_DEGRADED": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "MCP_CONDUCTOR_") && !keep[name] {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "MCP_CONDUCTOR_STATE_DIR="+stateDir)
	return append(env, extra...)
}

// ---------------------------------------------------------------------------
// Servers

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spinCode runs until it is killed, after printing spinMark; spinning is the client option and
// call parameters that see that line in a progress notification (the first comes after the
// server's 1 s progress interval): the event that the code runs, where a sleep after the
// sandbox's processes appeared only guessed it (serve's pool has a sandbox's processes up before
// any call, so the call might not even have arrived).
const (
	spinMark = "spinning now"
	spinCode = "console.log('" + spinMark + "'); while (true) {}"
)

func spinning(timeoutMs int) (*sdk.ClientOptions, *sdk.CallToolParams, <-chan struct{}) {
	running := make(chan struct{})
	var once sync.Once
	copts := &sdk.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
		if strings.Contains(req.Params.Message, spinMark) {
			once.Do(func() { close(running) })
		}
	}}
	params := &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": spinCode, "timeout": timeoutMs}}
	params.SetProgressToken("spinning")
	return copts, params, running
}

// waitSpinning waits for spinning's event, failing after a scaled 20 s.
func waitSpinning(t *testing.T, running <-chan struct{}) {
	t.Helper()
	select {
	case <-running:
	case <-time.After(testenv.Scale(20 * time.Second)):
		t.Fatalf("the run did not report %q within 20 s", spinMark)
	}
}

// instanceOf is the server's instance directory under stateDir.
func instanceOf(t *testing.T, stateDir string) string {
	t.Helper()
	return testenv.InstanceDir(t, stateDir, 10*time.Second)
}

// assertClean fails unless the stopped server left nothing: an empty state
// dir, and no process or cgroup carrying its instance marker.
func assertClean(t *testing.T, stateDir, instance string) {
	t.Helper()
	var names []string
	clean := waitFor(3*time.Second, func() bool {
		entries, _ := os.ReadDir(stateDir)
		names = names[:0]
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return len(names) == 0
	})
	if !clean {
		t.Errorf("state dir %s not empty after the server stopped: %v", stateDir, names)
	}
	if instance == "" {
		return
	}
	if pids := leftovers.Processes(instance); len(pids) > 0 {
		t.Errorf("sandbox processes of %s still alive after the server stopped: %v", instance, pids)
	}
	if dirs := leftovers.CgroupDirs(instance); len(dirs) > 0 {
		t.Errorf("cgroups of %s remain after the server stopped: %v", instance, dirs)
	}
}

// stdioServer is `conductor serve` over stdio with a go-sdk client session.
type stdioServer struct {
	cs       *sdk.ClientSession
	stderr   *testenv.SyncBuffer
	wire     *testenv.SyncBuffer // every message as sent and received ("read: {...}"), bytes unchanged
	stateDir string
	instance string
}

// startStdio starts `conductor serve [args]` with env and connects a go-sdk
// client to it. Cleanup closes the session (the server exits on EOF) and
// checks that nothing was left behind.
func startStdio(t *testing.T, copts *sdk.ClientOptions, args []string, env ...string) *stdioServer {
	t.Helper()
	bin := conductorBin(t)
	denoBin(t)
	s := &stdioServer{stderr: &testenv.SyncBuffer{}, wire: &testenv.SyncBuffer{}, stateDir: t.TempDir()}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = serverEnv(s.stateDir, env...)
	cmd.Stderr = s.stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "conductor-e2e", Version: "1"}, copts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.LoggingTransport{
		Transport: &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, Writer: s.wire,
	}, nil)
	if err != nil {
		t.Fatalf("connect to `conductor serve` over stdio: %v\nstderr:\n%s", err, s.stderr)
	}
	s.cs = cs
	s.instance = instanceOf(t, s.stateDir)
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- cs.Close() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("closing the stdio session took over 20 s")
		}
		if cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
			t.Errorf("server did not exit after its stdin closed: %v", cmd.ProcessState)
		} else if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("server exited %d after its stdin closed; stderr:\n%s", code, s.stderr)
		}
		assertClean(t, s.stateDir, s.instance)
		if t.Failed() {
			t.Logf("server stderr:\n%s", s.stderr)
		}
	})
	return s
}

// httpServer is `conductor serve --http 127.0.0.1:PORT`.
type httpServer struct {
	base     string // http://127.0.0.1:PORT
	url      string // base + /mcp
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stderr   *testenv.SyncBuffer
	stdout   *testenv.SyncBuffer // what serve writes there (over HTTP stdout is free: MCP_CONDUCTOR_AUDIT=stdout)
	stateDir string
	instance string
	token    string // the bearer token clients send; "" = none
}

// freePort finds a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// e2eToken is the bearer token startHTTP gives servers that get no token
// setting of their own: HTTP needs one by default.
const e2eToken = "e2e-default-token-0123456789"

// startHTTP starts `conductor serve --http 127.0.0.1:PORT` on a free port and
// waits for /healthz. Unless env sets MCP_CONDUCTOR_HTTP_TOKEN or
// MCP_CONDUCTOR_HTTP_INSECURE_NO_AUTH, the server gets e2eToken.
// Cleanup stops it with SIGTERM (unless the test did)
// and checks that nothing was left behind.
func startHTTP(t *testing.T, env ...string) *httpServer {
	t.Helper()
	return startHTTPArgs(t, nil, env...)
}

// startHTTPArgs is startHTTP with more arguments for `conductor serve`.
func startHTTPArgs(t *testing.T, args []string, env ...string) *httpServer {
	t.Helper()
	o := httpStart{args: args, env: env}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "MCP_CONDUCTOR_HTTP_TOKEN="); ok {
			o.token = v
		}
		if strings.HasPrefix(kv, "MCP_CONDUCTOR_HTTP_INSECURE_NO_AUTH=") {
			o.noToken = true
		}
	}
	if o.token == "" && !o.noToken {
		o.token = e2eToken
		o.env = append(slices.Clone(env), "MCP_CONDUCTOR_HTTP_TOKEN="+e2eToken)
	}
	return startHTTPWith(t, o)
}

// httpStart says how to start `conductor serve --http`.
type httpStart struct {
	args    []string
	env     []string
	token   string // what clients send; "" = none
	noToken bool   // env gives no token on purpose
	nofile  int    // > 0: the server's open-file limit (soft and hard)
}

// startHTTPWith starts the server as o says and waits for /healthz.
func startHTTPWith(t *testing.T, o httpStart) *httpServer {
	t.Helper()
	bin := conductorBin(t)
	denoBin(t)
	stateDir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		s := &httpServer{
			base:     fmt.Sprintf("http://127.0.0.1:%d", port),
			exited:   make(chan struct{}),
			stderr:   &testenv.SyncBuffer{},
			stdout:   &testenv.SyncBuffer{},
			stateDir: stateDir,
			token:    o.token,
		}
		s.url = s.base + "/mcp"
		argv := append([]string{bin, "serve", "--http", fmt.Sprintf("127.0.0.1:%d", port)}, o.args...)
		if o.nofile > 0 {
			argv = append([]string{"prlimit", fmt.Sprintf("--nofile=%d:%d", o.nofile, o.nofile), "--"}, argv...)
		}
		s.cmd = exec.Command(argv[0], argv[1:]...)
		s.cmd.Env = serverEnv(stateDir, o.env...)
		s.cmd.Stderr, s.cmd.Stdout = s.stderr, s.stdout
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
		up := waitFor(20*time.Second, func() bool {
			select {
			case <-s.exited:
				return true
			default:
			}
			resp, err := http.Get(s.base + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		select {
		case <-s.exited:
			if attempt < 2 && strings.Contains(s.stderr.String(), "address already in use") {
				continue // lost the port to someone else; pick another
			}
			t.Fatalf("`conductor serve --http` exited at start: %v\nstderr:\n%s", s.waitErr, s.stderr)
		default:
		}
		if !up {
			_ = s.cmd.Process.Kill()
			<-s.exited
			t.Fatalf("`conductor serve --http` not healthy within 20 s\nstderr:\n%s", s.stderr)
		}
		s.instance = instanceOf(t, stateDir)
		t.Cleanup(func() {
			s.stop(t)
			assertClean(t, s.stateDir, s.instance)
			if t.Failed() {
				t.Logf("server stderr:\n%s", s.stderr)
			}
		})
		return s
	}
}

// stop sends SIGTERM (if the server still runs) and waits up to 10 s for it
// to exit 0. It returns how long the exit took.
func (s *httpServer) stop(t *testing.T) time.Duration {
	t.Helper()
	t0 := time.Now()
	select {
	case <-s.exited:
		return 0
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("server did not exit within 10 s of SIGTERM")
	}
	if s.waitErr != nil {
		t.Errorf("server exit after SIGTERM: %v (want status 0)", s.waitErr)
	}
	return time.Since(t0)
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// connectHTTP connects a go-sdk client over streamable HTTP; token "" sends none.
func connectHTTP(ctx context.Context, url, token string, copts *sdk.ClientOptions) (*sdk.ClientSession, error) {
	hc := &http.Client{}
	if token != "" {
		hc.Transport = bearer{token, http.DefaultTransport}
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "conductor-e2e", Version: "1"}, copts)
	return client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: hc, MaxRetries: -1}, nil)
}

// mustConnectHTTP connects to s with token, or with s's own token when
// token is "".
func mustConnectHTTP(t *testing.T, s *httpServer, token string, copts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	if token == "" {
		token = s.token
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := connectHTTP(ctx, s.url, token, copts)
	if err != nil {
		t.Fatalf("connect over HTTP to %s: %v\nstderr:\n%s", s.url, err, s.stderr)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// ---------------------------------------------------------------------------
// Calls

// result is one run_deno_code outcome as a client sees it.
type result struct {
	res  *sdk.CallToolResult
	out  map[string]any // structuredContent ({} when absent)
	text string         // all text content, joined
}

func (r result) str(key string) string {
	s, _ := r.out[key].(string)
	return s
}

func (r result) errField(key string) any {
	e, _ := r.out["error"].(map[string]any)
	return e[key]
}

func (r result) String() string {
	b, _ := json.Marshal(r.out)
	return fmt.Sprintf("isError=%v text=%q structured=%s", r.res.IsError, r.text, b)
}

func toResult(t *testing.T, res *sdk.CallToolResult) result {
	t.Helper()
	r := result{res: res, out: map[string]any{}}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	r.text = strings.Join(texts, "\n")
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatalf("structuredContent: %v", err)
		}
		if err := json.Unmarshal(b, &r.out); err != nil {
			t.Fatalf("structuredContent is not an object: %s", b)
		}
	}
	return r
}

// run calls run_deno_code with args and fails the test on a protocol error.
func run(t *testing.T, cs *sdk.ClientSession, args map[string]any) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %v: protocol error %v", abbreviate(args), err)
	}
	return toResult(t, res)
}

func abbreviate(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// expectSuccess fails unless r is a successful run.
func expectSuccess(t *testing.T, r result) {
	t.Helper()
	if r.res.IsError || r.str("status") != "success" {
		t.Fatalf("want a successful run, got %s", r)
	}
}

// expectRefused fails unless r is an isError result with a text message
// that mentions every string in want (case-insensitively).
func expectRefused(t *testing.T, r result, want ...string) {
	t.Helper()
	if !r.res.IsError {
		t.Fatalf("want isError, got %s", r)
	}
	if strings.TrimSpace(r.text) == "" {
		t.Fatalf("isError without a text message: %s", r)
	}
	t.Logf("refused: %.300s", r.text)
	for _, w := range want {
		if !strings.Contains(strings.ToLower(r.text), strings.ToLower(w)) {
			t.Errorf("error text %q does not mention %q", r.text, w)
		}
	}
}

// ---------------------------------------------------------------------------
// stdio

// TestE2EStdio: initialize, tools/list and the main kinds of run through the
// go-sdk client over stdio.
func TestE2EStdio(t *testing.T) {
	s := startStdio(t, nil, nil)
	cs := s.cs

	t.Run("initialize", func(t *testing.T) {
		init := cs.InitializeResult()
		if init == nil || init.ServerInfo == nil || init.ServerInfo.Name != "conductor" {
			t.Fatalf("initialize result %+v: want serverInfo.name conductor", init)
		}
		if init.Capabilities == nil || init.Capabilities.Tools == nil {
			t.Errorf("server does not advertise the tools capability: %+v", init.Capabilities)
		}
		if init.ProtocolVersion == "" {
			t.Errorf("no protocol version negotiated")
		}
	})

	t.Run("tools/list", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		list, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Listed by name; run_python_code where execute_code offers Python.
		var names []string
		for _, tl := range list.Tools {
			names = append(names, tl.Name)
		}
		want := []string{"execute_code", toolName}
		if len(list.Tools) > 0 && strings.Contains(list.Tools[0].Description, "Languages on this server: javascript, typescript, python") {
			want = append(want, "run_python_code")
		}
		if !slices.Equal(names, want) {
			t.Fatalf("tools %v, want exactly %v", names, want)
		}
		checkToolSchemas(t, list.Tools[1])
	})

	t.Run("success", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "console.log('hi from deno');\nconst x = 6 * 7;\nx"})
		expectSuccess(t, r)
		if r.out["returnValue"] != float64(42) {
			t.Errorf("returnValue %v, want 42", r.out["returnValue"])
		}
		if r.str("stdout") != "hi from deno\n" {
			t.Errorf("stdout %q, want %q", r.str("stdout"), "hi from deno\n")
		}
		if r.out["exitCode"] != float64(0) {
			t.Errorf("exitCode %v, want 0", r.out["exitCode"])
		}
		for _, key := range []string{"status", "exitCode", "signal", "stdout", "stderr", "stdoutTruncated", "stderrTruncated",
			"stdoutBytes", "stderrBytes", "durationMs", "cpuMs", "memoryPeakBytes", "returnValue", "returnValueTruncated",
			"limitHit", "degraded", "error"} {
			if _, ok := r.out[key]; !ok {
				t.Errorf("structuredContent lacks %q", key)
			}
		}
		if !strings.Contains(r.text, "returnValue: 42") || !strings.Contains(r.text, "hi from deno") {
			t.Errorf("text summary %q: want the return value and stdout", r.text)
		}
	})

	t.Run("runtime error", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "const a = 1;\nthrow new TypeError('boom')"})
		if !r.res.IsError || r.str("status") != "error" {
			t.Fatalf("want isError and status error, got %s", r)
		}
		if r.errField("type") != "runtime" || r.errField("name") != "TypeError" || r.errField("message") != "boom" {
			t.Errorf("error %v: want type runtime, name TypeError, message boom", r.out["error"])
		}
		if r.errField("line") != float64(2) || r.errField("column") != float64(7) {
			t.Errorf("error at line %v column %v, want line 2 column 7 (in the caller's code)", r.errField("line"), r.errField("column"))
		}
		if !strings.Contains(r.text, "line 2") {
			t.Errorf("text summary %q does not give the line", r.text)
		}
	})

	t.Run("syntax error", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "const a = 1;\nlet = ;"})
		if !r.res.IsError || r.str("status") != "error" {
			t.Fatalf("want isError and status error, got %s", r)
		}
		if r.errField("type") != "syntax" || r.errField("line") != float64(2) {
			t.Errorf("error %v: want type syntax at line 2", r.out["error"])
		}
		// An agent reads name: a syntax error should not call itself a TypeError.
		if name := r.errField("name"); name != "SyntaxError" {
			t.Errorf("syntax error has name %v, want SyntaxError", name)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t0 := time.Now()
		r := run(t, cs, map[string]any{"deno_code": "while (true) {}", "timeout": 1000})
		if !r.res.IsError || r.str("status") != "timeout" || r.str("limitHit") != "timeout" {
			t.Fatalf("want isError, status timeout, limitHit timeout; got %s", r)
		}
		if r.errField("type") != "timeout" {
			t.Errorf("error %v: want type timeout", r.out["error"])
		}
		if d := time.Since(t0); d > 10*time.Second {
			t.Errorf("a 1 s timeout took %v", d)
		}
	})

	t.Run("globals", func(t *testing.T) {
		r := run(t, cs, map[string]any{
			"deno_code": "console.log(greeting); ({ sum: cfg.items.reduce((a, b) => a + b, 0), same: globalThis.cfg === cfg })",
			"globals":   map[string]any{"greeting": "hello", "cfg": map[string]any{"items": []int{1, 2, 3}}},
		})
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		if rv["sum"] != float64(6) || rv["same"] != true || r.str("stdout") != "hello\n" {
			t.Errorf("returnValue %v stdout %q: want {sum: 6, same: true} and hello", r.out["returnValue"], r.str("stdout"))
		}
		// Globals are read-only.
		r = run(t, cs, map[string]any{"deno_code": "greeting = 'changed'; greeting", "globals": map[string]any{"greeting": "hello"}})
		if !r.res.IsError && r.out["returnValue"] != "hello" {
			t.Errorf("assigning a global succeeded and changed it: %s", r)
		}
	})

	t.Run("top-level return", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "const n = 3;\nif (n > 2) {\n  return { early: n };\n}\n'late'"})
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		if rv["early"] != float64(3) {
			t.Errorf("returnValue %v, want {early: 3}", r.out["returnValue"])
		}
	})

	t.Run("await", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "await new Promise((r) => setTimeout(r, 50)); 'waited'"})
		expectSuccess(t, r)
		if r.out["returnValue"] != "waited" {
			t.Errorf("returnValue %v, want waited", r.out["returnValue"])
		}
	})
}

// checkToolSchemas checks run_deno_code's schemas, including that every
// property schema is a JSON object: the TypeScript SDK (and so every client
// built on it: the inspector, Claude Desktop, …) rejects a tools/list whose
// schemas hold boolean subschemas such as `true`.
func checkToolSchemas(t *testing.T, tool *sdk.Tool) {
	t.Helper()
	for _, which := range []struct {
		name   string
		schema any
	}{{"inputSchema", tool.InputSchema}, {"outputSchema", tool.OutputSchema}} {
		if which.schema == nil {
			t.Errorf("%s is missing", which.name)
			continue
		}
		b, _ := json.Marshal(which.schema)
		var s struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		if err := json.Unmarshal(b, &s); err != nil || s.Type != "object" {
			t.Errorf("%s %s: want an object schema", which.name, b)
			continue
		}
		for name, p := range s.Properties {
			if v := bytes.TrimSpace(p); len(v) == 0 || v[0] != '{' {
				t.Errorf("%s.properties.%s is %s, not a schema object: TypeScript-SDK clients (inspector, conformance, Claude Desktop…) reject the whole tools/list", which.name, name, p)
			}
		}
		switch which.name {
		case "inputSchema":
			if !contains(s.Required, "deno_code") {
				t.Errorf("inputSchema.required %v lacks deno_code", s.Required)
			}
			want := map[string]string{"deno_code": `"string"`, "timeout": `"integer"`, "globals": `"object"`, "dependencies": `"array"`}
			for p, typ := range want {
				var prop struct {
					Type json.RawMessage `json:"type"`
				}
				raw, ok := s.Properties[p]
				if !ok {
					t.Errorf("inputSchema has no property %q", p)
					continue
				}
				_ = json.Unmarshal(raw, &prop)
				// One plain type: clients that build arguments from the
				// schema (the inspector CLI, form UIs) handle no type lists.
				if string(prop.Type) != typ {
					t.Errorf("inputSchema.properties.%s.type is %s, want %s", p, prop.Type, typ)
				}
			}
		case "outputSchema":
			for _, p := range []string{"status", "stdout", "stderr", "returnValue", "error", "durationMs"} {
				if _, ok := s.Properties[p]; !ok {
					t.Errorf("outputSchema has no property %q", p)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestE2EStdioBadInput: requests refused before running come back as isError
// with a message that says what is wrong, and the server keeps serving.
func TestE2EStdioBadInput(t *testing.T) {
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_ALLOWED_PACKAGES=npm:zod@^3")
	cs := s.cs
	stillServing := func(t *testing.T) {
		t.Helper()
		r := run(t, cs, map[string]any{"deno_code": "1 + 1"})
		expectSuccess(t, r)
		if r.out["returnValue"] != float64(2) {
			t.Fatalf("after the bad request: returnValue %v, want 2", r.out["returnValue"])
		}
	}

	t.Run("10 MB of code", func(t *testing.T) {
		code := "// " + strings.Repeat("x", 10<<20)
		r := run(t, cs, map[string]any{"deno_code": code})
		expectRefused(t, r, "deno_code", "limit", strconv.Itoa(1<<20))
		stillServing(t)
	})
	t.Run("deno_code is a number", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": 42}), "deno_code")
		stillServing(t)
	})
	t.Run("deno_code missing", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"timeout": 1000}), "deno_code")
	})
	t.Run("empty deno_code", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": ""}), "deno_code", "empty")
	})
	t.Run("unknown field", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": "1", "denoCode": "2"}), "denoCode")
	})
	t.Run("timeout is a string", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": "1", "timeout": "soon"}), "timeout")
	})
	t.Run("timeout above the maximum", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": "1", "timeout": 999999999}), "timeout", "300000")
	})
	t.Run("negative timeout", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": "1", "timeout": -5}), "timeout")
	})
	t.Run("globals is an array", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": "1", "globals": []int{1}}), "globals")
	})
	t.Run("global name not an identifier", func(t *testing.T) {
		expectRefused(t, run(t, cs, map[string]any{"deno_code": "1", "globals": map[string]any{"a-b": 1}}), "a-b", "identifier")
	})
	t.Run("disallowed dependency", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "1", "dependencies": []string{"npm:left-pad"}})
		expectRefused(t, r, "npm:left-pad", "npm:zod")
	})
	t.Run("disallowed import", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "// first line\nimport pad from 'npm:left-pad';\npad('x', 3)"})
		expectRefused(t, r, "npm:left-pad", "npm:zod", "2:")
	})
	t.Run("remote import", func(t *testing.T) {
		r := run(t, cs, map[string]any{"deno_code": "import x from 'https://example.com/x.ts'; x"})
		expectRefused(t, r, "https://example.com/x.ts")
	})
	t.Run("unknown tool", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "no_such_tool", Arguments: map[string]any{}})
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) {
			t.Fatalf("unknown tool: err %v, want a JSON-RPC error", err)
		}
		if rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(rpcErr.Message, "no_such_tool") {
			t.Errorf("unknown tool: %d %q, want %d naming the tool", rpcErr.Code, rpcErr.Message, jsonrpc.CodeInvalidParams)
		}
		stillServing(t)
	})
}

// TestE2EStdioGarbageLine: a line that is not JSON, or JSON that is not
// JSON-RPC, gets a JSON-RPC error (-32700 / -32600, id null) or is ignored, and
// the server goes on serving the next request.
func TestE2EStdioGarbageLine(t *testing.T) {
	bin := conductorBin(t)
	denoBin(t)
	stateDir := t.TempDir()
	cmd := exec.Command(bin, "serve")
	cmd.Env = serverEnv(stateDir)
	stderr := &testenv.SyncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdoutPipe)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	defer func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("server did not exit after stdin closed")
		}
		assertClean(t, stateDir, "")
		if t.Failed() {
			t.Logf("server stderr:\n%s", stderr)
		}
	}()

	send := func(s string) {
		if _, err := io.WriteString(stdin, s+"\n"); err != nil {
			t.Fatalf("write to server: %v (stderr: %s)", err, stderr)
		}
	}
	// await reads lines until the response with id, returning any parse-error
	// responses (id null) seen on the way.
	await := func(id int) (resp map[string]any, others []string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("server closed stdout before answering request %d; stderr:\n%s", id, stderr)
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("server wrote a non-JSON line on stdout: %q", line)
				}
				if m["id"] == float64(id) {
					return m, others
				}
				others = append(others, line)
			case <-timeout:
				t.Fatalf("no response to request %d within 20 s; stderr:\n%s", id, stderr)
			}
		}
	}

	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if resp, _ := await(1); resp["result"] == nil {
		t.Fatalf("initialize: %v", resp)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`this is not JSON at all`)
	send(`{"valid": "JSON", "but": "not JSON-RPC"}`)
	send(`42`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	resp, others := await(2)
	res, _ := resp["result"].(map[string]any)
	tools, _ := res["tools"].([]any)
	if len(tools) < 2 {
		t.Fatalf("tools/list after a garbage line: %v", resp)
	}
	for _, o := range others {
		if !strings.Contains(o, "-32700") && !strings.Contains(o, "-32600") {
			t.Errorf("unexpected message before the tools/list response: %s", o)
		}
	}
	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"run_deno_code","arguments":{"deno_code":"40 + 2"}}}`)
	resp, _ = await(3)
	res, _ = resp["result"].(map[string]any)
	sc, _ := res["structuredContent"].(map[string]any)
	if sc["returnValue"] != float64(42) {
		t.Fatalf("tools/call after a garbage line: %v", resp)
	}
}

// TestE2EBusy: with one slot and no queue, of two simultaneous long calls
// one runs and the other is refused at once with a clear "busy" error.
func TestE2EBusy(t *testing.T) {
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_MAX_CONCURRENCY=1", "MCP_CONDUCTOR_MAX_QUEUE=0")
	var wg sync.WaitGroup
	results := make([]result, 2)
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := s.cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{
				"deno_code": "await new Promise((r) => setTimeout(r, 2000)); 'slow'",
			}})
			if err != nil {
				t.Errorf("call %d: protocol error %v", i, err)
				return
			}
			results[i] = toResult(t, res)
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	var ok, busy int
	for _, r := range results {
		switch {
		case !r.res.IsError && r.out["returnValue"] == "slow":
			ok++
		case r.res.IsError && strings.Contains(strings.ToLower(r.text), "busy"):
			busy++
			t.Logf("busy: %s", r.text)
			if !strings.Contains(r.text, "try again") {
				t.Errorf("busy error %q does not say to try again", r.text)
			}
		default:
			t.Errorf("unexpected result %s", r)
		}
	}
	if ok != 1 || busy != 1 {
		t.Fatalf("%d succeeded and %d were busy, want 1 and 1: %v", ok, busy, results)
	}
	// The slot is free again.
	expectSuccess(t, run(t, s.cs, map[string]any{"deno_code": "1"}))
}

// TestE2ECancel: a client call cancelled after 500 ms on an endless loop
// returns at once; the server kills the run (it logs it as cancelled) and
// serves the next call — with one slot and no queue, a run left behind would
// make that call "busy".
func TestE2ECancel(t *testing.T) {
	// The pool is off so that "no sandbox process remains" means the
	// cancelled run's: idle pre-started sandboxes would count otherwise.
	s := startStdio(t, nil, []string{"--log-level", "debug"}, "MCP_CONDUCTOR_MAX_CONCURRENCY=1", "MCP_CONDUCTOR_MAX_QUEUE=0", "MCP_CONDUCTOR_POOL_SIZE=0")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := s.cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": "while (true) {}", "timeout": 120000}})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call: err %v, want context deadline exceeded", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("cancelled call returned after %v", d)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(s.stderr.String(), "status=cancelled") }) {
		t.Errorf("server did not report the run as cancelled (debug log `status=cancelled`) within 10 s")
	}
	if !waitFor(10*time.Second, func() bool { return len(leftovers.Processes(s.instance)) == 0 }) {
		t.Errorf("sandbox processes still alive 10 s after the cancel: %v", leftovers.Processes(s.instance))
	}
	r := run(t, s.cs, map[string]any{"deno_code": "'next'"})
	expectSuccess(t, r)
}

// TestE2EProgress: a call with a progress token gets progress notifications
// while it runs.
func TestE2EProgress(t *testing.T) {
	var mu sync.Mutex
	var got []*sdk.ProgressNotificationParams
	s := startStdio(t, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, req.Params)
		},
	}, nil)
	params := &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": "await new Promise((r) => setTimeout(r, 3000)); 'slept'"}}
	params.SetProgressToken("e2e-progress")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.cs.CallTool(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	expectSuccess(t, toResult(t, res))
	// Notifications may arrive just after the response.
	waitFor(2*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 1 {
		t.Fatalf("no progress notification during a 3 s run")
	}
	last := -1.0
	for _, p := range got {
		if p.ProgressToken != "e2e-progress" {
			t.Errorf("progress token %v, want e2e-progress", p.ProgressToken)
		}
		if p.Progress <= last {
			t.Errorf("progress %v after %v: want increasing", p.Progress, last)
		}
		last = p.Progress
	}
	t.Logf("%d progress notifications, last %q", len(got), got[len(got)-1].Message)
}

// ---------------------------------------------------------------------------
// HTTP

// rawPost POSTs an initialize request to url with extra headers.
func rawPost(t *testing.T, url string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, resp.Header, string(b)
}

// TestE2EHTTP: health check, DNS-rebinding protection, and two sessions
// running calls at the same time.
func TestE2EHTTP(t *testing.T) {
	s := startHTTP(t)

	t.Run("healthz", func(t *testing.T) {
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "ok" {
			t.Fatalf("/healthz: %d %q, want 200 ok", resp.StatusCode, b)
		}
	})

	t.Run("DNS rebinding", func(t *testing.T) {
		auth := "Bearer " + s.token
		code, _, body := rawPost(t, s.url, map[string]string{"Host": "evil.example.com", "Authorization": auth})
		if code != http.StatusForbidden {
			t.Errorf("Host: evil.example.com → %d %q, want 403", code, body)
		}
		code, _, body = rawPost(t, s.url, map[string]string{"Host": "evil.example.com:80", "Origin": "http://evil.example.com", "Authorization": auth})
		if code != http.StatusForbidden {
			t.Errorf("Host and Origin evil.example.com → %d %q, want 403", code, body)
		}
		// The same request with the server's own host is accepted.
		code, _, body = rawPost(t, s.url, map[string]string{"Authorization": auth})
		if code != http.StatusOK {
			t.Errorf("plain initialize → %d %q, want 200", code, body)
		}
	})

	t.Run("two sessions at once", func(t *testing.T) {
		sessions := []*sdk.ClientSession{mustConnectHTTP(t, s, "", nil), mustConnectHTTP(t, s, "", nil)}
		if sessions[0].ID() == "" || sessions[0].ID() == sessions[1].ID() {
			t.Fatalf("session ids %q and %q: want two distinct sessions", sessions[0].ID(), sessions[1].ID())
		}
		type span struct{ start, end float64 }
		spans := make([][]span, len(sessions))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, cs := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for round := range 2 {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{
						"deno_code": "const start = Date.now(); await new Promise((r) => setTimeout(r, 800)); console.log(`session ${id}`); ({ id, round, start, end: Date.now() })",
						"globals":   map[string]any{"id": i, "round": round},
					}})
					cancel()
					if err != nil {
						t.Errorf("session %d round %d: %v", i, round, err)
						return
					}
					r := toResult(t, res)
					rv, _ := r.out["returnValue"].(map[string]any)
					if r.res.IsError || rv["id"] != float64(i) || rv["round"] != float64(round) || r.str("stdout") != fmt.Sprintf("session %d\n", i) {
						t.Errorf("session %d round %d: %s", i, round, r)
						return
					}
					st, _ := rv["start"].(float64)
					en, _ := rv["end"].(float64)
					spans[i] = append(spans[i], span{st, en})
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		// The sessions' first runs overlapped in time: they ran concurrently.
		a, b := spans[0][0], spans[1][0]
		if !(a.start < b.end && b.start < a.end) {
			t.Errorf("the two sessions' runs did not overlap: %v and %v (ms since epoch)", a, b)
		}
	})
}

// TestE2EHTTPToken: with MCP_CONDUCTOR_HTTP_TOKEN set, /mcp needs the bearer token.
func TestE2EHTTPToken(t *testing.T) {
	const token = "e2e-token-0123456789abcdef"
	s := startHTTP(t, "MCP_CONDUCTOR_HTTP_TOKEN="+token)

	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", map[string]string{"Authorization": "Bearer wrong-token-0123456789abcdef"}, http.StatusUnauthorized},
		{"token without Bearer", map[string]string{"Authorization": token}, http.StatusUnauthorized},
		{"token as a prefix", map[string]string{"Authorization": "Bearer " + token + "x"}, http.StatusUnauthorized},
		{"right token", map[string]string{"Authorization": "Bearer " + token}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := rawPost(t, s.url, tc.header)
			if code != tc.want {
				t.Fatalf("POST /mcp: %d %q, want %d", code, body, tc.want)
			}
			if code == http.StatusUnauthorized {
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a WWW-Authenticate: Bearer header: %v", hdr)
				}
				if strings.Contains(body, token) {
					t.Errorf("401 body reveals the token: %q", body)
				}
			}
		})
	}

	t.Run("go-sdk client without the token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cs, err := connectHTTP(ctx, s.url, "", nil)
		if err == nil {
			cs.Close()
			t.Fatal("connected without the token")
		}
	})

	t.Run("go-sdk client with the token", func(t *testing.T) {
		cs := mustConnectHTTP(t, s, token, nil)
		r := run(t, cs, map[string]any{"deno_code": "'authorized'"})
		expectSuccess(t, r)
		if r.out["returnValue"] != "authorized" {
			t.Errorf("returnValue %v", r.out["returnValue"])
		}
	})

	t.Run("healthz needs no token", func(t *testing.T) {
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz: %d", resp.StatusCode)
		}
	})
}

// TestE2EHTTPSigterm: SIGTERM during an endless run stops the server within
// a few seconds; the call is answered (status cancelled), and no sandbox
// process, cgroup or state remains.
func TestE2EHTTPSigterm(t *testing.T) {
	s := startHTTPArgs(t, []string{"--log-level", "debug"})
	copts, params, running := spinning(120000)
	cs := mustConnectHTTP(t, s, "", copts)

	type outcome struct {
		res *sdk.CallToolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, params)
		done <- outcome{res, err}
	}()
	waitSpinning(t, running) // before: the container and processes, and a 300 ms sleep

	took := s.stop(t)
	t.Logf("server exited %v after SIGTERM", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("server took %v to exit after SIGTERM, want a few seconds at most", took)
	}
	select {
	case o := <-done:
		// The call in flight is answered before the connection closes
		// (TestE2EHTTPSigtermInFlight: 8 of them).
		switch {
		case o.err != nil:
			t.Errorf("the call in flight got no answer before the server exited: %v", o.err)
		default:
			r := toResult(t, o.res)
			if !r.res.IsError || r.str("status") != "cancelled" {
				t.Errorf("call ended with %s, want status cancelled", r)
			}
			t.Logf("call ended with %s", r)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the call did not end within 5 s of the server's exit")
	}
	assertClean(t, s.stateDir, s.instance)
}

// TestE2EHTTPSigtermInFlight: SIGTERM with 8 calls in flight over
// streamable HTTP (busy loops, timers, pending promises, output): every call
// is answered with status cancelled before its connection closes, and the
// server exits 0 leaving nothing behind. Regression test for the soak's HTTP
// SIGTERM phase, where one call of 8 once ended without an answer: shutdown
// ended every request's context as soon as the executions were cancelled,
// which raced the writing of their answers (a POST whose context ends
// returns without its answer, and the go-sdk client fails the calls it
// still waits for once its GET stream ends).
func TestE2EHTTPSigtermInFlight(t *testing.T) {
	// Each run first fills stdout and stderr to their 1 MiB limit: answers
	// of megabytes take long enough to write that a shutdown which does not
	// wait for them loses some every time.
	const fill = "const mib = 'x'.repeat(1 << 20); console.log(mib); console.error(mib);\n"
	runs := []struct {
		kind string
		code string
	}{
		{"busy loop", fill + "while (true) {}"},
		{"timer", fill + "await new Promise((r) => setTimeout(r, 600000));"},
		{"pending promise and interval", fill + "setInterval(() => {}, 1000);\nawait new Promise(() => {});"},
		{"output loop", fill + "for (;;) { console.log('tick'); await new Promise((r) => setTimeout(r, 20)); }"},
	}
	const inFlight = 8
	s := startHTTPArgs(t, []string{"--log-level", "debug"}, "MCP_CONDUCTOR_MAX_CONCURRENCY="+strconv.Itoa(inFlight))
	cs := mustConnectHTTP(t, s, "", nil)

	type outcome struct {
		kind string
		res  *sdk.CallToolResult
		err  error
		at   time.Time
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	done := make(chan outcome, inFlight)
	for i := range inFlight {
		r := runs[i%len(runs)]
		go func() {
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": r.code, "timeout": 120000}})
			done <- outcome{r.kind, res, err, time.Now()}
		}()
	}
	// All 8 run: the instance holds 8 containers with processes (the pool
	// refills only once a run ended), and a moment for the cold-started
	// ones to reach their code.
	containers := func() int {
		m, _ := filepath.Glob(filepath.Join(s.stateDir, s.instance, "conductor-*", "state.json"))
		return len(m)
	}
	if !waitFor(60*time.Second, func() bool { return containers() >= inFlight && len(leftovers.Processes(s.instance)) >= inFlight }) {
		t.Fatalf("%d runs were not in flight within 60 s: %d containers", inFlight, containers())
	}
	time.Sleep(time.Second)
	select {
	case o := <-done:
		t.Fatalf("a %s call ended before SIGTERM: %v %v", o.kind, o.err, o.res)
	default:
	}

	sigterm := time.Now()
	took := s.stop(t) // fails unless the server exits 0 within 10 s
	t.Logf("server exited %v after SIGTERM", took.Round(time.Millisecond))
	for range inFlight {
		select {
		case o := <-done:
			t.Logf("%s: ended %v after SIGTERM", o.kind, o.at.Sub(sigterm).Round(time.Millisecond))
			if o.err != nil {
				t.Errorf("%s: the call in flight got no answer before the server exited: %v", o.kind, o.err)
				continue
			}
			if r := toResult(t, o.res); !r.res.IsError || r.str("status") != "cancelled" {
				t.Errorf("%s: call ended with %s, want isError with status cancelled", o.kind, r)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("a call had not ended 10 s after the server exited")
		}
	}
}

// TestE2EStdioSigterm: SIGTERM to a stdio server during an endless run: it
// answers the call (status cancelled), exits promptly and leaves no sandbox
// process, cgroup or state behind.
func TestE2EStdioSigterm(t *testing.T) {
	bin := conductorBin(t)
	denoBin(t)
	stateDir := t.TempDir()
	cmd := exec.Command(bin, "serve")
	cmd.Env = serverEnv(stateDir)
	stderr := &testenv.SyncBuffer{}
	cmd.Stderr = stderr
	copts, params, running := spinning(10000)
	client := sdk.NewClient(&sdk.Implementation{Name: "conductor-e2e", Version: "1"}, copts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nstderr:\n%s", err, stderr)
	}
	defer cs.Close()
	instance := instanceOf(t, stateDir)
	// The run's own timeout (10 s) bounds the test if SIGTERM does not stop it.
	type outcome struct {
		res *sdk.CallToolResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := cs.CallTool(ctx, params)
		done <- outcome{res, err}
	}()
	// Before: the instance's processes (the pool's sandbox has them before the call) and 300 ms.
	waitSpinning(t, running)
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The transport reaps the server; wait for its pid to go.
	if !waitFor(20*time.Second, func() bool { return !leftovers.Alive(cmd.Process.Pid) }) {
		t.Fatalf("server still running 20 s after SIGTERM")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("server exited %v after SIGTERM, want a few seconds at most (a running execution must be cancelled, not awaited)", d.Round(time.Millisecond))
	} else {
		t.Logf("server exited %v after SIGTERM", d.Round(time.Millisecond))
	}
	// The call in flight is answered before the session ends (the soak's
	// SIGTERM phase found it left without an answer: the connection closed).
	select {
	case o := <-done:
		if o.err != nil {
			t.Errorf("the call in flight got no answer before the server exited: %v", o.err)
		} else if r := toResult(t, o.res); !r.res.IsError || r.str("status") != "cancelled" {
			t.Errorf("call ended with %s, want status cancelled", r)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the call did not end within 5 s of the server's exit")
	}
	assertClean(t, stateDir, instance)
	if t.Failed() {
		t.Logf("server stderr:\n%s", stderr)
	}
}

// TestE2EHTTPBigBody: 10 MB of code over HTTP gets the same clear isError
// naming the limit as over stdio, and the session goes on. (A bare HTTP 413
// from the transport's body limit is not enough: the go-sdk client reports
// only "Request Entity Too Large" and closes its session.)
func TestE2EHTTPBigBody(t *testing.T) {
	s := startHTTP(t)
	cs := mustConnectHTTP(t, s, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": "// " + strings.Repeat("y", 10<<20)}})
	if err != nil {
		t.Errorf("10 MB call over HTTP: %v; want an isError result naming the limit, as over stdio", err)
		// The server itself must still serve.
		cs = mustConnectHTTP(t, s, "", nil)
	} else {
		expectRefused(t, toResult(t, res), "deno_code", "limit", strconv.Itoa(1<<20))
	}
	expectSuccess(t, run(t, cs, map[string]any{"deno_code": "'still here'"}))
}

// TestE2EHTTPMaxCode: MCP_CONDUCTOR_MAX_CODE holds over HTTP too: code
// under the admin's limit is accepted whatever the transport's own default
// body limit (the go-sdk's is 4 MiB).
func TestE2EHTTPMaxCode(t *testing.T) {
	s := startHTTP(t, "MCP_CONDUCTOR_MAX_CODE=8M")
	cs := mustConnectHTTP(t, s, "", nil)
	code := "// " + strings.Repeat("z", 5<<20) + "\n'five megabytes'"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": code}})
	if err != nil {
		t.Fatalf("5 MB of code with MCP_CONDUCTOR_MAX_CODE=8M over HTTP: %v", err)
	}
	r := toResult(t, res)
	expectSuccess(t, r)
	if r.out["returnValue"] != "five megabytes" {
		t.Errorf("returnValue %v", r.out["returnValue"])
	}
}
