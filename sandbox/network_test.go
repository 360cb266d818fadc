package sandbox

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// netHooks are the door's resolver and dialer in tests: names from a map,
// and connections to loopback only (machine rules); every dial recorded.
type netHooks struct {
	mu     sync.Mutex
	names  map[string][]netip.Addr
	dialed []string
}

func (h *netHooks) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, ok := h.names[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (h *netHooks) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	h.dialed = append(h.dialed, addr)
	h.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("test dialer: %q is not a loopback ip:port", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// hostServers starts what the sandbox may reach on the host's loopback: an
// HTTP server, and a listener that only counts (for unlisted ports).
func hostServers(t *testing.T) (httpPort, otherPort int, otherHits *atomic.Int32) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the host, %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	httpPort = srv.Listener.Addr().(*net.TCPAddr).Port
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	otherHits = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			otherHits.Add(1)
			c.Close()
		}
	}()
	return httpPort, ln.Addr().(*net.TCPAddr).Port, otherHits
}

// newNetRunner is a runner whose sandboxes get the door with these deno
// flags and this policy. New must succeed here: the test is about it.
func newNetRunner(t *testing.T, denoFlags []string, pol egress.Policy, h *netHooks) *Runner {
	t.Helper()
	o := testOptions(t)
	o.DenoFlags = denoFlags
	o.Net = &NetOptions{Policy: pol, Resolver: h.resolve, Dial: h.dial}
	r, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("runner with network: %v", err)
	}
	t.Cleanup(func() {
		instance := r.Instance()
		if err := r.Close(); err != nil {
			t.Errorf("runner close: %v", err)
		}
		assertNoLeftovers(t, o.StateDir, instance)
	})
	return r
}

func findRecord(recs []egress.Record, host string, port int) (egress.Record, bool) {
	for _, r := range recs {
		if r.Host == host && r.Port == port {
			return r, true
		}
	}
	return egress.Record{}, false
}

