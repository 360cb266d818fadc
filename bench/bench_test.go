package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/cgroups"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/seccomp"
)

func init() { sandbox.MaybeInit() }

const hello = `console.log("hello")`

// rounds is how many times each variant runs (interleaved).
func rounds() int {
	if n := os.Getenv("BENCH_ROUNDS"); n != "" {
		if v, err := strconv.Atoi(n); err == nil && v > 0 {
			return v
		}
	}
	return 40
}

func need(b *testing.B, format string, args ...any) {
	b.Helper()
	if os.Getenv("CI") == "true" {
		b.Fatalf("benchmark cannot run: "+format, args...)
	}
	b.Skipf("benchmark skipped: "+format, args...)
}

func paths(b *testing.B) (deno, bin string) {
	deno = os.Getenv("CONDUCTOR_DENO")
	if deno == "" {
		deno, _ = filepath.Abs("../.build/deno")
	}
	bin = os.Getenv("CONDUCTOR_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../bin/conductor")
	}
	for _, p := range []string{deno, bin} {
		if _, err := os.Stat(p); err != nil {
			need(b, "%s missing (run `make build`): %v", p, err)
		}
	}
	return deno, bin
}

// newRunner builds a root in a temp store and a runner with default limits.
func newRunner(b *testing.B, deno string) *sandbox.Runner {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "conductor-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755) // the sandbox's mapped uid must reach the root
	root, err := rootfs.NewStore(filepath.Join(dir, "rootfs")).Ensure(ctx, rootfs.Options{
		Deno: deno, Bootstrap: map[string][]byte{sandbox.BootstrapName: sandbox.Bootstrap},
	})
	if err != nil {
		b.Fatal(err)
	}
	host, err := cgroups.Detect(ctx, cgroups.Options{Prefix: sandbox.IDPrefix, Delegated: os.Getenv("MCP_CONDUCTOR_CGROUP_PARENT")})
	if err != nil {
		need(b, "cgroups: %v", err)
	}
	r, err := sandbox.New(ctx, sandbox.Options{
		StateDir: filepath.Join(dir, "state"), Root: root, Cgroups: host, Seccomp: seccomp.NewCache(),
		Limits: cgroups.Limits{Memory: 512 << 20, Pids: cgroups.DefaultPids(runtime.NumCPU())},
	})
	if err != nil {
		need(b, "runner: %v", err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// BenchmarkColdStart compares bare `deno run` of hello with the same program
// in a fresh, fully hardened sandbox (in-process, as the server runs it) and
// through the `conductor exec` command, interleaved round by round.
func BenchmarkColdStart(b *testing.B) {
	deno, bin := paths(b)
	r := newRunner(b, deno)
	dir := b.TempDir()
	script := filepath.Join(dir, "hello.ts")
	if err := os.WriteFile(script, []byte(hello), 0o644); err != nil {
		b.Fatal(err)
	}
	denoDir := filepath.Join(dir, "deno-dir")
	bare := &sample{name: "bare deno run hello (baseline)"}
	sandboxed := &sample{name: "sandboxed hello (Runner.Run)"}
	cli := &sample{name: "conductor exec hello (CLI)"}
	ctx := context.Background()

	runBare := func() {
		cmd := exec.Command(deno, "run", "--no-prompt", script)
		cmd.Env = []string{"DENO_DIR=" + denoDir, "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1", "HOME=" + dir}
		t0 := time.Now()
		out, err := cmd.Output()
		bare.d = append(bare.d, time.Since(t0))
		if err != nil || string(out) != "hello\n" {
			b.Fatalf("bare deno: %v %q", err, out)
		}
	}
	runSandboxed := func() {
		t0 := time.Now()
		res, err := r.Run(ctx, sandbox.Job{Code: hello, Timeout: 30 * time.Second})
		sandboxed.d = append(sandboxed.d, time.Since(t0))
		if err != nil || res.Status != sandbox.StatusSuccess || res.Stdout != "hello\n" {
			b.Fatalf("sandboxed: %v %+v", err, res)
		}
	}
	runCLI := func() {
		cmd := exec.Command(bin, "exec", "-")
		cmd.Stdin = strings.NewReader(hello)
		t0 := time.Now()
		out, err := cmd.Output()
		cli.d = append(cli.d, time.Since(t0))
		if err != nil || string(out) != "hello\n" {
			b.Fatalf("conductor exec: %v %q", err, out)
		}
	}
	// Warm the page cache and deno's caches once, unmeasured.
	runBare()
	runSandboxed()
	runCLI()
	bare.d, sandboxed.d, cli.d = nil, nil, nil

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < rounds(); j++ {
			runBare()
			runSandboxed()
			runCLI()
		}
	}
	b.StopTimer()
	var sb strings.Builder
	printTable(&sb, bare, sandboxed, cli)
	b.Logf("cold start, %d interleaved rounds on %d CPUs:\n%s", rounds(), runtime.NumCPU(), sb.String())
	b.ReportMetric(ms(bare.quantile(0.5)), "bare-p50-ms")
	b.ReportMetric(ms(sandboxed.quantile(0.5)), "sandbox-p50-ms")
	b.ReportMetric(float64(sandboxed.quantile(0.5))/float64(bare.quantile(0.5)), "sandbox/bare-p50")
	b.ReportMetric(float64(sandboxed.quantile(0.9))/float64(bare.quantile(0.9)), "sandbox/bare-p90")
	b.ReportMetric(float64(cli.quantile(0.5))/float64(bare.quantile(0.5)), "cli/bare-p50")
}
