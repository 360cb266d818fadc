package upstream

// The test binary doubles as a small go-sdk MCP server (and as a process
// that owns a Manager and then gets killed), selected by UPSTREAM_TEST_HELPER.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const helperEnv = "UPSTREAM_TEST_HELPER"

// Keep the main goroutine on the main thread, so no test goroutine runs
// there: Go never ends the main thread, and TestUpstreamSurvivesThreadExit
// needs a thread that does end.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "server":
		runHelperServer()
	case "fail":
		fmt.Fprintln(os.Stderr, "helper: refusing to start: HELPER_TOKEN is missing")
		os.Exit(3)
	case "silent":
		// Starts, never answers initialize.
		time.Sleep(time.Hour)
	case "parent":
		runHelperParent()
	case "raw":
		runRawServer()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", os.Getenv(helperEnv))
		os.Exit(2)
	}
	os.Exit(0)
}

type textIn struct {
	Text string `json:"text"`
}
type msIn struct {
	MS int `json:"ms"`
}
type empty struct{}
type intOut struct {
	N int `json:"n"`
}
type strOut struct {
	S string `json:"s"`
}

// helperServer is the go-sdk server used as an upstream: over stdio (the
// re-executed test binary) or in-process over HTTP.
func helperServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "helper", Version: "1"}, nil)
	var counter atomic.Int64
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes text"}, func(ctx context.Context, r *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, strOut, error) {
		return nil, strOut{in.Text}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "a tool error"}, func(ctx context.Context, r *mcp.CallToolRequest, in empty) (*mcp.CallToolResult, empty, error) {
		return nil, empty{}, errors.New("the tool failed on purpose")
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sleep", Description: "sleeps ms"}, func(ctx context.Context, r *mcp.CallToolRequest, in msIn) (*mcp.CallToolResult, empty, error) {
		if dir := os.Getenv("HELPER_MARKER_DIR"); dir != "" { // tests wait for it: the call is running
			f, _ := os.CreateTemp(dir, "sleep-*")
			f.Close()
		}
		select {
		case <-time.After(time.Duration(in.MS) * time.Millisecond):
		case <-ctx.Done():
		}
		return nil, empty{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "exits mid-call"}, func(ctx context.Context, r *mcp.CallToolRequest, in empty) (*mcp.CallToolResult, empty, error) {
		if dir := os.Getenv("HELPER_MARKER_DIR"); dir != "" {
			f, _ := os.CreateTemp(dir, "crash-*")
			f.Close()
		}
		fmt.Fprintln(os.Stderr, "helper: crashing on purpose")
		os.Exit(7)
		return nil, empty{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "the server's pid"}, func(ctx context.Context, r *mcp.CallToolRequest, in empty) (*mcp.CallToolResult, intOut, error) {
		return nil, intOut{os.Getpid()}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "counter", Description: "counts calls"}, func(ctx context.Context, r *mcp.CallToolRequest, in empty) (*mcp.CallToolResult, intOut, error) {
		return nil, intOut{int(counter.Add(1))}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "spawn", Description: "starts a grandchild, returns its pid"}, func(ctx context.Context, r *mcp.CallToolRequest, in empty) (*mcp.CallToolResult, intOut, error) {
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			return nil, intOut{}, err
		}
		go cmd.Wait()
		return nil, intOut{cmd.Process.Pid}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "env", Description: "the server's environment"}, func(ctx context.Context, r *mcp.CallToolRequest, in empty) (*mcp.CallToolResult, strOut, error) {
		return nil, strOut{strings.Join(os.Environ(), "\n")}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "cwd", Description: "the server's working directory"}, func(ctx context.Context, r *mcp.CallToolRequest, in empty) (*mcp.CallToolResult, strOut, error) {
		wd, err := os.Getwd()
		return nil, strOut{wd}, err
	})
	s.AddResource(&mcp.Resource{URI: "helper://hello", Name: "hello", MIMEType: "text/plain"}, func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "helper://hello", Text: "hello from helper"}}}, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who", Required: true}}}, func(ctx context.Context, r *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + r.Params.Arguments["who"]}}}}, nil
	})
	return s
}

func runHelperServer() {
	if os.Getenv("HELPER_LINGER") != "" {
		// Outlive stdin EOF and SIGTERM: only SIGKILL ends this one.
		signal.Ignore(syscall.SIGTERM)
	}
	fmt.Fprintln(os.Stderr, "helper: serving on stdio, pid", os.Getpid())
	err := helperServer().Run(context.Background(), &mcp.StdioTransport{})
	if os.Getenv("HELPER_LINGER") != "" {
		time.Sleep(time.Hour)
	}
	if err != nil {
		os.Exit(1)
	}
}

