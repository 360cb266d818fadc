package bench

// BenchmarkTypeCheck: what MCP_CONDUCTOR_TYPECHECK=1 costs a run_deno_code call (issue 14).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/typecheck"
)

func typeCheckRounds() int { return envInt("BENCH_TYPECHECK_ROUNDS", 20) }

// typicalProgram is a small program an agent writes: types, a helper, array work, JSON, a
// top-level return.
const typicalProgram = `interface Order { id: number; customer: string; items: { sku: string; qty: number; price: number }[] }
const orders: Order[] = Array.from({ length: 50 }, (_, i) => ({
  id: i,
  customer: "c" + (i % 7),
  items: [{ sku: "a" + (i % 3), qty: 1 + (i % 4), price: 9.5 }, { sku: "b", qty: 2, price: 3 }],
}));
function total(o: Order): number {
  return o.items.reduce((sum, it) => sum + it.qty * it.price, 0);
}
const byCustomer = new Map<string, number>();
for (const o of orders) byCustomer.set(o.customer, (byCustomer.get(o.customer) ?? 0) + total(o));
const top = [...byCustomer.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
console.log(JSON.stringify(top));
return { customers: byCustomer.size, top: top[0][0], sum: Math.round(top[0][1]) };
`

// typicalWant is typicalProgram's value.
const typicalWant = `{"customers":7,"top":"c0","sum":238}`

// typeErrorProgram is typicalProgram with a type error on its last line.
var typeErrorProgram = strings.Replace(typicalProgram, "sum: Math.round(top[0][1])", "sum: Math.round(top[0][0])", 1)

