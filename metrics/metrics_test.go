package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
	"github.com/conductor-sandbox/conductor/metrics"
	"github.com/conductor-sandbox/conductor/pool"
)

// scrape serves h's /metrics and parses what it answers.
func scrape(t *testing.T, h http.Handler) metrics.Series {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	s, err := metrics.ParseText(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func exec(tool, id, status string) event.Execution {
	return event.Execution{Scope: event.Scope{Tool: tool, Identity: id}, Status: status}
}

func TestRecorderCounts(t *testing.T) {
	ok := exec("run_deno_code", "alice", "success")
	ok.Queued, ok.Start, ok.Duration, ok.CPU, ok.MemoryPeakBytes = 2*time.Millisecond, 5*time.Millisecond, 40*time.Millisecond, 30*time.Millisecond, 20<<20
	ok.NetAllowed, ok.NetDenied = 3, 1
	timedOut := exec("execute_code", "bob", "timeout")
	timedOut.LimitHit = "timeout"
	refused := exec("run_deno_code", "alice", "error")
	refused.Refused, refused.ErrorType = true, "invalid_request"
	hostile := exec("run_deno_code", "alice", "made-up-status")
	hostile.LimitHit, hostile.ErrorType = "made-up-limit", "made-up-type"
	hostileRefused := hostile
	hostileRefused.Refused = true

	tests := []struct {
		name  string
		execs []event.Execution
		calls []event.UpstreamCall
		want  map[string]float64
	}{
		{name: "nothing yet", want: map[string]float64{
			`conductor_egress_decisions_total{decision="allowed"}`: 0,
			`conductor_egress_decisions_total{decision="denied"}`:  0,
			`conductor_execution_queue_seconds_count`:              0,
		}},
		{name: "runs and a refusal", execs: []event.Execution{ok, ok, timedOut, refused}, want: map[string]float64{
			`conductor_executions_total{identity="alice",status="success",tool="run_deno_code"}`:                     2,
			`conductor_executions_total{identity="bob",status="timeout",tool="execute_code"}`:                        1,
			`conductor_executions_total{identity="alice",status="error",tool="run_deno_code"}`:                       1,
			`conductor_execution_refusals_total{error_type="invalid_request",identity="alice",tool="run_deno_code"}`: 1,
			`conductor_execution_limits_total{limit="timeout"}`:                                                      1,
			// Refusals never ran: no queue, start, CPU or memory sample.
			`conductor_execution_queue_seconds_count`:                          3,
			`conductor_execution_start_seconds_count`:                          3,
			`conductor_execution_cpu_seconds_count`:                            3,
			`conductor_execution_memory_peak_bytes_count`:                      2,
			`conductor_execution_memory_peak_bytes_sum`:                        2 * (20 << 20),
			`conductor_execution_duration_seconds_count{tool="run_deno_code"}`: 3,
			`conductor_execution_duration_seconds_count{tool="execute_code"}`:  1,
			`conductor_egress_decisions_total{decision="allowed"}`:             6,
			`conductor_egress_decisions_total{decision="denied"}`:              2,
		}},
		{name: "values code could choose are bounded", execs: []event.Execution{hostile, hostileRefused}, want: map[string]float64{
			`conductor_executions_total{identity="alice",status="other",tool="run_deno_code"}`:             2,
			`conductor_execution_limits_total{limit="other"}`:                                              1,
			`conductor_execution_refusals_total{error_type="other",identity="alice",tool="run_deno_code"}`: 1,
		}},
		{name: "upstream calls", calls: []event.UpstreamCall{
			{Server: "github", Method: "callTool", Outcome: "ok", Duration: 100 * time.Millisecond},
			{Server: "github", Method: "callTool", Outcome: "tool_error"},
			{Server: "github", Method: "listTools", Outcome: "ok"},
			{Method: "listServers", Outcome: "ok"},
			{Server: "no-such-server-" + strings.Repeat("x", 50), Method: "made-up", Outcome: "error"},
		}, want: map[string]float64{
			`conductor_upstream_calls_total{method="callTool",outcome="ok",server="github"}`:         1,
			`conductor_upstream_calls_total{method="callTool",outcome="tool_error",server="github"}`: 1,
			`conductor_upstream_calls_total{method="listTools",outcome="ok",server="github"}`:        1,
			`conductor_upstream_calls_total{method="listServers",outcome="ok",server=""}`:            1,
			`conductor_upstream_calls_total{method="other",outcome="error",server="other"}`:          1,
			`conductor_upstream_call_seconds_count{server="github"}`:                                 3,
			`conductor_upstream_call_seconds_sum{server="github"}`:                                   0.1,
			`conductor_upstream_call_seconds_count{server="other"}`:                                  1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := metrics.New(metrics.Options{Upstreams: func(context.Context) []upstream.Status {
				return []upstream.Status{{Name: "github", State: upstream.StateConnected}}
			}})
			for _, e := range tt.execs {
				r.Execution(e)
			}
			for _, c := range tt.calls {
				r.UpstreamCall(c)
			}
			got := scrape(t, r.MetricsHandler())
			for k, v := range tt.want {
				if g, found := got[k]; !found || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, found, v)
				}
			}
			for k := range got {
				if strings.Contains(k, "made-up") || strings.Contains(k, "no-such-server") {
					t.Errorf("series %s carries a value the code chose", k)
				}
			}
		})
	}
}

