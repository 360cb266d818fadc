package upstream

// The reference MCP servers from npm (pinned in scripts/mcp-tools.sh,
// installed by `make mcp-tools`) as real upstreams.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// missing fails the test on CI and skips it elsewhere, with the reason.
func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// npmServer returns dist/index.js of @modelcontextprotocol/<pkg>.
func npmServer(t *testing.T, pkg string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node is not on PATH (apt-get install -y nodejs npm): "+err.Error())
	}
	dir := os.Getenv("CONDUCTOR_MCP_TOOLS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".build", "mcp-tools")
	}
	dir, _ = filepath.Abs(dir)
	path := filepath.Join(dir, "node_modules", "@modelcontextprotocol", pkg, "dist", "index.js")
	if _, err := os.Stat(path); err != nil {
		missing(t, fmt.Sprintf("@modelcontextprotocol/%s not found at %s (run `make mcp-tools` or set CONDUCTOR_MCP_TOOLS): %v", pkg, path, err))
	}
	return path
}

func everythingStdio(t *testing.T) ServerConfig {
	return ServerConfig{Name: "everything", Transport: TransportStdio, Command: "node",
		Args: []string{npmServer(t, "server-everything")}, Env: map[string]string{"TOKEN": "passed-on"}}
}

// startNodeHTTP runs a reference server in an HTTP mode on 127.0.0.1 (the
// preload pins it there) and returns its port.
func startNodeHTTP(t *testing.T, script string, args ...string) int {
	t.Helper()
	preload, _ := filepath.Abs(filepath.Join("testdata", "loopback.cjs"))
	cmd := exec.Command("node", append([]string{"--require", preload, script}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=0"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ports := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LOOPBACK_LISTENING "); ok {
				n, _ := strconv.Atoi(p)
				ports <- n
			}
		}
	}()
	select {
	case p := <-ports:
		return p
	case <-time.After(20 * time.Second):
		t.Fatalf("%s %v did not start listening", script, args)
		return 0
	}
}

func TestEverythingStdio(t *testing.T) {
	// Not parallel: it sets conductor's environment.
	t.Setenv("MCP_CONDUCTOR_HTTP_TOKEN", "conductor-secret-1")
	ctx := context.Background()
	m := newTestManager(t, Options{}, everythingStdio(t))

	tools, err := m.ListTools(ctx, "everything")
	if err != nil {
		t.Fatal(err)
	}
	names := toolNames(tools)
	t.Logf("server-everything tools (%d): %v", len(names), names)
	for _, want := range []string{"echo", "get-sum", "get-env", "get-tiny-image", "get-structured-content", "trigger-long-running-operation"} {
		if !slices.Contains(names, want) {
			t.Errorf("no tool %q", want)
		}
	}
	// conductor offers no roots, so the roots tool is not registered.
	if slices.Contains(names, "get-roots-list") {
		t.Error("get-roots-list is listed: the client advertised the roots capability")
	}

	res, err := m.CallTool(ctx, "everything", "echo", map[string]any{"message": "hello conductor"})
	if err != nil || res.IsError || textOf(res) != "Echo: hello conductor" {
		t.Fatalf("echo: %v %q", err, textOf(res))
	}
	res, err = m.CallTool(ctx, "everything", "get-sum", map[string]any{"a": 2, "b": 3})
	if err != nil || res.IsError || textOf(res) != "The sum of 2 and 3 is 5." {
		t.Fatalf("get-sum: %v %q", err, textOf(res))
	}
	// Invalid arguments: a tool error, not a Go error.
	res, err = m.CallTool(ctx, "everything", "get-sum", map[string]any{"a": "two"})
	if err != nil || !res.IsError {
		t.Fatalf("get-sum with a string: want IsError, got %v %+v", err, res)
	}
	res, err = m.CallTool(ctx, "everything", "get-env", nil)
	if err != nil {
		t.Fatal(err)
	}
	env := textOf(res)
	if !strings.Contains(env, `"TOKEN": "passed-on"`) || !strings.Contains(env, `"PATH"`) {
		t.Errorf("get-env lacks the configured env or PATH: %s", env)
	}
	if strings.Contains(env, "MCP_CONDUCTOR_HTTP_TOKEN") || strings.Contains(env, "conductor-secret-1") {
		t.Errorf("conductor's own environment leaked to the upstream: %s", env)
	}

	resources, err := m.ListResources(ctx, "everything")
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range resources {
		uris = append(uris, r.URI)
	}
	t.Logf("server-everything resources (%d): %v", len(uris), uris)
	const doc = "demo://resource/static/document/features.md"
	if !slices.Contains(uris, doc) {
		t.Fatalf("no resource %s", doc)
	}
	rr, err := m.ReadResource(ctx, "everything", doc)
	if err != nil || len(rr.Contents) == 0 || rr.Contents[0].URI != doc || len(rr.Contents[0].Text) < 100 {
		t.Fatalf("read %s: %v %+v", doc, err, rr)
	}
	if _, err := m.ReadResource(ctx, "everything", "demo://resource/static/document/no-such.md"); err == nil {
		t.Error("reading a resource that does not exist succeeded")
	}

	prompts, err := m.ListPrompts(ctx, "everything")
	if err != nil {
		t.Fatal(err)
	}
	var pnames []string
	for _, p := range prompts {
		pnames = append(pnames, p.Name)
	}
	sort.Strings(pnames)
	t.Logf("server-everything prompts: %v", pnames)
	if want := []string{"args-prompt", "completable-prompt", "resource-prompt", "simple-prompt"}; !slices.Equal(pnames, want) {
		t.Fatalf("prompts %v, want %v", pnames, want)
	}
	gp, err := m.GetPrompt(ctx, "everything", "args-prompt", map[string]string{"city": "Lisbon", "state": "PT"})
	if err != nil || len(gp.Messages) != 1 {
		t.Fatalf("args-prompt: %v %+v", err, gp)
	}
	if tc, ok := gp.Messages[0].Content.(*mcp.TextContent); !ok || tc.Text != "What's weather in Lisbon, PT?" {
		t.Fatalf("args-prompt message: %+v", gp.Messages[0].Content)
	}

	u := m.ups["everything"]
	u.mu.Lock()
	init := u.sess.cs.InitializeResult()
	u.mu.Unlock()
	if init.ProtocolVersion != DefaultProtocolVersion || init.ServerInfo == nil {
		t.Errorf("initialize: %+v", init)
	} else {
		t.Logf("server-everything: %s %s, protocol %s", init.ServerInfo.Name, init.ServerInfo.Version, init.ProtocolVersion)
	}
	st := statusOf(m, "everything")
	if st.State != StateConnected || st.Tools != len(names) || st.Resources != len(uris) || st.Prompts != 4 {
		t.Fatalf("status: %+v", st)
	}
	if n := m.connectsOf("everything"); n != 1 {
		t.Fatalf("%d connects, want 1", n)
	}
	// server-everything ignores stdin EOF; Close still ends it.
	pid := m.childPid("everything")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Fatalf("node pid %d runs after Close", pid)
	}
}

