package mcp_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// auditLines reads the audit log at path (none when it does not exist), one decoded object a line.
func auditLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditKind is one kind of execution the audit e2e makes.
type auditKind struct {
	name    string
	code    func(i int) string
	refused bool   // sent with an invalid timeout
	status  string // the line's status
	calls   int    // upstream calls the code makes
}

var auditKinds = []auditKind{
	{"success", func(i int) string { return fmt.Sprintf("return %d", i) }, false, "success", 0},
	{"error", func(i int) string { return fmt.Sprintf("throw new Error('audit e2e %d')", i) }, false, "error", 0},
	{"refused", func(i int) string { return fmt.Sprintf("return %d // refused", i) }, true, "error", 0},
	{"upstream", func(i int) string {
		return fmt.Sprintf(`const g = mcpFactory.load("goup");
await g.callTool("big", { bytes: 3 });
try { await g.callTool("fail", { message: "m%d" }); } catch (e) { /* a tool error */ }
return %d`, i, i)
	}, false, "success", 2},
}

// TestE2EAuditLog: `conductor serve` on stdio with MCP_CONDUCTOR_AUDIT writes one execution line
// per execution (100: success, error, refused, with upstream calls) with the documented fields,
// identity "stdio", the session's id and the sha256 of the code sent, and one upstream_call line
// per mcpFactory call; after the file is renamed and serve gets SIGHUP, later lines go to a new
// file at the path and none is lost or doubled. With MCP_CONDUCTOR_AUDIT_CODE=1 the code itself
// is in the line; without it, not.
func TestE2EAuditLog(t *testing.T) {
	tests := []struct {
		name   string
		n      int // executions
		rotate int // rename + SIGHUP before this execution (0 = never)
		code   bool
	}{
		{"100 executions rotated after 60", 100, 60, false},
		{"with the code", 8, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			goup := startGoUpstream(t)
			path := filepath.Join(t.TempDir(), "audit.log")
			admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			env := []string{"MCP_CONDUCTOR_AUDIT=" + path, "MCP_CONDUCTOR_METRICS_ADDR=" + admin}
			if tc.code {
				env = append(env, "MCP_CONDUCTOR_AUDIT_CODE=1")
			}
			s := startFactoryServer(t, map[string]any{"goup": map[string]any{"url": goup.url, "type": "http"}}, nil, env...)
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("audit file at start: %v, mode %v; want it created with 0600", err, st)
			}
			codes := map[string]int{} // sha256 → execution index
			sent := make([]string, tc.n)
			wantCalls := 0
			for i := range tc.n {
				if tc.rotate > 0 && i == tc.rotate {
					if err := os.Rename(path, path+".1"); err != nil {
						t.Fatal(err)
					}
					if err := syscall.Kill(s.pid, syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
					// The event: serve's SIGHUP hook created the new file at the path.
					testenv.WaitFor(t, "a new audit file after SIGHUP", 10*time.Second, func() bool {
						_, err := os.Stat(path)
						return err == nil
					})
				}
				k := auditKinds[i%len(auditKinds)]
				code := k.code(i)
				sent[i] = code
				codes[event.Hash(code)] = i
				wantCalls += k.calls
				args := map[string]any{"deno_code": code, "timeout": 45000}
				if k.refused {
					args["timeout"] = -1
				}
				r := run(t, s.cs, args)
				if got := r.str("status"); got != k.status && !k.refused {
					t.Fatalf("execution %d (%s): status %q, want %q: %s", i, k.name, got, k.status, r)
				}
			}
			// The same executions in the metrics (issue 17 must-show 2): scraped and parsed with
			// the Prometheus text parser, counted by status and refusal as the audit lines are below.
			series := scrapeMetrics(t, "http://"+admin+"/metrics", "")
			// Closing the session ends serve, which flushes the log.
			if err := s.cs.Close(); err != nil {
				t.Logf("close: %v", err)
			}
			testenv.WaitFor(t, "serve to exit", 30*time.Second, func() bool { return s.cmd.ProcessState != nil })

			later := map[int]bool{}
			var old, cur []map[string]any
			if tc.rotate > 0 {
				old = auditLines(t, path+".1")
				for i := tc.rotate; i < tc.n; i++ {
					later[i] = true
				}
			}
			cur = auditLines(t, path)
			if len(cur) > 0 {
				t.Logf("a line of the new file: %v", cur[0])
			}
			seen := map[int]string{}
			calls := 0
			for fi, lines := range [][]map[string]any{old, cur} {
				for _, m := range lines {
					switch m["type"] {
					case "upstream_call":
						calls++
						checkUpstreamLine(t, m)
						continue
					case "execution":
					default:
						t.Errorf("unexpected line %v", m)
						continue
					}
					i, ok := codes[fmt.Sprint(m["code_sha256"])]
					if !ok {
						t.Errorf("execution line with a code_sha256 of no code sent: %v", m)
						continue
					}
					if prev, dup := seen[i]; dup {
						t.Errorf("execution %d written twice (%s and file %d)", i, prev, fi)
					}
					seen[i] = fmt.Sprint("file ", fi)
					if later[i] && fi == 0 {
						t.Errorf("execution %d, made after the rename and SIGHUP, is in the renamed file", i)
					}
					k := auditKinds[i%len(auditKinds)]
					checkExecutionLine(t, m, i, k, sent[i], tc.code, s.cs.ID())
				}
			}
			if len(seen) != tc.n {
				t.Errorf("%d executions in the audit log, want exactly %d", len(seen), tc.n)
			}
			byStatus, refusals := map[string]int{}, 0
			for _, lines := range [][]map[string]any{old, cur} {
				for _, m := range lines {
					if m["type"] == "execution" {
						byStatus[fmt.Sprint(m["status"])]++
						if m["refused"] == true {
							refusals++
						}
					}
				}
			}
			if got := series.Sum("conductor_executions_total"); got != float64(tc.n) {
				t.Errorf("conductor_executions_total = %v, want %d", got, tc.n)
			}
			for st, n := range byStatus {
				if got := series.Sum("conductor_executions_total", "status="+st, "identity=stdio", "tool=run_deno_code"); got != float64(n) {
					t.Errorf("conductor_executions_total{status=%q} = %v, the audit log has %d", st, got, n)
				}
			}
			if got := series.Sum("conductor_execution_refusals_total"); got != float64(refusals) {
				t.Errorf("conductor_execution_refusals_total = %v, the audit log has %d refused", got, refusals)
			}
			if got := series.Sum("conductor_upstream_calls_total", "server=goup"); got != float64(wantCalls) {
				t.Errorf("conductor_upstream_calls_total{server=goup} = %v, want %d", got, wantCalls)
			}
			if calls != wantCalls {
				t.Errorf("%d upstream_call lines, want %d", calls, wantCalls)
			}
			if tc.rotate > 0 && (len(old) == 0 || len(cur) == 0) {
				t.Errorf("old file %d lines, new file %d: want both used", len(old), len(cur))
			}
		})
	}
}

