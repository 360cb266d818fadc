package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loadN is how many executions each load shape runs per variant
// (BENCH_LOAD_N, default 60); bursts run ceil(loadN/loadBurst) bursts.
func loadN() int { return envInt("BENCH_LOAD_N", 60) }

const (
	loadBurst = 8 // calls arriving together in a burst
	// loadSettleMax bounds the wait for a server tree to go quiet.
	loadSettleMax = 5 * time.Second
	// loadVerifyRuns is how many CPU-heavy and hello runs the accounting
	// check makes per variant.
	loadVerifyRuns = 4
)

// bareDeno is the command of bare `deno run` of script, with its own
// DENO_DIR and HOME under dir.
func bareDeno(deno, dir, script string) *exec.Cmd {
	cmd := exec.Command(deno, "run", "--no-prompt", script)
	cmd.Env = []string{"DENO_DIR=" + filepath.Join(dir, "deno-dir"), "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1", "HOME=" + dir}
	return cmd
}

// loadVariant is one way of running the program: bare on the host (srv nil;
// its CPU from each child's rusage) or a tool call on a `conductor serve`
// (its CPU from the server's process tree).
type loadVariant struct {
	name string
	srv  *mcpServer
	// run runs the program once and returns its latency and, for bare runs,
	// the child's CPU time (user + system, its own and its reaped children's).
	run func() (lat, cpu time.Duration, err error)
}

// bareVariant runs the command newCmd makes; it must print "hello".
func bareVariant(name string, newCmd func() *exec.Cmd) *loadVariant {
	return &loadVariant{name: name, run: func() (time.Duration, time.Duration, error) {
		cmd := newCmd()
		d, err := timedHello(cmd)
		var cpu time.Duration
		if st := cmd.ProcessState; st != nil {
			cpu = st.UserTime() + st.SystemTime()
		}
		return d, cpu, err
	}}
}

// toolVariant calls tool with args on s; the result must print "hello".
func toolVariant(name string, s *mcpServer, tool string, args map[string]any) *loadVariant {
	return &loadVariant{name: name, srv: s, run: func() (time.Duration, time.Duration, error) {
		d, err := s.callTool(context.Background(), tool, args)
		return d, 0, err
	}}
}

// loadCell is one variant under one shape.
type loadCell struct {
	v       *loadVariant
	s       *sample
	cpu     time.Duration // bare: sum of the children's; server: the tree's growth over the row
	elapsed time.Duration // sustained shapes: wall time of the whole run
}

func (c *loadCell) cpuPerExec() time.Duration {
	if len(c.s.d) == 0 {
		return 0
	}
	return c.cpu / time.Duration(len(c.s.d))
}

func (c *loadCell) throughput() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(len(c.s.d)) / c.elapsed.Seconds()
}

// loadRow is one shape: cells[0] is bare, the baseline of its ratios.
type loadRow struct {
	shape string
	cells []*loadCell
	took  time.Duration // the row's wall time, settles included
}

// loadBench runs the shapes of one language over its variants (vs[0] bare).
type loadBench struct {
	b  *testing.B
	vs []*loadVariant
}

func (lb *loadBench) fatal(v *loadVariant, err error) {
	lb.b.Helper()
	msg := fmt.Sprintf("%s: %v", v.name, err)
	if v.srv != nil {
		msg += "\nstderr tail: " + tail(v.srv.stderr.String(), 2000)
	}
	lb.b.Fatal(msg)
}

// serverCPU is the CPU time of v's server tree so far (0 for bare).
func (lb *loadBench) serverCPU(v *loadVariant) time.Duration {
	if v.srv == nil {
		return 0
	}
	t, err := treeCPU(v.srv.cmd.Process.Pid)
	if err != nil {
		lb.fatal(v, fmt.Errorf("server CPU: %w", err))
	}
	return t
}

// settle waits until every server's tree has used at most one clock tick
// of CPU in 100 ms (its pool refilled, used sandboxes destroyed), at most
// loadSettleMax, and at least suiteSettle.
func (lb *loadBench) settle() {
	deadline := time.Now().Add(loadSettleMax)
	prev := make([]time.Duration, len(lb.vs))
	for i, v := range lb.vs {
		prev[i] = lb.serverCPU(v)
	}
	for {
		time.Sleep(suiteSettle)
		quiet := true
		for i, v := range lb.vs {
			t := lb.serverCPU(v)
			if t-prev[i] > time.Second/userHZ {
				quiet = false
			}
			prev[i] = t
		}
		if quiet || time.Now().After(deadline) {
			return
		}
	}
}

