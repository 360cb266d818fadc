package mcp_test

// End-to-end tests of conductor's metrics and readiness: the real `conductor serve --http`
// binary, a go-sdk client over HTTP, real sandboxes; /metrics parsed with Prometheus' own
// text parser (metrics.ParseText, expfmt).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/metrics"
)

// get fetches url with token ("" = none) and returns the status and body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// scrapeMetrics GETs url (a /metrics) with token and parses it.
func scrapeMetrics(t *testing.T, url, token string) metrics.Series {
	t.Helper()
	code, body := get(t, url, token)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	s, err := metrics.ParseText(strings.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
	return s
}

// TestMetricsE2E: 20 executions over HTTP (15 succeed, 3 refused, 2 time out) are counted
// exactly, on serve --http's /metrics (behind the token: 401 without it) and on
// MCP_CONDUCTOR_METRICS_ADDR's (without a token); the pool's takes add up to the executions that
// ran; /readyz answers 200 once the pool is warm.
func TestMetricsE2E(t *testing.T) {
	admin := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	s := startHTTP(t, "MCP_CONDUCTOR_METRICS_ADDR="+strings.TrimPrefix(admin, "http://"))
	for _, base := range []string{s.base, admin} {
		testenv.WaitFor(t, base+"/readyz to answer 200", 30*time.Second, func() bool {
			code, body := get(t, base+"/readyz", "")
			return code == http.StatusOK && body == "ready\n"
		})
	}
	cs := mustConnectHTTP(t, s, "", nil)

	calls := []struct {
		name  string
		n     int
		args  map[string]any
		check func(t *testing.T, r result)
	}{
		{"success", 15, map[string]any{"deno_code": "1 + 1"}, expectSuccess},
		{"negative timeout", 2, map[string]any{"deno_code": "1", "timeout": -5}, func(t *testing.T, r result) { expectRefused(t, r, "timeout") }},
		{"empty code", 1, map[string]any{"deno_code": ""}, func(t *testing.T, r result) { expectRefused(t, r, "deno_code") }},
		{"infinite loop", 2, map[string]any{"deno_code": "while (true) {}", "timeout": 1000}, func(t *testing.T, r result) {
			if st := r.str("status"); st != "timeout" {
				t.Fatalf("status %q, want timeout: %s", st, r)
			}
		}},
	}
	for _, c := range calls {
		for range c.n {
			c.check(t, run(t, cs, c.args))
		}
	}

	if code, body := get(t, s.base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the token: %d %.200s, want 401", code, body)
	}
	if code, _ := get(t, s.base+"/metrics", "wrong-token-0123456789"); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics with a wrong token: %d, want 401", code)
	}
	scrapes := []struct {
		name  string
		url   string
		token string
	}{
		{"serve --http /metrics with the token", s.base + "/metrics", s.token},
		{"MCP_CONDUCTOR_METRICS_ADDR without a token", admin + "/metrics", ""},
	}
	const ran = 17 // 15 successes and 2 timeouts; refusals never take a sandbox
	for _, sc := range scrapes {
		t.Run(sc.name, func(t *testing.T) {
			m := scrapeMetrics(t, sc.url, sc.token)
			want := []struct {
				what string
				got  float64
				want float64
			}{
				{"executions", m.Sum("conductor_executions_total", "tool="+toolName), 20},
				{"successes", m.Sum("conductor_executions_total", "status=success"), 15},
				{"errors (the refusals)", m.Sum("conductor_executions_total", "status=error"), 3},
				{"timeouts", m.Sum("conductor_executions_total", "status=timeout"), 2},
				{"refusals", m.Sum("conductor_execution_refusals_total"), 3},
				{"invalid_request refusals", m.Sum("conductor_execution_refusals_total", "error_type=invalid_request"), 3},
				{"timeout limit hits", m.Sum("conductor_execution_limits_total", "limit=timeout"), 2},
				{"pool takes", m.Sum("conductor_pool_takes_total"), ran},
				{"queue samples", m.Sum("conductor_execution_queue_seconds_count"), ran},
				{"start samples", m.Sum("conductor_execution_start_seconds_count"), ran},
				{"cpu samples", m.Sum("conductor_execution_cpu_seconds_count"), ran},
				{"duration samples", m.Sum("conductor_execution_duration_seconds_count", "tool="+toolName), 20},
				{"upstream calls", m.Sum("conductor_upstream_calls_total"), 0},
			}
			for _, w := range want {
				if w.got != w.want {
					t.Errorf("%s = %v, want %v", w.what, w.got, w.want)
				}
			}
			if _, ok := m["conductor_pool_target"]; !ok {
				t.Errorf("conductor_pool_target missing")
			}
			if d := m.Sum("conductor_execution_duration_seconds_sum", "tool="+toolName); d < 2 {
				t.Errorf("duration sum %v s: the two 1 s timeouts alone take 2 s", d)
			}
		})
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, admin+path, ""); code != http.StatusOK {
			t.Errorf("GET %s%s: %d %q, want 200", admin, path, code, body)
		}
	}
	// SIGTERM closes the metrics listener with the rest.
	s.stop(t)
	if resp, err := http.Get(admin + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("%s still answers after the server stopped", admin)
	}
}