// TestNetworkRuns: code in a real sandbox reaches a loopback server the
// test started on the host through the admin's allow-net, by IP literal
// and by a listed name (resolved by the door's test resolver to 127.0.0.1,
// loopback granted), with fetch, Deno.connect, fetch over TLS,
// Deno.connectTls, WebSocket and Deno.resolveDns; deno
// refuses what its allow-net lacks with its own message.
func TestNetworkRuns(t *testing.T) {
	httpPort, otherPort, otherHits := hostServers(t)
	hp := strconv.Itoa(httpPort)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over TLS, %s", r.URL.Path)
	}))
	caPEM, leaf := testenv.LoopbackTLS(t)
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tp := strconv.Itoa(tlsSrv.Listener.Addr().(*net.TCPAddr).Port)
	wsSrv := httptest.NewServer(websocket.Server{Handler: func(c *websocket.Conn) {
		var msg string
		if websocket.Message.Receive(c, &msg) == nil {
			_ = websocket.Message.Send(c, "echo: "+msg)
		}
	}})
	t.Cleanup(wsSrv.Close)
	wp := strconv.Itoa(wsSrv.Listener.Addr().(*net.TCPAddr).Port)
	allow := []string{"127.0.0.1:" + hp, "svc.test:" + hp, "127.0.0.1:" + tp, "127.0.0.1:" + wp}
	pol, err := egress.NewPolicy(allow, false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	h := &netHooks{names: map[string][]netip.Addr{"svc.test": {netip.MustParseAddr("127.0.0.1")}}}
	r := newNetRunner(t, []string{"--allow-net=" + strings.Join(allow, ",")}, pol, h)

	code := fmt.Sprintf(`
const out: Record<string, string> = {};
const attempt = async (k: string, f: () => Promise<string>) => {
  try { out[k] = await f(); } catch (e) { out[k] = "ERR " + (e as Error).message; }
};
await attempt("fetchIP", async () => await (await fetch("http://127.0.0.1:%[1]s/ip")).text());
await attempt("fetchName", async () => await (await fetch("http://svc.test:%[1]s/name")).text());
await attempt("connect", async () => {
  const c = await Deno.connect({ hostname: "127.0.0.1", port: %[1]s });
  await c.write(new TextEncoder().encode("GET /raw HTTP/1.0\r\nHost: x\r\n\r\n"));
  let s = ""; const buf = new Uint8Array(4096);
  for (;;) { const n = await c.read(buf); if (n === null) break; s += new TextDecoder().decode(buf.subarray(0, n)); }
  c.close();
  return s.slice(s.indexOf("hello"));
});
const client = Deno.createHttpClient({ caCerts: [CA] });
await attempt("fetchTLS", async () => await (await fetch("https://127.0.0.1:%[3]s/tls", { client })).text());
await attempt("connectTls", async () => {
  const c = await Deno.connectTls({ hostname: "127.0.0.1", port: %[3]s, caCerts: [CA] });
  await c.write(new TextEncoder().encode("GET /rawtls HTTP/1.0\r\nHost: x\r\n\r\n"));
  let s = ""; const buf = new Uint8Array(4096);
  for (;;) { const n = await c.read(buf); if (n === null) break; s += new TextDecoder().decode(buf.subarray(0, n)); }
  c.close();
  return s.slice(s.indexOf("hello"));
});
await attempt("websocket", () => new Promise((resolve, reject) => {
  const ws = new WebSocket("ws://127.0.0.1:%[4]s/");
  ws.onopen = () => ws.send("hi");
  ws.onmessage = (e) => { resolve(String(e.data)); ws.close(); };
  ws.onerror = (e) => reject(new Error((e as ErrorEvent).message ?? "websocket error"));
}));
await attempt("resolve", async () => JSON.stringify(await Deno.resolveDns("svc.test", "A")));
await attempt("resolveUnlisted", async () => JSON.stringify(await Deno.resolveDns("unlisted.test", "A")));
await attempt("fetchOtherPort", async () => await (await fetch("http://127.0.0.1:%[2]d/")).text());
console.log(JSON.stringify(out));
await fetch("http://127.0.0.1:%[2]d/uncaught");
`, hp, otherPort, tp, wp)
	globals, _ := json.Marshal(map[string]string{"CA": caPEM})
	res, err := r.Run(context.Background(), Job{Code: code, Globals: globals, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The last fetch is uncaught: deno's refusal, told whose list it is.
	if res.Status != StatusError || res.Error == nil || res.Error.Type != ErrorPermission ||
		!strings.Contains(res.Error.Message, `net access to "127.0.0.1:`+strconv.Itoa(otherPort)+`" was refused`) ||
		!strings.Contains(res.Error.Message, "only its admin can (allow-net in MCP_CONDUCTOR_RUN_ARGS)") ||
		!strings.HasPrefix(res.Error.Cause, `Requires net access to "127.0.0.1:`) {
		t.Errorf("uncaught refusal: status %s, error %+v", res.Status, res.Error)
	}
	out := map[string]string{}
	if err := json.Unmarshal([]byte(lastLines(res.Stdout, 1)), &out); err != nil {
		t.Fatalf("stdout %q: %v", res.Stdout, err)
	}
	want := map[string]string{
		"fetchIP":         "hello from the host, GET /ip",
		"fetchName":       "hello from the host, GET /name",
		"connect":         "hello from the host, GET /raw",
		"resolve":         `["198.18.0.1"]`,
		"fetchTLS":        "hello over TLS, /tls",
		"connectTls":      "hello over TLS, /rawtls",
		"websocket":       "echo: hi",
		"resolveUnlisted": "ERR ",
		"fetchOtherPort":  `ERR Requires net access to "127.0.0.1:` + strconv.Itoa(otherPort) + `"`,
	}
	for k, w := range want {
		if !strings.HasPrefix(out[k], w) {
			t.Errorf("%s = %q, want it to start with %q", k, out[k], w)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the unlisted host port got %d connections", n)
	}
	for _, k := range []struct {
		host string
		port int
	}{{"127.0.0.1", httpPort}, {"svc.test", httpPort}} {
		rec, ok := findRecord(res.Network, k.host, k.port)
		if !ok || !rec.Allowed || rec.BytesOut == 0 || rec.BytesIn == 0 {
			t.Errorf("network record %s:%d = %+v (found %v), want allowed with bytes both ways; all: %+v", k.host, k.port, rec, ok, res.Network)
		}
	}
	if rec, ok := findRecord(res.Network, "unlisted.test", 0); !ok || rec.Allowed || !strings.Contains(rec.Reason, "allow-net") {
		t.Errorf("unlisted lookup record = %+v (found %v), want refused naming allow-net", rec, ok)
	}
}

// TestNetworkDoorBelowDeno: deno's check is looser than the door's (as
// with a deno bug, or FFI), and the door still refuses an unlisted port
// and an unlisted loopback address, records why, and dials nothing for
// them.
func TestNetworkDoorBelowDeno(t *testing.T) {
	httpPort, otherPort, otherHits := hostServers(t)
	hp := strconv.Itoa(httpPort)
	pol, err := egress.NewPolicy([]string{"127.0.0.1:" + hp}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &netHooks{}
	r := newNetRunner(t, []string{"--allow-net"}, pol, h)
	code := fmt.Sprintf(`
const out: Record<string, string> = {};
for (const [k, url] of [["listed", "http://127.0.0.1:%[1]s/"], ["otherPort", "http://127.0.0.1:%[2]d/"], ["otherAddr", "http://127.0.0.2:%[1]s/"], ["name", "http://unlisted.test:%[1]s/"]]) {
  try { out[k] = await (await fetch(url)).text(); } catch (e) { out[k] = "ERR " + (e as Error).message; }
}
export default out;
`, hp, otherPort)
	res, err := r.Run(context.Background(), Job{Code: code, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if err := json.Unmarshal(res.ReturnValue, &out); err != nil {
		t.Fatalf("return value %s (status %s, %+v): %v", res.ReturnValue, res.Status, res.Error, err)
	}
	if !strings.HasPrefix(out["listed"], "hello from the host") {
		t.Errorf("listed = %q, want the host server's answer", out["listed"])
	}
	for _, k := range []string{"otherPort", "otherAddr", "name"} {
		if !strings.HasPrefix(out[k], "ERR ") {
			t.Errorf("%s = %q, want an error", k, out[k])
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the unlisted host port got %d connections", n)
	}
	for _, k := range []struct {
		host string
		port int
	}{{"127.0.0.1", otherPort}, {"127.0.0.2", httpPort}, {"unlisted.test", 0}} {
		rec, ok := findRecord(res.Network, k.host, k.port)
		if !ok || rec.Allowed || !strings.Contains(rec.Reason, "not in the server's allow-net") {
			t.Errorf("record %s:%d = %+v (found %v), want refused: not in allow-net; all: %+v", k.host, k.port, rec, ok, res.Network)
		}
	}
	h.mu.Lock()
	dialed := append([]string(nil), h.dialed...)
	h.mu.Unlock()
	for _, d := range dialed {
		if d != "127.0.0.1:"+hp {
			t.Errorf("the door dialed %s, want only the listed 127.0.0.1:%s", d, hp)
		}
	}
}

// TestNetworkPolicyRefused: a policy that allows nothing is refused at New
// (a network grant must name something).
func TestNetworkPolicyRefused(t *testing.T) {
	o := testOptions(t)
	o.Net = &NetOptions{} // allows nothing
	_, err := New(context.Background(), o)
	if !errors.Is(err, egress.ErrNoNetwork) {
		t.Errorf("New with an empty policy: %v, want ErrNoNetwork", err)
	}
}

// closedPort is a loopback port nothing listens on (it was bound, then closed).
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestNetworkFailureMessages: a fetch the door fails says why. Code that catches it reads the
// cause deno keeps apart (the reset, the name that did not resolve) in e.message; an uncaught one
// is reported with the door's record — what was refused, why, and who can change it, or that the
// destination is allowed and the connection itself failed — and deno's text as the cause.
func TestNetworkFailureMessages(t *testing.T) {
	httpPort, otherPort, otherHits := hostServers(t)
	hp, op := strconv.Itoa(httpPort), strconv.Itoa(otherPort)
	closed := strconv.Itoa(closedPort(t))
	listed, err := egress.NewPolicy([]string{"127.0.0.1:" + hp, "127.0.0.1:" + closed}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	anyPublic, err := egress.NewPolicy(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		pol    egress.Policy
		url    string
		caught string   // in the caught error's message, after "fetch failed: "
		want   []string // in the uncaught error's message
		cause  string   // in its cause
	}{
		{
			// deno's own check is looser than the door's (as in TestNetworkDoorBelowDeno):
			// the responder refuses the name.
			name:   "unlisted name",
			pol:    listed,
			url:    "http://unlisted.test:" + hp + "/",
			caught: "unlisted.test",
			want: []string{"fetch failed: the server's network policy refused the name unlisted.test",
				"not in the server's allow-net (MCP_CONDUCTOR_RUN_ARGS); only the admin can add it"},
			cause: "fetch failed: ",
		},
		{
			name:   "unlisted port",
			pol:    listed,
			url:    "http://127.0.0.1:" + op + "/",
			caught: "Connection reset by peer",
			want: []string{"fetch failed: the server's network policy refused 127.0.0.1:" + op + ":",
				"not in the server's allow-net (MCP_CONDUCTOR_RUN_ARGS)"},
			cause: "Connection reset by peer",
		},
		{
			name:   "name the server cannot resolve",
			pol:    anyPublic,
			url:    "http://other.example/",
			caught: "Connection reset by peer",
			want:   []string{"fetch failed: the server cannot resolve the name other.example: no such host"},
			cause:  "Connection reset by peer",
		},
		{
			name:   "allowed, nothing listens",
			pol:    listed,
			url:    "http://127.0.0.1:" + closed + "/",
			caught: "Connection reset by peer",
			want:   []string{"fetch failed: cannot connect to 127.0.0.1:" + closed + ": connection refused (the server's network policy allows it"},
			cause:  "Connection reset by peer",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newNetRunner(t, []string{"--allow-net"}, tc.pol, &netHooks{})
			code := fmt.Sprintf(`
try { await fetch(%[1]q); } catch (e) { console.log(JSON.stringify((e as Error).message)); }
await fetch(%[1]q);
`, tc.url)
			res, err := r.Run(context.Background(), Job{Code: code, Timeout: testenv.Scale(30 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			var caught string
			if err := json.Unmarshal([]byte(lastLines(res.Stdout, 1)), &caught); err != nil {
				t.Fatalf("stdout %q: %v (status %s, %+v)", res.Stdout, err, res.Status, res.Error)
			}
			if !strings.HasPrefix(caught, "fetch failed: ") || !strings.Contains(caught, tc.caught) {
				t.Errorf("caught e.message = %q, want fetch failed: and %q", caught, tc.caught)
			}
			if res.Status != StatusError || res.Error == nil || res.Error.Type != ErrorRuntime || res.Error.Name != "TypeError" {
				t.Fatalf("uncaught: status %s, error %+v", res.Status, res.Error)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Error.Message, w) {
					t.Errorf("error.message = %q\nwant it to hold %q", res.Error.Message, w)
				}
			}
			if !strings.Contains(res.Error.Cause, tc.cause) {
				t.Errorf("error.cause = %q, want deno's text with %q", res.Error.Cause, tc.cause)
			}
			if !strings.HasPrefix(res.Error.Stack, "TypeError: fetch failed\n") || !strings.Contains(res.Error.Stack, "main.ts:3:") {
				t.Errorf("error.stack = %q, want deno's, at the code's line 3", res.Error.Stack)
			}
			t.Logf("caught: %s\nuncaught: %s\ncause: %s", caught, res.Error.Message, res.Error.Cause)
		})
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the unlisted host port got %d connections", n)
	}
}

// TestNetworkIPv6Refused: TCP over IPv6, which the door's redirect does not take, is refused at
// once (a reset) instead of hanging until the run's timeout: Deno.connect fails with
// ConnectionRefused, and an uncaught fetch is an error, not a timeout, whose message keeps
// deno's cause.
func TestNetworkIPv6Refused(t *testing.T) {
	pol, err := egress.NewPolicy(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newNetRunner(t, []string{"--allow-net"}, pol, &netHooks{})
	code := `
try { await Deno.connect({ hostname: "::1", port: 80 }); console.log("connected"); }
catch (e) { console.log(JSON.stringify([(e as Error).name, (e as Error).message])); }
await fetch("http://[::1]:1234/");
`
	res, err := r.Run(context.Background(), Job{Code: code, Timeout: testenv.Scale(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var connect []string
	if err := json.Unmarshal([]byte(lastLines(res.Stdout, 1)), &connect); err != nil {
		t.Fatalf("stdout %q: %v (status %s, %+v)", res.Stdout, err, res.Status, res.Error)
	}
	if len(connect) != 2 || connect[0] != "ConnectionRefused" {
		t.Errorf("Deno.connect([::1]:80) failed with %q, want ConnectionRefused", connect)
	}
	if res.Status != StatusError || res.Error == nil {
		t.Fatalf("fetch of [::1]: status %s (%+v), want an error, not a timeout", res.Status, res.Error)
	}
	if want := "fetch failed: error sending request for url (http://[::1]:1234/)"; !strings.HasPrefix(res.Error.Message, want) ||
		!strings.Contains(res.Error.Message, "Connection refused") || res.Error.Cause != "" {
		t.Errorf("fetch of [::1]: error %+v, want %q... with deno's Connection refused, not reworded", res.Error, want)
	}
	if len(res.Network) != 0 {
		t.Errorf("network records %+v, want none: IPv6 never reaches the door", res.Network)
	}
}