func (lb *loadBench) newRow(shape string) *loadRow {
	r := &loadRow{shape: shape}
	for _, v := range lb.vs {
		r.cells = append(r.cells, &loadCell{v: v, s: &sample{name: v.name}})
	}
	return r
}

// once runs c's variant once and records it.
func (lb *loadBench) once(c *loadCell) {
	d, cpu, err := c.v.run()
	if err != nil {
		lb.fatal(c.v, err)
	}
	c.s.d = append(c.s.d, d)
	c.cpu += cpu
}

// spaced: n rounds, each variant once per round, every call from a quiet
// machine (settle); a server is charged its tree's growth from the quiet
// moment before its call to the quiet moment after (not the other
// variants' calls in between).
func (lb *loadBench) spaced(n int) *loadRow {
	r := lb.newRow("spaced")
	lb.settle()
	for range n {
		for _, c := range r.cells {
			t0 := lb.serverCPU(c.v)
			lb.once(c)
			lb.settle()
			if c.v.srv != nil {
				c.cpu += lb.serverCPU(c.v) - t0
			}
		}
	}
	return r
}

// block runs fn for each variant in turn, each from a quiet machine, and
// charges a server the growth of its tree from before fn to the moment it
// is quiet again (so the refills of the sandboxes fn used are its cost).
func (lb *loadBench) block(r *loadRow, fn func(c *loadCell)) {
	for _, c := range r.cells {
		lb.settle()
		t0 := lb.serverCPU(c.v)
		fn(c)
		if c.v.srv != nil {
			lb.settle()
			c.cpu += lb.serverCPU(c.v) - t0
		}
	}
}

// backToBack: n calls per variant in a row, each as the previous returns.
func (lb *loadBench) backToBack(n int) *loadRow {
	r := lb.newRow("back to back")
	lb.block(r, func(c *loadCell) {
		for range n {
			lb.once(c)
		}
	})
	return r
}

// bursts: rounds of loadBurst calls started together, from a quiet machine.
func (lb *loadBench) bursts(rounds int) *loadRow {
	r := lb.newRow(fmt.Sprintf("burst of %d", loadBurst))
	for range rounds {
		lb.block(r, func(c *loadCell) { lb.sustained(c, loadBurst, loadBurst) })
	}
	return r
}

// concurrent: n executions per variant on c goroutines, each starting its
// next as its previous returns; throughput is n over the whole run's time.
func (lb *loadBench) concurrent(c, n int) *loadRow {
	r := lb.newRow(fmt.Sprintf("sustained c=%d", c))
	lb.block(r, func(cell *loadCell) { cell.elapsed += lb.sustained(cell, c, n) })
	return r
}

// sustained runs n executions of cell's variant on c goroutines, records
// them and returns the elapsed time.
func (lb *loadBench) sustained(cell *loadCell, c, n int) time.Duration {
	var cpu atomic.Int64
	ds, el, err := sustained(c, n, func() (time.Duration, error) {
		d, t, err := cell.v.run()
		cpu.Add(int64(t))
		return d, err
	})
	if err != nil {
		lb.fatal(cell.v, err)
	}
	cell.s.d = append(cell.s.d, ds...)
	cell.cpu += time.Duration(cpu.Load())
	return el
}