// executionFields are the fields every execution line has.
var executionFields = []string{"type", "time", "identity", "session", "tool", "language", "code_sha256", "code_bytes",
	"status", "error_type", "refused", "queued_ms", "start_ms", "duration_ms", "cpu_ms", "memory_peak_bytes",
	"limit_hit", "net_allowed", "net_denied", "upstream_calls"}

func checkExecutionLine(t *testing.T, m map[string]any, i int, k auditKind, code string, withCode bool, session string) {
	t.Helper()
	for _, f := range executionFields {
		if _, ok := m[f]; !ok {
			t.Errorf("execution %d: line lacks %q: %v", i, f, m)
		}
	}
	if ts, _ := m["time"].(string); ts == "" {
		t.Errorf("execution %d: no time", i)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("execution %d: time %q: %v", i, ts, err)
	}
	want := map[string]any{
		"identity": "stdio", "session": session, "tool": "run_deno_code", "language": "typescript",
		"code_bytes": float64(len(code)), "refused": k.refused, "status": k.status, "upstream_calls": float64(k.calls),
	}
	for f, v := range want {
		if m[f] != v {
			t.Errorf("execution %d (%s): %s = %#v, want %#v", i, k.name, f, m[f], v)
		}
	}
	if k.refused && m["error_type"] == "" {
		t.Errorf("execution %d: refused without an error_type", i)
	}
	if !k.refused && k.status == "success" && m["cpu_ms"] == 0.0 {
		t.Errorf("execution %d ran but cpu_ms is 0", i)
	}
	got, has := m["code"]
	switch {
	case withCode && got != code:
		t.Errorf("execution %d: code %#v, want the code sent %q", i, got, code)
	case !withCode && has:
		t.Errorf("execution %d: the code is in the line without %s", i, "MCP_CONDUCTOR_AUDIT_CODE")
	}
	if strings.Contains(fmt.Sprint(m), "audit e2e") && !withCode {
		t.Errorf("execution %d: the line holds the program's text or output: %v", i, m)
	}
}

