package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// netRounds is how many interleaved rounds the network benchmarks run
// (BENCH_NET_ROUNDS, default 15).
func netRounds() int { return envInt("BENCH_NET_ROUNDS", 15) }

const (
	// netBurst is how many calls of one variant run back to back (each
	// starts as the previous one returns) per round; the first of a burst
	// comes after a settle and is not recorded.
	netBurst = 6
	// netAnswer is the x of the JSON the loopback HTTPS server answers.
	netAnswer = 42
	// undefinedJSON is the result of a program whose last expression is
	// console.log(…).
	undefinedJSON = `{"$type":"undefined"}`
)

// netFixture is what both network benchmarks share: a loopback HTTPS
// server with a throwaway CA, and two runners built as `conductor serve`
// builds its runner, one with MCP_CONDUCTOR_RUN_ARGS=allow-net=127.0.0.1:<port>
// (the door) and one with no network at all.
type netFixture struct {
	port    int
	url     string
	caPEM   string
	hits    atomic.Int64 // requests the HTTPS server answered
	runArgs []string     // the validated deno flags of the "on" runner
	on, off *sandbox.Runner
	// sec is a runner whose door puts the secret benchSecretName in for
	// benchSecretHost (resolved to 127.0.0.1 by a test resolver): its
	// requests there are intercepted (TLS terminated, HTTP proxied).
	sec        *sandbox.Runner
	secretHits atomic.Int64 // requests that arrived with the real value
	dir        string       // bare deno's scripts, DENO_DIR and HOME
}