// BenchmarkTypeCheck times run_deno_code of typicalProgram on warm engines (a pool of the
// default size, as serve runs them) without and with type-checking (MCP_CONDUCTOR_TYPECHECK=1:
// a pre-booted checker), spaced (a settle before each call) and back to back (4 calls, each as
// the previous returns), interleaved round by round in one process; and the refusal of
// typeErrorProgram (type-checked, nothing run) vs `deno check` of the same file on the host
// (bare deno, its own TypeScript, a warm DENO_DIR, the file changed every round so its check
// cache misses as it would for new code).
func BenchmarkTypeCheck(b *testing.B) {
	deno, _ := paths(b)
	dir := filepath.Join(testenv.RepoRoot(), ".build", "typescript")
	if err := typecheck.CheckDir(dir); err != nil {
		sandboxtest.Unavailable(b, "%v", err)
	}
	s, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	withMount := func(o *rootfs.Options) { o.MountPoints = append(o.MountPoints, config.TypeScriptDir) }
	runs := sandboxtest.RunnerWithRoot(b, withMount, nil)
	checks := sandboxtest.RunnerWithRoot(b, withMount, func(o *sandbox.Options) { *o = typecheck.RunnerOptions(*o, dir) })
	checker := typecheck.New(typecheck.Options{Runner: checks})
	b.Cleanup(func() { checker.Close() })
	t0 := time.Now()
	if err := checker.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	boot := time.Since(t0)
	newEngine := func(tc *typecheck.Checker) *engine.Engine {
		p := pool.New(runs, s.PoolSize, sandbox.StartOptions{}, nil)
		e := engine.New(engine.Options{
			Sandboxes: p, DefaultTimeout: s.DefaultTimeout, MaxTimeout: s.MaxTimeout,
			MaxConcurrency: s.MaxConcurrency, MaxQueue: s.MaxQueue, TypeCheck: tc, TypeCheckAll: tc != nil,
		})
		b.Cleanup(func() { e.Shutdown(); p.Close() })
		return e
	}
	off, on := newEngine(nil), newEngine(checker)
	run := func(e *engine.Engine, code string, refused bool) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			t0 := time.Now()
			res, err := e.Execute(context.Background(), engine.Request{Code: code})
			d := time.Since(t0)
			if refused {
				if _, ok := err.(*engine.TypeError); !ok {
					return d, fmt.Errorf("want a type error, got %+v, %v", res, err)
				}
				return d, nil
			}
			if err != nil || res.Status != sandbox.StatusSuccess || string(res.ReturnValue) != typicalWant {
				return d, fmt.Errorf("want %s, got %+v, %v", typicalWant, res, err)
			}
			return d, nil
		}
	}
	denoDir := b.TempDir()
	file := filepath.Join(b.TempDir(), "main.ts")
	round := 0
	denoCheck := func() (time.Duration, error) {
		round++
		// deno check takes a module, not run_deno_code's top-level return: wrapped as the
		// engine wraps it, with a new comment so its check cache misses.
		src := fmt.Sprintf("// round %d\nexport default await (async () => {\n%s\n})();\n", round, typeErrorProgram)
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			return 0, err
		}
		cmd := exec.Command(deno, "check", "--quiet", "--no-config", file)
		cmd.Env = append(os.Environ(), "DENO_DIR="+denoDir, "NO_COLOR=1")
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(t0)
		if err == nil || !strings.Contains(string(out), "TS2345") && !strings.Contains(string(out), "TS2322") {
			return d, fmt.Errorf("deno check: want a type error, got %v: %s", err, out)
		}
		return d, nil
	}
	if _, err := denoCheck(); err != nil { // deno's first check sets up its cache
		b.Fatal(err)
	}

	offSpaced, onSpaced := &sample{name: "typecheck off, spaced"}, &sample{name: "typecheck on, spaced"}
	offB2B, onB2B := &sample{name: "typecheck off, back to back"}, &sample{name: "typecheck on, back to back"}
	refusal, bare := &sample{name: "refusal (type error), spaced"}, &sample{name: "deno check of the same file"}
	spaced := func(f func() (time.Duration, error), into *sample) {
		time.Sleep(100 * time.Millisecond)
		d, err := f()
		if err != nil {
			b.Fatalf("%s: %v", into.name, err)
		}
		into.d = append(into.d, d)
	}
	for range typeCheckRounds() {
		spaced(run(off, typicalProgram, false), offSpaced)
		spaced(run(on, typicalProgram, false), onSpaced)
		spaced(run(on, typeErrorProgram, true), refusal)
		spaced(denoCheck, bare)
		time.Sleep(100 * time.Millisecond)
		backToBack(b, run(off, typicalProgram, false), offB2B)
		time.Sleep(100 * time.Millisecond)
		backToBack(b, run(on, typicalProgram, false), onB2B)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "BenchmarkTypeCheck: %d rounds; the checker booted and warmed in %.0f ms\n", typeCheckRounds(), ms(boot))
	fmt.Fprintf(&out, "%-34s %5s %9s %9s %9s\n", "variant", "n", "p50 ms", "p95 ms", "p99 ms")
	for _, v := range []*sample{offSpaced, onSpaced, offB2B, onB2B, refusal, bare} {
		fmt.Fprintf(&out, "%-34s %5d %9.2f %9.2f %9.2f\n", v.name, len(v.d), ms(v.quantile(0.5)), ms(v.quantile(0.95)), ms(v.quantile(0.99)))
	}
	fmt.Fprintf(&out, "on/off: spaced p50 %.2f p95 %.2f; back to back p50 %.2f p95 %.2f\n",
		ratioQ(onSpaced, offSpaced, 0.5), ratioQ(onSpaced, offSpaced, 0.95), ratioQ(onB2B, offB2B, 0.5), ratioQ(onB2B, offB2B, 0.95))
	fmt.Fprintf(&out, "on - off p50: spaced %+.1f ms, back to back %+.1f ms; refusal / deno check p50 %.3f\n",
		ms(onSpaced.quantile(0.5)-offSpaced.quantile(0.5)), ms(onB2B.quantile(0.5)-offB2B.quantile(0.5)), ratioQ(refusal, bare, 0.5))
	fmt.Print(out.String())
	b.ReportMetric(ratioQ(onSpaced, offSpaced, 0.5), "on/off-spaced-p50")
	b.ReportMetric(ratioQ(onB2B, offB2B, 0.5), "on/off-b2b-p50")
	b.ReportMetric(ratioQ(refusal, bare, 0.5), "refusal/denocheck-p50")
}