func checkUpstreamLine(t *testing.T, m map[string]any) {
	t.Helper()
	for _, f := range []string{"type", "time", "identity", "session", "tool", "method", "server", "upstream_tool", "duration_ms", "outcome", "is_error", "error"} {
		if _, ok := m[f]; !ok {
			t.Errorf("upstream_call line lacks %q: %v", f, m)
		}
	}
	want := map[string]map[string]any{
		"big":  {"outcome": "ok", "is_error": false},
		"fail": {"outcome": "tool_error", "is_error": true},
	}[fmt.Sprint(m["upstream_tool"])]
	if want == nil {
		t.Errorf("upstream_call line for an unexpected tool: %v", m)
		return
	}
	for f, v := range want {
		if m[f] != v {
			t.Errorf("upstream_call %v: %s = %#v, want %#v", m["upstream_tool"], f, m[f], v)
		}
	}
	if m["identity"] != "stdio" || m["tool"] != "run_deno_code" || m["server"] != "goup" || m["method"] != "callTool" {
		t.Errorf("upstream_call scope: %v", m)
	}
}

// TestE2EAuditLogHTTP: over HTTP, MCP_CONDUCTOR_AUDIT=stdout is allowed and the lines name the
// token's identity ("http") and the MCP session's id; SIGTERM flushes them before serve exits.
func TestE2EAuditLogHTTP(t *testing.T) {
	s := startHTTP(t, "MCP_CONDUCTOR_AUDIT=stdout")
	cs := mustConnectHTTP(t, s, s.token, nil)
	if cs.ID() == "" {
		t.Fatal("the HTTP session has no id")
	}
	kinds := auditKinds[:3] // no upstreams here
	sent := map[string]int{}
	for i, k := range kinds {
		code := k.code(i)
		sent[event.Hash(code)] = i
		args := map[string]any{"deno_code": code}
		if k.refused {
			args["timeout"] = -1
		}
		run(t, cs, args)
	}
	_ = cs.Close()
	s.stop(t)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.stdout.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != len(kinds) {
		t.Fatalf("%d lines on stdout, want %d: %v", len(lines), len(kinds), lines)
	}
	for _, m := range lines {
		i, ok := sent[fmt.Sprint(m["code_sha256"])]
		if !ok {
			t.Fatalf("line of no code sent: %v", m)
		}
		k := kinds[i]
		if m["identity"] != "http" || m["session"] != cs.ID() || m["refused"] != k.refused || m["status"] != k.status {
			t.Errorf("line %v: want identity http, session %q, refused %v, status %s", m, cs.ID(), k.refused, k.status)
		}
	}
}
