package mcp_test

// End-to-end tests of mcpFactory (issue 4) through the BUILT binary: a go-sdk
// client drives `conductor serve` over stdio, configured with
// MCP_CONDUCTOR_MCP_CONFIG to reach real upstream MCP servers:
//
//   - @modelcontextprotocol/server-everything over stdio (conductor starts it),
//   - the same server in streamable-HTTP mode on 127.0.0.1 (the test starts it,
//     pinned to loopback by ../upstream/testdata/loopback.cjs),
//   - @modelcontextprotocol/server-memory over stdio,
//   - goUpstream: a tiny in-process go-sdk server over streamable HTTP on
//     127.0.0.1 (tools big, fail, sleep, wait, barrier, …) for the hostile
//     cases.
//
// Inputs as in e2e_test.go (CONDUCTOR_BIN, CONDUCTOR_DENO, CONDUCTOR_MCP_TOOLS),
// plus node on PATH. Missing ones skip the tests, or fail them on CI.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/leftovers"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// ---------------------------------------------------------------------------
// Prerequisites

// factoryMissing fails the test on CI and skips it elsewhere.
func factoryMissing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// factoryTools are the programs the factory tests need.
type factoryTools struct {
	node       string // absolute path of node
	everything string // server-everything's dist/index.js
	memory     string // server-memory's dist/index.js
	loopback   string // the preload that pins node's listens to 127.0.0.1
}

func needFactoryTools(t *testing.T) factoryTools {
	t.Helper()
	conductorBin(t)
	denoBin(t)
	node, err := exec.LookPath("node")
	if err != nil {
		factoryMissing(t, "node is not on PATH (apt-get install -y nodejs npm): "+err.Error())
	}
	dir := prerequisite(t, "the MCP npm tools", "CONDUCTOR_MCP_TOOLS", "../.build/mcp-tools", "make mcp-tools")
	pkg := func(name string) string {
		p := filepath.Join(dir, "node_modules", "@modelcontextprotocol", name, "dist", "index.js")
		if _, err := os.Stat(p); err != nil {
			factoryMissing(t, fmt.Sprintf("@modelcontextprotocol/%s not found at %s (run `make mcp-tools` or set CONDUCTOR_MCP_TOOLS): %v", name, p, err))
		}
		return p
	}
	loopback, _ := filepath.Abs(filepath.Join("upstream", "testdata", "loopback.cjs"))
	if _, err := os.Stat(loopback); err != nil {
		t.Fatalf("the loopback preload is missing: %v", err)
	}
	return factoryTools{node: node, everything: pkg("server-everything"), memory: pkg("server-memory"), loopback: loopback}
}

// startEverythingHTTP runs server-everything in streamable-HTTP mode on
// 127.0.0.1 (a free port) and returns its /mcp URL.
func startEverythingHTTP(t *testing.T, ft factoryTools) string {
	t.Helper()
	cmd := exec.Command(ft.node, "--require", ft.loopback, ft.everything, "streamableHttp")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=0"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ports := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LOOPBACK_LISTENING "); ok {
				n, _ := strconv.Atoi(p)
				select {
				case ports <- n:
				default:
				}
			}
		}
	}()
	select {
	case p := <-ports:
		return fmt.Sprintf("http://127.0.0.1:%d/mcp", p)
	case <-time.After(20 * time.Second):
		t.Fatal("server-everything streamableHttp did not start listening within 20 s")
		return ""
	}
}

// ---------------------------------------------------------------------------
// goUpstream: an in-process go-sdk MCP server over streamable HTTP

type goUpstream struct {
	srv     *httptest.Server
	url     string // /mcp: responses as SSE streams (the go-sdk default)
	jsonURL string // /json: the same tools, responses as application/json

	mu       sync.Mutex
	cond     *sync.Cond
	released map[string]bool // wait keys the test released
	waiting  map[string]int  // callers inside wait, by key
	arrived  map[string]int  // callers inside barrier, by key
	sleeping map[string]int  // sleep calls in progress, by tag
	auth     []string        // Authorization headers seen
	markers  []string        // X-Config-Marker headers seen
	closing  bool

	sleepsCancelled atomic.Int64 // sleep calls whose context ended early
	sleepsCompleted atomic.Int64
	bigServed       atomic.Int64 // bytes handed to the SDK by big
	initializes     atomic.Int64 // initialize requests received (one per client session)
}

type bigIn struct {
	Bytes int `json:"bytes" jsonschema:"size of the text to return"`
}
type failIn struct {
	Message string `json:"message" jsonschema:"the error text"`
}
type sleepIn struct {
	Ms  int    `json:"ms" jsonschema:"milliseconds to sleep"`
	Tag string `json:"tag,omitempty" jsonschema:"a label the test can wait for"`
}
type keyIn struct {
	Key string `json:"key" jsonschema:"rendezvous key"`
}
type barrierIn struct {
	Key string `json:"key" jsonschema:"rendezvous key"`
	N   int    `json:"n" jsonschema:"how many callers must be inside at once"`
}

func textResult(s string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
}