func newNetFixture(b *testing.B) *netFixture {
	f := &netFixture{dir: b.TempDir()}
	caPEM, roots, leaf := testenv.TLSFor(b, "127.0.0.1", benchSecretHost)
	f.caPEM = caPEM
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		if r.Header.Get("Authorization") == "Bearer "+benchSecretValue {
			f.secretHits.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"x":%d}`, netAnswer)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	// HTTP/2, as most HTTPS APIs offer. Over HTTP/1.1 a Go TLS server sends
	// nothing after the client's Finished, so deno's request, written right
	// behind it, waits for the delayed ACK (Nagle on deno's side): +40 ms
	// per connection, bare and sandboxed alike, in every figure here. h2's
	// server preface carries that ACK.
	srv.EnableHTTP2 = true
	srv.StartTLS() // httptest listens on 127.0.0.1:0
	b.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	f.port = srv.Listener.Addr().(*net.TCPAddr).Port
	f.url = srv.URL + "/x"

	s, n := netSettings(b, "allow-net=127.0.0.1:"+strconv.Itoa(f.port))
	f.runArgs = s.RunArgs
	f.on = sandboxtest.Runner(b, func(o *sandbox.Options) {
		o.DenoFlags, o.Network, o.Net = s.RunArgs, s.Network, n
	})
	f.off = sandboxtest.Runner(b, nil)

	pol, err := egress.NewPolicy([]string{benchSecretHost}, false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		b.Fatal(err)
	}
	secrets, err := egress.NewSecrets([]egress.Secret{{Name: benchSecretName, Value: benchSecretValue, Hosts: []string{benchSecretHost}}})
	if err != nil {
		b.Fatal(err)
	}
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	f.sec = sandboxtest.Runner(b, func(o *sandbox.Options) {
		o.DenoFlags, o.Network = []string{"--allow-net=" + benchSecretHost}, true
		o.Net = &sandbox.NetOptions{Policy: pol, Secrets: secrets, UpstreamRoots: roots,
			Resolver: func(context.Context, string) ([]netip.Addr, error) { return lo, nil }}
	})
	return f
}

// The secret of the interception row.
const (
	benchSecretHost  = "bench.secret.test"
	benchSecretName  = "BENCH_TOKEN"
	benchSecretValue = "bench-real-value-0123456789"
)

// secretCode is fetchCode to the secret host, with the secret's
// placeholder as a bearer token; the sandbox trusts the door's CA itself.
func (f *netFixture) secretCode() string {
	return fmt.Sprintf(`const t0 = performance.now();
const r = await fetch("https://%s:%d/x", { headers: { Authorization: "Bearer " + Deno.env.get(%q) } });
const x = (await r.json()).x;
console.log(JSON.stringify({ x, ms: performance.now() - t0 }));
`, benchSecretHost, f.port, benchSecretName)
}

// bareSecretCode is what bare deno sends for it: the real value, directly.
func (f *netFixture) bareSecretCode() string {
	ca, _ := json.Marshal(f.caPEM)
	return fmt.Sprintf(`const c = Deno.createHttpClient({ caCerts: [%s] });
const t0 = performance.now();
const r = await fetch(%q, { client: c, headers: { Authorization: "Bearer %s" } });
const x = (await r.json()).x;
console.log(JSON.stringify({ x, ms: performance.now() - t0 }));
`, ca, f.url, benchSecretValue)
}

// withSecret wraps a variant: it fails unless the server got exactly one
// request carrying the real value during it.
func (f *netFixture) withSecret(run runFunc) runFunc {
	return func() (time.Duration, time.Duration, error) {
		before := f.secretHits.Load()
		d, in, err := run()
		if got := f.secretHits.Load() - before; err == nil && got != 1 {
			err = fmt.Errorf("the HTTPS server got %d requests with the real value, want 1", got)
		}
		return d, in, err
	}
}

// netSettings validates runArgs as the admin's MCP_CONDUCTOR_RUN_ARGS and
// turns them into the door's options the way cmd/conductor's netOptions
// does (allow-net list, deny-net, private grants).
func netSettings(b *testing.B, runArgs string) (config.Settings, *sandbox.NetOptions) {
	env := map[string]string{config.VarRunArgs: runArgs}
	s, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		b.Fatalf("settings: %v", err)
	}
	if !s.Network || s.NetHosts == nil {
		b.Fatalf("settings for %q: network %v, hosts %v; want a listed network", runArgs, s.Network, s.NetHosts)
	}
	pol, err := egress.NewPolicy(s.NetHosts, false, s.NetPrivate)
	if err == nil {
		pol, err = pol.WithDeny(s.NetDeny)
	}
	if err == nil {
		err = pol.Validate()
	}
	if err != nil {
		b.Fatalf("network policy: %v", err)
	}
	return s, &sandbox.NetOptions{Policy: pol}
}

// fetchCode is the program that makes the one HTTPS request (the CA
// inlined as a string literal) and prints the JSON's x with the time the
// request took inside the code (fetch and body, by performance.now).
func (f *netFixture) fetchCode() string {
	ca, _ := json.Marshal(f.caPEM)
	return fmt.Sprintf(`const c = Deno.createHttpClient({ caCerts: [%s] });
const t0 = performance.now();
const r = await fetch(%q, { client: c });
const x = (await r.json()).x;
console.log(JSON.stringify({ x, ms: performance.now() - t0 }));
`, ca, f.url)
}

// againCode follows fetchCode: a second request on a new client, so a new
// TCP connection and TLS handshake once deno's fetch and TLS are
// initialized; it prints the same way.
func (f *netFixture) againCode() string {
	ca, _ := json.Marshal(f.caPEM)
	return fmt.Sprintf(`const c2 = Deno.createHttpClient({ caCerts: [%s] });
const t2 = performance.now();
const x2 = (await (await fetch(%q, { client: c2 })).json()).x;
console.log(JSON.stringify({ x: x2, ms: performance.now() - t2 }));
`, ca, f.url)
}

// fetched checks what fetchCode printed and returns the in-code time.
func fetched(stdout string) (time.Duration, error) {
	ds, err := fetchedAll(stdout, 1)
	if err != nil {
		return 0, err
	}
	return ds[0], nil
}

// fetchedAll checks the n lines that fetchCode (and againCode) printed and
// returns each request's in-code time.
func fetchedAll(stdout string, n int) ([]time.Duration, error) {
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != n {
		return nil, fmt.Errorf("the fetch printed %q, want %d lines", stdout, n)
	}
	ds := make([]time.Duration, n)
	for i, line := range lines {
		var out struct {
			X  int     `json:"x"`
			Ms float64 `json:"ms"`
		}
		if err := json.Unmarshal([]byte(line), &out); err != nil || out.X != netAnswer || out.Ms <= 0 {
			return nil, fmt.Errorf("the fetch printed %q, want x %d and its time (%v)", line, netAnswer, err)
		}
		ds[i] = time.Duration(out.Ms * float64(time.Millisecond))
	}
	return ds, nil
}

// printed checks that a program printed want.
func printed(want string) func(string) (time.Duration, error) {
	return func(stdout string) (time.Duration, error) {
		if stdout != want {
			return 0, fmt.Errorf("printed %q, want %q", stdout, want)
		}
		return 0, nil
	}
}

// script writes code for bare deno and returns its path.
func (f *netFixture) script(b *testing.B, name, code string) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(code), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// runFunc is one call of a variant: its wall time, the time the code
// measured itself (0 if it does not), and whether it did what it should.
type runFunc func() (wall, inCode time.Duration, err error)

// bare returns a function that runs script with bare `deno run` (flags
// before it) and checks its output with check.
func (f *netFixture) bare(deno, script string, check func(string) (time.Duration, error), flags ...string) runFunc {
	return func() (time.Duration, time.Duration, error) {
		cmd := exec.Command(deno, append(append([]string{"run", "--no-prompt"}, flags...), script)...)
		cmd.Env = []string{"DENO_DIR=" + filepath.Join(f.dir, "deno-dir"), "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1", "HOME=" + f.dir}
		t0 := time.Now()
		out, err := cmd.Output()
		d := time.Since(t0)
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			return d, 0, fmt.Errorf("bare deno: %w: %s", err, ee.Stderr)
		} else if err != nil {
			return d, 0, err
		}
		in, err := check(string(out))
		return d, in, err
	}
}

// counted wraps a variant that makes the HTTPS request: it fails unless the
// server answered exactly one request during it.
func (f *netFixture) counted(run runFunc) runFunc {
	return func() (time.Duration, time.Duration, error) {
		before := f.hits.Load()
		d, in, err := run()
		if err == nil {
			err = f.answered(before, 1)
		}
		return d, in, err
	}
}

// answered says whether the server answered n requests since it had
// answered before.
func (f *netFixture) answered(before int64, n int) error {
	if got := f.hits.Load() - before; got != int64(n) {
		return fmt.Errorf("the HTTPS server answered %d requests during one run, want %d", got, n)
	}
	return nil
}

// warmEngine is an engine on a pool configured as `conductor serve`
// configures them (default pool size, concurrency and timeouts), closed at
// Cleanup.
func warmEngine(b *testing.B, r *sandbox.Runner) *engine.Engine {
	s, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	p := pool.New(r, s.PoolSize, sandbox.StartOptions{}, nil)
	e := engine.New(engine.Options{
		Sandboxes:      p,
		DefaultTimeout: s.DefaultTimeout,
		MaxTimeout:     s.MaxTimeout,
		MaxConcurrency: s.MaxConcurrency,
		MaxQueue:       s.MaxQueue,
	})
	b.Cleanup(func() {
		e.Shutdown()
		p.Close()
	})
	return e
}

// warmRun returns a function that executes code through e and checks that
// it returned want (JSON) and what it printed, with check.
func warmRun(e *engine.Engine, code, want string, check func(string) (time.Duration, error)) runFunc {
	return func() (time.Duration, time.Duration, error) {
		t0 := time.Now()
		res, err := e.Execute(context.Background(), engine.Request{Code: code, Timeout: 30 * time.Second})
		d := time.Since(t0)
		if err != nil {
			return d, 0, err
		}
		if res.Status != sandbox.StatusSuccess || string(res.ReturnValue) != want {
			return d, 0, fmt.Errorf("warm run: status %s, return %s (want %s), stdout %q, error %+v, stderr %.500q",
				res.Status, res.ReturnValue, want, res.Stdout, res.Error, res.Stderr)
		}
		in, err := check(res.Stdout)
		return d, in, err
	}
}

// netVariant is one timed variant, spaced and back to back; in* hold the
// time the code measured itself, for variants that measure one.
type netVariant struct {
	run                          runFunc
	spaced, b2b, inSpaced, inB2B *sample
}

func newNetVariant(name string, run runFunc) *netVariant {
	return &netVariant{run: run, spaced: &sample{name: name}, b2b: &sample{name: name},
		inSpaced: &sample{name: name}, inB2B: &sample{name: name}}
}

func (v *netVariant) once(b *testing.B, into, inCode *sample) {
	d, in, err := v.run()
	if err != nil {
		b.Fatalf("%s: %v", v.spaced.name, err)
	}
	if into != nil {
		into.d = append(into.d, d)
		if in > 0 {
			inCode.d = append(inCode.d, in)
		}
	}
}

// spacedCall records one call after a settle (suiteSettle).
func (v *netVariant) spacedCall(b *testing.B) {
	time.Sleep(suiteSettle)
	v.once(b, v.spaced, v.inSpaced)
}

// burst runs netBurst calls back to back after a settle and records all but
// the first.
func (v *netVariant) burst(b *testing.B) {
	time.Sleep(suiteSettle)
	v.once(b, nil, nil)
	for range netBurst - 1 {
		v.once(b, v.b2b, v.inB2B)
	}
}

// BenchmarkNetworkWarmRun is issue 10's warm-run row: code making one
// allowed HTTPS request (Deno.createHttpClient with a throwaway CA, fetch of
// a loopback server, the JSON's x printed and returned) in a pre-started
// sandbox behind the door, through the engine and pool as `conductor serve`
// runs it, vs bare `deno run --allow-net=127.0.0.1:<port>` of the same code;
// the request's own time inside the code (performance.now) on both sides;
// and the same warm run of a trivial program with the network on (door
// wired) and off, vs bare deno of it: what the door costs a run that makes
// no request. Variants are interleaved round by round, each both spaced (a
// settle before every call) and back to back. It reports; it asserts no
// timing.
func BenchmarkNetworkWarmRun(b *testing.B) {
	deno, _ := paths(b)
	f := newNetFixture(b)
	engOn, engOff, engSec := warmEngine(b, f.on), warmEngine(b, f.off), warmEngine(b, f.sec)

	code := f.fetchCode()
	fetchScript := f.script(b, "fetch.ts", code)
	helloScript := f.script(b, "hello.ts", hello)
	allowNet := "--allow-net=127.0.0.1:" + strconv.Itoa(f.port)

	bareHTTPS := newNetVariant("bare deno run, 1 HTTPS fetch (base)", f.counted(f.bare(deno, fetchScript, fetched, allowNet)))
	// The same code; the sandboxed run also returns x.
	warmHTTPS := newNetVariant("warm run, 1 HTTPS fetch (door)", f.counted(warmRun(engOn, code+"x\n", strconv.Itoa(netAnswer), fetched)))
	bareHello := newNetVariant("bare deno run hello (base)", f.bare(deno, helloScript, printed("hello\n")))
	warmOff := newNetVariant("warm run hello, network off", warmRun(engOff, hello, undefinedJSON, printed("hello\n")))
	warmOn := newNetVariant("warm run hello, network on (door)", warmRun(engOn, hello, undefinedJSON, printed("hello\n")))
	secCode := f.secretCode()
	bareSecret := newNetVariant("bare deno run, 1 HTTPS fetch with a token (base)",
		f.withSecret(f.bare(deno, f.script(b, "secret.ts", f.bareSecretCode()), fetched, allowNet)))
	warmSecret := newNetVariant("warm run, 1 HTTPS fetch, secret put in (door intercepts)",
		f.withSecret(warmRun(engSec, secCode+"x\n", strconv.Itoa(netAnswer), fetched)))
	all := []*netVariant{bareHTTPS, warmHTTPS, bareHello, warmOff, warmOn, bareSecret, warmSecret}

	// Warm the page cache, deno's caches and each path once, unmeasured.
	for _, v := range all {
		v.spacedCall(b)
		v.spaced.d, v.inSpaced.d = nil, nil
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range netRounds() {
			for _, v := range all {
				v.spacedCall(b)
			}
			for _, v := range all {
				v.burst(b)
			}
		}
	}
	b.StopTimer()

	var out strings.Builder
	for _, shape := range []struct {
		title      string
		pick, inCo func(*netVariant) *sample
	}{
		{fmt.Sprintf("spaced (%v settle before each call)", suiteSettle),
			func(v *netVariant) *sample { return v.spaced }, func(v *netVariant) *sample { return v.inSpaced }},
		{fmt.Sprintf("back to back (bursts of %d, the first not recorded)", netBurst),
			func(v *netVariant) *sample { return v.b2b }, func(v *netVariant) *sample { return v.inB2B }},
	} {
		base, https := shape.pick(bareHTTPS), shape.pick(warmHTTPS)
		inBase, inHTTPS := shape.inCo(bareHTTPS), shape.inCo(warmHTTPS)
		inBase.name, inHTTPS.name = "  in code: fetch+json, bare (base)", "  in code: fetch+json, warm (door)"
		bh, off, on := shape.pick(bareHello), shape.pick(warmOff), shape.pick(warmOn)
		fmt.Fprintf(&out, "%s:\n", shape.title)
		printTable(&out, base, https)
		fmt.Fprintf(&out, "  p95: bare %.2f ms, warm %.2f ms, warm/bare %.2f\n", ms(base.quantile(0.95)), ms(https.quantile(0.95)), ratioQ(https, base, 0.95))
		printTable(&out, inBase, inHTTPS)
		fmt.Fprintf(&out, "  the request inside the code, door - bare: p50 %+.2f ms, p95 %+.2f ms\n",
			ms(inHTTPS.quantile(0.5))-ms(inBase.quantile(0.5)), ms(inHTTPS.quantile(0.95))-ms(inBase.quantile(0.95)))
		printTable(&out, bh, off, on)
		fmt.Fprintf(&out, "  door per warm run without a request (on - off): p50 %+.2f ms, p95 %+.2f ms; on/off p50 %.2f\n",
			ms(on.quantile(0.5))-ms(off.quantile(0.5)), ms(on.quantile(0.95))-ms(off.quantile(0.95)), ratioQ(on, off, 0.5))
		sb, sw := shape.pick(bareSecret), shape.pick(warmSecret)
		isb, isw := shape.inCo(bareSecret), shape.inCo(warmSecret)
		isb.name, isw.name = "  in code: fetch+json with token, bare (base)", "  in code: fetch+json, secret put in by the door"
		printTable(&out, sb, sw)
		printTable(&out, isb, isw)
		fmt.Fprintf(&out, "  the request inside the code, intercepted - bare: p50 %+.2f ms, p95 %+.2f ms\n",
			ms(isw.quantile(0.5))-ms(isb.quantile(0.5)), ms(isw.quantile(0.95))-ms(isb.quantile(0.95)))
	}
	// The table goes to stdout whole (benchmark logs are cut at 10 lines).
	fmt.Printf("BenchmarkNetworkWarmRun: %d interleaved rounds on %d CPUs, door allow-net=127.0.0.1:%d, pool %d:\n%s",
		netRounds(), runtime.NumCPU(), f.port, config.DefaultPoolSize, out.String())

	b.ReportMetric(ms(bareHTTPS.spaced.quantile(0.5)), "bare-https-p50-ms")
	b.ReportMetric(ratioQ(warmHTTPS.spaced, bareHTTPS.spaced, 0.5), "https-warm/bare-p50")
	b.ReportMetric(ratioQ(warmHTTPS.b2b, bareHTTPS.b2b, 0.5), "https-warm/bare-b2b-p50")
	b.ReportMetric(ms(warmOn.spaced.quantile(0.5))-ms(warmOff.spaced.quantile(0.5)), "door-warm-p50-ms")
	b.ReportMetric(ratioQ(warmSecret.spaced, bareSecret.spaced, 0.5), "secret-warm/bare-p50")
}

// BenchmarkNetworkPoolBoot is what wiring the door adds to a pooled
// sandbox's boot: the time Runner.StartWith takes, with the options the pool
// starts sandboxes with, from creation to ready (deno booted into the
// bootstrap, the door wired: what the pool hands out), with the network on
// (allow-net=127.0.0.1:<port>) and off, vs bare `deno run` of hello. Each
// booted sandbox is then checked, outside the boot's time: the "on" one
// fetches from the loopback HTTPS server through its door, the "off" one
// runs hello. The "on" check makes two requests, the second on a new
// client; their own times (performance.now in the code) are compared with
// bare deno making them, with nothing else booting: the second (a new
// connection and handshake, deno's fetch and TLS initialized) is the
// door's cost per connection. Variants are interleaved, a settle before
// each. It reports; it asserts no timing.
func BenchmarkNetworkPoolBoot(b *testing.B) {
	deno, _ := paths(b)
	f := newNetFixture(b)
	ctx := context.Background()
	bare := &sample{name: "bare deno run hello (baseline)"}
	bootOff := &sample{name: "pooled boot, network off"}
	bootOn := &sample{name: "pooled boot, network on (door)"}
	bareHello := f.bare(deno, f.script(b, "hello.ts", hello), printed("hello\n"))

	runBare := func() {
		time.Sleep(suiteSettle)
		d, _, err := bareHello()
		if err != nil {
			b.Fatal(err)
		}
		bare.d = append(bare.d, d)
	}
	// boot times one start as pool.fill makes it, then checks the sandbox.
	boot := func(r *sandbox.Runner, into *sample, job sandbox.Job, check func(*sandbox.Result) error) {
		time.Sleep(suiteSettle)
		t0 := time.Now()
		sb, err := r.StartWith(ctx, sandbox.StartOptions{})
		d := time.Since(t0)
		if err != nil {
			b.Fatalf("%s: %v", into.name, err)
		}
		res := sb.Run(ctx, job)
		sb.Close()
		if err := check(res); err != nil {
			b.Fatalf("%s: the booted sandbox's run: %v: status %s, return %s, stdout %q, error %+v, network %+v",
				into.name, err, res.Status, res.ReturnValue, res.Stdout, res.Error, res.Network)
		}
		into.d = append(into.d, d)
	}
	// The requests' own times inside the code, with no other sandbox
	// booting, through the door (the "on" check) and in bare deno: the
	// first (deno initializes fetch and TLS) and a second on a new client
	// (a new connection and handshake, deno initialized).
	reqBare := &sample{name: "in code: 1st conn, bare (base)"}
	reqDoor := &sample{name: "in code: 1st conn, door"}
	req2Bare := &sample{name: "in code: new conn, bare (base)"}
	req2Door := &sample{name: "in code: new conn, door"}
	code := f.fetchCode() + f.againCode()
	record := func(stdout string, first, second *sample) error {
		ds, err := fetchedAll(stdout, 2)
		if err != nil {
			return err
		}
		first.d, second.d = append(first.d, ds[0]), append(second.d, ds[1])
		return nil
	}
	bareFetch := f.bare(deno, f.script(b, "fetch.ts", code),
		func(stdout string) (time.Duration, error) { return 0, record(stdout, reqBare, req2Bare) },
		"--allow-net=127.0.0.1:"+strconv.Itoa(f.port))
	runBareFetch := func() {
		time.Sleep(suiteSettle)
		before := f.hits.Load()
		_, _, err := bareFetch()
		if err == nil {
			err = f.answered(before, 2)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	fetchJob := sandbox.Job{Code: code + "export default x + x2;\n", Timeout: 30 * time.Second}
	helloJob := sandbox.Job{Code: hello, Timeout: 30 * time.Second}
	runOn := func() {
		before := f.hits.Load()
		boot(f.on, bootOn, fetchJob, func(res *sandbox.Result) error {
			if res.Status != sandbox.StatusSuccess || string(res.ReturnValue) != strconv.Itoa(2*netAnswer) {
				return errors.New("the fetches did not return 2x")
			}
			if err := f.answered(before, 2); err != nil {
				return err
			}
			return record(res.Stdout, reqDoor, req2Door)
		})
	}
	runOff := func() {
		boot(f.off, bootOff, helloJob, func(res *sandbox.Result) error {
			if res.Status != sandbox.StatusSuccess || res.Stdout != "hello\n" {
				return errors.New("hello did not print hello")
			}
			return nil
		})
	}

	// Warm the page cache and deno's caches once, unmeasured.
	runBare()
	runOff()
	runOn()
	runBareFetch()
	for _, s := range []*sample{bare, bootOff, bootOn, reqBare, reqDoor, req2Bare, req2Door} {
		s.d = nil
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range netRounds() * 2 {
			runBare()
			runOff()
			runOn()
			runBareFetch()
		}
	}
	b.StopTimer()

	var out strings.Builder
	printTable(&out, bare, bootOff, bootOn)
	fmt.Fprintf(&out, "  door wiring per pooled boot (on - off): p50 %+.2f ms, p90 %+.2f ms; on/off p50 %.2f\n",
		ms(bootOn.quantile(0.5))-ms(bootOff.quantile(0.5)), ms(bootOn.quantile(0.9))-ms(bootOff.quantile(0.9)), ratioQ(bootOn, bootOff, 0.5))
	fmt.Fprintf(&out, "the booted sandbox's HTTPS requests, timed inside the code, nothing else booting:\n")
	for _, pair := range [][2]*sample{{reqBare, reqDoor}, {req2Bare, req2Door}} {
		printTable(&out, pair[0], pair[1])
		fmt.Fprintf(&out, "  door - bare: p50 %+.2f ms, p90 %+.2f ms\n",
			ms(pair[1].quantile(0.5))-ms(pair[0].quantile(0.5)), ms(pair[1].quantile(0.9))-ms(pair[0].quantile(0.9)))
	}
	fmt.Printf("BenchmarkNetworkPoolBoot: %d interleaved rounds on %d CPUs, door allow-net=127.0.0.1:%d:\n%s",
		netRounds()*2, runtime.NumCPU(), f.port, out.String())

	b.ReportMetric(ms(bare.quantile(0.5)), "bare-p50-ms")
	b.ReportMetric(ratioQ(bootOff, bare, 0.5), "boot-off/bare-p50")
	b.ReportMetric(ratioQ(bootOn, bare, 0.5), "boot-on/bare-p50")
	b.ReportMetric(ms(bootOn.quantile(0.5))-ms(bootOff.quantile(0.5)), "door-boot-p50-ms")
	b.ReportMetric(ms(reqDoor.quantile(0.5))-ms(reqBare.quantile(0.5)), "door-1st-request-p50-ms")
	b.ReportMetric(ms(req2Door.quantile(0.5))-ms(req2Bare.quantile(0.5)), "door-new-conn-p50-ms")
}
