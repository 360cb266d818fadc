package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// suiteRounds is how many interleaved rounds BenchmarkSuite runs
// (BENCH_ROUNDS, default 30).
func suiteRounds() int { return envInt("BENCH_ROUNDS", 30) }

const (
	suiteThroughputTotal = 40 // executions per concurrency level and variant
	// suiteSettle is the pause before every latency sample, so each starts
	// on a quiet machine: the previous sample's background work (a pool
	// refill boots a sandbox, ~40 ms of CPU; a used sandbox's teardown)
	// has finished and does not land on the next variant's time.
	suiteSettle = 100 * time.Millisecond
)

var suiteLevels = []int{1, 2, 4}

// mcpServer is one `conductor serve` (stdio) subprocess with a go-sdk
// client session on it.
type mcpServer struct {
	name   string
	cmd    *exec.Cmd
	cs     *sdk.ClientSession
	stderr *testenv.SyncBuffer
}

// startServer starts `bin/conductor serve` with the given MCP_CONDUCTOR_*
// settings, its own state directory, and connects a go-sdk client. The
// session is closed (stdin closed, so the server exits) at Cleanup.
func startServer(b *testing.B, bin, name string, env ...string) *mcpServer {
	ctx := context.Background()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), append(env, "MCP_CONDUCTOR_STATE_DIR="+b.TempDir())...)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "bench-suite", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		b.Fatalf("%s: connect to conductor serve: %v\nstderr: %s", name, err, stderr.String())
	}
	s := &mcpServer{name: name, cmd: cmd, cs: cs, stderr: &stderr}
	b.Cleanup(func() {
		err := cs.Close() // closes stdin; the server exits on EOF
		st := cmd.ProcessState
		if st == nil {
			// Should not happen (Close waits); make sure it is gone.
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			b.Logf("%s: server had not exited after Close (%v); killed pid %d", name, err, cmd.Process.Pid)
			return
		}
		if !st.Success() || err != nil {
			b.Logf("%s: server exit: %v (close: %v)\nstderr tail: %.2000s", name, st, err, tail(stderr.String(), 2000))
		}
	})
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// call runs hello through run_deno_code and checks the result; it may be
// called from several goroutines at once.
func (s *mcpServer) call(ctx context.Context) (time.Duration, error) {
	return s.callTool(ctx, "run_deno_code", map[string]any{"deno_code": "console.log('hello')"})
}

// callTool calls the tool name with args; the structured result must be a
// success that printed exactly "hello\n".
func (s *mcpServer) callTool(ctx context.Context, name string, args map[string]any) (time.Duration, error) {
	t0 := time.Now()
	res, err := s.cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	d := time.Since(t0)
	if err != nil {
		return d, err
	}
	raw, _ := json.Marshal(res.StructuredContent)
	var r sandbox.Result
	if err := json.Unmarshal(raw, &r); err != nil || res.IsError || r.Status != sandbox.StatusSuccess || r.Stdout != "hello\n" {
		return d, fmt.Errorf("%s: %s: unexpected result (isError %v): %.500s", s.name, name, res.IsError, raw)
	}
	return d, nil
}

// rssKiB reads VmRSS of pid from /proc, in KiB.
func rssKiB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// treeRSSKiB sums VmRSS of pid and all its descendants (pre-started
// sandboxes are the server's children). Shared pages count once per
// process, so this overstates the tree's real footprint.
func treeRSSKiB(pid int) (sum int64, procs int) {
	for _, p := range append([]int{pid}, descendants(pid)...) {
		sum, procs = sum+rssKiB(p), procs+1
	}
	return sum, procs
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// throughput runs total executions of run on c goroutines and returns
// executions per second.
func throughput(b *testing.B, c, total int, run func() error) float64 {
	_, el, err := sustained(c, total, func() (time.Duration, error) { return 0, run() })
	if err != nil {
		b.Fatalf("throughput c=%d: %v", c, err)
	}
	return float64(total) / el.Seconds()
}

// sustained runs total executions of run on c goroutines, each starting its
// next as its previous returns, and returns each execution's latency (as run
// reports it) and the elapsed time of the whole; the first error stops it.
func sustained(c, total int, run func() (time.Duration, error)) ([]time.Duration, time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	ds := make([][]time.Duration, c)
	errs := make([]error, c)
	t0 := time.Now()
	for w := range c {
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				d, err := run()
				if err != nil {
					errs[w] = err
					return
				}
				ds[w] = append(ds[w], d)
			}
		})
	}
	wg.Wait()
	el := time.Since(t0)
	return slices.Concat(ds...), el, errors.Join(errs...)
}