// startGoUpstream serves the goUpstream tools on 127.0.0.1.
func startGoUpstream(t *testing.T) *goUpstream {
	t.Helper()
	u := &goUpstream{released: map[string]bool{}, waiting: map[string]int{}, arrived: map[string]int{}, sleeping: map[string]int{}}
	u.cond = sync.NewCond(&u.mu)
	s := sdk.NewServer(&sdk.Implementation{Name: "factory-goup", Version: "1"}, nil)
	s.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if method == "initialize" {
				u.initializes.Add(1)
			}
			return next(ctx, method, req)
		}
	})
	sdk.AddTool(s, &sdk.Tool{Name: "big", Description: "returns a text of the given size"},
		func(ctx context.Context, _ *sdk.CallToolRequest, in bigIn) (*sdk.CallToolResult, any, error) {
			if in.Bytes < 0 || in.Bytes > 256<<20 {
				return nil, nil, fmt.Errorf("bytes out of range")
			}
			u.bigServed.Add(int64(in.Bytes))
			return textResult(strings.Repeat("x", in.Bytes)), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "fail", Description: "always reports a tool error"},
		func(ctx context.Context, _ *sdk.CallToolRequest, in failIn) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "goup: deliberate failure: " + in.Message}}}, nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "sleep", Description: "sleeps ms milliseconds, or until cancelled"},
		func(ctx context.Context, _ *sdk.CallToolRequest, in sleepIn) (*sdk.CallToolResult, any, error) {
			u.mu.Lock()
			u.sleeping[in.Tag]++
			u.cond.Broadcast()
			u.mu.Unlock()
			defer func() {
				u.mu.Lock()
				u.sleeping[in.Tag]--
				u.cond.Broadcast()
				u.mu.Unlock()
			}()
			select {
			case <-time.After(time.Duration(in.Ms) * time.Millisecond):
				u.sleepsCompleted.Add(1)
				return textResult(fmt.Sprintf("slept %d ms", in.Ms)), nil, nil
			case <-ctx.Done():
				u.sleepsCancelled.Add(1)
				return nil, nil, ctx.Err()
			}
		})
	sdk.AddTool(s, &sdk.Tool{Name: "sleeping", Description: "waits (up to 20 s) until a sleep call with the tag is in progress"},
		func(ctx context.Context, _ *sdk.CallToolRequest, in keyIn) (*sdk.CallToolResult, any, error) {
			if !u.await(ctx, 20*time.Second, func() bool { return u.sleeping[in.Key] > 0 }) {
				return nil, nil, fmt.Errorf("no sleep tagged %q started", in.Key)
			}
			return textResult("sleeping: " + in.Key), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "wait", Description: "blocks until the test releases key (at most 60 s)"},
		func(ctx context.Context, _ *sdk.CallToolRequest, in keyIn) (*sdk.CallToolResult, any, error) {
			u.mu.Lock()
			u.waiting[in.Key]++
			u.cond.Broadcast()
			u.mu.Unlock()
			if !u.await(ctx, 60*time.Second, func() bool { return u.released[in.Key] }) {
				return nil, nil, fmt.Errorf("wait %q: not released", in.Key)
			}
			return textResult("released: " + in.Key), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "barrier", Description: "returns once n callers with the same key are inside together (fails after 15 s)"},
		func(ctx context.Context, _ *sdk.CallToolRequest, in barrierIn) (*sdk.CallToolResult, any, error) {
			u.mu.Lock()
			u.arrived[in.Key]++
			u.cond.Broadcast()
			u.mu.Unlock()
			if !u.await(ctx, 15*time.Second, func() bool { return u.arrived[in.Key] >= in.N }) {
				u.mu.Lock()
				got := u.arrived[in.Key]
				u.mu.Unlock()
				return nil, nil, fmt.Errorf("barrier %q: only %d of %d callers were ever inside at once", in.Key, got, in.N)
			}
			return textResult(fmt.Sprintf("%d together", in.N)), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "forbidden", Description: "must never be reachable: allowedTools leaves it out"},
		func(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			return textResult("FORBIDDEN TOOL RAN"), nil, nil
		})

	record := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.mu.Lock()
			if a := r.Header.Get("Authorization"); a != "" && !slices.Contains(u.auth, a) {
				u.auth = append(u.auth, a)
			}
			if m := r.Header.Get("X-Config-Marker"); m != "" && !slices.Contains(u.markers, m) {
				u.markers = append(u.markers, m)
			}
			u.mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", record(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)))
	mux.Handle("/json", record(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{JSONResponse: true})))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.srv = httptest.NewUnstartedServer(mux)
	u.srv.Listener.Close()
	u.srv.Listener = ln
	u.srv.Start()
	u.url = u.srv.URL + "/mcp"
	u.jsonURL = u.srv.URL + "/json"
	t.Cleanup(func() {
		u.mu.Lock()
		u.closing = true
		u.cond.Broadcast()
		u.mu.Unlock()
		u.srv.CloseClientConnections()
		u.srv.Close()
	})
	return u
}

// await waits until cond holds (under u.mu), ctx ends, d passes or the
// upstream closes.
func (u *goUpstream) await(ctx context.Context, d time.Duration, cond func() bool) bool {
	stop := context.AfterFunc(ctx, func() { u.mu.Lock(); u.cond.Broadcast(); u.mu.Unlock() })
	defer stop()
	timer := time.AfterFunc(d, func() { u.mu.Lock(); u.cond.Broadcast(); u.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(d)
	u.mu.Lock()
	defer u.mu.Unlock()
	for !cond() {
		if ctx.Err() != nil || u.closing || time.Now().After(deadline) {
			return false
		}
		u.cond.Wait()
	}
	return true
}

func (u *goUpstream) release(key string) {
	u.mu.Lock()
	u.released[key] = true
	u.cond.Broadcast()
	u.mu.Unlock()
}

// waitingOn waits up to d for a caller inside wait(key).
func (u *goUpstream) waitingOn(key string, d time.Duration) bool {
	return u.await(context.Background(), d, func() bool { return u.waiting[key] > 0 })
}

func (u *goUpstream) seen() (auth, markers []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.auth), slices.Clone(u.markers)
}

// ---------------------------------------------------------------------------
// conductor with an upstream config

// factoryServer is `conductor serve` over stdio, configured with upstreams.
type factoryServer struct {
	cs       *sdk.ClientSession
	cmd      *exec.Cmd
	pid      int
	stderr   *testenv.SyncBuffer
	stateDir string
	instance string
	cfgPath  string
}

// startFactoryServer writes cfg to a file in t.TempDir(), points
// MCP_CONDUCTOR_MCP_CONFIG at it and starts `conductor serve [args]` over
// stdio. Cleanup closes the session, expects exit 0, an empty state dir, no
// sandbox left, and every upstream process conductor started gone.
func startFactoryServer(t *testing.T, cfg map[string]any, args []string, env ...string) *factoryServer {
	t.Helper()
	return startFactoryServerWith(t, nil, nil, cfg, args, env...)
}

// startFactoryServerWith is startFactoryServer with the client's options
// (an elicitation handler) and its session's (a protocol version).
func startFactoryServerWith(t *testing.T, copts *sdk.ClientOptions, sopts *sdk.ClientSessionOptions, cfg map[string]any, args []string, env ...string) *factoryServer {
	t.Helper()
	bin := conductorBin(t)
	b, err := json.MarshalIndent(map[string]any{"mcpServers": cfg}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	s := &factoryServer{stderr: &testenv.SyncBuffer{}, stateDir: t.TempDir()}
	s.cfgPath = filepath.Join(t.TempDir(), "mcp-config.json")
	if err := os.WriteFile(s.cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	s.cmd.Env = serverEnv(s.stateDir, append([]string{"MCP_CONDUCTOR_MCP_CONFIG=" + s.cfgPath}, env...)...)
	s.cmd.Stderr = s.stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "conductor-factory-e2e", Version: "1"}, copts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: s.cmd, TerminateDuration: 15 * time.Second}, sopts)
	if err != nil {
		t.Fatalf("connect to `conductor serve`: %v\nstderr:\n%s", err, s.stderr)
	}
	s.cs = cs
	s.pid = s.cmd.Process.Pid
	s.instance = instanceOf(t, s.stateDir)
	t.Cleanup(func() {
		ups := childrenOf(s.pid)
		done := make(chan error, 1)
		go func() { done <- cs.Close() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("closing the stdio session took over 30 s")
		}
		if s.cmd.ProcessState == nil || !s.cmd.ProcessState.Exited() {
			t.Errorf("server did not exit after its stdin closed: %v", s.cmd.ProcessState)
		} else if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("server exited %d after its stdin closed", code)
		}
		assertClean(t, s.stateDir, s.instance)
		for pid, cmdline := range ups {
			if !waitFor(5*time.Second, func() bool { return !leftovers.Alive(pid) }) {
				t.Errorf("upstream process %d (%s) still runs after conductor exited", pid, cmdline)
			}
		}
		if t.Failed() {
			t.Logf("server stderr (last 4000 bytes):\n%s", tail(s.stderr.String(), 4000))
		}
	})
	return s
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// childrenOf maps the live child processes of pid to their command lines.
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
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) || f[0] == "Z" {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[child] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

// upstreamPid is the pid of conductor's child whose command line contains
// what (0 if none).
func (s *factoryServer) upstreamPid(what string) int {
	for pid, cmdline := range childrenOf(s.pid) {
		if strings.Contains(cmdline, what) {
			return pid
		}
	}
	return 0
}

// procStatus reads one "Name: N kB" line of the serve process's
// /proc/<pid>/status, in bytes.
func (s *factoryServer) procStatus(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", name, v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, s.pid)
	return 0
}

// vmHWM is the serve process's peak resident set size, in bytes.
func (s *factoryServer) vmHWM(t *testing.T) int64 { return s.procStatus(t, "VmHWM") }

// resetPeak resets the serve process's peak RSS (VmHWM) to its current RSS
// (writing 5 to /proc/<pid>/clear_refs) and returns that RSS, so the next
// VmHWM reading shows only what follows.
func (s *factoryServer) resetPeak(t *testing.T) int64 {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid), []byte("5"), 0); err != nil {
		t.Logf("cannot reset VmHWM (%v): measuring from the peak so far", err)
	}
	return s.procStatus(t, "VmRSS")
}

