//go:build soak

package soak_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	// sizeVar "full" runs the full soak (make soak); anything else the short one.
	sizeVar = "CONDUCTOR_SOAK"
	// reportVar names a file the tables are written to (make soak: docs/soak.md).
	reportVar   = "CONDUCTOR_SOAK_REPORT"
	concurrency = 8
	// callLimit bounds one call as the client waits for it: a call not
	// answered by then counts as unanswered.
	callLimit = 120 * time.Second
	// settleLimit is how long the server has after a phase to come back to
	// its baseline.
	settleLimit = 30 * time.Second
	// warmUp is the normal and mcpFactory runs before the baseline is taken.
	warmUp = 2 * concurrency
	// rssLimit is how much longer the server's RSS alone may take to come
	// back: Go's forced GC period (2 minutes) and scavenging.
	rssLimit = 150 * time.Second
	// rssSlack is how far above its post-warm-up RSS the server may settle.
	rssSlack = 0.10
	// releaseNudges is how many small runs settle makes, one after the
	// other, to have the server release freed memory before it waits
	// rssLimit; releaseAfter is how long after such a run the release is
	// done (cmd/conductor memoryIdle is 0.5 s), releaseWait how long settle
	// then looks for everything back.
	releaseNudges = 3
	releaseAfter  = time.Second
	releaseWait   = 3 * time.Second
)

// job is one tools/call of run_deno_code.
type job struct {
	kind   string
	normal bool // a normal run: its result is checked, and must be right in every phase
	args   map[string]any
	// cancelAfter > 0: the client cancels the call after this long.
	cancelAfter time.Duration
	// check says what is wrong with o for this kind ("" when it is right).
	check func(o outcome) string
}

// outcome is what the client got for one call.
type outcome struct {
	job   job
	res   *sdk.CallToolResult
	out   map[string]any
	err   error
	dur   time.Duration
	class string
}

func (o outcome) str(key string) string { s, _ := o.out[key].(string); return s }

func (o outcome) errMessage() string {
	e, _ := o.out["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("%s: error %v", o.job.kind, o.err)
	}
	b, _ := json.Marshal(o.out)
	return fmt.Sprintf("%s: isError=%v %.600s", o.job.kind, o.res.IsError, b)
}

// classify names an outcome for the table: the run's status and limit, or
// what kind of error the client got.
func classify(o outcome) string {
	switch {
	case o.err != nil:
		var werr *jsonrpc.Error
		switch {
		case errors.Is(o.err, context.Canceled):
			return "client-cancelled"
		case errors.Is(o.err, context.DeadlineExceeded):
			return "unanswered"
		case errors.As(o.err, &werr):
			return "mcp-error"
		case errors.Is(o.err, sdk.ErrConnectionClosed) || strings.Contains(o.err.Error(), "connection closed") ||
			strings.Contains(o.err.Error(), "EOF") || strings.Contains(o.err.Error(), "connection refused") ||
			strings.Contains(o.err.Error(), "connection reset"):
			return "connection-closed"
		}
		return "transport-error"
	case o.out["status"] == nil:
		if o.res.IsError {
			return "tool-error"
		}
		return "no-structured-result"
	}
	c := o.str("status")
	if e, _ := o.out["error"].(map[string]any); c == "error" && e["type"] == "cancelled" {
		return "cancelled before start"
	}
	if l := o.str("limitHit"); l != "" && l != c {
		c += "/" + l
	}
	return c
}

// answered reports whether the call got an answer: a result or a clean MCP
// error (in the SIGTERM phase too: a connection closed under a call is no
// answer). A call the client cancelled itself is answered by the cancel.
func answered(class string) bool {
	switch class {
	case "unanswered", "transport-error", "connection-closed":
		return false
	}
	return true
}

// ---------------------------------------------------------------------------
// The kinds of runs