// verifyCPU checks that a server tree's CPU includes the code running in
// its sandboxes: a CPU-heavy program's extra CPU over hello, per execution,
// must show up in the server tree as it does in bare runs' rusage. heavy
// are variants running the heavy program, in the order of lb.vs. It returns
// a line per server variant.
func (lb *loadBench) verifyCPU(heavy []*loadVariant) string {
	hello := lb.newRow("verify hello")
	hot := (&loadBench{b: lb.b, vs: heavy}).newRow("verify heavy")
	for range loadVerifyRuns {
		for _, row := range []*loadRow{hello, hot} {
			lb.block(row, func(c *loadCell) { lb.once(c) })
		}
	}
	var out strings.Builder
	bareExtra := hot.cells[0].cpuPerExec() - hello.cells[0].cpuPerExec()
	if bareExtra < 50*time.Millisecond {
		lb.b.Fatalf("CPU accounting check: the heavy program costs bare only %.1f ms more than hello; too little to check", ms(bareExtra))
	}
	for i := 1; i < len(hot.cells); i++ {
		extra := hot.cells[i].cpuPerExec() - hello.cells[i].cpuPerExec()
		fmt.Fprintf(&out, "  CPU accounting check, %s: a CPU-heavy program adds %.1f ms per execution to the server tree, %.1f ms to bare (%.2fx)\n",
			lb.vs[i].name, ms(extra), ms(bareExtra), float64(extra)/float64(bareExtra))
		if extra < bareExtra/2 {
			lb.b.Fatalf("CPU accounting check, %s: the heavy program's extra CPU (%.1f ms bare) shows only %.1f ms in the server tree: the sandboxes' processes are not counted",
				lb.vs[i].name, ms(bareExtra), ms(extra))
		}
	}
	return out.String()
}

// printLoadTable writes rows as a markdown table: quantiles and their ratios
// to the row's bare cell, throughput where the shape has one, and CPU per
// execution; then one "CPU per execution" sentence per server cell.
func printLoadTable(w io.Writer, lang string, rows []*loadRow) {
	fmt.Fprintf(w, "| %s | shape | variant | n | p50 ms | p90 ms | p99 ms | p50/bare | p90/bare | p99/bare | execs/s | tput/bare | CPU ms/exec | CPU/bare |\n", lang)
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		base := r.cells[0]
		for _, c := range r.cells {
			tput, tputRatio := "", ""
			if c.elapsed > 0 {
				tput = fmt.Sprintf("%.2f", c.throughput())
				tputRatio = fmt.Sprintf("%.2f", c.throughput()/base.throughput())
			}
			fmt.Fprintf(w, "| %s | %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %.2f | %.2f |\n",
				lang, r.shape, c.v.name, len(c.s.d), ms(c.s.quantile(0.5)), ms(c.s.quantile(0.9)), ms(c.s.quantile(0.99)),
				ratioQ(c.s, base.s, 0.5), ratioQ(c.s, base.s, 0.9), ratioQ(c.s, base.s, 0.99),
				tput, tputRatio, ms(c.cpuPerExec()), float64(c.cpuPerExec())/float64(base.cpuPerExec()))
		}
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %s, %s: the row took %.1f s, settles included\n", lang, r.shape, r.took.Seconds())
		base := r.cells[0]
		for _, c := range r.cells[1:] {
			fmt.Fprintf(w, "  %s, %s, %s: CPU per execution %.2f ms vs bare %.2f ms (%.2fx)\n", lang, r.shape, c.v.name,
				ms(c.cpuPerExec()), ms(base.cpuPerExec()), float64(c.cpuPerExec())/float64(base.cpuPerExec()))
		}
	}
}

// timeRow runs a shape and records its wall time.
func timeRow(shape func() *loadRow) *loadRow {
	t0 := time.Now()
	r := shape()
	r.took = time.Since(t0)
	return r
}

// rawLoad is the raw form of rows for BENCH_RAW_WRITE.
func rawLoad(rows []*loadRow) []map[string]any {
	var out []map[string]any
	for _, r := range rows {
		for _, c := range r.cells {
			v := make([]float64, len(c.s.d))
			for i, d := range c.s.d {
				v[i] = ms(d)
			}
			out = append(out, map[string]any{
				"shape": r.shape, "variant": c.v.name, "samples_ms": v,
				"cpu_ms_per_exec": ms(c.cpuPerExec()), "execs_per_s": c.throughput(),
			})
		}
	}
	return out
}

