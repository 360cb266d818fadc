package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/egress"

	"github.com/conductor-sandbox/conductor/internal/leftovers"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/sandbox"
)

func init() { sandbox.MaybeInit() }

// recorder is a Starter that remembers what it started, and the most starts in flight at once.
type recorder struct {
	r        *sandbox.Runner
	mu       sync.Mutex
	started  map[*sandbox.Sandbox]bool
	calls    int
	inflight int
	most     int
}

func (c *recorder) boot(ctx context.Context) (*sandbox.Sandbox, error) {
	c.mu.Lock()
	c.inflight++
	c.most = max(c.most, c.inflight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inflight--
		c.mu.Unlock()
	}()
	return c.StartWith(ctx, sandbox.StartOptions{})
}

func (c *recorder) peak() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.most
}

func (c *recorder) resetPeak() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.most = c.inflight
}

func (c *recorder) StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error) {
	sb, err := c.r.StartWith(ctx, so)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if sb != nil {
		c.started[sb] = true
	}
	return sb, err
}

func (c *recorder) had(sb *sandbox.Sandbox) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started[sb]
}

func (c *recorder) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func newPool(t *testing.T, size int) (*Pool, *recorder, *sandbox.Runner) {
	t.Helper()
	r := sandboxtest.Runner(t, func(o *sandbox.Options) { o.DenoFlags = []string{"--allow-all"} })
	rec := &recorder{r: r, started: map[*sandbox.Sandbox]bool{}}
	p := New(rec, size, sandbox.StartOptions{}, nil)
	t.Cleanup(func() {
		p.Close()
		if pids := leftovers.Processes(r.Instance()); len(pids) > 0 {
			t.Errorf("sandbox processes left after Close: %v", pids)
		}
	})
	waitOffered(t, p, size)
	return p, rec, r
}

// waitOffered waits until p has n booted sandboxes on offer.
func waitOffered(t *testing.T, p *Pool, n int) {
	t.Helper()
	testenv.WaitFor(t, fmt.Sprintf("%d pre-started sandboxes on offer", n), 20*time.Second, func() bool { return p.Stats().Ready >= n })
}

