package bench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/audit"
	"github.com/conductor-sandbox/conductor/event"
	cmetrics "github.com/conductor-sandbox/conductor/metrics"
	"github.com/conductor-sandbox/conductor/pool"
)

// observeEvents is how many execution events (each with two upstream calls) the in-process part
// of BenchmarkObserveOverhead records (BENCH_OBSERVE_EVENTS).
func observeEvents() int { return envInt("BENCH_OBSERVE_EVENTS", 20000) }

// BenchmarkObserveOverhead measures what the audit log and the metrics cost per execution
// (issue 17: ≤ 2 % of an execution), two ways:
//
//   - In process, the sinks alone: N execution events, each with two upstream calls, sent to
//     serve's sinks (metrics.Recorder and an audit.Log appending to a file, as serve builds
//     them), a Prometheus scrape of the registry every 100 executions, the audit queue flushed
//     at the end; the process's CPU (getrusage, the writer goroutine included) per execution.
//   - End to end, spaced warm calls (BENCH_LOAD_N rounds, interleaved) of hello on two `serve`s
//     of CONDUCTOR_BIN: "off" (no audit log, metrics not served: the recorder still counts in
//     memory) and "on" (MCP_CONDUCTOR_AUDIT to a file, MCP_CONDUCTOR_METRICS_ADDR scraped after
//     every call), with bare deno as the row's baseline: p50 and the server tree's CPU per
//     execution, on/off. The in-process figure resolves microseconds; the end-to-end one only
//     what a clock tick per process over N calls allows (see BenchmarkLoad).
//
// It asserts no timing; it fails if the audit file does not hold one line per event.
func BenchmarkObserveOverhead(b *testing.B) {
	deno, bin := paths(b)
	dir := b.TempDir()
	var out strings.Builder

	// In process.
	n := observeEvents()
	rec := cmetrics.New(cmetrics.Options{PoolSize: 2, Pool: func() pool.Stats { return pool.Stats{Warm: 10, Ready: 2, Target: 2} }})
	auditPath := filepath.Join(dir, "audit.jsonl")
	alog, err := audit.Open(auditPath, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	sink := event.Multi(rec, alog)
	scope := event.Scope{Identity: "stdio", Session: "3f2a9c", Tool: "run_deno_code"}
	code := "const r = await mcpFactory.callTool('github', 'search_issues', {q: 'is:open'});\nexport default r.items.length;"
	ex := event.Execution{Scope: scope, Language: "typescript", CodeSHA256: event.Hash(code), CodeBytes: len(code), Code: code,
		Status: "success", Queued: 80 * time.Microsecond, Start: 300 * time.Microsecond, Duration: 9 * time.Millisecond,
		CPU: 12 * time.Millisecond, MemoryPeakBytes: 48 << 20, NetAllowed: 2, Calls: 2}
	call := event.UpstreamCall{Scope: scope, Method: "callTool", Server: "github", Tool: "search_issues",
		Duration: 4 * time.Millisecond, Outcome: "ok"}
	scrape := func() {
		w := httptest.NewRecorder()
		rec.MetricsHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if w.Code != http.StatusOK {
			b.Fatalf("scrape: %d", w.Code)
		}
	}
	b.ResetTimer()
	var perExec time.Duration
	for range b.N {
		t0 := readCPU(b)
		w0 := time.Now()
		for i := range n {
			now := time.Now()
			ex.Time, call.Time = now, now
			sink.UpstreamCall(call)
			sink.UpstreamCall(call)
			sink.Execution(ex)
			if i%100 == 99 {
				scrape()
			}
		}
		if err := alog.Close(); err != nil { // the writer has written every line
			b.Fatal(err)
		}
		d := readCPU(b).sub(t0)
		perExec = (d.selfUser + d.selfSys) / time.Duration(n)
		fmt.Fprintf(&out, "in process: %d executions (+%d upstream calls, %d scrapes) in %.0f ms wall: %.2f µs of CPU per execution (user %.2f, system %.2f)\n",
			n, 2*n, n/100, ms(time.Since(w0)), float64(perExec.Nanoseconds())/1000,
			float64((d.selfUser/time.Duration(n)).Nanoseconds())/1000, float64((d.selfSys/time.Duration(n)).Nanoseconds())/1000)
		alog, err = audit.Open(auditPath, audit.Options{})
		if err != nil {
			b.Fatal(err)
		}
		sink = event.Multi(rec, alog)
	}
	b.StopTimer()
	_ = alog.Close()
	if lines := countLines(b, auditPath); lines != 3*n*b.N {
		b.Fatalf("the audit file has %d lines, want %d (3 per execution)", lines, 3*n*b.N)
	}

	// End to end.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	e2eAudit := filepath.Join(dir, "e2e-audit.jsonl")
	off := startServer(b, bin, "serve, audit and metrics off", "MCP_CONDUCTOR_MAX_CONCURRENCY=4")
	on := startServer(b, bin, "serve, audit and metrics on", "MCP_CONDUCTOR_MAX_CONCURRENCY=4",
		"MCP_CONDUCTOR_AUDIT="+e2eAudit, "MCP_CONDUCTOR_METRICS_ADDR="+metricsAddr)
	helloTS := filepath.Join(dir, "hello.ts")
	if err := os.WriteFile(helloTS, []byte(hello), 0o644); err != nil {
		b.Fatal(err)
	}
	args := map[string]any{"deno_code": hello}
	onV := toolVariant("run_deno_code, audit + metrics on", on, "run_deno_code", args)
	scraped := onV.run
	onV.run = func() (time.Duration, time.Duration, error) {
		lat, cpu, err := scraped()
		if err == nil {
			err = scrapeOnce("http://" + metricsAddr + "/metrics")
		}
		return lat, cpu, err
	}
	lb := &loadBench{b: b, vs: []*loadVariant{
		bareVariant("bare deno run", func() *exec.Cmd { return bareDeno(deno, dir, helloTS) }),
		toolVariant("run_deno_code, audit + metrics off", off, "run_deno_code", args),
		onV,
	}}
	for _, v := range lb.vs {
		if _, _, err := v.run(); err != nil {
			lb.fatal(v, err)
		}
	}
	row := lb.spaced(loadN())
	offC, onC := row.cells[1], row.cells[2]
	p50 := func(c *loadCell) time.Duration { return c.s.quantile(0.5) }
	fmt.Fprintf(&out, "end to end, spaced, n=%d: bare p50 %.2f ms; off p50 %.2f ms, CPU %.2f ms/exec; on p50 %.2f ms, CPU %.2f ms/exec; on/off p50 %.3fx, CPU %.3fx\n",
		len(onC.s.d), ms(p50(row.cells[0])), ms(p50(offC)), ms(offC.cpuPerExec()), ms(p50(onC)), ms(onC.cpuPerExec()),
		float64(p50(onC))/float64(p50(offC)), float64(onC.cpuPerExec())/float64(offC.cpuPerExec()))
	if offC.cpuPerExec() > 0 {
		fmt.Fprintf(&out, "the sinks' in-process CPU per execution is %.3f %% of the off server tree's CPU per execution (%.2f ms)\n",
			100*float64(perExec)/float64(offC.cpuPerExec()), ms(offC.cpuPerExec()))
	}
	fmt.Print(out.String())
	b.Log("\n" + out.String())
}

// scrapeOnce GETs a /metrics page and reads it whole.
func scrapeOnce(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return nil
}

// countLines counts the lines of a file.
func countLines(tb testing.TB, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}