// runRawServer is a minimal hand-written stdio MCP server whose tool
// "leave" answers, then stops reading stdin for 300 ms and exits (a request
// sent in that window is never read), and whose tool "deaf" answers, then
// never reads again.
func runRawServer() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
				Name            string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(in.Bytes(), &req) != nil || req.ID == nil {
			continue // notifications
		}
		reply := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		leave, deaf := false, false
		switch {
		case req.Method == "initialize":
			reply["result"] = map[string]any{"protocolVersion": req.Params.ProtocolVersion,
				"capabilities": map[string]any{"tools": map[string]any{}}, "serverInfo": map[string]any{"name": "raw", "version": "1"}}
		case req.Method == "tools/list":
			reply["result"] = map[string]any{"tools": []any{
				map[string]any{"name": "pid", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "leave", "inputSchema": map[string]any{"type": "object"}}}}
		case req.Method == "tools/call" && req.Params.Name == "pid":
			reply["result"] = map[string]any{"content": []any{map[string]any{"type": "text", "text": strconv.Itoa(os.Getpid())}},
				"structuredContent": map[string]any{"n": os.Getpid()}}
		case req.Method == "tools/call" && req.Params.Name == "leave":
			reply["result"] = map[string]any{"content": []any{map[string]any{"type": "text", "text": "bye"}}}
			leave = true
		case req.Method == "tools/call" && req.Params.Name == "deaf":
			reply["result"] = map[string]any{"content": []any{map[string]any{"type": "text", "text": "not listening"}}}
			deaf = true
		default:
			reply["error"] = map[string]any{"code": -32601, "message": "no " + req.Method}
		}
		out.Encode(reply)
		if leave {
			time.Sleep(300 * time.Millisecond)
			os.Exit(0)
		}
		if deaf {
			time.Sleep(time.Hour)
		}
	}
}

// runHelperParent owns a Manager with one lingering stdio upstream, prints
// the upstream's pid and waits to be killed.
func runHelperParent() {
	exe, _ := os.Executable()
	cfg := &Config{Servers: []ServerConfig{{
		Name: "child", Transport: TransportStdio, Command: exe,
		Env: map[string]string{helperEnv: "server", "HELPER_LINGER": "1"},
	}}}
	m := NewManager(cfg, Options{})
	res, err := m.CallTool(context.Background(), "child", "pid", nil)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("PID", structuredInt(res, "n"))
	time.Sleep(time.Hour)
}

// Helpers for tests.

func helperExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// helperStdio is a stdio server config that runs the helper server.
func helperStdio(t *testing.T, name string, extraEnv ...string) ServerConfig {
	env := map[string]string{helperEnv: "server"}
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return ServerConfig{Name: name, Transport: TransportStdio, Command: helperExe(t), Env: env}
}

// helperHTTP serves the helper server over streamable HTTP (or SSE) on
// 127.0.0.1, requiring "Authorization: Bearer <token>" when token != "".
func helperHTTP(t *testing.T, sse bool, token string) *httptest.Server {
	t.Helper()
	srv := helperServer()
	var h http.Handler
	if sse {
		h = mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	} else {
		h = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func newTestManager(t *testing.T, o Options, servers ...ServerConfig) *Manager {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.StopGrace == 0 {
		o.StopGrace = 300 * time.Millisecond
	}
	m := NewManager(&Config{Servers: servers}, o)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// testLogger logs to the test log at debug when -v and UPSTREAM_TEST_LOG=1.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("UPSTREAM_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// structuredInt reads an integer field of a typed tool result.
func structuredInt(res *mcp.CallToolResult, field string) int {
	if res == nil {
		return -1
	}
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		return -1
	}
	f, ok := m[field].(float64)
	if !ok {
		return -1
	}
	return int(f)
}

func structuredString(res *mcp.CallToolResult, field string) string {
	if res == nil {
		return ""
	}
	m, _ := res.StructuredContent.(map[string]any)
	s, _ := m[field].(string)
	return s
}

func textOf(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// processGone reports whether pid no longer runs (absent, or a zombie that
// whoever inherited it has not reaped yet).
func processGone(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// "pid (comm) S …": the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	testenv.WaitFor(t, fmt.Sprintf("process %d to end", pid), within, func() bool { return processGone(pid) })
}

// waitSleeping waits until the helper's sleep tool has started with HELPER_MARKER_DIR=dir: the
// call was read and runs.
func waitSleeping(t *testing.T, dir string) {
	t.Helper()
	testenv.WaitFor(t, "the helper's sleep tool to start", 5*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "sleep-*"))
		return len(m) > 0
	})
}
