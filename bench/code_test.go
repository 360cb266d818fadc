package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
)

// codeRounds is how many interleaved rounds each language of
// BenchmarkExecuteCode runs (BENCH_CODE_ROUNDS, default 15).
func codeRounds() int { return envInt("BENCH_CODE_ROUNDS", 15) }

const (
	codeBackToBack = 4 // warm calls in a row per round, each as the previous returns
	codeBurst      = 4 // calls started at once per round (the pool keeps 2)
)

// timed is one measured variant: its samples and how to run it once.
type timed struct {
	s   *sample
	run func() (time.Duration, error)
}

// codeLanguage is one execute_code language and the bare runs it is
// compared with; bare[0] is the baseline of the ratios.
type codeLanguage struct {
	lang, code string
	bare       []timed
	bareCmd    func() *exec.Cmd // bare[0]'s command, for runs that want its rusage (BenchmarkLoad)
}

// BenchmarkExecuteCode is issue 11's row: execute_code of a hello in Python
// and in Go through a go-sdk client on `conductor serve` (stdio), cold (pool
// 0) and warm (pool 2; a language's pool starts on its first request), under
// three load shapes — spaced (a settle before each call), back to back
// (codeBackToBack calls, each as the previous returns, so the pool may be
// refilling) and bursts (codeBurst calls at once, against as many bare runs
// at once) — interleaved round by round with the bare runs of the same
// program in the same process: `python3 -c` of the interpreter conductor
// runs, and `go run .` with the host's warm build cache, both of a new
// program each time (a sandboxed run's build cache is the seeded standard
// library plus a fresh layer, so it compiles and links the program every
// time) and of the same program (go run caches the linked executable).
// It measures; it asserts no timing.
func BenchmarkExecuteCode(b *testing.B) {
	_, bin := paths(b)
	langs := []codeLanguage{pythonBare(b), goBare(b)}
	cold := startServer(b, bin, "cold server (pool 0)", "MCP_CONDUCTOR_POOL_SIZE=0")
	warm := startServer(b, bin, "warm server (pool 2)", "MCP_CONDUCTOR_POOL_SIZE=2", "MCP_CONDUCTOR_MAX_CONCURRENCY=4")
	for _, l := range langs {
		b.Run(l.lang, func(b *testing.B) { benchLanguage(b, l, cold, warm) })
	}
}

func benchLanguage(b *testing.B, l codeLanguage, cold, warm *mcpServer) {
	ctx := context.Background()
	args := map[string]any{"language": l.lang, "entrypoint_code": l.code}
	call := func(s *mcpServer) func() (time.Duration, error) {
		return func() (time.Duration, error) { return s.callTool(ctx, "execute_code", args) }
	}
	coldMCP := timed{&sample{name: "cold MCP call (serve, pool 0)"}, call(cold)}
	warmMCP := timed{&sample{name: "warm MCP call, spaced (pool 2)"}, call(warm)}
	b2b := &sample{name: fmt.Sprintf("warm MCP call, %d back to back", codeBackToBack)}
	burst := &sample{name: fmt.Sprintf("warm MCP call, burst of %d", codeBurst)}
	bareBurst := &sample{name: fmt.Sprintf("%s, burst of %d", l.bare[0].s.name, codeBurst)}

	once := func(v timed) {
		time.Sleep(suiteSettle)
		d, err := v.run()
		if err != nil {
			b.Fatalf("%s %s: %v\nwarm server stderr tail: %s", l.lang, v.s.name, err, tail(warm.stderr.String(), 2000))
		}
		v.s.d = append(v.s.d, d)
	}
	all := append(append([]timed{}, l.bare...), coldMCP, warmMCP)
	// run_python_code: the same interpreter with the runner (last expression as the value),
	// spaced and back to back as execute_code.
	var pyWarm timed
	var pyB2B *sample
	if l.lang == "python" {
		pyArgs := map[string]any{"python_code": l.code}
		pyWarm = timed{&sample{name: "warm run_python_code, spaced"}, func() (time.Duration, error) {
			return warm.callTool(ctx, "run_python_code", pyArgs)
		}}
		pyB2B = &sample{name: fmt.Sprintf("warm run_python_code, %d b2b", codeBackToBack)}
		// On a server with upstreams the interpreter is started with the mcpFactory relay's
		// channel (node:child_process in the launcher's boot).
		up := upstreamServer(b)
		upWarm := timed{&sample{name: "run_python_code, with upstreams"}, func() (time.Duration, error) {
			return up.callTool(ctx, "run_python_code", pyArgs)
		}}
		all = append(all, pyWarm, upWarm)
	}
	// Unmeasured: page cache, the host's build cache, the warm server's
	// pool for this language (started by its first request).
	for _, v := range all {
		once(v)
		v.s.d = nil
	}
	time.Sleep(time.Second)

	b.ResetTimer()
	for range b.N {
		for range codeRounds() {
			for _, v := range all {
				once(v)
			}
			time.Sleep(suiteSettle)
			backToBack(b, warmMCP.run, b2b)
			if pyB2B != nil {
				time.Sleep(suiteSettle)
				backToBack(b, pyWarm.run, pyB2B)
			}
			time.Sleep(suiteSettle)
			concurrently(b, codeBurst, l.bare[0].run, bareBurst)
			time.Sleep(suiteSettle)
			concurrently(b, codeBurst, warmMCP.run, burst)
		}
	}
	b.StopTimer()

	var out strings.Builder
	rows := []*sample{}
	for _, v := range l.bare[1:] {
		rows = append(rows, v.s)
	}
	rows = append(rows, coldMCP.s, warmMCP.s, b2b)
	for _, v := range all[len(l.bare)+2:] {
		rows = append(rows, v.s)
	}
	if pyB2B != nil {
		rows = append(rows, pyB2B)
	}
	printTable(&out, l.bare[0].s, rows...)
	fmt.Fprintf(&out, "  p99/base: cold %.2f, warm spaced %.2f, back to back %.2f\n",
		ratioQ(coldMCP.s, l.bare[0].s, 0.99), ratioQ(warmMCP.s, l.bare[0].s, 0.99), ratioQ(b2b, l.bare[0].s, 0.99))
	if pyB2B != nil {
		fmt.Fprintf(&out, "  run_python_code p50/base: spaced %.2f, back to back %.2f; p99/base: spaced %.2f, back to back %.2f\n",
			ratioQ(pyWarm.s, l.bare[0].s, 0.5), ratioQ(pyB2B, l.bare[0].s, 0.5), ratioQ(pyWarm.s, l.bare[0].s, 0.99), ratioQ(pyB2B, l.bare[0].s, 0.99))
	}
	for _, v := range l.bare[1:] {
		fmt.Fprintf(&out, "  p50 to %s: cold %.2f, warm spaced %.2f, back to back %.2f\n", v.s.name,
			ratioQ(coldMCP.s, v.s, 0.5), ratioQ(warmMCP.s, v.s, 0.5), ratioQ(b2b, v.s, 0.5))
	}
	fmt.Fprintf(&out, "bursts (each call's latency):\n")
	printTable(&out, bareBurst, burst)
	fmt.Printf("BenchmarkExecuteCode/%s: %d interleaved rounds on %d CPUs:\n%s", l.lang, codeRounds(), runtime.NumCPU(), out.String())
	b.Logf("%s:\n%s", l.lang, out.String())
	b.ReportMetric(ms(l.bare[0].s.quantile(0.5)), "bare-p50-ms")
	b.ReportMetric(ratioQ(warmMCP.s, l.bare[0].s, 0.5), "warmMCP/bare-p50")
	b.ReportMetric(ratioQ(coldMCP.s, l.bare[0].s, 0.5), "coldMCP/bare-p50")
	b.ReportMetric(ratioQ(b2b, l.bare[0].s, 0.5), "b2b/bare-p50")
	b.ReportMetric(ratioQ(burst, bareBurst, 0.5), "burst/bare-burst-p50")
}