// TestRecorderConcurrent: the sink is used from every request's goroutine at once.
func TestRecorderConcurrent(t *testing.T) {
	r := metrics.New(metrics.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				r.Execution(exec("run_deno_code", "stdio", "success"))
			}
		})
	}
	wg.Wait()
	if got := scrape(t, r.MetricsHandler())[`conductor_executions_total{identity="stdio",status="success",tool="run_deno_code"}`]; got != 800 {
		t.Errorf("executions_total = %v, want 800", got)
	}
}

func TestScrapeTimeState(t *testing.T) {
	var mu sync.Mutex
	st := pool.Stats{Warm: 7, Waited: 2, Cold: 1, Failed: 3, Target: 4, Ready: 2, Booting: 1, Running: 5}
	ups := []upstream.Status{
		{Name: "a", State: upstream.StateConnected},
		{Name: "b", State: upstream.StateFailed},
		{Name: "c", State: upstream.StateDisabled},
	}
	r := metrics.New(metrics.Options{PoolSize: 2,
		Pool: func() pool.Stats { mu.Lock(); defer mu.Unlock(); return st },
		Upstreams: func(context.Context) []upstream.Status {
			mu.Lock()
			defer mu.Unlock()
			return append([]upstream.Status(nil), ups...)
		}})
	tests := []struct {
		name   string
		change func()
		want   map[string]float64
		absent []string
	}{
		{name: "as the pool reports", want: map[string]float64{
			"conductor_pool_ready": 2, "conductor_pool_booting": 1, "conductor_pool_target": 4, "conductor_sandboxes_running": 5,
			`conductor_pool_takes_total{kind="warm"}`: 7, `conductor_pool_takes_total{kind="waited"}`: 2,
			`conductor_pool_takes_total{kind="cold"}`: 1, "conductor_pool_boot_failures_total": 3,
			`conductor_upstream_connected{server="a"}`: 1, `conductor_upstream_connected{server="b"}`: 0,
		}, absent: []string{`conductor_upstream_connected{server="c"}`}},
		{name: "read again at the next scrape", change: func() {
			st.Warm, st.Ready, st.Running = 8, 0, 6
			ups[1].State = upstream.StateConnected
		}, want: map[string]float64{
			`conductor_pool_takes_total{kind="warm"}`: 8, "conductor_pool_ready": 0, "conductor_sandboxes_running": 6,
			`conductor_upstream_connected{server="b"}`: 1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.change != nil {
				mu.Lock()
				tt.change()
				mu.Unlock()
			}
			got := scrape(t, r.MetricsHandler())
			for k, v := range tt.want {
				if g, found := got[k]; !found || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, found, v)
				}
			}
			for _, k := range tt.absent {
				if _, found := got[k]; found {
					t.Errorf("%s is exported; want it left out", k)
				}
			}
		})
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name    string
		o       metrics.Options
		ready   bool
		reasons []string // each a substring of one line of the 503's body
	}{
		{name: "no pool, no upstreams", ready: true},
		{name: "pool off", o: metrics.Options{PoolSize: 0, Pool: stats(pool.Stats{})}, ready: true},
		{name: "pool warm", o: metrics.Options{PoolSize: 2, Pool: stats(pool.Stats{Ready: 1})}, ready: true},
		{name: "pool booting", o: metrics.Options{PoolSize: 2, Pool: stats(pool.Stats{Booting: 1})}, ready: true},
		{name: "pool empty", o: metrics.Options{PoolSize: 2, Pool: stats(pool.Stats{Target: 2, Running: 2})},
			reasons: []string{"pool: no sandbox ready or booting (target 2)"}},
		{name: "lazy upstreams not used yet", o: metrics.Options{Upstreams: states(upstream.StateIdle, upstream.StateDisabled)}, ready: true},
		{name: "a lazy upstream failed", o: metrics.Options{Upstreams: states(upstream.StateConnected, upstream.StateFailed)},
			reasons: []string{`upstream MCP server "u1" is not connected (failed`}},
		{name: "connect at start: one still idle", o: metrics.Options{ConnectUpstreams: true, Upstreams: states(upstream.StateConnected, upstream.StateIdle)},
			reasons: []string{`"u1" is not connected (idle`}},
		{name: "connect at start: all connected", o: metrics.Options{ConnectUpstreams: true, Upstreams: states(upstream.StateConnected, upstream.StateDisabled)}, ready: true},
		{name: "every reason", o: metrics.Options{PoolSize: 1, Pool: stats(pool.Stats{}), ConnectUpstreams: true,
			Upstreams: states(upstream.StateFailed, upstream.StateConnecting)},
			reasons: []string{"pool: no sandbox", `"u0" is not connected (failed`, `"u1" is not connected (connecting`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			metrics.New(tt.o).ReadyHandler().ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
			if strings.Contains(w.Body.String(), "secret") {
				t.Errorf("/readyz shows an upstream's error text: %q", w.Body)
			}
			if tt.ready {
				if w.Code != http.StatusOK || w.Body.String() != "ready\n" {
					t.Fatalf("/readyz = %d %q, want 200 ready", w.Code, w.Body)
				}
				return
			}
			if w.Code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz = %d %q, want 503", w.Code, w.Body)
			}
			lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
			if len(lines) != len(tt.reasons) {
				t.Fatalf("/readyz body %q: want one line per reason %q", w.Body, tt.reasons)
			}
			for i, want := range tt.reasons {
				if !strings.Contains(lines[i], want) {
					t.Errorf("line %d %q lacks %q", i, lines[i], want)
				}
			}
		})
	}
}