// server-memory: an entity created in one call is there in the next — the
// session and its process live across calls.
func TestMemoryStdio(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	memFile := filepath.Join(t.TempDir(), "memory.jsonl")
	m := newTestManager(t, Options{}, ServerConfig{Name: "memory", Transport: TransportStdio, Command: "node",
		Args: []string{npmServer(t, "server-memory")}, Env: map[string]string{"MEMORY_FILE_PATH": memFile}})

	tools, err := m.ListTools(ctx, "memory")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"add_observations", "create_entities", "create_relations", "delete_entities", "delete_observations",
		"delete_relations", "open_nodes", "read_graph", "search_nodes"}
	if got := toolNames(tools); !slices.Equal(got, want) {
		t.Fatalf("server-memory tools %v, want %v", got, want)
	}
	res, err := m.CallTool(ctx, "memory", "create_entities", map[string]any{"entities": []any{
		map[string]any{"name": "conductor", "entityType": "project", "observations": []string{"runs TypeScript in sandboxes"}},
	}})
	if err != nil || res.IsError {
		t.Fatalf("create_entities: %v %q", err, textOf(res))
	}
	pid := m.childPid("memory")
	res, err = m.CallTool(ctx, "memory", "open_nodes", map[string]any{"names": []string{"conductor"}})
	if err != nil || res.IsError || !strings.Contains(textOf(res), "runs TypeScript in sandboxes") {
		t.Fatalf("open_nodes in a second call: %v %q", err, textOf(res))
	}
	res, err = m.CallTool(ctx, "memory", "search_nodes", map[string]any{"query": "sandboxes"})
	if err != nil || !strings.Contains(textOf(res), `"conductor"`) {
		t.Fatalf("search_nodes: %v %q", err, textOf(res))
	}
	if got := m.childPid("memory"); got != pid || pid == 0 {
		t.Fatalf("the process changed between calls (%d → %d)", pid, got)
	}
	if n := m.connectsOf("memory"); n != 1 {
		t.Fatalf("%d connects, want 1", n)
	}
	if st := statusOf(m, "memory"); st.Tools != 9 || st.State != StateConnected {
		t.Fatalf("status: %+v", st)
	}
}

func TestEverythingStreamableHTTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	port := startNodeHTTP(t, npmServer(t, "server-everything"), "streamableHttp")
	m := newTestManager(t, Options{}, ServerConfig{Name: "everything", Transport: TransportStreamableHTTP,
		URL: fmt.Sprintf("http://127.0.0.1:%d/mcp", port), Headers: map[string]string{"X-Conductor-Test": "1"}})
	tools, err := m.ListTools(ctx, "everything")
	if err != nil {
		t.Fatal(err)
	}
	if names := toolNames(tools); !slices.Contains(names, "echo") || !slices.Contains(names, "get-sum") {
		t.Fatalf("tools over HTTP: %v", names)
	}
	for i := range 3 {
		msg := fmt.Sprintf("over http %d", i)
		res, err := m.CallTool(ctx, "everything", "echo", map[string]any{"message": msg})
		if err != nil || textOf(res) != "Echo: "+msg {
			t.Fatalf("echo: %v %q", err, textOf(res))
		}
	}
	res, err := m.CallTool(ctx, "everything", "get-sum", map[string]any{"a": 40, "b": 2})
	if err != nil || textOf(res) != "The sum of 40 and 2 is 42." {
		t.Fatalf("get-sum: %v %q", err, textOf(res))
	}
	rr, err := m.ReadResource(ctx, "everything", "demo://resource/static/document/features.md")
	if err != nil || len(rr.Contents) == 0 {
		t.Fatalf("read: %v", err)
	}
	if gp, err := m.GetPrompt(ctx, "everything", "simple-prompt", nil); err != nil || len(gp.Messages) == 0 {
		t.Fatalf("simple-prompt: %v", err)
	}
	if st := statusOf(m, "everything"); st.State != StateConnected || st.Transport != TransportStreamableHTTP {
		t.Fatalf("status: %+v", st)
	}
	if n := m.connectsOf("everything"); n != 1 {
		t.Fatalf("%d connects, want 1", n)
	}
}

func TestEverythingSSE(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	port := startNodeHTTP(t, npmServer(t, "server-everything"), "sse")
	m := newTestManager(t, Options{}, ServerConfig{Name: "everything", Transport: TransportSSE,
		URL: fmt.Sprintf("http://127.0.0.1:%d/sse", port)})
	res, err := m.CallTool(ctx, "everything", "echo", map[string]any{"message": "legacy"})
	if err != nil || textOf(res) != "Echo: legacy" {
		t.Fatalf("echo over SSE: %v %q", err, textOf(res))
	}
	time.Sleep(100 * time.Millisecond) // a window for a stream bound to the ended connection attempt to break, not a wait
	res, err = m.CallTool(ctx, "everything", "get-sum", map[string]any{"a": 1, "b": 1})
	if err != nil || textOf(res) != "The sum of 1 and 1 is 2." {
		t.Fatalf("get-sum over SSE: %v %q", err, textOf(res))
	}
	if n := m.connectsOf("everything"); n != 1 {
		t.Fatalf("%d connects, want 1", n)
	}
}

func percentiles(d []time.Duration) (p50, p90, p99 time.Duration) {
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return at(0.50), at(0.90), at(0.99)
}

// The baseline the product's overhead is compared against: a tools/call
// round trip to server-everything's echo over stdio, through the Manager
// and straight through a go-sdk ClientSession.
func TestEchoRoundTrip(t *testing.T) {
	const n = 200
	ctx := context.Background()
	cfg := everythingStdio(t)
	m := newTestManager(t, Options{}, cfg)
	args := map[string]any{"message": "ping"}
	start := time.Now()
	if _, err := m.CallTool(ctx, "everything", "echo", args); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	var viaManager []time.Duration
	for range n {
		t0 := time.Now()
		res, err := m.CallTool(ctx, "everything", "echo", args)
		viaManager = append(viaManager, time.Since(t0))
		if err != nil || textOf(res) != "Echo: ping" {
			t.Fatalf("echo: %v", err)
		}
	}

	client := mcp.NewClient(&mcp.Implementation{Name: "baseline", Version: "1"}, nil)
	cmd := exec.Command("node", cfg.Args...)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 300 * time.Millisecond},
		&mcp.ClientSessionOptions{ProtocolVersion: DefaultProtocolVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var direct []time.Duration
	for range n {
		t0 := time.Now()
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: args})
		direct = append(direct, time.Since(t0))
		if err != nil {
			t.Fatal(err)
		}
	}
	m50, m90, m99 := percentiles(viaManager)
	d50, d90, d99 := percentiles(direct)
	t.Logf("first call (spawn node + initialize + call): %s", first.Round(time.Millisecond))
	t.Logf("echo over stdio, %d calls: Manager p50 %s p90 %s p99 %s; go-sdk ClientSession p50 %s p90 %s p99 %s",
		n, m50.Round(time.Microsecond), m90.Round(time.Microsecond), m99.Round(time.Microsecond),
		d50.Round(time.Microsecond), d90.Round(time.Microsecond), d99.Round(time.Microsecond))
	if m50 > 20*time.Millisecond {
		t.Fatalf("Manager p50 %s: far above a local stdio round trip", m50)
	}
}