// exec runs code through run_deno_code (protocol errors fail the test).
func (s *factoryServer) exec(t *testing.T, code string, globals map[string]any) result {
	t.Helper()
	args := map[string]any{"deno_code": code, "timeout": 45000}
	if globals != nil {
		args["globals"] = globals
	}
	return run(t, s.cs, args)
}

// tool calls one of conductor's tools and returns its result.
func (s *factoryServer) tool(t *testing.T, name string, args map[string]any) *sdk.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", name, err)
	}
	return res
}

// decodeInto turns v (decoded JSON) into dst.
func decodeInto(t *testing.T, v any, dst any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// sameJSON fails unless got and want (a JSON text) are the same JSON value.
func sameJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want for %s: %v", what, err)
	}
	var g any
	decodeInto(t, got, &g)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.MarshalIndent(g, "", "  ")
		wb, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

// ---------------------------------------------------------------------------
// 1 + 2: the happy path and state across executions

// TestFactoryE2E: one run_deno_code execution reaches server-everything over
// stdio and over streamable HTTP, server-memory and the Go upstream, with
// calls in parallel (proved by a barrier that only opens when all four calls
// are inside the upstream at once), reads a resource, gets a prompt and
// returns a summary computed in code; list_mcp_servers and get_tool_details
// describe the upstreams; the next execution reads back what the first one
// stored, through the same upstream processes and sessions.
func TestFactoryE2E(t *testing.T) {
	ft := needFactoryTools(t)
	goup := startGoUpstream(t)
	httpURL := startEverythingHTTP(t, ft)
	memFile := filepath.Join(t.TempDir(), "memory.json")
	s := startFactoryServer(t, map[string]any{
		"everything":      map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"}},
		"everything_http": map[string]any{"url": httpURL},
		"memory":          map[string]any{"command": ft.node, "args": []string{ft.memory}, "env": map[string]string{"MEMORY_FILE_PATH": memFile}},
		"goup":            map[string]any{"url": goup.url, "type": "http"},
		"off":             map[string]any{"command": "/nonexistent/mcp-server", "disabled": true},
	}, nil)

	docPath := filepath.Join(filepath.Dir(ft.everything), "docs", "features.md")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("the resource's source file: %v", err)
	}
	docLines := strings.Split(string(doc), "\n")
	entity := fmt.Sprintf("factory-e2e-%d", time.Now().UnixNano())

	var memPid int
	var sessionLine string
	t.Run("one execution, four servers, parallel calls", func(t *testing.T) {
		r := s.exec(t, `
const ev = mcpFactory.load("everything");
const eh = mcpFactory.load("everything_http");
const mem = mcpFactory.load("memory");
const go = mcpFactory.load("goup");
const servers = await mcpFactory.listServers();
const [tools, echoS, echoH, sums, weather, doc, prompt, created, barrier, toggled] = await Promise.all([
  ev.listTools(),
  ev.callTool("echo", { message: "over stdio" }),
  eh.callTool("echo", { message: "over http" }),
  Promise.all([1, 2, 3, 4].map((i) => (i % 2 ? ev : eh).callTool("get-sum", { a: i, b: 10 * i }))),
  eh.callTool("get-structured-content", { location: "Chicago" }),
  ev.readResource("demo://resource/static/document/features.md"),
  eh.getPrompt("args-prompt", { city: "Lisbon", state: "PT" }),
  mem.callTool("create_entities", { entities: [{ name: entity, entityType: "test", observations: ["stored by execution 1"] }] }),
  Promise.all([0, 1, 2, 3].map(() => go.callTool("barrier", { key: "e2e", n: 4 }))),
  eh.callTool("toggle-simulated-logging", {}),
]);
const text = doc.contents[0].text;
return {
  servers,
  toolCount: tools.length,
  echoHasSchema: tools.find((t) => t.name === "echo")?.inputSchema?.properties?.message?.type ?? null,
  echoes: [echoS, echoH],
  sumTotal: sums.map((s) => Number(/ is (\d+)\.$/.exec(s)[1])).reduce((a, b) => a + b, 0),
  weather,
  doc: { uri: doc.contents[0].uri, mimeType: doc.contents[0].mimeType, lines: text.split("\n").length, title: text.split("\n")[0] },
  prompt: prompt.messages.map((m) => m.role + ": " + m.content.text),
  created: created.entities.map((e) => e.name === entity ? "<entity>" : e.name),
  barrier,
  toggled: toggled.split(" for session ")[0],
  session: toggled.split(" for session ")[1]?.split(" ")[0] ?? null,
};`, map[string]any{"entity": entity})
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		sessionLine, _ = rv["session"].(string)
		if sessionLine == "" {
			t.Errorf("toggle-simulated-logging named no session: %v", rv)
		}
		delete(rv, "session")
		sameJSON(t, "summary", rv, fmt.Sprintf(`{
  "servers": ["everything", "everything_http", "goup", "memory"],
  "toolCount": 13,
  "echoHasSchema": "string",
  "echoes": ["Echo: over stdio", "Echo: over http"],
  "sumTotal": 110,
  "weather": {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82},
  "doc": {"uri": "demo://resource/static/document/features.md", "mimeType": "text/markdown", "lines": %d, "title": %q},
  "prompt": ["user: What's weather in Lisbon, PT?"],
  "created": ["<entity>"],
  "barrier": ["4 together", "4 together", "4 together", "4 together"],
  "toggled": "Started simulated, random-leveled logging"
}`, len(docLines), docLines[0]))
		if got := r.out["mcpCalls"]; got != float64(17) {
			t.Errorf("mcpCalls %v, want 17", got)
		}
		memPid = s.upstreamPid(ft.memory)
		if memPid == 0 {
			t.Errorf("no server-memory child of conductor (pid %d): %v", s.pid, childrenOf(s.pid))
		}
	})

	t.Run("list_mcp_servers after use", func(t *testing.T) {
		res := s.tool(t, "list_mcp_servers", nil)
		if res.IsError {
			t.Fatalf("list_mcp_servers: %s", toResult(t, res))
		}
		var out struct {
			Servers []struct {
				Name, Transport, Status, LastError string
				Tools                              int
			}
		}
		decodeInto(t, res.StructuredContent, &out)
		var got []string
		for _, sv := range out.Servers {
			got = append(got, fmt.Sprintf("%s %s %s %q", sv.Name, sv.Transport, sv.Status, sv.LastError))
			if sv.Name == "everything" && sv.Tools != 13 {
				t.Errorf("everything: tools %d after listTools, want 13", sv.Tools)
			}
		}
		want := []string{
			`everything stdio connected ""`,
			`everything_http streamable-http connected ""`,
			`goup streamable-http connected ""`,
			`memory stdio connected ""`,
			`off stdio disabled ""`,
		}
		if !slices.Equal(got, want) {
			t.Errorf("list_mcp_servers:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("get_tool_details", func(t *testing.T) {
		res := s.tool(t, "get_tool_details", map[string]any{"server": "everything", "tools": []string{"echo", "get-sum", "get-structured-content"}})
		if res.IsError {
			t.Fatalf("get_tool_details: %s", toResult(t, res))
		}
		var out struct {
			Server string
			Tools  []struct {
				Name         string
				Description  string
				InputSchema  map[string]any
				OutputSchema map[string]any
			}
		}
		decodeInto(t, res.StructuredContent, &out)
		var names []string
		for _, tl := range out.Tools {
			names = append(names, tl.Name)
			props, _ := tl.InputSchema["properties"].(map[string]any)
			switch tl.Name {
			case "echo":
				if props["message"] == nil {
					t.Errorf("echo's input schema lacks message: %v", tl.InputSchema)
				}
			case "get-sum":
				if props["a"] == nil || props["b"] == nil {
					t.Errorf("get-sum's input schema lacks a or b: %v", tl.InputSchema)
				}
			case "get-structured-content":
				oprops, _ := tl.OutputSchema["properties"].(map[string]any)
				if oprops["temperature"] == nil {
					t.Errorf("get-structured-content's output schema lacks temperature: %v", tl.OutputSchema)
				}
			}
			if tl.Description == "" {
				t.Errorf("%s has no description", tl.Name)
			}
		}
		slices.Sort(names)
		if out.Server != "everything" || !slices.Equal(names, []string{"echo", "get-structured-content", "get-sum"}) {
			t.Errorf("get_tool_details asked for [echo get-sum get-structured-content] of everything; got server %q with %d tools %v "+
				"(the filter lets through every tool listed after the last one asked for)", out.Server, len(names), names)
		}

		res = s.tool(t, "get_tool_details", map[string]any{"server": "memory"})
		decodeInto(t, res.StructuredContent, &out)
		if res.IsError || len(out.Tools) != 9 {
			t.Errorf("get_tool_details memory (all tools): isError %v, %d tools, want 9", res.IsError, len(out.Tools))
		}
		for _, tl := range out.Tools {
			if tl.InputSchema["type"] != "object" {
				t.Errorf("memory %s: input schema %v", tl.Name, tl.InputSchema)
			}
		}

		for _, c := range []struct {
			args map[string]any
			want []string
		}{
			{map[string]any{"server": "everything", "tools": []string{"echo", "no-such-tool"}}, []string{`no tool "no-such-tool"`, "everything"}},
			{map[string]any{"server": "nowhere"}, []string{`unknown MCP server "nowhere"`, "everything", "memory"}},
			{map[string]any{"server": "off"}, []string{`"off"`, "disabled"}},
		} {
			expectRefused(t, toResult(t, s.tool(t, "get_tool_details", c.args)), c.want...)
		}
	})

	t.Run("the next execution reads the state back", func(t *testing.T) {
		r := s.exec(t, `
const mem = mcpFactory.load("memory");
const opened = await mem.callTool("open_nodes", { names: [entity] });
const found = await mem.callTool("search_nodes", { query: "execution 1" });
const toggled = await mcpFactory.load("everything_http").callTool("toggle-simulated-logging", {});
return {
  opened: opened.entities.map((e) => [e.name === entity, e.entityType, e.observations]),
  found: found.entities.filter((e) => e.name === entity).length,
  toggled: toggled.split(" for session ")[0],
  session: toggled.split(" for session ")[1] ?? null,
};`, map[string]any{"entity": entity})
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		if rv["session"] != sessionLine {
			t.Errorf("server-everything over HTTP saw session %v in the second execution, %q in the first: the upstream session was not kept", rv["session"], sessionLine)
		}
		delete(rv, "session")
		sameJSON(t, "read back", rv, `{
  "opened": [[true, "test", ["stored by execution 1"]]],
  "found": 1,
  "toggled": "Stopped simulated logging"
}`)
		if pid := s.upstreamPid(ft.memory); pid != memPid || pid == 0 {
			t.Errorf("server-memory pid %d in the second execution, %d in the first: want the same long-lived process", pid, memPid)
		}
	})
}

// ---------------------------------------------------------------------------
// 3: hostile channel, hostile code

// hostileEnv is one conductor (allow-all, debug log) with every upstream.
type hostileEnv struct {
	s        *factoryServer
	goup     *goUpstream
	sentinel string
	marker   string
	n        atomic.Int64
}

// bystander is a normal execution that runs while a hostile one does: it
// is inside an upstream call (ready) until release, then finishes; its
// return value must be want.
type bystander struct {
	code    string
	globals map[string]any
	ready   func() bool
	release func()
	want    string
}

// goBystander waits inside the Go upstream's wait tool, then calls
// server-everything.
func (h *hostileEnv) goBystander() bystander {
	key := fmt.Sprintf("bystander-%d", h.n.Add(1))
	return bystander{
		globals: map[string]any{"key": key},
		code: `
const g = mcpFactory.load("goup"), ev = mcpFactory.load("everything");
const released = await g.callTool("wait", { key });
const [echo, sum] = await Promise.all([ev.callTool("echo", { message: "bystander" }), ev.callTool("get-sum", { a: 20, b: 22 })]);
return [released, echo, sum];`,
		ready:   func() bool { return h.goup.waitingOn(key, 30*time.Second) },
		release: func() { h.goup.release(key) },
		want:    fmt.Sprintf(`["released: %s", "Echo: bystander", "The sum of 20 and 22 is 42."]`, key),
	}
}

// stdioBystander holds a call open on the big_stdio upstream until its file
// exists (the upstream says so on stderr, which conductor logs at debug).
func (h *hostileEnv) stdioBystander(t *testing.T) bystander {
	file := filepath.Join(t.TempDir(), fmt.Sprintf("release-%d", h.n.Add(1)))
	return bystander{
		globals: map[string]any{"file": file},
		code: `
const held = await mcpFactory.load("big_stdio").callTool("hold", { file });
const echo = await mcpFactory.load("big_stdio").callTool("echo", { message: "bystander" });
return [held, echo];`,
		ready: func() bool {
			return waitFor(30*time.Second, func() bool { return strings.Contains(h.s.stderr.String(), "HOLDING "+file) })
		},
		release: func() { _ = os.WriteFile(file, nil, 0o644) },
		want:    fmt.Sprintf(`["held %s", "echo: bystander"]`, file),
	}
}

// around runs hostile while the Go bystander is inside its upstream call.
func (h *hostileEnv) around(t *testing.T, hostile func(t *testing.T)) {
	t.Helper()
	h.aroundWith(t, h.goBystander(), hostile)
}

// aroundWith starts b, runs hostile once b is inside its upstream call,
// releases b and checks its result, then runs one more normal execution.
// Both must be exactly as without hostile.
func (h *hostileEnv) aroundWith(t *testing.T, b bystander, hostile func(t *testing.T)) {
	t.Helper()
	type out struct {
		r   result
		err error
	}
	done := make(chan out, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		res, err := h.s.cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{
			"timeout": 80000, "globals": b.globals, "deno_code": b.code,
		}})
		if err != nil {
			done <- out{err: err}
			return
		}
		done <- out{r: toResult(t, res)}
	}()
	if !b.ready() {
		b.release()
		<-done
		t.Fatalf("the bystander execution did not reach its upstream within 30 s")
	}
	hostile(t)
	b.release()
	o := <-done
	if o.err != nil {
		t.Fatalf("bystander execution: protocol error %v", o.err)
	}
	if o.r.res.IsError || o.r.str("status") != "success" {
		t.Errorf("the concurrent normal execution was hurt by the hostile one: status %q, error %.400v", o.r.str("status"), o.r.errField("message"))
	} else {
		sameJSON(t, "bystander execution (concurrent with the hostile one)", o.r.out["returnValue"], b.want)
	}
	after := h.s.exec(t, `return await mcpFactory.load("everything").callTool("get-sum", { a: 1, b: 2 })`, nil)
	expectSuccess(t, after)
	if after.out["returnValue"] != "The sum of 1 and 2 is 3." {
		t.Errorf("normal execution after the hostile one: %s", after)
	}
}