func stats(s pool.Stats) func() pool.Stats { return func() pool.Stats { return s } }

// states are upstreams u0, u1, … in the states given.
func states(ss ...string) func(context.Context) []upstream.Status {
	return func(context.Context) []upstream.Status {
		var out []upstream.Status
		for i, s := range ss {
			out = append(out, upstream.Status{Name: "u" + string(rune('0'+i)), State: s, LastError: "secret-bearing error text"})
		}
		return out
	}
}

// TestAdminServer: a real listener serves the three endpoints without a token and is gone
// after Close.
func TestAdminServer(t *testing.T) {
	r := metrics.New(metrics.Options{PoolSize: 1, Pool: stats(pool.Stats{})})
	r.Execution(exec("run_deno_code", "stdio", "success"))
	a, err := metrics.Listen("127.0.0.1:0", r.AdminHandler(), slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.Addr()
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/metrics", 200, `conductor_executions_total{identity="stdio",status="success",tool="run_deno_code"} 1`},
		{"/healthz", 200, "ok\n"},
		{"/readyz", 503, "pool: no sandbox ready or booting"},
		{"/mcp", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b := new(strings.Builder)
			_, _ = io.Copy(b, resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(b.String(), tt.body) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, resp.StatusCode, b, tt.code, tt.body)
			}
			if strings.Contains(b.String(), "secret") {
				t.Errorf("GET %s shows an upstream's error text", tt.path)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if c, err := net.Dial("tcp", a.Addr()); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", a.Addr())
	}
}

func TestListenRefuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, addr := range []string{ln.Addr().String(), "no-port", "127.0.0.1:99999"} {
		if a, err := metrics.Listen(addr, http.NotFoundHandler(), slogDiscard()); err == nil {
			_ = a.Close(context.Background())
			t.Errorf("Listen(%q) succeeded; want an error", addr)
		}
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
