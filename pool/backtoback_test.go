//go:build pipelinebench

package pool

// The back-to-back driver of issue 16 (not part of the suite: build tag pipelinebench). It uses
// only New, StartWith and Close, so the same file measures the pool before the pipeline too:
//
//	CI=true CONDUCTOR_DENO=$PWD/.build/deno go test -tags 'seccomp pipelinebench' -count=1 -run TestBackToBack -v ./pool/

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/sandbox"
)

type requestKey struct{}

// coldCounter is a Starter that counts the starts made for a request (its ctx carries
// requestKey), not by the pool's own boots.
type coldCounter struct {
	r    Starter
	cold atomic.Int32
}

func (c *coldCounter) StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error) {
	if ctx.Value(requestKey{}) != nil {
		c.cold.Add(1)
	}
	return c.r.StartWith(ctx, so)
}

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBackToBack: 60 StartWith+Run+Close of hello with no pause, through a pool of 2 (serve's
// default): cold starts, p50/p99 wall time, and CPU per execution of this process and its reaped
// children (the sandboxes' inits and deno).
func TestBackToBack(t *testing.T) {
	const n = 60
	r := sandboxtest.Runner(t, nil)
	cc := &coldCounter{r: r}
	p := New(cc, 2, sandbox.StartOptions{}, nil)
	defer p.Close()
	time.Sleep(2 * time.Second) // filled
	ctx := context.WithValue(context.Background(), requestKey{}, true)
	c, _ := strconv.Atoi(os.Getenv("PIPELINE_C")) // callers at once; default 1 (back-to-back)
	c = max(c, 1)
	var (
		mu      sync.Mutex
		d, runs []time.Duration // request (take+run+close), the run alone
		wg      sync.WaitGroup
		next    atomic.Int32
	)
	cpu0 := cpuTime(syscall.RUSAGE_SELF) + cpuTime(syscall.RUSAGE_CHILDREN)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				t0 := time.Now()
				sb, err := p.StartWith(ctx, sandbox.StartOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				t1 := time.Now()
				res := sb.Run(context.Background(), sandbox.Job{Code: `console.log("hello")`, Timeout: 30 * time.Second})
				t2 := time.Now()
				_ = sb.Close()
				mu.Lock()
				d, runs = append(d, time.Since(t0)), append(runs, t2.Sub(t1))
				mu.Unlock()
				if res.Status != sandbox.StatusSuccess || res.Stdout != "hello\n" {
					t.Errorf("run: %s %q %+v", res.Status, res.Stdout, res.Error)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := time.Since(start)
	time.Sleep(time.Second) // the last refills, part of these executions' cost
	cpu := cpuTime(syscall.RUSAGE_SELF) + cpuTime(syscall.RUSAGE_CHILDREN) - cpu0
	q := func(d []time.Duration, f float64) time.Duration {
		d = slices.Sorted(slices.Values(d))
		return d[min(len(d)-1, int(f*float64(len(d))))].Round(100 * time.Microsecond)
	}
	// Bare deno, the baseline, right after (same load).
	script := filepath.Join(t.TempDir(), "hello.ts")
	if err := os.WriteFile(script, []byte(`console.log("hello")`), 0o644); err != nil {
		t.Fatal(err)
	}
	var bare []time.Duration
	for range 20 {
		t0 := time.Now()
		out, err := exec.Command(os.Getenv("CONDUCTOR_DENO"), "run", "--no-prompt", script).Output()
		if err != nil || strings.TrimSpace(string(out)) != "hello" {
			t.Fatalf("bare deno: %v %q", err, out)
		}
		bare = append(bare, time.Since(t0))
	}
	t.Logf("%d back-to-back at c=%d: cold %d, p50 %s, p99 %s (%.2fx bare p50), run alone p50 %s p99 %s, wall %s, CPU/exec %s (self+reaped children, incl. the pool's 2 idle refills at the end); bare deno p50 %s",
		n, c, cc.cold.Load(), q(d, 0.5), q(d, 0.99), float64(q(d, 0.99))/float64(q(bare, 0.5)), q(runs, 0.5), q(runs, 0.99), total.Round(time.Millisecond), (cpu / n).Round(100*time.Microsecond), q(bare, 0.5))
}