// newHostileEnv starts conductor with MCP_CONDUCTOR_RUN_ARGS=allow-all, a
// debug log, a sentinel secret in its own environment (referenced as
// ${FACTORY_SENTINEL} by upstreams), and these upstreams: everything (stdio),
// goup (the Go upstream over SSE, with allowedTools), goup_json (the same over
// application/json), big_stdio (testdata/factory/big-stdio.cjs) and off
// (disabled). It warms everything and goup.
func newHostileEnv(t *testing.T, ft factoryTools, goup *goUpstream) *hostileEnv {
	t.Helper()
	h := &hostileEnv{goup: goup}
	h.sentinel = fmt.Sprintf("SENTINEL-%x", time.Now().UnixNano())
	h.marker = fmt.Sprintf("cfgmarker-%x", time.Now().UnixNano()^0x5a5a5a)
	bigStdio, err := filepath.Abs(filepath.Join("testdata", "factory", "big-stdio.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	goupTools := []string{"big", "fail", "sleep", "sleeping", "wait", "barrier"}
	h.s = startFactoryServer(t, map[string]any{
		"everything": map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"},
			"env": map[string]string{"E2E_TOKEN": "${FACTORY_SENTINEL}", "E2E_MARKER": h.marker}},
		"goup": map[string]any{"url": goup.url, "allowedTools": goupTools,
			"headers": map[string]string{"Authorization": "Bearer ${FACTORY_SENTINEL}", "X-Config-Marker": h.marker}},
		"goup_json": map[string]any{"url": goup.jsonURL, "headers": map[string]string{"Authorization": "Bearer ${FACTORY_SENTINEL}"}},
		"big_stdio": map[string]any{"command": ft.node, "args": []string{bigStdio}},
		"off":       map[string]any{"url": "http://127.0.0.1:9/mcp", "disabled": true},
	}, []string{"--log-level", "debug"}, "MCP_CONDUCTOR_RUN_ARGS=allow-all", "FACTORY_SENTINEL="+h.sentinel)
	expectSuccess(t, h.s.exec(t, `await mcpFactory.load("everything").callTool("echo", { message: "warm" }); return await mcpFactory.load("goup").listTools()`, nil))
	auth, markers := goup.seen()
	if !slices.Contains(auth, "Bearer "+h.sentinel) || !slices.Contains(markers, h.marker) {
		t.Fatalf("the Go upstream got Authorization %q and X-Config-Marker %q: want the expanded ${FACTORY_SENTINEL} and the marker", auth, markers)
	}
	return h
}

// TestFactoryBigReplies: a reply far over the 8 MiB reply limit (100 MB,
// from the Go upstream over SSE and over application/json, and from a stdio
// upstream; and 12 MiB) must reject in the code with a size error, leave the
// execution, a concurrent execution on the same upstream and the server
// alive, and keep conductor's peak RSS (VmHWM of the serve process) from
// growing by 200 MB or more.
func TestFactoryBigReplies(t *testing.T) {
	ft := needFactoryTools(t)
	goup := startGoUpstream(t)
	bigCases := []struct {
		name, server string
		bytes        int
		stdio        bool
	}{
		{"12 MiB over SSE", "goup", 12 << 20, false},
		{"100 MB over SSE", "goup", 100 << 20, false},
		{"100 MB as application-json", "goup_json", 100 << 20, false},
		{"100 MB over stdio", "big_stdio", 100 << 20, true},
	}
	for _, c := range bigCases {
		t.Run(c.name, func(t *testing.T) {
			// A fresh conductor per case: Go keeps freed memory resident
			// for a while, which would hide the next case's peak.
			h := newHostileEnv(t, ft, goup)
			s := h.s
			base := s.resetPeak(t)
			before := s.vmHWM(t)
			b := h.goBystander()
			if c.stdio {
				b = h.stdioBystander(t)
			}
			h.aroundWith(t, b, func(t *testing.T) {
				r := s.exec(t, `
const up = mcpFactory.load(server);
let big;
try {
  const v = await up.callTool("big", { bytes });
  big = "resolved: " + typeof v + " of length " + v.length;
} catch (e) {
  big = e.name + ": " + e.message.slice(0, 400);
}
return { big, after: await up.callTool("big", { bytes: 10 }).catch((e) => "small call after it failed: " + e.message) };`,
					map[string]any{"server": c.server, "bytes": c.bytes})
				expectSuccess(t, r)
				rv, _ := r.out["returnValue"].(map[string]any)
				msg, _ := rv["big"].(string)
				t.Logf("big(%d) on %s: %.300s", c.bytes, c.server, msg)
				low := strings.ToLower(msg)
				switch {
				case !strings.HasPrefix(msg, "McpError: "):
					t.Errorf("want a rejection with McpError, got %q", msg)
				case !strings.Contains(low, "limit") && !strings.Contains(low, "too large") && !strings.Contains(low, "exceed"):
					t.Errorf("the rejection does not say the reply was too large: %q", msg)
				}
				if rv["after"] != "xxxxxxxxxx" {
					t.Errorf("a small call on the same upstream right after: %v", rv["after"])
				}
			})
			after := s.vmHWM(t)
			t.Logf("conductor memory: RSS %d MiB before, peak (VmHWM) %d MiB during the case", base>>20, after>>20)
			if grow := after - before; grow >= 200<<20 {
				t.Errorf("conductor's peak RSS grew by %d MiB (%d -> %d MiB) for one %d-byte reply: it is read, decoded and re-encoded in full before the 8 MiB reply limit applies",
					grow>>20, before>>20, after>>20, c.bytes)
			}
		})
	}

}

// TestFactoryHostile: hostile code and hostile channel traffic through the
// real server. Each case runs with a concurrent normal execution and is
// followed by another; both must be unaffected, and the server keeps serving.
func TestFactoryHostile(t *testing.T) {
	ft := needFactoryTools(t)
	h := newHostileEnv(t, ft, startGoUpstream(t))
	s, goup := h.s, h.goup

	garbage := []struct{ name, code string }{
		{"garbage bytes", `const f = Deno.openSync("/proc/self/fd/3", { write: true });
f.writeSync(new TextEncoder().encode("\xff\xff\xff\xffthis is not a frame"));
await new Promise((r) => setTimeout(r, 5000));
return "not reached";`},
		{"malformed call frame", `const f = Deno.openSync("/proc/self/fd/3", { write: true });
const body = new TextEncoder().encode('{"type":"call","id":"x","method":');
const hdr = new Uint8Array(4); new DataView(hdr.buffer).setUint32(0, body.length);
f.writeSync(hdr); f.writeSync(body);
await new Promise((r) => setTimeout(r, 5000));
return "not reached";`},
		{"reused call id", `const f = Deno.openSync("/proc/self/fd/3", { write: true });
const w = (o) => { const body = new TextEncoder().encode(JSON.stringify(o)); const hdr = new Uint8Array(4); new DataView(hdr.buffer).setUint32(0, body.length); f.writeSync(hdr); f.writeSync(body); };
w({ type: "call", id: 7, method: "callTool", params: { server: "goup", tool: "sleep", args: { ms: 3000 } } });
w({ type: "call", id: 7, method: "callTool", params: { server: "goup", tool: "sleep", args: { ms: 3000 } } });
await new Promise((r) => setTimeout(r, 5000));
return "not reached";`},
	}
	for _, g := range garbage {
		t.Run("channel: "+g.name, func(t *testing.T) {
			h.around(t, func(t *testing.T) {
				r := s.exec(t, g.code, nil)
				if !r.res.IsError || r.str("status") != "error" || !strings.Contains(fmt.Sprint(r.errField("message")), "channel protocol") {
					t.Errorf("want the execution ended for breaking the channel protocol, got %s", r)
				}
			})
		})
	}

	t.Run("flood of 50000 calls", func(t *testing.T) {
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
const g = mcpFactory.load("goup");
const rs = await Promise.allSettled(Array.from({ length: 50000 }, () => g.callTool("sleep", { ms: 1 })));
return rs.length;`, nil)
			if !r.res.IsError || r.str("status") != "error" || !strings.Contains(fmt.Sprint(r.errField("message")), "flood") {
				t.Errorf("want the execution ended as a flood, got %s", r)
			}
			if r.str("limitHit") == "timeout" {
				t.Errorf("the flood ran into its timeout instead of being ended")
			}
		})
	})

	t.Run("over the per-execution limits: refusals reject, the run goes on", func(t *testing.T) {
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
const g = mcpFactory.load("goup");
const rs = await Promise.allSettled(Array.from({ length: 100 }, () => g.callTool("sleep", { ms: 1000 })));
const refused = rs.filter((r) => r.status === "rejected");
return { ok: rs.filter((r) => r.status === "fulfilled").length, refused: refused.length,
  names: [...new Set(refused.map((r) => r.reason.name))], inFlight: refused.every((r) => /32 calls are already in flight/.test(r.reason.message)) };`, nil)
			expectSuccess(t, r)
			sameJSON(t, "100 parallel calls against the in-flight limit of 32", r.out["returnValue"],
				`{"ok": 32, "refused": 68, "names": ["McpError"], "inFlight": true}`)
		})
	})

	t.Run("over the 64 MiB total of replies", func(t *testing.T) {
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
const g = mcpFactory.load("goup");
const got = [];
for (let i = 0; i < 12; i++) {
  try { got.push((await g.callTool("big", { bytes: 6 << 20 })).length); } catch (e) { got.push(e.name + ": " + e.message); }
}
return got;`, nil)
			expectSuccess(t, r)
			var got []any
			decodeInto(t, r.out["returnValue"], &got)
			if len(got) != 12 {
				t.Fatalf("want 12 outcomes, got %v", abbreviate(got))
			}
			// Ten replies of 6 MiB + 2 bytes fit in 64 MiB; the 11th does not.
			for i, v := range got[:10] {
				if v != float64(6<<20) {
					t.Errorf("call %d: %v, want a string of %d", i+1, v, 6<<20)
				}
			}
			for i, v := range got[10:] {
				msg, _ := v.(string)
				t.Logf("call %d: %s", i+11, msg)
				var received, limit int64
				if _, err := fmt.Sscanf(msg, "McpError: this execution has received %d bytes of replies, over the %d-byte limit", &received, &limit); err != nil {
					t.Errorf("call %d: want a rejection for the total of replies, got %q", i+11, msg)
					continue
				}
				if limit != 64<<20 || received <= limit {
					t.Errorf("call %d: %q: the message gives %d bytes received, which is not over the %d-byte limit it names (want the execution's actual total, at least %d)",
						i+11, msg, received, limit, 11*(6<<20+2))
				}
			}
		})
	})

	t.Run("allowedTools", func(t *testing.T) {
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
const g = mcpFactory.load("goup");
const names = (await g.listTools()).map((t) => t.name).sort();
try { await g.callTool("forbidden", {}); return "FORBIDDEN TOOL CALLED"; }
catch (e) { return { names, error: [e.name, e.message] }; }`, nil)
			expectSuccess(t, r)
			sameJSON(t, "a tool outside allowedTools", r.out["returnValue"], `{
  "names": ["barrier", "big", "fail", "sleep", "sleeping", "wait"],
  "error": ["McpError", "MCP server \"goup\": tool \"forbidden\" is not allowed (allowed: big, fail, sleep, sleeping, wait, barrier)"]
}`)
		})
	})

	t.Run("disabled and unknown servers", func(t *testing.T) {
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
const out = {};
for (const name of ["off", "nowhere"]) {
  try { await mcpFactory.load(name).callTool("echo", {}); out[name] = "resolved"; }
  catch (e) { out[name] = [e.name, e.message]; }
}
out.servers = await mcpFactory.listServers();
return out;`, nil)
			expectSuccess(t, r)
			sameJSON(t, "disabled and unknown servers", r.out["returnValue"], `{
  "off": ["McpError", "MCP server \"off\" is disabled in the config"],
  "nowhere": ["McpError", "unknown MCP server \"nowhere\" (configured: big_stdio, everything, goup, goup_json)"],
  "servers": ["big_stdio", "everything", "goup", "goup_json"]
}`)
		})
	})

	t.Run("upstream isError", func(t *testing.T) {
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
try { await mcpFactory.load("goup").callTool("fail", { message: "boom 42" }); return "resolved"; }
catch (e) { return [e instanceof Error, e.name, e.message]; }`, nil)
			expectSuccess(t, r)
			sameJSON(t, "an upstream isError", r.out["returnValue"], `[true, "McpError", "goup: deliberate failure: boom 42"]`)
			// Uncaught, it fails the execution with the upstream's message.
			r = s.exec(t, `await mcpFactory.load("goup").callTool("fail", { message: "uncaught" })`, nil)
			if !r.res.IsError || r.errField("name") != "McpError" || r.errField("message") != "goup: deliberate failure: uncaught" {
				t.Errorf("uncaught upstream error: %s", r)
			}
		})
	})

	t.Run("secrets stay outside", func(t *testing.T) {
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
const found = {};
const attempt = async (name, f) => {
  try { found[name] = String(await f()); } catch (e) { found[name] = "ERR " + e.name + ": " + e.message; }
};
await attempt("config file", () => Deno.readTextFile(cfgPath));
await attempt("config dir", async () => { const a = []; for await (const e of Deno.readDir(cfgDir)) a.push(e.name); return a.join(","); });
await attempt("env", () => JSON.stringify(Deno.env.toObject()));
await attempt("/proc/self/environ", () => Deno.readTextFile("/proc/self/environ"));
await attempt("/proc/1/environ", () => Deno.readTextFile("/proc/1/environ"));
await attempt("/proc/*/environ and cmdline", async () => {
  const a = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    for (const f of ["environ", "cmdline"]) {
      try { a.push(e.name + "/" + f + "=" + await Deno.readTextFile("/proc/" + e.name + "/" + f)); } catch (err) { a.push(e.name + "/" + f + " " + err.name); }
    }
  }
  return a.join("\n");
});
await attempt("ppid", () => Deno.ppid);
await attempt("listTools", async () => JSON.stringify(await mcpFactory.load("goup").listTools()));
await attempt("listServers", async () => JSON.stringify(await mcpFactory.listServers()));
await attempt("bad tool error", () => mcpFactory.load("everything").callTool("get-sum", { a: "x" }));
console.log(JSON.stringify(found));
console.error(JSON.stringify(found));
return found;`, map[string]any{"cfgPath": s.cfgPath, "cfgDir": filepath.Dir(s.cfgPath)})
			expectSuccess(t, r)
			all, _ := json.Marshal(r.out)
			whole := string(all) + r.text
			for _, secret := range []string{h.sentinel, h.marker, `"mcpServers"`} {
				if strings.Contains(whole, secret) {
					t.Errorf("hostile code found %q: %s", secret, tail(whole, 4000))
				}
			}
			rv, _ := r.out["returnValue"].(map[string]any)
			for _, k := range []string{"config file", "config dir"} {
				if v, _ := rv[k].(string); !strings.HasPrefix(v, "ERR NotFound") {
					t.Errorf("%s: want NotFound inside the sandbox, got %q", k, v)
				}
			}
			if v, _ := rv["env"].(string); !strings.HasPrefix(v, "{") {
				t.Errorf("with allow-all the code should see its own (clean) environment; got %q", v)
			}
			t.Logf("what the code saw (abbreviated): %s", abbreviate(rv))
		})
		// Control: the secret did reach the stdio upstream's environment (an
		// upstream tool that returns its env can hand it out; conductor
		// cannot), so its absence above is meaningful.
		r := s.exec(t, `return await mcpFactory.load("everything").callTool("get-env", {})`, nil)
		expectSuccess(t, r)
		env, _ := json.Marshal(r.out["returnValue"])
		if !strings.Contains(string(env), h.sentinel) {
			t.Errorf("control: the stdio upstream's env lacks the expanded ${FACTORY_SENTINEL}: %s", abbreviate(r.out["returnValue"]))
		}
		if strings.Contains(string(env), "MCP_CONDUCTOR_MCP_CONFIG") || strings.Contains(string(env), "FACTORY_SENTINEL=") {
			t.Errorf("conductor's own environment reached the upstream: %s", env)
		}
		// conductor's own log redacts the substituted value.
		if strings.Contains(s.stderr.String(), h.sentinel) {
			t.Errorf("conductor's log shows the secret")
		}
	})

	t.Run("a call still running when the execution ends", func(t *testing.T) {
		cancelledBefore := goup.sleepsCancelled.Load()
		logFrom := len(s.stderr.String())
		tag := fmt.Sprintf("orphan-%d", time.Now().UnixNano())
		h.around(t, func(t *testing.T) {
			r := s.exec(t, `
const g = mcpFactory.load("goup");
g.callTool("sleep", { ms: 30000, tag }).then(() => console.log("sleep resolved"), (e) => console.log("sleep rejected: " + e.message));
await g.callTool("sleeping", { key: tag });
console.log("exiting");
Deno.exit(0);`, map[string]any{"tag": tag})
			if r.str("status") != "success" || r.str("stdout") != "exiting\n" {
				t.Errorf("want the execution to exit 0 while its call runs, got %s", r)
			}
			if r.out["mcpCalls"] != float64(2) {
				t.Errorf("mcpCalls %v, want 2", r.out["mcpCalls"])
			}
			// The upstream sees the call cancelled, long before its 30 s.
			if !waitFor(15*time.Second, func() bool { return goup.sleepsCancelled.Load() > cancelledBefore }) {
				t.Errorf("the upstream's sleep was not cancelled within 15 s of the execution's end")
			}
			// The Manager logs the call as cancelled.
			if !waitFor(5*time.Second, func() bool {
				for _, line := range strings.Split(s.stderr.String()[logFrom:], "\n") {
					if strings.Contains(line, `msg="upstream call" server=goup method=tools/call tool=sleep`) && strings.Contains(line, "outcome=canceled") {
						return true
					}
				}
				return false
			}) {
				t.Errorf("conductor's debug log has no cancelled sleep call since the execution started")
			}
		})
	})

	t.Run("a call still running when the code returns", func(t *testing.T) {
		cancelledBefore := goup.sleepsCancelled.Load()
		tag := fmt.Sprintf("dangling-%d", time.Now().UnixNano())
		h.around(t, func(t *testing.T) {
			// Without Deno.exit the pending reply keeps deno's event loop
			// alive, as a pending fetch would: the run ends at its timeout.
			r := run(t, s.cs, map[string]any{"timeout": 2000, "globals": map[string]any{"tag": tag}, "deno_code": `
const g = mcpFactory.load("goup");
g.callTool("sleep", { ms: 30000, tag });
await g.callTool("sleeping", { key: tag });
return "returned early";`})
			if r.out["returnValue"] != "returned early" || r.out["mcpCalls"] != float64(2) {
				t.Errorf("want the return value kept and 2 calls, got %s", r)
			}
			t.Logf("status %q limitHit %q for code that returned with a call in flight", r.str("status"), r.str("limitHit"))
			if !waitFor(15*time.Second, func() bool { return goup.sleepsCancelled.Load() > cancelledBefore }) {
				t.Errorf("the upstream's sleep was not cancelled within 15 s of the execution's end")
			}
		})
	})

	t.Run("server still serving", func(t *testing.T) {
		res := s.tool(t, "list_mcp_servers", nil)
		var out struct {
			Servers []struct {
				Name, Status string
				Tools        int
			}
		}
		decodeInto(t, res.StructuredContent, &out)
		for _, sv := range out.Servers {
			switch sv.Name {
			case "goup":
				if sv.Status != "connected" || sv.Tools != 6 {
					t.Errorf("goup: status %q, %d tools; want connected and the 6 of allowedTools", sv.Status, sv.Tools)
				}
			case "everything":
				if sv.Status != "connected" {
					t.Errorf("everything: status %q after the hostile cases, want connected", sv.Status)
				}
			case "off":
				if sv.Status != "disabled" {
					t.Errorf("off: status %q", sv.Status)
				}
			}
		}
		t.Logf("servers after the hostile cases: %+v", out.Servers)
		if err := s.cs.Ping(context.Background(), nil); err != nil {
			t.Errorf("ping: %v", err)
		}
		if n := strings.Count(s.stderr.String(), "panic"); n > 0 {
			t.Errorf("conductor's log mentions panic %d times", n)
		}
	})
}
