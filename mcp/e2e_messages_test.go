package mcp_test

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2EMessages: what an agent reads over MCP says what went wrong in terms it can act on —
// refusals before the run are results with structuredContent and error.type, the text summary
// has the error's name and the first frame of the user's code, and names the file holding output
// that was cut; returnValue keeps the key order the code made, on the wire and in the text.
func TestE2EMessages(t *testing.T) {
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	ws, _ = filepath.EvalSymlinks(ws)
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_WORKSPACE="+ws, "MCP_CONDUCTOR_MAX_OUTPUT=1K")
	tests := []struct {
		name    string
		args    map[string]any
		status  string
		errType string
		line    float64
		inText  []string
		onWire  string // a substring of the raw JSON-RPC messages
	}{
		{
			name: "refused import", args: map[string]any{"deno_code": "import pad from 'npm:left-pad';\npad('x', 3)"},
			status: "error", errType: "dependency", inText: []string{"status: error (dependency), refused before it ran\n", "npm:left-pad"},
		},
		{
			name: "refused dependency", args: map[string]any{"deno_code": "1", "dependencies": []string{"npm:left-pad"}},
			status: "error", errType: "dependency", inText: []string{"npm:left-pad"},
		},
		{
			name: "invalid timeout", args: map[string]any{"deno_code": "1", "timeout": -5},
			status: "error", errType: "invalid_request", inText: []string{"status: error (invalid_request)", "timeout -5 ms"},
		},
		{
			name: "return with export", args: map[string]any{"deno_code": "export const a = 1;\nreturn 2"},
			status: "error", errType: "invalid_request", line: 1, inText: []string{"cannot be combined with export", "the first top-level return is at main.ts:2:1"},
		},
		{
			name: "error name and first user frame", args: map[string]any{"deno_code": "function f(o) {\n  return o.x.y;\n}\nf({})"},
			status: "error", errType: "runtime", line: 2,
			inText: []string{"error at line 2, column 14: TypeError: Cannot read properties of undefined", "\n    at f (main.ts:2:14)\n"},
		},
		{
			name: "cut output names its file", args: map[string]any{"deno_code": "console.log('x'.repeat(5000))"},
			status: "success", inText: []string{"(stdout truncated: 1024 of 5001 bytes shown; the full stdout is in " + ws + "/.conductor/output/"},
		},
		{
			name: "return value keeps its key order", args: map[string]any{"deno_code": "({ b: 1, a: 2, c: { z: 1, y: 2 } })"},
			status: "success", inText: []string{`returnValue: {"b":1,"a":2,"c":{"z":1,"y":2}}`},
			onWire: `"returnValue":{"b":1,"a":2,"c":{"z":1,"y":2}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, s.cs, tc.args)
			if r.str("status") != tc.status || r.res.IsError != (tc.status != "success") {
				t.Fatalf("status %q isError %v, want %q: %s", r.str("status"), r.res.IsError, tc.status, r)
			}
			if got, _ := r.errField("type").(string); got != tc.errType {
				t.Errorf("error.type %q, want %q: %s", got, tc.errType, r)
			}
			if tc.line != 0 && r.errField("line") != tc.line {
				t.Errorf("error.line %v, want %v: %s", r.errField("line"), tc.line, r)
			}
			for _, w := range tc.inText {
				if !strings.Contains(r.text, w) {
					t.Errorf("text summary %q does not contain %q", r.text, w)
				}
			}
			if tc.onWire != "" && !strings.Contains(s.wire.String(), tc.onWire) {
				t.Errorf("no message on the wire contains %s; the last:\n%s", tc.onWire, tail(s.wire.String(), 2000))
			}
		})
	}
}

// limitRows are runs that hit a limit of a server with MCP_CONDUCTOR_MEMORY=256M and
// MCP_CONDUCTOR_PIDS=24 (and allow-run): what its message or stderr must say — the limit, its
// size, the setting — and must not (deno's advice to raise a container runtime's flag).
var limitRows = []struct {
	name     string
	code     string
	limitHit string
	message  []string // in error.message
	stderr   []string // in stderr
}{
	{name: "JavaScript heap", code: "const a = []; while (true) a.push({ s: 'x'.repeat(1024) + Math.random() });", limitHit: "memory",
		message: []string{"JavaScript heap reached its limit of 86 MiB", "memory limit of 256 MiB", "admin", "MCP_CONDUCTOR_MEMORY"}},
	{name: "cgroup memory", code: "const a = []; for (let i = 0; i < 32; i++) a.push(new Uint8Array(64 << 20).fill(i));", limitHit: "memory",
		message: []string{"memory limit of 256 MiB", "killed", "MCP_CONDUCTOR_MEMORY"}},
	{name: "threads", code: "const w = []; for (let i = 0; i < 200; i++) w.push(new Worker('data:application/javascript,setInterval(() => {}, 1000)', { type: 'module' }));", limitHit: "pids",
		message: []string{"limit of 24 processes and threads", "admin", "MCP_CONDUCTOR_PIDS"}},
	// Children start one at a time, each awaited until it is up (it prints "up") or has exited, so
	// a child that cannot start writes its whole message to the shared stderr before the next one
	// starts: started together, their messages interleaved under load, cutting deno's advice in
	// two so that it was neither reworded nor recognisable. The loop ends at the third child that
	// could not start; the ones that are up are killed.
	{name: "deno that cannot start", limitHit: "pids",
		code: `const up = [];
let failed = 0;
for (let i = 0; i < 40 && failed < 3; i++) {
  let c;
  try {
    c = new Deno.Command('deno', { args: ['eval', 'console.log("up"); setInterval(() => {}, 60000)'], stdout: 'piped' }).spawn();
  } catch {
    failed++;
    continue;
  }
  const first = await c.stdout.getReader().read();
  if (first.done) {
    await c.status;
    failed++;
  } else {
    up.push(c);
  }
}
for (const c of up) c.kill('SIGKILL');
await Promise.all(up.map((c) => c.status));`,
		stderr: []string{"Deno could not start", "limit of 24 processes and threads", "MCP_CONDUCTOR_PIDS"}},
}

// limitEnv is the server settings limitRows run with.
var limitEnv = []string{"MCP_CONDUCTOR_MEMORY=256M", "MCP_CONDUCTOR_PIDS=24", "MCP_CONDUCTOR_RUN_ARGS=allow-run"}

// TestE2ELimitMessages: over MCP, a run that hits the memory or pids limit says which, how big it
// is and that the admin sets it (MCP_CONDUCTOR_MEMORY, MCP_CONDUCTOR_PIDS); deno's Docker advice
// is gone from stderr.
func TestE2ELimitMessages(t *testing.T) {
	s := startStdio(t, nil, nil, limitEnv...)
	for _, tc := range limitRows {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, s.cs, map[string]any{"deno_code": tc.code, "timeout": 60000})
			if r.str("limitHit") != tc.limitHit {
				t.Fatalf("limitHit %q, want %q: %s", r.str("limitHit"), tc.limitHit, r)
			}
			msg, _ := r.errField("message").(string)
			for _, w := range tc.message {
				if !strings.Contains(msg, w) || !strings.Contains(r.text, w) {
					t.Errorf("error.message %q (or the text) does not say %q", msg, w)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(r.str("stderr"), w) {
					t.Errorf("stderr %q does not say %q", r.str("stderr"), w)
				}
			}
			if strings.Contains(r.text, "--pids-limit") || strings.Contains(r.str("stderr"), "--pids-limit") {
				t.Errorf("deno's container advice reached the agent: %s", r)
			}
		})
	}
}

// TestE2EQueuedMs: with one execution slot, of two calls made together the second waits for the
// first: its queuedMs is that wait, and its durationMs is its own run, without the wait.
func TestE2EQueuedMs(t *testing.T) {
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_MAX_CONCURRENCY=1", "MCP_CONDUCTOR_MAX_QUEUE=1")
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(t, s.cs, map[string]any{"deno_code": "await new Promise((r) => setTimeout(r, 1000)); 'done'"})
		}()
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b result) int { return cmp.Compare(a.out["queuedMs"].(float64), b.out["queuedMs"].(float64)) })
	first, second := results[0], results[1]
	expectSuccess(t, first)
	expectSuccess(t, second)
	q1, q2 := first.out["queuedMs"].(float64), second.out["queuedMs"].(float64)
	d2 := second.out["durationMs"].(float64)
	if q1 > 300 || q2 < 800 {
		t.Fatalf("queuedMs %v and %v: want one call not waiting and the other waiting about 1 s", q1, q2)
	}
	if d2 < 1000 || d2 >= 1000+q2 {
		t.Errorf("the waiting call's durationMs %v (queuedMs %v): want its own run (the 1 s sleep and a little), without the wait", d2, q2)
	}
	if !strings.Contains(second.text, "waiting for a free slot") {
		t.Errorf("text %q does not mention the wait", second.text)
	}
}

// TestE2EUncaughtMcpErrorLine: an upstream error the code does not catch fails the run at the
// line and column of the code's callTool, not at a frame of conductor's.
func TestE2EUncaughtMcpErrorLine(t *testing.T) {
	goup := startGoUpstream(t)
	s := startFactoryServer(t, map[string]any{"goup": map[string]any{"url": goup.url, "type": "http"}}, nil)
	r := s.exec(t, "const g = mcpFactory.load(\"goup\");\nawait new Promise((r) => setTimeout(r, 10));\n  await g.callTool(\"fail\", { message: \"uncaught\" });", nil)
	if !r.res.IsError || r.errField("name") != "McpError" || r.errField("message") != "goup: deliberate failure: uncaught" {
		t.Fatalf("want the upstream's McpError uncaught: %s", r)
	}
	if r.errField("line") != float64(3) || r.errField("column") != float64(11) {
		t.Errorf("error at line %v, column %v; want 3, 11 (the callTool): %s", r.errField("line"), r.errField("column"), r)
	}
	if !strings.Contains(r.text, "error at line 3, column 11: McpError: goup: deliberate failure: uncaught\n    at main.ts:3:11") {
		t.Errorf("text %q: want the error's name, line and the frame of the call", r.text)
	}
}

// TestE2EWorkspace: with MCP_CONDUCTOR_WORKSPACE, run_deno_code runs in the workspace (a relative
// path lands there, on the host too), the tool description names it and what code may do there,
// and a server whose allow-read/allow-write do not cover it warns at start.
func TestE2EWorkspace(t *testing.T) {
	tests := []struct {
		name     string
		runArgs  string
		may      string // in the description
		wantWarn bool
	}{
		{"granted", "allow-read=WS,allow-write=WS", "code may read and write files there", false},
		{"read only", "allow-read=WS", "code may read files there but not write them", true},
		{"not granted", "", "code may neither read nor write there (only the admin can grant it)", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := t.TempDir()
			if err := os.Chmod(ws, 0o777); err != nil {
				t.Fatal(err)
			}
			ws, _ = filepath.EvalSymlinks(ws)
			s := startStdio(t, nil, nil, "MCP_CONDUCTOR_WORKSPACE="+ws, "MCP_CONDUCTOR_RUN_ARGS="+strings.ReplaceAll(tc.runArgs, "WS", ws))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			list, err := s.cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			desc := runDenoTool(list.Tools).Description
			if !strings.Contains(desc, "The working directory is the workspace "+ws) || !strings.Contains(desc, tc.may) {
				t.Errorf("description %q: want the workspace %s named and %q", desc, ws, tc.may)
			}
			warned := strings.Contains(s.stderr.String(), "MCP_CONDUCTOR_RUN_ARGS does not grant allow-")
			if warned != tc.wantWarn {
				t.Errorf("warned at start: %v, want %v; stderr:\n%s", warned, tc.wantWarn, s.stderr)
			}
			r := run(t, s.cs, map[string]any{"deno_code": "Deno.cwd()"})
			if r.str("status") != "success" && tc.runArgs != "" {
				t.Fatalf("Deno.cwd(): %s", r)
			}
			if tc.runArgs != "" && r.out["returnValue"] != ws {
				t.Errorf("Deno.cwd() = %v, want the workspace %s", r.out["returnValue"], ws)
			}
			if !tc.wantWarn {
				r = run(t, s.cs, map[string]any{"deno_code": "await Deno.writeTextFile('note.txt', 'kept')"})
				expectSuccess(t, r)
				if b, err := os.ReadFile(filepath.Join(ws, "note.txt")); err != nil || string(b) != "kept" {
					t.Errorf("a relative write did not land in the workspace: %q, %v", b, err)
				}
			}
		})
	}
}
