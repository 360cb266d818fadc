package bench

import (
	"context"
	"encoding/json"
	"fmt"
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

// BenchmarkFactoryOverhead measures what mcpFactory adds to an upstream MCP
// call: server-everything's echo over stdio called (a) by a go-sdk client
// directly (its own upstream process), (b) through the upstream Manager from
// Go, and (c) with callTool from inside one sandboxed execution, the engine
// and factory wired as cmd/conductor wires them; interleaved round by round.
// It also compares Promise.all of three calls with one call inside the
// sandbox. It reports; it asserts no timing.
func BenchmarkFactoryOverhead(b *testing.B) {
	node, script := everythingServer(b)
	r := sandboxtest.Runner(b, nil)
	ctx := context.Background()

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
	inSandbox := &sample{name: "sandbox callTool echo"}
	inSandbox1 := &sample{name: "sandbox 1 call (paired)"}
	inSandbox3 := &sample{name: "sandbox Promise.all x3 (paired)"}
	direct3s := &sample{name: "go-sdk client 3 goroutines"}
	sleep1 := &sample{name: "sandbox 1 x sleep 5 ms (Go upstr.)"}
	sleep3 := &sample{name: "sandbox Promise.all x3 sleep 5 ms"}
	var startups []time.Duration

	code := strings.NewReplacer("SEQ", strconv.Itoa(factorySeq), "PAR", strconv.Itoa(factoryParallel), "SLEEPS", strconv.Itoa(factorySleeps)).Replace(factoryCode)
	sandboxRun := func() {
		t0 := time.Now()
		res, err := eng.Execute(ctx, engine.Request{Code: code, Timeout: 100 * time.Second})
		wall := time.Since(t0)
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
		measured := add(inSandbox, out.Seq) + add(inSandbox1, out.One) + add(inSandbox3, out.Three) +
			add(sleep1, out.Sleep1) + add(sleep3, out.Sleep3)
		startups = append(startups, wall-measured)
		if want := 20 + factorySeq + 4*factoryParallel + 4*factorySleeps; res.Calls != want {
			b.Fatalf("mcpCalls %d, want %d", res.Calls, want)
		}
	}

	// Warm everything once, unmeasured: both node processes, the
	// Manager's session, the sandbox path.
	for range 20 {
		directCall()
		managerCall()
	}
	sandboxRun()
	inSandbox.d, inSandbox1.d, inSandbox3.d, sleep1.d, sleep3.d, startups = nil, nil, nil, nil, nil, nil

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
		}
	}
	b.StopTimer()

	var table strings.Builder
	printTable(&table, direct, viaManager, inSandbox, inSandbox1, inSandbox3, direct3s, sleep1, sleep3)
	overhead := ms(inSandbox.quantile(0.5)) - ms(direct.quantile(0.5))
	ratio := float64(inSandbox3.quantile(0.5)) / float64(inSandbox1.quantile(0.5))
	directRatio := float64(direct3s.quantile(0.5)) / float64(direct.quantile(0.5))
	sleepRatio := float64(sleep3.quantile(0.5)) / float64(sleep1.quantile(0.5))
	var startSum time.Duration
	for _, d := range startups {
		startSum += d
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "overhead at p50 (sandbox callTool - go-sdk client): %+.3f ms (target <= 1 ms); at p90 %+.3f ms, at p99 %+.3f ms\n", overhead,
		ms(inSandbox.quantile(0.9))-ms(direct.quantile(0.9)), ms(inSandbox.quantile(0.99))-ms(direct.quantile(0.99)))
	fmt.Fprintf(&sb, "Promise.all of 3 echo / one echo, medians in the same execution: %.2fx (target < 1.5x)\n", ratio)
	fmt.Fprintf(&sb, "  for reference, the go-sdk client's 3 goroutines / one call: %.2fx (what the upstream and 2 CPUs allow)\n", directRatio)
	fmt.Fprintf(&sb, "  Promise.all of 3 / one call of a 5 ms sleep on a concurrent Go upstream: %.2fx\n", sleepRatio)
	fmt.Fprintf(&sb, "per execution, time outside the timed calls (sandbox start-up, warm-up calls, result): %.0f ms on average\n",
		ms(startSum)/float64(max(1, len(startups))))
	// The table goes to stdout whole (benchmark logs are cut at 10 lines).
	fmt.Printf("BenchmarkFactoryOverhead: mcpFactory overhead, %d interleaved rounds (%d sequential + %d paired echo calls, %d paired sleeps per execution) on %d CPUs:\n%s%s",
		factoryRounds(), factorySeq, factoryParallel, factorySleeps, runtime.NumCPU(), table.String(), sb.String())
	b.Logf("\n%s", sb.String())
	b.ReportMetric(ms(direct.quantile(0.5)), "direct-p50-ms")
	b.ReportMetric(ms(inSandbox.quantile(0.5)), "sandbox-p50-ms")
	b.ReportMetric(overhead, "overhead-p50-ms")
	b.ReportMetric(ratio, "parallel3/single-p50")
	b.ReportMetric(directRatio, "direct3/single-p50")
	b.ReportMetric(sleepRatio, "parallel3/single-sleep-p50")
}