func want(cond bool, format string, args ...any) string {
	if cond {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

// normalRun computes a sum from random inputs and prints a token: both are
// checked.
func normalRun(rng *rand.Rand) job {
	n, k := 1+rng.IntN(5000), 1+rng.IntN(1000)
	tok := fmt.Sprintf("%08x", rng.Uint32())
	sum := float64(k) * float64(n) * float64(n-1) / 2
	return job{kind: "normal", normal: true,
		args: map[string]any{"deno_code": fmt.Sprintf(
			"let s = 0;\nfor (let i = 0; i < %d; i++) s += i * %d;\nconsole.log(%q);\nreturn { s, tok: %q };", n, k, "tok-"+tok, tok)},
		check: func(o outcome) string {
			rv, _ := o.out["returnValue"].(map[string]any)
			return want(o.err == nil && !o.res.IsError && o.str("status") == "success" && rv["s"] == sum && rv["tok"] == tok &&
				o.str("stdout") == "tok-"+tok+"\n", "want success with {s: %v, tok: %s} and stdout tok-%s", sum, tok, tok)
		}}
}

// factoryRun calls the upstream's echo through mcpFactory: checked.
func factoryRun(rng *rand.Rand) job {
	msg := fmt.Sprintf("soak-%08x", rng.Uint32())
	return job{kind: "factory echo", normal: true,
		args: map[string]any{"deno_code": fmt.Sprintf(`return await mcpFactory.load(%q).callTool("echo", { message: %q });`, upstreamName, msg)},
		check: func(o outcome) string {
			return want(o.err == nil && !o.res.IsError && o.out["returnValue"] == "Echo: "+msg, "want success returning %q", "Echo: "+msg)
		}}
}

// limitRun is hostile code that must end with limitHit.
func limitRun(kind, code, limitHit string, timeoutMs int) job {
	return job{kind: kind, args: map[string]any{"deno_code": code, "timeout": timeoutMs},
		check: func(o outcome) string {
			return want(o.err == nil && o.res.IsError && o.str("limitHit") == limitHit, "want isError with limitHit %q", limitHit)
		}}
}

const (
	loopCode        = "while (true) {}"
	arrayBufferBomb = "const a = []; for (let i = 0; i < 32; i++) a.push(new Uint8Array(64 << 20).fill(i));"
	heapBomb        = "const a = []; while (true) a.push({ s: 'x'.repeat(1024) + Math.random() });"
	workerBomb      = "const w = []; for (let i = 0; i < 200; i++) w.push(new Worker('data:application/javascript,setInterval(() => {}, 1000)', { type: 'module' }));"
	processBomb     = "const k = []; try { for (let i = 0; i < 40; i++) k.push(new Deno.Command('deno', { args: ['eval', 'await new Promise(() => {})'] }).spawn()); } catch {}\nawait new Promise((r) => setTimeout(r, 2000)); for (const c of k) c.kill('SIGKILL');"
	floodMiB        = 16
	floodCode       = "const c = new TextEncoder().encode('x'.repeat(1 << 20));\nfor (let i = 0; i < 16; i++) { await Deno.stdout.write(c); await Deno.stderr.write(c); }\nreturn 'flooded';"
	timersCode      = "setTimeout(() => console.log('late'), 600000);\nsetInterval(() => {}, 1000);\nreturn 7;"
	factoryFlood    = `const g = mcpFactory.load("` + upstreamName + `");
const rs = await Promise.allSettled(Array.from({ length: 50000 }, () => g.callTool("echo", { message: "f" })));
return rs.length;`
	// garbageFrame: a child deno (deno eval has every permission, and every
	// process of the sandbox inherits the channel's fds) writes bytes that
	// are not a frame to the host.
	garbageFrame = `const p = new Deno.Command("deno", { args: ["eval", "Deno.writeFileSync('/proc/self/fd/3', new Uint8Array([255, 255, 255, 255, 110, 111, 116, 32, 97, 32, 102, 114, 97, 109, 101]))"] }).spawn();
await p.status;
await new Promise((r) => setTimeout(r, 5000));
return "not reached";`
	// longCall is the upstream call killed mid-call.
	longCall = `return await mcpFactory.load("` + upstreamName + `").callTool("trigger-long-running-operation", { duration: 8, steps: 4 });`
	// longerCall is the upstream call in flight at SIGTERM: it must outlast
	// the wait for all 8 runs to be in flight (the full run's HTTP soak once
	// took 10 s for that, and an 8 s call had ended).
	longerCall = `return await mcpFactory.load("` + upstreamName + `").callTool("trigger-long-running-operation", { duration: 50, steps: 5 });`
)

func floodRun() job {
	return job{kind: "output flood", args: map[string]any{"deno_code": floodCode},
		check: func(o outcome) string {
			return want(o.err == nil && !o.res.IsError && o.out["returnValue"] == "flooded" && o.out["stdoutTruncated"] == true && o.out["stderrTruncated"] == true &&
				len(o.str("stdout")) == 64<<10 &&
				o.out["stdoutBytes"] == float64(floodMiB<<20) && o.out["stderrBytes"] == float64(floodMiB<<20),
				"want success, both streams truncated, 64 KiB of stdout kept and %d MiB counted each", floodMiB)
		}}
}

func timersRun() job {
	return job{kind: "timers after the result", args: map[string]any{"deno_code": timersCode},
		check: func(o outcome) string {
			return want(o.err == nil && !o.res.IsError && o.out["returnValue"] == float64(7) && o.out["pendingWorkStopped"] == true,
				"want success returning 7 with pendingWorkStopped")
		}}
}

func channelRun(kind, code, says string) job {
	return job{kind: kind, args: map[string]any{"deno_code": code},
		check: func(o outcome) string {
			return want(o.err == nil && o.res.IsError && o.str("status") == "error" && strings.Contains(o.errMessage(), says),
				"want status error saying %q", says)
		}}
}

func cancelRun(rng *rand.Rand) job {
	code := loopCode
	if rng.IntN(2) == 0 {
		code = "await new Promise((r) => setTimeout(r, 20000)); return 'slept';"
	}
	return job{kind: "cancelled by the client", args: map[string]any{"deno_code": code, "timeout": 30000},
		cancelAfter: time.Duration(200+rng.IntN(1800)) * time.Millisecond,
		check: func(o outcome) string {
			return want(errors.Is(o.err, context.Canceled), "want the call cancelled by the client")
		}}
}

// crashRun is the call whose upstream is killed under it: it must fail
// cleanly, saying the server is gone.
func crashRun() job {
	return job{kind: "upstream killed mid-call", args: map[string]any{"deno_code": longCall, "timeout": 60000},
		check: func(o outcome) string {
			m := strings.ToLower(o.errMessage() + " " + o.str("stderr"))
			return want(o.err == nil && o.res.IsError && (strings.Contains(m, "exited") || strings.Contains(m, "crash") || strings.Contains(m, "unavailable")),
				"want an error saying the upstream exited or crashed")
		}}
}

// phase is one stretch of the soak: the hostile jobs it makes (normal ones
// are mixed in by mix).
type phase struct {
	name string
	// jobs makes n jobs; nil: all normal.
	hostile func(rng *rand.Rand, i int) job
	// special phases run their own way.
	upstreamKill, sigterm bool
}

var phases = []phase{
	{name: "normal"},
	{name: "infinite loops", hostile: func(*rand.Rand, int) job { return limitRun("infinite loop", loopCode, "timeout", 1000) }},
	{name: "memory bombs", hostile: func(_ *rand.Rand, i int) job {
		if i%2 == 0 {
			return limitRun("ArrayBuffer bomb", arrayBufferBomb, "memory", 60000)
		}
		return limitRun("JS heap bomb", heapBomb, "memory", 60000)
	}},
	{name: "worker and process bombs", hostile: func(_ *rand.Rand, i int) job {
		if i%2 == 0 {
			return limitRun("worker bomb", workerBomb, "pids", 60000)
		}
		return limitRun("process bomb", processBomb, "pids", 60000)
	}},
	{name: "output floods", hostile: func(*rand.Rand, int) job { return floodRun() }},
	{name: "timers after the result", hostile: func(*rand.Rand, int) job { return timersRun() }},
	{name: "mcpFactory floods and garbage", hostile: func(_ *rand.Rand, i int) job {
		if i%2 == 0 {
			return channelRun("mcpFactory flood", factoryFlood, "flood")
		}
		return channelRun("garbage frame", garbageFrame, "channel protocol")
	}},
	{name: "client cancellations", hostile: func(rng *rand.Rand, _ int) job { return cancelRun(rng) }},
	{name: "upstream killed mid-call", upstreamKill: true},
	{name: "SIGTERM with 8 in flight", sigterm: true},
}

// mix makes n jobs of p: every fourth a normal run (plain and mcpFactory
// by turns), the rest p's hostile kind.
func mix(p phase, rng *rand.Rand, n int) []job {
	jobs := make([]job, 0, n)
	for i := range n {
		switch {
		case p.hostile == nil || i%4 == 0:
			if (i/4)%2 == 1 || (p.hostile == nil && i%2 == 1) {
				jobs = append(jobs, factoryRun(rng))
			} else {
				jobs = append(jobs, normalRun(rng))
			}
		default:
			jobs = append(jobs, p.hostile(rng, i))
		}
	}
	return jobs
}

// ---------------------------------------------------------------------------
// Running calls

// call runs one job and waits for its outcome.
func (s *server) call(j job) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), callLimit)
	defer cancel()
	if j.cancelAfter > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		t := time.AfterFunc(j.cancelAfter, stop)
		defer t.Stop()
	}
	t0 := time.Now()
	res, err := s.cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_deno_code", Arguments: j.args})
	o := outcome{job: j, res: res, err: err, dur: time.Since(t0), out: map[string]any{}}
	if err == nil && res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &o.out)
	}
	o.class = classify(o)
	return o
}