// TestMetricsStdio: with MCP_CONDUCTOR_METRICS_ADDR, a stdio server serves its metrics there
// too, without a token, and stops serving them when it exits.
func TestMetricsStdio(t *testing.T) {
	admin := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_METRICS_ADDR="+strings.TrimPrefix(admin, "http://"))
	expectSuccess(t, run(t, s.cs, map[string]any{"deno_code": "40 + 2"}))
	m := scrapeMetrics(t, admin+"/metrics", "")
	if got := m.Sum("conductor_executions_total", "tool="+toolName, "identity=stdio", "status=success"); got != 1 {
		t.Errorf("stdio successes = %v, want 1", got)
	}
	if err := s.cs.Close(); err != nil {
		t.Fatalf("close the session: %v", err)
	}
	// Close returns once the server has exited.
	if resp, err := http.Get(admin + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("%s still answers after the server exited", admin)
	}
}

// TestReadyzUpstreamDown: an upstream whose command exits at once (connected at start with
// --connect-upstreams) makes /readyz answer 503 naming it, on both listeners;
// conductor_upstream_connected says 0 and the code's call to it is counted as an error.
func TestReadyzUpstreamDown(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "mcp-config.json")
	b, err := json.Marshal(map[string]any{"mcpServers": map[string]any{
		"broken": map[string]any{"command": "/bin/false"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	s := startHTTPArgs(t, []string{"--connect-upstreams"}, "MCP_CONDUCTOR_MCP_CONFIG="+cfg,
		"MCP_CONDUCTOR_METRICS_ADDR="+strings.TrimPrefix(admin, "http://"))
	for _, base := range []string{s.base, admin} {
		code, body := get(t, base+"/readyz", "")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `upstream MCP server "broken" is not connected`) {
			t.Errorf("GET %s/readyz: %d %q, want 503 naming broken", base, code, body)
		}
	}
	cs := mustConnectHTTP(t, s, "", nil)
	r := run(t, cs, map[string]any{"deno_code": `try { await mcpFactory.load("broken").callTool("anything", {}); "called" } catch (e) { "failed" }`})
	if r.str("status") != "success" {
		t.Fatalf("want the code to catch the failed call: %s", r)
	}
	m := scrapeMetrics(t, admin+"/metrics", "")
	if got := m[`conductor_upstream_connected{server="broken"}`]; got != 0 {
		t.Errorf("conductor_upstream_connected{server=broken} = %v, want 0", got)
	}
	if _, ok := m[`conductor_upstream_connected{server="broken"}`]; !ok {
		t.Errorf("conductor_upstream_connected{server=broken} missing")
	}
	if got := m.Sum("conductor_upstream_calls_total", "server=broken", "method=callTool", "outcome=error"); got != 1 {
		t.Errorf("upstream calls to broken that failed = %v, want 1", got)
	}
	if got := m.Sum("conductor_upstream_call_seconds_count", "server=broken"); got != 1 {
		t.Errorf("upstream call time samples of broken = %v, want 1", got)
	}
}