// BenchmarkLoad is issue 16's load-shape table: hello through a go-sdk
// client on `conductor serve` (stdio) with the default pool size and with
// pool 0 (both MCP_CONDUCTOR_MAX_CONCURRENCY=4), against bare runs of the
// same program in the same process, under five shapes — spaced (a settle
// before each call), back to back (BENCH_LOAD_N calls in a row), bursts of
// 8 arriving together, and sustained concurrency 2 and 4 — each with p50,
// p90, p99, throughput where it applies, every figure as a ratio to bare
// under the same shape, and the CPU per execution of the whole server tree
// (see treeCPU) against bare's from each child's rusage. Deno: run_deno_code
// vs bare `deno run`; Python: run_python_code (default pool, pool 0) and
// execute_code vs bare `python3 -c`, spaced, back to back and c=2. Before
// the tables, an accounting check fails the benchmark if a CPU-heavy
// program's CPU does not show up in a server tree. It asserts no timing.
// A last deno row runs a CPU-heavy program at c=2, where each run's refill
// boots beside it. BENCH_LOAD_BASELINE_BIN adds a default-pool server from
// another conductor binary (a before/after in one run); BENCH_LOAD_PYTHON=0
// leaves Python out.
func BenchmarkLoad(b *testing.B) {
	deno, bin := paths(b)
	dir := b.TempDir()
	write := func(name, code string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(code), 0o644); err != nil {
			b.Fatal(err)
		}
		return p
	}
	const heavyTS = `let x = 0; for (let i = 0; i < 1e7; i++) x = (x + i * i) % 1000003; if (x >= 0) console.log("hello");`
	const heavyPy = "x = 0\nfor i in range(1000000):\n    x = (x + i * i) % 1000003\nprint(\"hello\")\n"
	helloTS, hotTS := write("hello.ts", hello), write("heavy.ts", heavyTS)

	def := startServer(b, bin, "serve (default pool)", "MCP_CONDUCTOR_MAX_CONCURRENCY=4")
	zero := startServer(b, bin, "serve (pool 0)", "MCP_CONDUCTOR_POOL_SIZE=0", "MCP_CONDUCTOR_MAX_CONCURRENCY=4")
	code := startServer(b, bin, "serve (default pool), execute_code", "MCP_CONDUCTOR_MAX_CONCURRENCY=4")

	denoRun := func(code string) map[string]any { return map[string]any{"deno_code": code} }
	denoLB := &loadBench{b: b, vs: []*loadVariant{
		bareVariant("bare deno run", func() *exec.Cmd { return bareDeno(deno, dir, helloTS) }),
		toolVariant("run_deno_code, default pool", def, "run_deno_code", denoRun(hello)),
		toolVariant("run_deno_code, pool 0", zero, "run_deno_code", denoRun(hello)),
	}}
	denoHeavy := []*loadVariant{
		bareVariant("bare deno run, heavy", func() *exec.Cmd { return bareDeno(deno, dir, hotTS) }),
		toolVariant("run_deno_code heavy, default pool", def, "run_deno_code", denoRun(heavyTS)),
		toolVariant("run_deno_code heavy, pool 0", zero, "run_deno_code", denoRun(heavyTS)),
	}
	// A before/after in one run: the same default-pool server from another build of conductor
	// (its checkout's .build/deno beside it), measured under the same shapes.
	if base := os.Getenv("BENCH_LOAD_BASELINE_BIN"); base != "" {
		old := startServer(b, base, "serve (default pool), baseline binary", "MCP_CONDUCTOR_MAX_CONCURRENCY=4")
		denoLB.vs = append(denoLB.vs, toolVariant("run_deno_code, default pool, baseline binary", old, "run_deno_code", denoRun(hello)))
		denoHeavy = append(denoHeavy, toolVariant("run_deno_code heavy, default pool, baseline binary", old, "run_deno_code", denoRun(heavyTS)))
	}
	heavyLB := &loadBench{b: b, vs: denoHeavy}
	withPython := os.Getenv("BENCH_LOAD_PYTHON") != "0"

	py := pythonBare(b)
	pyRun := func(code string) map[string]any { return map[string]any{"python_code": code} }
	pyExec := func(code string) map[string]any { return map[string]any{"language": "python", "entrypoint_code": code} }
	pyLB := &loadBench{b: b, vs: []*loadVariant{
		bareVariant("bare python3 -c", py.bareCmd),
		toolVariant("run_python_code, default pool", def, "run_python_code", pyRun(py.code)),
		toolVariant("run_python_code, pool 0", zero, "run_python_code", pyRun(py.code)),
		toolVariant("execute_code python, default pool", code, "execute_code", pyExec(py.code)),
	}}
	pyHeavy := []*loadVariant{
		bareVariant("bare python3 -c, heavy", func() *exec.Cmd {
			cmd := py.bareCmd() // python3 -c <code>
			cmd.Args[len(cmd.Args)-1] = heavyPy
			return cmd
		}),
		toolVariant("run_python_code heavy, default pool", def, "run_python_code", pyRun(heavyPy)),
		toolVariant("run_python_code heavy, pool 0", zero, "run_python_code", pyRun(heavyPy)),
		toolVariant("execute_code python heavy", code, "execute_code", pyExec(heavyPy)),
	}

	// Unmeasured: page cache, deno's cache, each server's pools (a
	// language's pool starts on its first request).
	warmUp := []*loadBench{denoLB, heavyLB}
	if withPython {
		warmUp = append(warmUp, pyLB)
	}
	for _, lb := range warmUp {
		for _, v := range lb.vs {
			if _, _, err := v.run(); err != nil {
				lb.fatal(v, err)
			}
		}
	}

	n := loadN()
	var denoRows, pyRows []*loadRow
	var verify string
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		verify = denoLB.verifyCPU(denoHeavy)
		if withPython {
			verify += pyLB.verifyCPU(pyHeavy)
		}
		verify += fmt.Sprintf("  (the check took %.1f s)\n", time.Since(t0).Seconds())
		denoRows = []*loadRow{
			timeRow(func() *loadRow { return denoLB.spaced(n) }),
			timeRow(func() *loadRow { return denoLB.backToBack(n) }),
			timeRow(func() *loadRow { return denoLB.bursts((n + loadBurst - 1) / loadBurst) }),
			timeRow(func() *loadRow { return denoLB.concurrent(2, n) }),
			timeRow(func() *loadRow { return denoLB.concurrent(4, n) }),
			// CPU-heavy code (~0.2 s of CPU a run) at c=2 on the default pool: each run's
			// refill boots while it runs, so this is where refills compete with running code.
			timeRow(func() *loadRow {
				r := heavyLB.concurrent(2, max(8, n/2))
				r.shape += ", heavy"
				return r
			}),
		}
		if withPython {
			pyRows = []*loadRow{
				timeRow(func() *loadRow { return pyLB.spaced(n) }),
				timeRow(func() *loadRow { return pyLB.backToBack(n) }),
				timeRow(func() *loadRow { return pyLB.concurrent(2, n) }),
			}
		}
	}
	b.StopTimer()

	var out strings.Builder
	fmt.Fprintf(&out, "BenchmarkLoad: BENCH_LOAD_N=%d on %d CPUs, %.0f s (servers: MCP_CONDUCTOR_MAX_CONCURRENCY=4, default pool size and pool 0)\n",
		n, runtime.NumCPU(), time.Since(t0).Seconds())
	out.WriteString(verify)
	printLoadTable(&out, "deno", denoRows)
	if withPython {
		printLoadTable(&out, "python", pyRows)
	}
	fmt.Print(out.String())
	b.Log("\n" + out.String())

	for _, r := range denoRows {
		key := strings.NewReplacer(" ", "-", "=", "").Replace(r.shape)
		c, base := r.cells[1], r.cells[0]
		b.ReportMetric(ratioQ(c.s, base.s, 0.99), key+"-p99/bare")
		b.ReportMetric(float64(c.cpuPerExec())/float64(base.cpuPerExec()), key+"-cpu/bare")
	}

	if os.Getenv("BENCH_RAW_WRITE") != "1" {
		return
	}
	path := os.Getenv("BENCH_LOAD_RAW")
	if path == "" {
		path, _ = filepath.Abs(filepath.Join("..", "docs", "bench-load-raw.json"))
	}
	data, _ := json.MarshalIndent(map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "cpus": runtime.NumCPU(), "n": n,
		"deno": rawLoad(denoRows), "python": rawLoad(pyRows),
	}, "", "  ")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		b.Fatalf("BENCH_LOAD_RAW: %v", err)
	}
	b.Logf("raw samples written to %s", path)
}
