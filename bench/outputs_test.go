package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// outputsCode prints hello and writes two files into dir: a 1x1 PNG (returned inline as image
// content when dir is /outputs) and a ~36 KB CSV (kept in the store, returned as a link).
func outputsCode(dir string) string {
	return `console.log("hello");
const png = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));
await Deno.writeFile("` + dir + `/dot.png", png);
let csv = "n,square\n";
for (let i = 0; i < 3000; i++) csv += i + "," + i * i + "\n";
await Deno.writeTextFile("` + dir + `/squares.csv", csv);`
}

// BenchmarkOutputsOverhead measures what the outputs directory costs (issue 20): spaced warm
// calls (BENCH_LOAD_N rounds, interleaved) on two `serve`s of CONDUCTOR_BIN, with bare deno
// as the row's baseline:
//
//   - "off": MCP_CONDUCTOR_OUTPUTS_SIZE=0 (no /outputs tmpfs, nothing collected), hello;
//   - "on, hello": the default (a /outputs tmpfs per sandbox, its fd opened at start, collected
//     empty after the run), the same hello: what every run pays;
//   - "two files" on both: the same code writes a PNG and a 36 KB CSV, on "off" into /tmp, on "on"
//     into /outputs, where they are collected, stored and returned as image content and a
//     resource link: the difference is what returning two files costs.
//
// It prints p50 and the server tree's CPU per execution, each as a ratio to its off row. It asserts no
// timing; a call that does not succeed with "hello" fails it.
func BenchmarkOutputsOverhead(b *testing.B) {
	deno, bin := paths(b)
	dir := b.TempDir()
	// Both may write /tmp (the off server's two files go there).
	off := startServer(b, bin, "serve, outputs off", "MCP_CONDUCTOR_MAX_CONCURRENCY=4", "MCP_CONDUCTOR_OUTPUTS_SIZE=0", "MCP_CONDUCTOR_RUN_ARGS=allow-write=/tmp")
	on := startServer(b, bin, "serve, outputs on", "MCP_CONDUCTOR_MAX_CONCURRENCY=4", "MCP_CONDUCTOR_RUN_ARGS=allow-write=/tmp")
	helloTS := filepath.Join(dir, "hello.ts")
	if err := os.WriteFile(helloTS, []byte(hello), 0o644); err != nil {
		b.Fatal(err)
	}
	lb := &loadBench{b: b, vs: []*loadVariant{
		bareVariant("bare deno run", func() *exec.Cmd { return bareDeno(deno, dir, helloTS) }),
		toolVariant("run_deno_code, outputs off", off, "run_deno_code", map[string]any{"deno_code": hello}),
		toolVariant("run_deno_code, outputs on, hello", on, "run_deno_code", map[string]any{"deno_code": hello}),
		toolVariant("run_deno_code, outputs off, two files into /tmp", off, "run_deno_code", map[string]any{"deno_code": outputsCode("/tmp")}),
		toolVariant("run_deno_code, outputs on, two files into /outputs", on, "run_deno_code", map[string]any{"deno_code": outputsCode("/outputs")}),
	}}
	for _, v := range lb.vs {
		if _, _, err := v.run(); err != nil {
			lb.fatal(v, err)
		}
	}
	var out strings.Builder
	for range b.N {
		row := lb.spaced(loadN())
		p50 := func(c *loadCell) time.Duration { return c.s.quantile(0.5) }
		fmt.Fprintf(&out, "spaced, n=%d: bare deno p50 %.2f ms\n", len(row.cells[1].s.d), ms(p50(row.cells[0])))
		for _, pair := range [][2]*loadCell{{row.cells[1], row.cells[2]}, {row.cells[3], row.cells[4]}} {
			o, c := pair[0], pair[1]
			fmt.Fprintf(&out, "  %s: p50 %.2f ms, CPU %.2f ms/exec\n  %s: p50 %.2f ms (%.3fx), CPU %.2f ms/exec (%.3fx)\n",
				o.v.name, ms(p50(o)), ms(o.cpuPerExec()), c.v.name, ms(p50(c)), float64(p50(c))/float64(p50(o)),
				ms(c.cpuPerExec()), float64(c.cpuPerExec())/float64(max(o.cpuPerExec(), 1)))
		}
	}
	fmt.Print(out.String())
	b.Log("\n" + out.String())
}
