package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/mcp"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// factoryRounds is how many interleaved rounds BenchmarkFactoryOverhead runs
// (BENCH_FACTORY_ROUNDS, default 5). Each round is a batch of direct calls
// and one sandboxed execution making the same calls.
func factoryRounds() int { return envInt("BENCH_FACTORY_ROUNDS", 5) }

const (
	factorySeq      = 250 // sequential echo calls per execution (and per direct batch)
	factoryParallel = 120 // single / Promise.all-of-3 pairs per execution
	factorySleeps   = 40  // single / Promise.all-of-3 pairs of a 5 ms sleep per execution
)

// sleepUpstream serves one tool, sleep {ms}, from an in-process go-sdk
// server over streamable HTTP on 127.0.0.1: an upstream that answers
// concurrent calls concurrently and costs no CPU, to show what Promise.all
// gets when the upstream is not the bottleneck.
func sleepUpstream(b *testing.B) string {
	s := sdk.NewServer(&sdk.Implementation{Name: "bench-sleep", Version: "1"}, nil)
	type in struct {
		Ms int `json:"ms" jsonschema:"milliseconds"`
	}
	sdk.AddTool(s, &sdk.Tool{Name: "sleep", Description: "sleeps ms milliseconds"},
		func(ctx context.Context, _ *sdk.CallToolRequest, a in) (*sdk.CallToolResult, any, error) {
			select {
			case <-time.After(time.Duration(a.Ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "slept"}}}, nil, nil
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	b.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL + "/mcp"
}

// everythingServer returns node and server-everything's dist/index.js, or
// stops the benchmark (fails on CI) saying what is missing.
func everythingServer(b *testing.B) (node, script string) {
	node, err := exec.LookPath("node")
	if err != nil {
		sandboxtest.Unavailable(b, "node is not on PATH (apt-get install -y nodejs npm): %v", err)
	}
	dir := os.Getenv("CONDUCTOR_MCP_TOOLS")
	if dir == "" {
		dir = filepath.Join("..", ".build", "mcp-tools")
	}
	script, _ = filepath.Abs(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"))
	if _, err := os.Stat(script); err != nil {
		sandboxtest.Unavailable(b, "server-everything not found at %s (run `make mcp-tools` or set CONDUCTOR_MCP_TOOLS): %v", script, err)
	}
	return node, script
}

// factoryCode runs inside the sandbox: warm-up, then factorySeq sequential
// echo calls, then factoryParallel pairs of (one call, Promise.all of three),
// each timed with performance.now(). Sandbox start-up is not in any sample.
const factoryCode = `
const ev = mcpFactory.load("everything");
const check = (r) => { if (r !== "Echo: ping") throw new Error("echo answered " + JSON.stringify(r)); };
for (let i = 0; i < 20; i++) check(await ev.callTool("echo", { message: "ping" }));
const seq = [], one = [], three = [];
for (let i = 0; i < SEQ; i++) {
  const t0 = performance.now();
  const r = await ev.callTool("echo", { message: "ping" });
  seq.push(performance.now() - t0);
  check(r);
}
for (let i = 0; i < PAR; i++) {
  let t0 = performance.now();
  check(await ev.callTool("echo", { message: "ping" }));
  one.push(performance.now() - t0);
  t0 = performance.now();
  const rs = await Promise.all([0, 1, 2].map(() => ev.callTool("echo", { message: "ping" })));
  three.push(performance.now() - t0);
  rs.forEach(check);
}
const sl = mcpFactory.load("sleep"), sleep1 = [], sleep3 = [];
for (let i = 0; i < SLEEPS; i++) {
  let t0 = performance.now();
  await sl.callTool("sleep", { ms: 5 });
  sleep1.push(performance.now() - t0);
  t0 = performance.now();
  await Promise.all([0, 1, 2].map(() => sl.callTool("sleep", { ms: 5 })));
  sleep3.push(performance.now() - t0);
}
return { seq, one, three, sleep1, sleep3 };`

// factoryPython is factoryCode in Python: the same calls, timed with time.perf_counter(), the
// parallel ones with asyncio.gather (run_python_code's mcpFactory, issue 12).
const factoryPython = `
import asyncio, time
ev = mcpFactory.load("everything")
def check(r):
    if r != "Echo: ping":
        raise ValueError("echo answered %r" % (r,))
def echo():
    return ev.call_tool("echo", {"message": "ping"})
for _ in range(20):
    check(await echo())
seq, one, three = [], [], []
for _ in range(SEQ):
    t0 = time.perf_counter()
    r = await echo()
    seq.append((time.perf_counter() - t0) * 1000)
    check(r)
for _ in range(PAR):
    t0 = time.perf_counter()
    check(await echo())
    one.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    rs = await asyncio.gather(echo(), echo(), echo())
    three.append((time.perf_counter() - t0) * 1000)
    for r in rs:
        check(r)
sl = mcpFactory.load("sleep")
sleep1, sleep3 = [], []
for _ in range(SLEEPS):
    t0 = time.perf_counter()
    await sl.call_tool("sleep", {"ms": 5})
    sleep1.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    await asyncio.gather(*(sl.call_tool("sleep", {"ms": 5}) for _ in range(3)))
    sleep3.append((time.perf_counter() - t0) * 1000)
{"seq": seq, "one": one, "three": three, "sleep1": sleep1, "sleep3": sleep3}`

// factorySamples are one language's timings inside its executions.
type factorySamples struct {
	seq, one, three, sleep1, sleep3 *sample
	startups                        []time.Duration // per execution, the time outside the timed calls
}

func newFactorySamples(lang, parallel string) *factorySamples {
	return &factorySamples{
		seq:    &sample{name: lang + " callTool echo"},
		one:    &sample{name: lang + " 1 call (paired)"},
		three:  &sample{name: lang + " " + parallel + " x3 (paired)"},
		sleep1: &sample{name: lang + " 1 x sleep 5 ms (Go upstr.)"},
		sleep3: &sample{name: lang + " " + parallel + " x3 sleep 5 ms"},
	}
}

// add records one execution's result (its return value: the lists of milliseconds).
func (f *factorySamples) add(b *testing.B, res *engine.Result, err error, wall time.Duration) {
	if err != nil {
		b.Fatalf("execution: %v", err)
	}
	if res.Status != sandbox.StatusSuccess {
		b.Fatalf("execution: status %s error %+v stderr %q", res.Status, res.Error, res.Stderr)
	}
	var out struct{ Seq, One, Three, Sleep1, Sleep3 []float64 }
	if err := json.Unmarshal(res.ReturnValue, &out); err != nil {
		b.Fatalf("return value: %v: %.300s", err, res.ReturnValue)
	}
	if len(out.Seq) != factorySeq || len(out.One) != factoryParallel || len(out.Three) != factoryParallel || len(out.Sleep3) != factorySleeps {
		b.Fatalf("return value has %d/%d/%d/%d samples", len(out.Seq), len(out.One), len(out.Three), len(out.Sleep3))
	}
	add := func(s *sample, msList []float64) (sum time.Duration) {
		for _, v := range msList {
			d := time.Duration(v * float64(time.Millisecond))
			s.d = append(s.d, d)
			sum += d
		}
		return sum
	}
	measured := add(f.seq, out.Seq) + add(f.one, out.One) + add(f.three, out.Three) + add(f.sleep1, out.Sleep1) + add(f.sleep3, out.Sleep3)
	f.startups = append(f.startups, wall-measured)
	if want := 20 + factorySeq + 4*factoryParallel + 4*factorySleeps; res.Calls != want {
		b.Fatalf("mcpCalls %d, want %d", res.Calls, want)
	}
}

func (f *factorySamples) reset() {
	f.seq.d, f.one.d, f.three.d, f.sleep1.d, f.sleep3.d, f.startups = nil, nil, nil, nil, nil, nil
}

// report writes the overhead against the direct client's calls.
func (f *factorySamples) report(w io.Writer, lang string, direct *sample) (overhead, ratio float64) {
	overhead = ms(f.seq.quantile(0.5)) - ms(direct.quantile(0.5))
	ratio = float64(f.three.quantile(0.5)) / float64(f.one.quantile(0.5))
	var startSum time.Duration
	for _, d := range f.startups {
		startSum += d
	}
	fmt.Fprintf(w, "%s: overhead at p50 (callTool - go-sdk client): %+.3f ms (target <= 1 ms); at p90 %+.3f ms, at p99 %+.3f ms\n", lang, overhead,
		ms(f.seq.quantile(0.9))-ms(direct.quantile(0.9)), ms(f.seq.quantile(0.99))-ms(direct.quantile(0.99)))
	fmt.Fprintf(w, "  3 in parallel / one echo, medians in the same execution: %.2fx (target < 1.5x)\n", ratio)
	fmt.Fprintf(w, "  3 in parallel / one call of a 5 ms sleep on a concurrent Go upstream: %.2fx\n",
		float64(f.sleep3.quantile(0.5))/float64(f.sleep1.quantile(0.5)))
	fmt.Fprintf(w, "  per execution, time outside the timed calls (sandbox start-up, warm-up calls, result): %.0f ms on average\n",
		ms(startSum)/float64(max(1, len(f.startups))))
	return overhead, ratio
}

// BenchmarkFactoryOverhead measures what mcpFactory adds to an upstream MCP
// call: server-everything's echo over stdio called (a) by a go-sdk client
// directly (its own upstream process), (b) through the upstream Manager from
// Go, (c) with callTool from inside one sandboxed run_deno_code execution and
// (d) with call_tool from inside one run_python_code execution (the Python's
// calls go through the launcher's relay, then the same channel), the engine
// and factory wired as cmd/conductor wires them; interleaved round by round.
// It also compares three calls in parallel (Promise.all, asyncio.gather) with
// one call inside the sandbox. It reports; it asserts no timing.
func BenchmarkFactoryOverhead(b *testing.B) {
	node, script := everythingServer(b)
	ctx := context.Background()
	rs, r := sandboxtest.PythonRunner(b, "")

	cfgJSON, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{
		"everything": map[string]any{"command": node, "args": []string{script, "stdio"}},
		"sleep":      map[string]any{"url": sleepUpstream(b)},
	}})
	cfg, err := upstream.ParseConfig("bench-factory.json", cfgJSON, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := upstream.NewManager(cfg, upstream.Options{})
	b.Cleanup(func() { _ = m.Close() })
	eng := engine.New(engine.Options{
		Sandboxes:      r,
		Runtimes:       rs,
		Calls:          mcp.NewFactory(m, nil),
		DefaultTimeout: 60 * time.Second,
		MaxTimeout:     120 * time.Second,
	})
	b.Cleanup(eng.Shutdown)

	client := sdk.NewClient(&sdk.Implementation{Name: "bench-direct", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: exec.Command(node, script, "stdio"), TerminateDuration: time.Second},
		&sdk.ClientSessionOptions{ProtocolVersion: upstream.DefaultProtocolVersion})
	if err != nil {
		b.Fatalf("connect a go-sdk client to server-everything: %v", err)
	}
	b.Cleanup(func() { _ = cs.Close() })

	args := map[string]any{"message": "ping"}
	echoText := func(res *sdk.CallToolResult) string {
		if res == nil || len(res.Content) == 0 {
			return ""
		}
		tc, _ := res.Content[0].(*sdk.TextContent)
		if tc == nil {
			return ""
		}
		return tc.Text
	}
	// directEcho may run on any goroutine; directCall only on the
	// benchmark's.
	directEcho := func() (time.Duration, error) {
		t0 := time.Now()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: args})
		d := time.Since(t0)
		if err == nil && echoText(res) != "Echo: ping" {
			err = fmt.Errorf("echo answered %q", echoText(res))
		}
		return d, err
	}
	directCall := func() time.Duration {
		d, err := directEcho()
		if err != nil {
			b.Fatalf("direct echo: %v", err)
		}
		return d
	}
	managerCall := func() time.Duration {
		t0 := time.Now()
		res, err := m.CallTool(ctx, "everything", "echo", args)
		d := time.Since(t0)
		if err != nil || echoText(res) != "Echo: ping" {
			b.Fatalf("Manager echo: %v %q", err, echoText(res))
		}
		return d
	}
	direct3 := func() time.Duration {
		var wg sync.WaitGroup
		errs := make([]error, 3)
		t0 := time.Now()
		for i := range 3 {
			wg.Go(func() { _, errs[i] = directEcho() })
		}
		wg.Wait()
		d := time.Since(t0)
		for _, err := range errs {
			if err != nil {
				b.Fatalf("direct echo (3 in parallel): %v", err)
			}
		}
		return d
	}

	direct := &sample{name: "go-sdk client -> echo (baseline)"}
	viaManager := &sample{name: "upstream.Manager -> echo"}
	direct3s := &sample{name: "go-sdk client 3 goroutines"}
	ts := newFactorySamples("sandbox", "Promise.all")
	py := newFactorySamples("python", "gather")

	repl := strings.NewReplacer("SEQ", strconv.Itoa(factorySeq), "PAR", strconv.Itoa(factoryParallel), "SLEEPS", strconv.Itoa(factorySleeps))
	tsCode, pyCode := repl.Replace(factoryCode), repl.Replace(factoryPython)
	sandboxRun := func() {
		t0 := time.Now()
		res, err := eng.Execute(ctx, engine.Request{Code: tsCode, Timeout: 100 * time.Second})
		ts.add(b, res, err, time.Since(t0))
	}
	pythonRun := func() {
		t0 := time.Now()
		res, err := eng.ExecutePython(ctx, engine.PythonRequest{Code: pyCode, Timeout: 100 * time.Second})
		py.add(b, res, err, time.Since(t0))
	}

	// Warm everything once, unmeasured: both node processes, the
	// Manager's session, the sandbox paths.
	for range 20 {
		directCall()
		managerCall()
	}
	sandboxRun()
	pythonRun()
	ts.reset()
	py.reset()

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range factoryRounds() {
			for range factorySeq {
				direct.d = append(direct.d, directCall())
				viaManager.d = append(viaManager.d, managerCall())
			}
			for range factoryParallel {
				direct3s.d = append(direct3s.d, direct3())
			}
			sandboxRun()
			pythonRun()
		}
	}
	b.StopTimer()

	var table strings.Builder
	printTable(&table, direct, viaManager, ts.seq, ts.one, ts.three, py.seq, py.one, py.three, direct3s, ts.sleep1, ts.sleep3, py.sleep1, py.sleep3)
	var sb strings.Builder
	overhead, ratio := ts.report(&sb, "TypeScript (run_deno_code)", direct)
	pyOverhead, pyRatio := py.report(&sb, "Python (run_python_code)", direct)
	directRatio := float64(direct3s.quantile(0.5)) / float64(direct.quantile(0.5))
	fmt.Fprintf(&sb, "for reference, the go-sdk client's 3 goroutines / one call: %.2fx (what the upstream and 2 CPUs allow)\n", directRatio)
	// The table goes to stdout whole (benchmark logs are cut at 10 lines).
	fmt.Printf("BenchmarkFactoryOverhead: mcpFactory overhead, %d interleaved rounds (%d sequential + %d paired echo calls, %d paired sleeps per execution) on %d CPUs:\n%s%s",
		factoryRounds(), factorySeq, factoryParallel, factorySleeps, runtime.NumCPU(), table.String(), sb.String())
	b.Logf("\n%s", sb.String())
	b.ReportMetric(ms(direct.quantile(0.5)), "direct-p50-ms")
	b.ReportMetric(ms(ts.seq.quantile(0.5)), "sandbox-p50-ms")
	b.ReportMetric(overhead, "overhead-p50-ms")
	b.ReportMetric(ratio, "parallel3/single-p50")
	b.ReportMetric(ms(py.seq.quantile(0.5)), "python-p50-ms")
	b.ReportMetric(pyOverhead, "python-overhead-p50-ms")
	b.ReportMetric(pyRatio, "python-parallel3/single-p50")
	b.ReportMetric(directRatio, "direct3/single-p50")
}