// backToBack runs codeBackToBack calls, each as the previous returns, into into.
func backToBack(b *testing.B, run func() (time.Duration, error), into *sample) {
	for range codeBackToBack {
		d, err := run()
		if err != nil {
			b.Fatalf("%s: %v", into.name, err)
		}
		into.d = append(into.d, d)
	}
}

// upstreamServer is a warm server (pool 2) with one upstream, server-everything over stdio.
func upstreamServer(b *testing.B) *mcpServer {
	_, bin := paths(b)
	node, script := everythingServer(b)
	cfg, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{
		"everything": map[string]any{"command": node, "args": []string{script, "stdio"}},
	}})
	path := filepath.Join(b.TempDir(), "mcp-config.json")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		b.Fatal(err)
	}
	return startServer(b, bin, "warm server with upstreams (pool 2)", "MCP_CONDUCTOR_POOL_SIZE=2", "MCP_CONDUCTOR_MAX_CONCURRENCY=4", "MCP_CONDUCTOR_MCP_CONFIG="+path)
}

// concurrently starts n runs at once and adds each one's latency to into.
func concurrently(b *testing.B, n int, run func() (time.Duration, error), into *sample) {
	var wg sync.WaitGroup
	ds := make([]time.Duration, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { ds[i], errs[i] = run() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatalf("%s: %v", into.name, err)
		}
	}
	into.d = append(into.d, ds...)
}

// pythonBare is `python3 -c` of hello with the interpreter behind python3 on
// PATH, the one conductor runs when MCP_CONDUCTOR_PYTHON is unset.
func pythonBare(b *testing.B) codeLanguage {
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		sandboxtest.Unavailable(b, "no python3 on PATH: %v", err)
	}
	py := strings.TrimSpace(string(out))
	const code = `print("hello")`
	home := b.TempDir()
	newCmd := func() *exec.Cmd {
		cmd := exec.Command(py, "-c", code)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home}
		return cmd
	}
	bare := timed{&sample{name: "bare python3 -c (baseline)"}, func() (time.Duration, error) {
		return timedHello(newCmd())
	}}
	return codeLanguage{lang: "python", code: code, bare: []timed{bare}, bareCmd: newCmd}
}

// goBare is `go run .` of hello in a module directory with the host's build
// cache: a new program each time (in a new directory, its source differing by
// a comment, so it is compiled and linked, as in a sandbox) and the same program (the linked
// executable comes from the cache).
func goBare(b *testing.B) codeLanguage {
	goBin, err := exec.LookPath("go")
	if err != nil {
		sandboxtest.Unavailable(b, "no go on PATH: %v", err)
	}
	const code = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"
	module := func(name string) string {
		dir := filepath.Join(b.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.19\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	run := func(dir, src string) (time.Duration, error) {
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			return 0, err
		}
		cmd := exec.Command(goBin, "run", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOPROXY=off", "GOFLAGS=")
		return timedHello(cmd)
	}
	sameDir := module("same")
	var n atomic.Int64
	fresh := timed{&sample{name: "bare go run ., new program (baseline)"}, func() (time.Duration, error) {
		// A directory and source of its own: bursts run it concurrently.
		return run(module("new"), fmt.Sprintf("%s// %d %d\n", code, time.Now().UnixNano(), n.Add(1)))
	}}
	same := timed{&sample{name: "bare go run ., same program"}, func() (time.Duration, error) {
		return run(sameDir, code)
	}}
	return codeLanguage{lang: "go", code: code, bare: []timed{fresh, same}}
}
