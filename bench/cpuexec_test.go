package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/gctune"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// cpuN is how many executions each block of BenchmarkCPUPerExecution
// measures (BENCH_CPU_N, default 40).
func cpuN() int { return envInt("BENCH_CPU_N", 40) }

// cpuTimes is the CPU time of this process (RUSAGE_SELF: the runner, the
// pool's fillers, libcontainer, GC) and of its reaped children and their
// reaped descendants (RUSAGE_CHILDREN: libcontainer's init stages, deno in
// the sandbox, bare deno), user and system.
// gcCycles and gcCPU are this process's completed GC cycles and the
// runtime's estimate of the CPU its collector used (runtime/metrics).
type cpuTimes struct {
	selfUser, selfSys, childUser, childSys time.Duration
	gcCycles                               uint64
	gcCPU                                  time.Duration
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

func readCPU(tb testing.TB) cpuTimes {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		tb.Fatal(err)
	}
	m := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(m)
	return cpuTimes{tv(self.Utime), tv(self.Stime), tv(children.Utime), tv(children.Stime),
		m[0].Value.Uint64(), time.Duration(m[1].Value.Float64() * float64(time.Second))}
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{c.selfUser - o.selfUser, c.selfSys - o.selfSys, c.childUser - o.childUser, c.childSys - o.childSys,
		c.gcCycles - o.gcCycles, c.gcCPU - o.gcCPU}
}

func (c cpuTimes) add(o cpuTimes) cpuTimes {
	return cpuTimes{c.selfUser + o.selfUser, c.selfSys + o.selfSys, c.childUser + o.childUser, c.childSys + o.childSys,
		c.gcCycles + o.gcCycles, c.gcCPU + o.gcCPU}
}

func (c cpuTimes) total() time.Duration { return c.selfUser + c.selfSys + c.childUser + c.childSys }

// quiesce waits until this process and its children use (almost) no CPU:
// less than 0.3 ms over 100 ms, twice in a row (a pool refill's sandbox
// boot, a closed sandbox's teardown and reaping have finished), at most 10
// s. It returns the reading taken then.
func quiesce(tb testing.TB) cpuTimes {
	prev := readCPU(tb)
	calm := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		cur := readCPU(tb)
		if cur.sub(prev).total() < 300*time.Microsecond {
			if calm++; calm == 2 {
				return cur
			}
		} else {
			calm = 0
		}
		prev = cur
	}
	tb.Logf("quiesce: still busy after 10 s; the block's figure includes background work")
	return prev
}

// BenchmarkCPUPerExecution (issue 16) measures CPU time per warm execution of
// hello: a runner and a pool of one in this process, as serve runs them (its GC
// setting, internal/gctune, applied), each
// execution taking the pooled sandbox, running hello, closing it, and the pool booting the
// next one. The CPU of this process and of its reaped children
// (getrusage RUSAGE_SELF + RUSAGE_CHILDREN) is read on a quiet process
// before and after a block of BENCH_CPU_N executions (back to back, then
// waited until the last refill and teardown are done), so each execution
// carries exactly one sandbox boot, one run and one teardown. Bare `deno
// run` of the same hello is measured the same way, blocks interleaved.
// Kernel work done in kernel threads (a network namespace's cleanup) is in
// neither figure; GCs and GC ms are this process's own collections per
// execution (runtime/metrics: cycles, and the runtime's estimate of their
// CPU). It reports CPU ms per execution and the ratio to bare
// deno; it asserts no figure.
func BenchmarkCPUPerExecution(b *testing.B) {
	deno := sandboxtest.Deno(b)
	b.Cleanup(gctune.Server()) // as serve runs
	r := sandboxtest.Runner(b, nil)
	ctx := context.Background()
	dir := b.TempDir()
	script := filepath.Join(dir, "hello.ts")
	if err := os.WriteFile(script, []byte(hello), 0o644); err != nil {
		b.Fatal(err)
	}
	denoDir := filepath.Join(dir, "deno-dir")
	p := pool.New(r, 1, sandbox.StartOptions{}, nil)
	b.Cleanup(p.Close)

	bareOnce := func() error {
		cmd := exec.Command(deno, "run", "--no-prompt", script)
		cmd.Env = []string{"DENO_DIR=" + denoDir, "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1", "HOME=" + dir}
		_, err := timedHello(cmd)
		return err
	}
	pooledOnce := func() error {
		sb, err := p.StartWith(ctx, sandbox.StartOptions{})
		if err != nil {
			return err
		}
		res := sb.Run(ctx, sandbox.Job{Code: hello, Timeout: 30 * time.Second})
		sb.Close()
		if res.Status != sandbox.StatusSuccess || res.Stdout != "hello\n" {
			return fmt.Errorf("pooled hello: %+v", res)
		}
		return nil
	}
	// Warm the page cache, deno's cache and both paths, unmeasured.
	for range 3 {
		if err := bareOnce(); err != nil {
			b.Fatalf("bare deno: %v", err)
		}
		if err := pooledOnce(); err != nil {
			b.Fatal(err)
		}
	}

	n := cpuN()
	const blocks = 4
	var bare, pooled cpuTimes
	block := func(run func() error, into *cpuTimes) {
		before := quiesce(b)
		for range n / blocks {
			if err := run(); err != nil {
				b.Fatal(err)
			}
		}
		*into = into.add(quiesce(b).sub(before))
	}
	for range blocks {
		block(bareOnce, &bare)
		block(pooledOnce, &pooled)
	}
	per := func(d time.Duration) float64 { return ms(d) / float64(n/blocks*blocks) }
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nCPU per execution, hello, %d executions each (getrusage self + reaped children; load average %.14s)\n", n/blocks*blocks, load)
	fmt.Printf("%-34s %9s %9s %9s %9s %9s %9s %9s %9s\n", "variant", "total ms", "self usr", "self sys", "child usr", "child sys", "/bare", "GCs", "GC ms")
	for _, row := range []struct {
		name string
		c    cpuTimes
	}{{"bare deno run hello (baseline)", bare}, {"in-process warm pool take+run", pooled}} {
		fmt.Printf("%-34s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n", row.name, per(row.c.total()),
			per(row.c.selfUser), per(row.c.selfSys), per(row.c.childUser), per(row.c.childSys),
			float64(row.c.total())/float64(bare.total()), float64(row.c.gcCycles)/float64(n/blocks*blocks), per(row.c.gcCPU))
	}
	b.ReportMetric(per(pooled.total()), "cpu-ms/exec")
	b.ReportMetric(per(bare.total()), "bare-cpu-ms/exec")
	b.ReportMetric(float64(pooled.total())/float64(bare.total()), "x-bare")
	b.ReportMetric(per(pooled.gcCPU), "gc-cpu-ms/exec")
}