// BenchmarkSuite is the issue-5 suite: one table from one run, the variants
// interleaved round by round, with ratios to bare `deno run` — bare deno,
// `conductor exec` (cold CLI), an in-process warm-pool execution, and the
// run_deno_code tool call end to end through a `conductor serve` stdio
// subprocess, cold (pool 0) and warm (pool 2); then throughput at
// concurrency 1, 2 and 4 and the servers' idle RSS. It reports; it asserts
// no timing. With BENCH_RAW_WRITE=1 it writes every sample (ms) as JSON to
// BENCH_RAW (default docs/bench-raw.json).
func BenchmarkSuite(b *testing.B) {
	deno, bin := paths(b)
	r := sandboxtest.Runner(b, nil)
	ctx := context.Background()
	dir := b.TempDir()
	script := filepath.Join(dir, "hello.ts")
	if err := os.WriteFile(script, []byte(hello), 0o644); err != nil {
		b.Fatal(err)
	}
	p := pool.New(r, 1, sandbox.StartOptions{}, nil)
	b.Cleanup(p.Close)

	cold := startServer(b, bin, "cold server (pool 0)", "MCP_CONDUCTOR_POOL_SIZE=0")
	warm := startServer(b, bin, "warm server (pool 2)", "MCP_CONDUCTOR_POOL_SIZE=2", "MCP_CONDUCTOR_MAX_CONCURRENCY=4")

	bare := &sample{name: "bare deno run hello (baseline)"}
	cli := &sample{name: "conductor exec - (CLI, cold)"}
	pooled := &sample{name: "in-process warm pool take+run"}
	coldMCP := &sample{name: "cold MCP call (serve, pool 0)"}
	warmMCP := &sample{name: "warm MCP call (serve, pool 2)"}

	bareOnce := func() (time.Duration, error) {
		return timedHello(bareDeno(deno, dir, script))
	}
	runBare := func() {
		time.Sleep(suiteSettle)
		d, err := bareOnce()
		if err != nil {
			b.Fatalf("bare deno: %v", err)
		}
		bare.d = append(bare.d, d)
	}
	runCLI := func() {
		time.Sleep(suiteSettle)
		cmd := exec.Command(bin, "exec", "-")
		cmd.Stdin = strings.NewReader(hello)
		d, err := timedHello(cmd)
		if err != nil {
			b.Fatalf("conductor exec: %v", err)
		}
		cli.d = append(cli.d, d)
	}
	runPooled := func() {
		time.Sleep(suiteSettle)
		t0 := time.Now()
		sb, err := p.StartWith(ctx, sandbox.StartOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res := sb.Run(ctx, sandbox.Job{Code: hello, Timeout: 30 * time.Second})
		sb.Close()
		pooled.d = append(pooled.d, time.Since(t0))
		if res.Status != sandbox.StatusSuccess || res.Stdout != "hello\n" {
			b.Fatalf("pooled: %+v", res)
		}
	}
	runMCP := func(s *mcpServer, into *sample, gap time.Duration) {
		time.Sleep(gap)
		d, err := s.call(ctx)
		if err != nil {
			b.Fatalf("%s: %v\nstderr tail: %s", s.name, err, tail(s.stderr.String(), 2000))
		}
		into.d = append(into.d, d)
	}

	// Idle RSS: both servers initialized (the client handshake is done),
	// then 1 s with nothing to do; the warm server's pool has filled.
	time.Sleep(time.Second)
	coldRSS := rssKiB(cold.cmd.Process.Pid)
	warmRSS := rssKiB(warm.cmd.Process.Pid)
	warmTree, warmProcs := treeRSSKiB(warm.cmd.Process.Pid)

	// Warm the page cache, deno's caches and each path once, unmeasured.
	runBare()
	runCLI()
	runPooled()
	runMCP(cold, coldMCP, suiteSettle)
	runMCP(warm, warmMCP, suiteSettle)
	bare.d, cli.d, pooled.d, coldMCP.d, warmMCP.d = nil, nil, nil, nil, nil

	type level struct {
		C        int     `json:"concurrency"`
		Bare     float64 `json:"bare_execs_per_s"`
		WarmMCP  float64 `json:"warm_mcp_execs_per_s"`
		RatioMCP float64 `json:"ratio"`
	}
	var levels []level

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range suiteRounds() {
			runBare()
			runCLI()
			runPooled()
			runMCP(cold, coldMCP, suiteSettle)
			runMCP(warm, warmMCP, suiteSettle)
		}
		levels = levels[:0]
		for _, c := range suiteLevels {
			// Let the warm server's pool refill before each level.
			time.Sleep(500 * time.Millisecond)
			mcpTP := throughput(b, c, suiteThroughputTotal, func() error { _, err := warm.call(ctx); return err })
			bareTP := throughput(b, c, suiteThroughputTotal, func() error { _, err := bareOnce(); return err })
			levels = append(levels, level{C: c, Bare: bareTP, WarmMCP: mcpTP, RatioMCP: mcpTP / bareTP})
		}
	}
	b.StopTimer()

	// RSS again after the load, idle 1 s.
	time.Sleep(time.Second)
	coldRSSAfter := rssKiB(cold.cmd.Process.Pid)
	warmRSSAfter := rssKiB(warm.cmd.Process.Pid)

	var out strings.Builder
	printTable(&out, bare, cli, pooled, coldMCP, warmMCP)
	fmt.Fprintf(&out, "  p99/base: cli %.2f, pool %.2f, cold MCP %.2f, warm MCP %.2f\n",
		ratioQ(cli, bare, 0.99), ratioQ(pooled, bare, 0.99), ratioQ(coldMCP, bare, 0.99), ratioQ(warmMCP, bare, 0.99))
	fmt.Fprintf(&out, "  mcpFactory call overhead: not re-measured here; BenchmarkFactoryOverhead reports it (+0.2 ms p50 over a direct go-sdk call)\n")
	fmt.Fprintf(&out, "throughput, %d hello executions per level (warm MCP: one session, c goroutines calling run_deno_code; MAX_CONCURRENCY=4, pool 2):\n", suiteThroughputTotal)
	fmt.Fprintf(&out, "  %-11s %14s %16s %7s\n", "concurrency", "bare execs/s", "warm MCP execs/s", "ratio")
	for _, l := range levels {
		fmt.Fprintf(&out, "  %-11d %14.2f %16.2f %7.2f\n", l.C, l.Bare, l.WarmMCP, l.RatioMCP)
	}
	fmt.Fprintf(&out, "server RSS (VmRSS of the conductor serve process), idle 1 s after initialize: cold (pool 0) %.1f MiB, warm (pool 2) %.1f MiB\n",
		mib(coldRSS), mib(warmRSS))
	fmt.Fprintf(&out, "  warm server incl. its %d descendant processes (pre-started sandboxes; shared pages counted per process): %.1f MiB\n",
		warmProcs-1, mib(warmTree))
	fmt.Fprintf(&out, "  after the load, idle 1 s: cold %.1f MiB, warm %.1f MiB\n", mib(coldRSSAfter), mib(warmRSSAfter))

	// The table goes to stdout whole (benchmark logs are cut at 10 lines)
	// and to the log.
	fmt.Printf("BenchmarkSuite: %d interleaved rounds on %d CPUs:\n%s", suiteRounds(), runtime.NumCPU(), out.String())
	b.Logf("suite, %d interleaved rounds on %d CPUs:\n%s", suiteRounds(), runtime.NumCPU(), out.String())

	b.ReportMetric(ms(bare.quantile(0.5)), "bare-p50-ms")
	b.ReportMetric(ratioQ(warmMCP, bare, 0.5), "warmMCP/bare-p50")
	b.ReportMetric(ratioQ(warmMCP, bare, 0.99), "warmMCP/bare-p99")
	b.ReportMetric(ratioQ(coldMCP, bare, 0.5), "coldMCP/bare-p50")
	for _, l := range levels {
		if l.C == 2 {
			b.ReportMetric(l.RatioMCP, "tput-c2-mcp/bare")
		}
	}
	b.ReportMetric(mib(coldRSS), "idle-rss-cold-MiB")
	b.ReportMetric(mib(warmRSS), "idle-rss-warm-MiB")

	if os.Getenv("BENCH_RAW_WRITE") != "1" {
		return
	}
	path := os.Getenv("BENCH_RAW")
	if path == "" {
		path, _ = filepath.Abs(filepath.Join("..", "docs", "bench-raw.json"))
	}
	toMs := func(s *sample) []float64 {
		v := make([]float64, len(s.d))
		for i, d := range s.d {
			v[i] = ms(d)
		}
		return v
	}
	raw := map[string]any{
		"date":   time.Now().UTC().Format(time.RFC3339),
		"cpus":   runtime.NumCPU(),
		"rounds": suiteRounds(),
		"samples_ms": map[string][]float64{
			"bare_deno":      toMs(bare),
			"conductor_exec": toMs(cli),
			"inprocess_pool": toMs(pooled),
			"cold_mcp_call":  toMs(coldMCP),
			"warm_mcp_call":  toMs(warmMCP),
		},
		"throughput": levels,
		"rss_mib": map[string]float64{
			"cold_idle": mib(coldRSS), "warm_idle": mib(warmRSS), "warm_tree_idle": mib(warmTree),
			"cold_after_load": mib(coldRSSAfter), "warm_after_load": mib(warmRSSAfter),
		},
	}
	data, _ := json.MarshalIndent(raw, "", "  ")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		b.Fatalf("BENCH_RAW: %v", err)
	}
	b.Logf("raw samples written to %s", path)
}

func ratioQ(s, base *sample, q float64) float64 {
	return float64(s.quantile(q)) / float64(base.quantile(q))
}
