package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/sandbox"
)

func init() { sandbox.MaybeInit() }

const hello = `console.log("hello")`

// rounds is how many times each variant runs (interleaved).
func rounds() int { return envInt("BENCH_ROUNDS", 40) }

// paths returns deno and the built binary, or stops the benchmark.
func paths(b *testing.B) (deno, bin string) {
	deno = sandboxtest.Deno(b)
	bin = os.Getenv("CONDUCTOR_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../bin/conductor")
	}
	if _, err := os.Stat(bin); err != nil {
		sandboxtest.Unavailable(b, "%s missing (run `make build`): %v", bin, err)
	}
	return deno, bin
}

// BenchmarkColdStart compares bare `deno run` of hello with the same program
// in a fresh, fully hardened sandbox (in-process, as the server runs it) and
// through the `conductor exec` command, interleaved round by round.
func BenchmarkColdStart(b *testing.B) {
	deno, bin := paths(b)
	r := sandboxtest.Runner(b, nil)
	dir := b.TempDir()
	script := filepath.Join(dir, "hello.ts")
	if err := os.WriteFile(script, []byte(hello), 0o644); err != nil {
		b.Fatal(err)
	}
	denoDir := filepath.Join(dir, "deno-dir")
	p := pool.New(r, 1, sandbox.StartOptions{}, nil)
	defer p.Close()
	bare := &sample{name: "bare deno run hello (baseline)"}
	pooled := &sample{name: "pooled hello (pre-started sandbox)"}
	sandboxed := &sample{name: "sandboxed hello (Runner.Run)"}
	cli := &sample{name: "conductor exec hello (CLI)"}
	ctx := context.Background()

	runBare := func() {
		cmd := exec.Command(deno, "run", "--no-prompt", script)
		cmd.Env = []string{"DENO_DIR=" + denoDir, "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1", "HOME=" + dir}
		d, err := timedHello(cmd)
		if err != nil {
			b.Fatalf("bare deno: %v", err)
		}
		bare.d = append(bare.d, d)
	}
	runSandboxed := func() {
		t0 := time.Now()
		res, err := r.Run(ctx, sandbox.Job{Code: hello, Timeout: 30 * time.Second})
		sandboxed.d = append(sandboxed.d, time.Since(t0))
		if err != nil || res.Status != sandbox.StatusSuccess || res.Stdout != "hello\n" {
			b.Fatalf("sandboxed: %v %+v", err, res)
		}
	}
	runPooled := func() {
		time.Sleep(60 * time.Millisecond) // let the pool boot the replacement, as between requests
		t0 := time.Now()
		sb, err := p.StartWith(ctx, sandbox.StartOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res := sb.Run(ctx, sandbox.Job{Code: hello, Timeout: 30 * time.Second})
		pooled.d = append(pooled.d, time.Since(t0))
		sb.Close()
		if res.Status != sandbox.StatusSuccess || res.Stdout != "hello\n" {
			b.Fatalf("pooled: %+v", res)
		}
	}
	runCLI := func() {
		cmd := exec.Command(bin, "exec", "-")
		cmd.Stdin = strings.NewReader(hello)
		d, err := timedHello(cmd)
		if err != nil {
			b.Fatalf("conductor exec: %v", err)
		}
		cli.d = append(cli.d, d)
	}
	// Warm the page cache and deno's caches once, unmeasured.
	runBare()
	runSandboxed()
	runPooled()
	runCLI()
	bare.d, sandboxed.d, pooled.d, cli.d = nil, nil, nil, nil

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < rounds(); j++ {
			runBare()
			runSandboxed()
			runPooled()
			runCLI()
		}
	}
	b.StopTimer()
	var sb strings.Builder
	printTable(&sb, bare, sandboxed, pooled, cli)
	b.Logf("cold start, %d interleaved rounds on %d CPUs:\n%s", rounds(), runtime.NumCPU(), sb.String())
	b.ReportMetric(ms(bare.quantile(0.5)), "bare-p50-ms")
	b.ReportMetric(ms(sandboxed.quantile(0.5)), "sandbox-p50-ms")
	b.ReportMetric(float64(sandboxed.quantile(0.5))/float64(bare.quantile(0.5)), "sandbox/bare-p50")
	b.ReportMetric(float64(sandboxed.quantile(0.9))/float64(bare.quantile(0.9)), "sandbox/bare-p90")
	b.ReportMetric(float64(cli.quantile(0.5))/float64(bare.quantile(0.5)), "cli/bare-p50")
	b.ReportMetric(float64(pooled.quantile(0.5))/float64(bare.quantile(0.5)), "pooled/bare-p50")
}