func run(t *testing.T, p *Pool, code string) *sandbox.Result {
	t.Helper()
	sb, err := p.StartWith(context.Background(), sandbox.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	return sb.Run(context.Background(), sandbox.Job{Code: code, Timeout: 20 * time.Second})
}

// TestRunsSeeNothingOfEachOther: run N+1 from the pool sees nothing of run N:
// files, globals, processes, timers.
func TestRunsSeeNothingOfEachOther(t *testing.T) {
	p, _, _ := newPool(t, 2)
	first := run(t, p, `
Deno.writeTextFileSync("/tmp/left-behind", "secret");
(globalThis as any).leaked = 42;
setInterval(() => console.log("tick from run 1"), 10);
new Deno.Command("/usr/bin/deno", { args: ["eval", "setTimeout(() => {}, 60000)"] }).spawn();
await new Promise((r) => setTimeout(r, 100));
Deno.exit(0);`)
	if first.Status != sandbox.StatusSuccess {
		t.Fatalf("run 1: %s %+v", first.Status, first.Error)
	}
	second := run(t, p, `
const pids = [...Deno.readDirSync("/proc")].map((e) => e.name).filter((n) => /^\d+$/.test(n));
let file = "absent";
try { file = Deno.readTextFileSync("/tmp/left-behind"); } catch { /* gone */ }
await new Promise((r) => setTimeout(r, 100));
export default { file, leaked: typeof (globalThis as any).leaked, pids };`)
	var got struct {
		File, Leaked string
		Pids         []string
	}
	if err := json.Unmarshal(second.ReturnValue, &got); err != nil || second.Status != sandbox.StatusSuccess {
		t.Fatalf("run 2: %s %s %+v", second.Status, second.ReturnValue, second.Error)
	}
	if got.File != "absent" || got.Leaked != "undefined" || len(got.Pids) != 1 || got.Pids[0] != "1" {
		t.Fatalf("run 2 saw run 1's state: %+v", got)
	}
	if second.Stdout != "" {
		t.Fatalf("run 1's timer printed into run 2: %q", second.Stdout)
	}
}

func TestTakesPrestarted(t *testing.T) {
	p, rec, _ := newPool(t, 1)
	before := rec.count()
	sb, err := p.StartWith(context.Background(), sandbox.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if !rec.had(sb) || before < 1 {
		t.Fatal("the sandbox handed out was not one the pool had pre-started")
	}
	if res := sb.Run(context.Background(), sandbox.Job{Code: "export default 7", Timeout: 10 * time.Second}); string(res.ReturnValue) != "7" {
		t.Fatalf("pooled run: %s %+v", res.ReturnValue, res.Error)
	}
	// A request the pool was not started for starts cold.
	n := rec.count()
	cold, err := p.StartWith(context.Background(), sandbox.StartOptions{ImportMap: []byte(`{"imports":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	if rec.count() < n+1 {
		t.Fatal("a request with another import map must start a sandbox cold")
	}
}

func TestShrinksWhenIdle(t *testing.T) {
	p, rec, r := newPool(t, 1)
	if len(leftovers.Processes(r.Instance())) == 0 {
		t.Fatal("no pre-started sandbox before going idle")
	}
	p.ShrinkWhenIdle(300 * time.Millisecond)
	testenv.WaitFor(t, "the pre-started sandboxes to be destroyed after the idle period", 10*time.Second, func() bool {
		return len(leftovers.Processes(r.Instance())) == 0
	})
	n := rec.count()
	if res := run(t, p, "export default 1"); res.Status != sandbox.StatusSuccess {
		t.Fatalf("the first request after a shrink: %s %+v", res.Status, res.Error)
	}
	// Its cold start, and the regrown pool's.
	testenv.WaitFor(t, "the pool to grow back after a request", 10*time.Second, func() bool { return rec.count() >= n+2 })
}

// TestRefillOneAtATimeWhileRunning: with nothing running the pool boots its sandboxes together
// (one per CPU); while sandboxes handed out run, their replacements boot one at a time, so the
// runs keep the other CPUs. Real sandboxes; the starter counts boots in flight.
func TestRefillOneAtATimeWhileRunning(t *testing.T) {
	r := sandboxtest.Runner(t, nil)
	rec := &recorder{r: r, started: map[*sandbox.Sandbox]bool{}}
	p := &Pool{r: rec}
	p.pipe = newPipeline(rec.boot, 2, 2, 2, nil)
	t.Cleanup(p.Close)
	waitOffered(t, p, 2)
	if n := rec.peak(); n != 2 {
		t.Fatalf("%d boots at once with nothing running, want 2 (one per CPU)", n)
	}
	rec.resetPeak()
	var sbs []*sandbox.Sandbox
	for range 2 {
		sb, err := p.StartWith(context.Background(), sandbox.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close()
		sbs = append(sbs, sb)
	}
	// Both taken and not yet run: the two replacements boot one after the other.
	waitOffered(t, p, 2)
	if n := rec.peak(); n != 1 {
		t.Fatalf("%d boots at once while sandboxes handed out were running, want 1", n)
	}
	for _, sb := range sbs {
		if res := sb.Run(context.Background(), sandbox.Job{Code: `"ran"`, Timeout: 20 * time.Second}); res.Status != sandbox.StatusSuccess {
			t.Fatalf("run: %+v", res)
		}
	}
	if st := p.Stats(); st.Warm != 2 || st.Cold != 0 || st.Waited != 0 {
		t.Fatalf("stats %+v, want 2 warm", st)
	}
}

// TestPooledNetwork: pooled sandboxes get the door before they are handed
// out, and two at once each see only their own connections (no cross-talk
// between doors).
func TestPooledNetwork(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "host saw %s", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	pol, err := egress.NewPolicy([]string{fmt.Sprintf("127.0.0.1:%d", port)}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	loopbackOnly := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ap, err := netip.ParseAddrPort(addr); err != nil || !ap.Addr().IsLoopback() {
			return nil, fmt.Errorf("test dialer: %q is not loopback", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	r := sandboxtest.Runner(t, func(o *sandbox.Options) {
		o.DenoFlags = []string{fmt.Sprintf("--allow-net=127.0.0.1:%d", port)}
		o.Net = &sandbox.NetOptions{Policy: pol, Dial: loopbackOnly}
	})
	rec := &recorder{r: r, started: map[*sandbox.Sandbox]bool{}}
	p := New(rec, 2, sandbox.StartOptions{}, nil)
	t.Cleanup(p.Close)
	waitOffered(t, p, 2) // before: only their starts were awaited, and StartWith could start cold
	var sbs []*sandbox.Sandbox
	for i := 0; i < 2; i++ {
		sb, err := p.StartWith(context.Background(), sandbox.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close()
		if !rec.had(sb) {
			t.Fatal("the sandbox handed out was not pre-started")
		}
		sbs = append(sbs, sb)
	}
	results := make([]*sandbox.Result, len(sbs))
	var wg sync.WaitGroup
	for i, sb := range sbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := fmt.Sprintf("export default await (await fetch('http://127.0.0.1:%d/run%d')).text()", port, i)
			results[i] = sb.Run(context.Background(), sandbox.Job{Code: code, Timeout: 20 * time.Second})
		}()
	}
	wg.Wait()
	for i, res := range results {
		var got string
		_ = json.Unmarshal(res.ReturnValue, &got)
		if want := fmt.Sprintf("host saw /run%d", i); got != want {
			t.Errorf("run %d: %q (status %s, %+v), want %q", i, got, res.Status, res.Error, want)
		}
		if len(res.Network) != 1 || !res.Network[0].Allowed || res.Network[0].Port != port {
			t.Errorf("run %d network records %+v, want exactly its own one connection", i, res.Network)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("host server saw %d requests, want 2", n)
	}
}

// TestSetKinds: a Set gives each kind it knows a pool of its own — one started at once, one
// lazily on its first request, which starts cold — and starts every other kind cold, so a
// sandbox is never handed out with another kind's flags or working directory.
func TestSetKinds(t *testing.T) {
	r := sandboxtest.RunnerWithRoot(t, func(o *rootfs.Options) { o.MountPoints = []string{"/conductor/work"} }, nil)
	rec := &recorder{r: r, started: map[*sandbox.Sandbox]bool{}}
	s := NewSet(rec, 1, 0, nil)
	t.Cleanup(s.Close)
	plain := sandbox.StartOptions{}
	launcher := sandbox.StartOptions{DenoFlags: []string{"--allow-read=/conductor/work"}, WorkDir: &sandbox.WorkDir{Path: "/conductor/work", Size: 1 << 20}}
	other := sandbox.StartOptions{ImportMap: []byte(`{"imports":{}}`)}
	s.Pool(plain)
	s.Lazy(launcher)
	// run starts a sandbox of kind so and reports the cwd and the flags its code sees.
	run := func(so sandbox.StartOptions) string {
		t.Helper()
		sb, err := s.StartWith(context.Background(), so)
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close()
		res := sb.Run(context.Background(), sandbox.Job{Code: `export default [Deno.cwd(), (await Deno.permissions.query({ name: "read", path: "/conductor/work" })).state].join(" ")`, Timeout: 10 * time.Second})
		if res.Status != sandbox.StatusSuccess {
			t.Fatalf("%s %+v %s", res.Status, res.Error, res.Stderr)
		}
		var v string
		_ = json.Unmarshal(res.ReturnValue, &v)
		return v
	}
	// waitReady waits until so's pool has its sandbox on offer.
	waitReady := func(so sandbox.StartOptions) {
		t.Helper()
		testenv.WaitFor(t, "a pre-started sandbox of "+so.Key(), 20*time.Second, func() bool {
			s.mu.Lock()
			p := s.pools[so.Key()]
			s.mu.Unlock()
			return p != nil && p.Stats().Ready >= 1
		})
	}
	waitReady(plain)
	before := rec.count() // the plain pool's filler
	if got := run(launcher); got != "/conductor/work granted" {
		t.Errorf("launcher kind: %q, want its working directory and grant", got)
	}
	waitReady(launcher)
	if got := run(launcher); got != "/conductor/work granted" {
		t.Errorf("pooled launcher kind: %q", got)
	}
	if got := run(plain); got != "/tmp prompt" && got != "/tmp denied" {
		t.Errorf("plain kind: %q, want /tmp without the launcher's grant", got)
	}
	if got := run(other); got != "/tmp prompt" && got != "/tmp denied" {
		t.Errorf("unknown kind: %q", got)
	}
	if n := rec.count() - before; n < 3 {
		t.Errorf("%d starts after the first fill; want the cold launcher start, its pool's fills and the unknown kind's cold start", n)
	}
	// An identity's kind of a pooled kind gets a lazy pool of its own; of an unknown kind, none.
	alice := sandbox.StartOptions{WorkspaceOf: "alice"}
	if got := run(alice); got != "/tmp prompt" && got != "/tmp denied" {
		t.Errorf("alice's kind: %q", got)
	}
	waitReady(alice)
	otherAlice := other
	otherAlice.WorkspaceOf = "alice"
	run(otherAlice)
	s.mu.Lock()
	_, pooled := s.pools[otherAlice.Key()]
	s.mu.Unlock()
	if pooled {
		t.Error("an unknown kind got a pool for alice")
	}
}