// runAll runs jobs at concurrency 8 and returns their outcomes in order.
func (s *server) runAll(jobs []job) []outcome {
	outs := make([]outcome, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				outs[i] = s.call(jobs[i])
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	return outs
}

// ---------------------------------------------------------------------------
// The soak

// row is one phase's line of the table.
type row struct {
	Phase          string
	Calls          int
	Answered       int
	Normal         int
	NormalCorrect  int
	Expected       int // hostile calls that ended as their kind must
	Classes        map[string]int
	P50, P95       time.Duration
	RSSBefore      int64
	RSSAfter       int64
	Leftovers      string // "" when everything came back to the baseline
	After          counts
	Notes          []string
	SettleDuration time.Duration
}

// report is one transport's run.
type report struct {
	Transport string
	Baseline  counts
	Rows      []row
	Took      time.Duration
}

func soakSize() (name string, perPhase int) {
	if os.Getenv(sizeVar) == "full" {
		return "full", 112 // 8 mixed phases of 112, 13 kill rounds of 9, 8 at SIGTERM: 1021 calls
	}
	return "short", 8
}

// TestSoak drives `conductor serve` over stdio and over streamable HTTP
// through every phase (see the package doc) and fails on a call not
// answered, a wrong normal run, a hostile run that did not end as its kind
// must, RSS not back within 10 % or anything left behind.
func TestSoak(t *testing.T) {
	tl := needTools(t)
	size, perPhase := soakSize()
	var reports []report
	for _, transport := range []string{"stdio", "http"} {
		t.Run(transport, func(t *testing.T) {
			rep := soak(t, tl, transport, perPhase)
			calls := 0
			for _, r := range rep.Rows {
				calls += r.Calls
			}
			if size == "full" && calls < 1000 {
				t.Errorf("the full soak made %d calls over %s, want at least 1000", calls, transport)
			}
			reports = append(reports, rep)
		})
	}
	if path := os.Getenv(reportVar); path != "" {
		if err := os.WriteFile(path, []byte(markdown(size, perPhase, reports)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
	t.Logf("\n%s", markdown(size, perPhase, reports))
}

func soak(t *testing.T, tl tools, transport string, perPhase int) report {
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	s := start(t, tl, transport)
	rep := report{Transport: transport}
	startup := s.count() // before any call: what start-up itself made (go's telemetry dir in TMPDIR)

	// Warm-up: a wave of normal and mcpFactory runs at concurrency 8, so the
	// pool, the upstream session and the client's connections exist.
	warm := s.runAll(mix(phase{}, rng, warmUp))
	for _, o := range warm {
		if msg := o.job.check(o); msg != "" {
			t.Fatalf("warm-up: %s: %s", msg, o)
		}
	}
	s.settle(counts{}, 0)
	// The baseline is taken as every phase's RSS is: after the release that
	// follows a small run (see settle).
	if msg := s.releaseMemory(); msg != "" {
		t.Fatalf("warm-up: %s", msg)
	}
	base, _ := s.settle(counts{}, 0)
	if len(base.upstreamPs) == 0 {
		t.Fatalf("no server-everything process among the server's children after the warm-up")
	}
	rep.Baseline = base
	t.Logf("%s baseline: %+v", transport, base)

	for _, p := range phases {
		before := s.count()
		var outs []outcome
		var notes []string
		switch {
		case p.upstreamKill:
			outs, notes = s.upstreamKillPhase(t, rng, perPhase)
		case p.sigterm:
			outs, notes = s.sigtermPhase(t, rng)
		default:
			outs = s.runAll(mix(p, rng, perPhase))
		}
		r := tally(t, p, outs)
		r.Notes = notes
		r.RSSBefore = before.RSS
		if p.sigterm {
			r.After = s.countAfterExit()
			r.Leftovers = r.After.diff(counts{TempFiles: startup.TempFiles})
			r.RSSAfter = 0
		} else {
			start, nudged := time.Now(), s.nudges
			r.After, r.Leftovers = s.settle(base, int64(float64(base.RSS)*(1+rssSlack)))
			r.SettleDuration = time.Since(start)
			if n := s.nudges - nudged; n > 0 {
				r.Notes = append(r.Notes, fmt.Sprintf("RSS back after %d small run(s) to have the server release memory", n))
			}
			r.RSSAfter = r.After.RSS
			if r.RSSAfter > int64(float64(base.RSS)*(1+rssSlack)) {
				t.Errorf("%s: server RSS %d MiB after settling, over its post-warm-up %d MiB + 10%%", p.name, r.RSSAfter>>20, base.RSS>>20)
			}
		}
		if r.Leftovers != "" {
			t.Errorf("%s: left behind: %s", p.name, r.Leftovers)
		}
		rep.Rows = append(rep.Rows, r)
		t.Logf("%s %-30s calls %3d answered %3d normal %d/%d expected %d/%d p50 %v p95 %v RSS %d->%d MiB %v",
			transport, p.name, r.Calls, r.Answered, r.NormalCorrect, r.Normal, r.Expected, r.Calls-r.Normal,
			r.P50.Round(time.Millisecond), r.P95.Round(time.Millisecond), r.RSSBefore>>20, r.RSSAfter>>20, r.Classes)
	}
	rep.Took = time.Since(t0)
	return rep
}

// tally checks the outcomes of one phase and makes its row.
func tally(t *testing.T, p phase, outs []outcome) row {
	t.Helper()
	r := row{Phase: p.name, Calls: len(outs), Classes: map[string]int{}}
	var durs []time.Duration
	wrong := map[string]int{}
	for _, o := range outs {
		r.Classes[o.class]++
		if answered(o.class) {
			r.Answered++
			durs = append(durs, o.dur)
		} else {
			t.Errorf("%s: a call was not answered: %s", p.name, o)
		}
		msg := ""
		if o.job.check != nil {
			msg = o.job.check(o)
		}
		if o.job.normal {
			r.Normal++
			if msg == "" {
				r.NormalCorrect++
			}
		} else if msg == "" {
			r.Expected++
		}
		if msg != "" {
			if wrong[o.job.kind]++; wrong[o.job.kind] <= 3 {
				t.Errorf("%s: %s: %s", p.name, msg, o)
			}
		}
	}
	for kind, n := range wrong {
		if n > 3 {
			t.Errorf("%s: %d wrong outcomes of %s in all", p.name, n, kind)
		}
	}
	slices.Sort(durs)
	if len(durs) > 0 {
		r.P50 = durs[(len(durs)-1)*50/100]
		r.P95 = durs[(len(durs)-1)*95/100]
	}
	return r
}

// settle waits until the server's counts are back at base (and its RSS at
// most maxRSS) or settleLimit passes, and returns the last counts and what
// is still off. With a zero base it waits for the counts to hold still for
// a second (the baseline itself).
func (s *server) settle(base counts, maxRSS int64) (counts, string) {
	var c counts
	if maxRSS == 0 {
		var last counts
		stable := time.Time{}
		waitFor(settleLimit, func() bool {
			c = s.count()
			if c.diff(last) != "" || stable.IsZero() {
				last, stable = c, time.Now()
				return false
			}
			return time.Since(stable) >= time.Second
		})
		return c, ""
	}
	off := ""
	back := func() bool {
		c = s.count()
		off = c.diff(base)
		return off == "" && c.RSS <= maxRSS
	}
	var countsBack time.Time
	waitFor(settleLimit, func() bool {
		if back() {
			return true
		}
		if off != "" {
			countsBack = time.Time{}
			return false
		}
		if countsBack.IsZero() {
			countsBack = time.Now()
		}
		return time.Since(countsBack) >= releaseAfter
	})
	// Everything is back but memory: the server hands freed memory back
	// memoryIdle after its last execution (cmd/conductor: releaseMemory),
	// but what it did after that moment (writing the last answers, under
	// load too) stays until Go's next GC, at least every 2 minutes. A
	// small run re-arms that release; then, the long wait.
	for range releaseNudges {
		if off != "" || c.RSS <= maxRSS {
			break
		}
		if msg := s.releaseMemory(); msg != "" {
			return c, msg
		}
		waitFor(releaseWait, back)
	}
	if off == "" && c.RSS > maxRSS {
		waitFor(rssLimit, func() bool { c.RSS = rss(s.pid); return c.RSS <= maxRSS })
	}
	return c, off
}

// releaseMemory makes one small run, so the server releases its freed
// memory memoryIdle (0.5 s) after it ended, and waits past that moment. It
// says what went wrong, or "".
func (s *server) releaseMemory() string {
	s.nudges++
	o := s.call(job{kind: "release nudge", args: map[string]any{"deno_code": "return 1;"}})
	if o.err != nil || o.str("status") != "success" {
		return fmt.Sprintf("the small run that makes the server release memory failed: %s", o)
	}
	time.Sleep(releaseAfter)
	return ""
}

// countAfterExit is the counts once the server exited: all must be zero
// (upstream processes are looked for among the baseline's pids).
func (s *server) countAfterExit() counts {
	c := s.count()
	c.Sockets = 0
	return c
}

// upstreamKillPhase: rounds of 8 calls, one of them a long upstream call;
// once that call has reached the upstream (its read count moved), the
// upstream's processes are killed with SIGKILL. The long call must fail
// cleanly, the others (plain runs) succeed, and a checked mcpFactory call
// after the round must reach a new upstream process.
func (s *server) upstreamKillPhase(t *testing.T, rng *rand.Rand, perPhase int) ([]outcome, []string) {
	t.Helper()
	var outs []outcome
	kills, reached := 0, 0
	for done := 0; done < perPhase; done += concurrency + 1 {
		ups := s.count().upstreamPs
		if len(ups) == 0 {
			t.Errorf("no upstream process to kill")
			break
		}
		reads := upstreamReads(ups)
		jobs := []job{crashRun()}
		for range concurrency - 1 {
			jobs = append(jobs, normalRun(rng))
		}
		killed := make(chan struct{})
		go func() {
			defer close(killed)
			if waitFor(30*time.Second, func() bool { return upstreamReads(ups) > reads }) {
				reached++
			}
			time.Sleep(300 * time.Millisecond)
			for _, pid := range ups {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			kills++
		}()
		outs = append(outs, s.runAll(jobs)...)
		<-killed
		// conductor restarts the upstream on the next call.
		after := s.call(factoryRun(rng))
		outs = append(outs, after)
		if now := s.count().upstreamPs; slices.Equal(now, ups) || len(now) == 0 {
			t.Errorf("the upstream was not restarted: processes %v before the kill, %v after", ups, now)
		}
	}
	return outs, []string{fmt.Sprintf("%d kills (%d after the call reached the upstream); after each, a checked mcpFactory call on the restarted upstream", kills, reached)}
}

// sigtermPhase: 8 runs in flight (loops, sleeps, a long upstream call),
// then SIGTERM. The server must exit 0 within 10 s, every call end, and
// nothing of the server's remain.
func (s *server) sigtermPhase(t *testing.T, rng *rand.Rand) ([]outcome, []string) {
	t.Helper()
	jobs := make([]job, 0, concurrency)
	for i := range concurrency {
		var j job
		switch i % 4 {
		case 0, 1:
			j = job{kind: "loop at SIGTERM", args: map[string]any{"deno_code": loopCode, "timeout": 60000}}
		case 2:
			j = job{kind: "sleep at SIGTERM", args: map[string]any{"deno_code": "await new Promise((r) => setTimeout(r, 60000));", "timeout": 60000}}
		default:
			j = job{kind: "upstream call at SIGTERM", args: map[string]any{"deno_code": longerCall, "timeout": 60000}}
		}
		j.check = func(o outcome) string {
			return want(o.class == "cancelled" || o.class == "cancelled before start" || o.class == "mcp-error",
				"want the run cancelled by the shutdown (a result, before the server exits)")
		}
		jobs = append(jobs, j)
	}
	_ = rng
	ups := s.count().upstreamPs
	reads := upstreamReads(ups) // before the calls: they must move it
	outs := make([]outcome, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { outs[i] = s.call(j) })
	}
	// In flight: the instance holds 8 containers (the pool refills only
	// once a run ended), the long upstream calls reached the upstream, and
	// a few seconds for the cold-started ones to boot.
	inFlight := waitFor(60*time.Second, func() bool { return len(leftoverContainers(s)) >= concurrency }) &&
		waitFor(30*time.Second, func() bool { return upstreamReads(ups) > reads })
	time.Sleep(3 * time.Second)
	var notes []string
	if !inFlight {
		t.Errorf("8 runs were not in flight within 60 s (containers %v)", leftoverContainers(s))
	}
	t0 := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		notes = append(notes, fmt.Sprintf("server exited %v after SIGTERM", time.Since(t0).Round(time.Millisecond)))
	case <-time.After(15 * time.Second):
		t.Errorf("server still runs 15 s after SIGTERM")
	}
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(15 * time.Second):
		t.Errorf("calls still waiting 15 s after the server exited")
		<-ended
	}
	if s.cmd.ProcessState != nil && s.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("server exited %v after SIGTERM, want 0", s.cmd.ProcessState)
	}
	for _, pid := range ups {
		if !waitFor(10*time.Second, func() bool { return !aliveUpstream(pid) }) {
			t.Errorf("upstream process %d still runs after the server exited", pid)
		}
	}
	return outs, notes
}

// leftoverContainers lists the container state dirs in the instance dir.
func leftoverContainers(s *server) []string {
	entries, _ := os.ReadDir(s.stateDir + "/" + s.instance)
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func aliveUpstream(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "server-everything")
}

// ---------------------------------------------------------------------------
// The report

func mib(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

func classes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// markdown is the report: one table per transport.
func markdown(size string, perPhase int, reports []report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Soak (issue 15)\n\n")
	fmt.Fprintf(&b, "`make soak` (`go test -tags seccomp,soak -run TestSoak ./soak/` with %s=full) drives the built `bin/conductor serve` "+
		"with a go-sdk client over stdio and over streamable HTTP (bearer token) at concurrency %d; without %[1]s=full the same phases "+
		"run short (8 calls each, about a minute): `make test` runs that as `make test-soak`. See soak/doc.go for what each phase does and what is counted.\n\n", sizeVar, concurrency)
	fmt.Fprintf(&b, "Run: %s, size %s (%d calls per phase), %s, %d CPUs, Go %s. Server settings: MAX_CONCURRENCY=8, MAX_QUEUE=64, "+
		"MEMORY=256M, MAX_OUTPUT=64K, PIDS=24, RUN_ARGS=allow-run, pool 2, one upstream (server-everything over stdio).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), size, perPhase, kernel(), runtime.NumCPU(), runtime.Version())
	b.WriteString("Columns: *answered* = a result or a clean MCP error (a call the client " +
		"cancelled counts as answered by its cancel; a connection closed under a call does not); *normal ok* = normal runs (plain and mcpFactory echo, a quarter of " +
		"every hostile phase) whose result was checked and right; *hostile ok* = hostile calls that ended as their kind must " +
		"(limitHit, status, message); *left* = what differs from the post-warm-up baseline once the server settled (≤ 30 s): sandbox processes, " +
		"cgroups, state entries, mounts, non-socket fds, child processes, temp files (after SIGTERM: against zero, and temp files against " +
		"those present before the first call: `go env` at start, run with HOME=TMPDIR, leaves go's telemetry directory there). " +
		"RSS is the server's VmRSS before the phase and after settling (*settled in s*: how long until every count and the RSS were back); it must come back within 10 % of the post-warm-up value. " +
		"Both are measured after the server's own release of freed memory (it hands it back 0.5 s after its last execution): the baseline after a small run made for that, " +
		"and a phase whose counts are back but not its RSS gets up to 3 such small runs (noted below the table) before the soak waits up to 150 s for Go's periodic GC.\n\n")
	b.WriteString("Phases (hostile kinds, and how each must end):\n\n" +
		"- normal: plain runs (a sum over random inputs and a printed token) and mcpFactory echo calls, every result compared\n" +
		"- infinite loops: `while (true) {}` with a 1 s timeout → limitHit timeout\n" +
		"- memory bombs: 32 × 64 MiB ArrayBuffers, and a JS heap that grows until it breaks → limitHit memory\n" +
		"- worker and process bombs: 200 Workers, 40 `deno` child processes → limitHit pids\n" +
		"- output floods: 16 MiB to stdout and to stderr → success, both truncated to 64 KiB, 16 MiB counted each\n" +
		"- timers after the result: a 10-minute timeout and an interval left pending → success at once, pendingWorkStopped\n" +
		"- mcpFactory floods and garbage: 50 000 parallel callTool, and a child deno writing bytes that are no frame to the channel → the run ended with a flood / channel-protocol error\n" +
		"- client cancellations: a loop or a 20 s sleep the client cancels after 0.2–2 s → the call ends at the client, the sandbox goes\n" +
		"- upstream killed mid-call: rounds of 8 (one long server-everything call, seven plain runs); once the long call reached the upstream, its process is SIGKILLed → that run ends with the upstream's crash error, the others succeed, and a checked mcpFactory call right after reaches a restarted upstream\n" +
		"- SIGTERM with 8 in flight: loops, sleeps and long upstream calls → each answered (status cancelled, or cancelled before start), the server exits 0, and nothing of it is left\n\n")
	for _, rep := range reports {
		fmt.Fprintf(&b, "## %s\n\n", rep.Transport)
		bl := rep.Baseline
		fmt.Fprintf(&b, "Post-warm-up baseline: RSS %s MiB, %d sandbox processes, %d cgroups, %d state entries (the pool's 2 sandboxes), "+
			"%d mounts, %d fds + %d sockets, %d child processes (the upstream), %d temp files. Took %v.\n\n",
			mib(bl.RSS), bl.Sandboxes, bl.Cgroups, bl.States, bl.Mounts, bl.FDs, bl.Sockets, bl.Children, bl.TempFiles, rep.Took.Round(time.Second))
		b.WriteString("| phase | calls | answered | normal ok | hostile ok | outcomes | p50 ms | p95 ms | RSS MiB before → after | settled in s | left |\n")
		b.WriteString("|---|---:|---:|---:|---:|---|---:|---:|---|---:|---|\n")
		total := 0
		for _, r := range rep.Rows {
			total += r.Calls
			left := r.Leftovers
			if left == "" {
				left = "0"
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d/%d | %d/%d | %s | %d | %d | %s → %s | %.1f | %s |\n", r.Phase, r.Calls, r.Answered,
				r.NormalCorrect, r.Normal, r.Expected, r.Calls-r.Normal, classes(r.Classes), r.P50.Milliseconds(), r.P95.Milliseconds(),
				mib(r.RSSBefore), mib(r.RSSAfter), r.SettleDuration.Seconds(), left)
		}
		fmt.Fprintf(&b, "\n%d calls in all (plus %d warm-up).", total, warmUp)
		for _, r := range rep.Rows {
			for _, n := range r.Notes {
				fmt.Fprintf(&b, " %s: %s.", r.Phase, n)
			}
		}
		b.WriteString("\n\n")
	}
	return b.String()
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}
