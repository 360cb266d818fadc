package sandbox

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// seenHeaders is a test server's record of the Authorization headers it got.
type seenHeaders struct {
	mu   sync.Mutex
	auth map[string][]string // path -> values
}

func (s *seenHeaders) add(path, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auth == nil {
		s.auth = map[string][]string{}
	}
	s.auth[path] = append(s.auth[path], v)
}

func (s *seenHeaders) get(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth[path]
}

// echoServer answers with the Authorization header it got, in a header and
// in the body: what a careless API does with a token.
func echoServer(t *testing.T, cert *tls.Certificate, seen *seenHeaders) int {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		seen.add(r.URL.Path, a)
		w.Header().Set("X-Echo", a)
		_ = json.NewEncoder(w).Encode(map[string]string{"auth": a, "path": r.URL.Path})
	})
	var srv *httptest.Server
	if cert != nil {
		srv = httptest.NewUnstartedServer(h)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		srv.StartTLS()
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// TestSecretsReachOnlyTheirHost: GITHUB_TOKEN may go to api.secret.test
// only. Code in a real sandbox (deno wide open: allow-all) sends its
// placeholder to that host (a token header, Basic credentials, node:https)
// and to another allowed host over HTTPS and plain HTTP. The secret host's
// server sees the real value; the other sees only the placeholder; the
// secret host's echo of the value comes back as the placeholder; the
// sandbox's environment, files and memory (read from the host while the
// code waits) never hold the real value, and the placeholder is there (the
// scan's own control). The network list records which secret went where
// and the placeholder that went out as is.
func TestSecretsReachOnlyTheirHost(t *testing.T) {
	real := "ghp_REALVALUE_" + strconv.FormatInt(time.Now().UnixNano(), 36) + "_never_in_a_sandbox"
	upstreamPEM, pool, cert := testenv.TLSFor(t, "api.secret.test", "other.test")
	secretSeen, otherSeen, plainSeen := &seenHeaders{}, &seenHeaders{}, &seenHeaders{}
	pa := echoServer(t, &cert, secretSeen)
	pb := echoServer(t, &cert, otherSeen)
	pc := echoServer(t, nil, plainSeen)
	// The code waits on this server's answer while the test reads its
	// memory: no fixed sleep, however slow the host.
	scanned := make(chan struct{})
	waitSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-scanned:
		case <-time.After(60 * time.Second):
		}
		fmt.Fprint(w, "scanned")
	}))
	t.Cleanup(waitSrv.Close)
	pw := waitSrv.Listener.Addr().(*net.TCPAddr).Port
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	h := &netHooks{names: map[string][]netip.Addr{"api.secret.test": lo, "other.test": lo, "plain.test": lo, "wait.test": lo}}
	pol, err := egress.NewPolicy([]string{"api.secret.test", "other.test", "plain.test", "wait.test"}, false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := egress.NewSecrets([]egress.Secret{{Name: "GITHUB_TOKEN", Value: real, Hosts: []string{"api.secret.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	placeholder := secrets.Placeholder("GITHUB_TOKEN")
	o := testOptions(t)
	o.DenoFlags = []string{"--allow-all"}
	o.Net = &NetOptions{Policy: pol, Resolver: h.resolve, Dial: h.dial, Secrets: secrets, UpstreamRoots: pool}
	r, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("runner with secrets: %v", err)
	}
	t.Cleanup(func() {
		instance := r.Instance()
		if err := r.Close(); err != nil {
			t.Errorf("runner close: %v", err)
		}
		assertNoLeftovers(t, o.StateDir, instance)
	})

	code := fmt.Sprintf(`
const tok = Deno.env.get("GITHUB_TOKEN");
const hdr = { Authorization: "token " + tok };
const a = await fetch("https://api.secret.test:%[1]d/token", { headers: hdr });
const aBody = await a.text();
const aEcho = a.headers.get("x-echo");
const basic = await (await fetch("https://api.secret.test:%[1]d/basic", { headers: { Authorization: "Basic " + btoa("user:" + tok) } })).text();
const https = await import("node:https");
const viaNode = await new Promise((resolve, reject) => {
  https.get("https://api.secret.test:%[1]d/node", { headers: hdr }, (res) => {
    let s = ""; res.on("data", (c) => s += c); res.on("end", () => resolve(s));
  }).on("error", reject);
});
// other.test is not intercepted: the code trusts its server's own CA.
const client = Deno.createHttpClient({ caCerts: [%[4]q] });
const other = await (await fetch("https://other.test:%[2]d/other", { headers: hdr, client })).text();
const plain = await (await fetch("http://plain.test:%[3]d/plain", { headers: hdr })).text();
// Fronting: a connection to the secret host asking for another host.
const conn = await Deno.connectTls({ hostname: "api.secret.test", port: %[1]d });
await conn.write(new TextEncoder().encode("GET /front HTTP/1.1\r\nHost: other.test:%[2]d\r\nAuthorization: token " + tok + "\r\nConnection: close\r\n\r\n"));
let front = "";
const fb = new Uint8Array(4096);
for (let n; (n = await conn.read(fb)) !== null;) front += new TextDecoder().decode(fb.subarray(0, n));
conn.close();
const trust = [...Deno.readDirSync("/conductor/trust")].map((e) => e.name);
const environ = Deno.readTextFileSync("/proc/self/environ");
const ca = Deno.readTextFileSync("/conductor/trust/ca.pem");
console.log("waiting for the memory scan");
const waited = await (await fetch("http://wait.test:%[5]d/")).text();
export default { front, tok, aBody, aEcho, basic, viaNode, other, plain, trust, environ, env: Deno.env.toObject(), ca };
`, pa, pb, pc, upstreamPEM, pw)

	// While the code waits, read the sandbox's memory from the host.
	type scan struct {
		pid               int
		real, placeholder bool
		bytes             int64
		err               error
	}
	scanc := make(chan scan, 1)
	go func() {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if len(otherSeen.get("/other")) > 0 && len(plainSeen.get("/plain")) > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		pid := pidWithEnv([]byte("GITHUB_TOKEN=" + placeholder))
		if pid == 0 {
			close(scanned)
			scanc <- scan{err: fmt.Errorf("no process has GITHUB_TOKEN=<placeholder> in its environment")}
			return
		}
		s := scan{pid: pid}
		s.real, s.placeholder, s.bytes, s.err = scanMemory(pid, []byte(real), []byte(placeholder))
		close(scanned)
		scanc <- s
	}()

	res, err := r.Run(t.Context(), Job{Code: code, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != StatusSuccess {
		t.Fatalf("status %s, error %+v, stderr %s, network %+v", res.Status, res.Error, res.Stderr, res.Network)
	}
	var got struct {
		Front, Tok, ABody, AEcho, Basic, ViaNode, Other, Plain, Environ, Ca string
		Trust                                                               []string
		Env                                                                 map[string]string
	}
	if err := json.Unmarshal(res.ReturnValue, &got); err != nil {
		t.Fatalf("return value %s: %v", res.ReturnValue, err)
	}

	// What the servers saw.
	want := map[string]struct {
		seen *seenHeaders
		path string
		val  string
	}{
		"secret host, token header": {secretSeen, "/token", "token " + real},
		"secret host, node:https":   {secretSeen, "/node", "token " + real},
		"other HTTPS host":          {otherSeen, "/other", "token " + placeholder},
		"other plain HTTP host":     {plainSeen, "/plain", "token " + placeholder},
	}
	for name, w := range want {
		if got := w.seen.get(w.path); len(got) != 1 || got[0] != w.val {
			t.Errorf("%s saw %q, want [%q]", name, got, w.val)
		}
	}
	if !strings.HasPrefix(got.Front, "HTTP/1.1 421") || len(secretSeen.get("/front"))+len(otherSeen.get("/front")) != 0 {
		t.Errorf("a request for other.test on the connection to api.secret.test: %q (servers saw %q, %q), want 421 and nothing sent",
			got.Front, secretSeen.get("/front"), otherSeen.get("/front"))
	}
	if b := secretSeen.get("/basic"); len(b) != 1 || b[0] != "Basic "+b64("user:"+real) {
		t.Errorf("secret host's Basic credentials: %q, want user:<real value>", b)
	}

	// What the sandbox saw.
	if got.Tok != placeholder || !strings.HasPrefix(got.Tok, "conductor-secret-GITHUB_TOKEN-") {
		t.Errorf("code saw GITHUB_TOKEN=%q, want the placeholder %q", got.Tok, placeholder)
	}
	if !strings.Contains(got.ABody, placeholder) || got.AEcho != "token "+placeholder {
		t.Errorf("the secret host's echo reached the code as body %q, header %q: want the placeholder back", got.ABody, got.AEcho)
	}
	// The CA certificate, and with the tools' CA bundle (helpers_test.go) its copy with the CA.
	wantTrust := []string{"ca.pem"}
	if o.CABundle != "" {
		wantTrust = append(wantTrust, CABundleName)
	}
	slices.Sort(got.Trust)
	slices.Sort(wantTrust)
	if !slices.Equal(got.Trust, wantTrust) || !strings.Contains(got.Ca, "BEGIN CERTIFICATE") || strings.Contains(got.Ca, "PRIVATE") {
		t.Errorf("/conductor/trust holds %v (ca.pem %d bytes): want only %v, the CA certificate", got.Trust, len(got.Ca), wantTrust)
	}
	if all := string(res.ReturnValue) + res.Stdout + res.Stderr; strings.Contains(all, real) {
		t.Errorf("the real value reached the code: %s", all)
	}
	if !strings.Contains(got.Environ, placeholder) {
		t.Errorf("/proc/self/environ lacks the placeholder (control): %q", got.Environ)
	}

	// The sandbox's memory.
	s := <-scanc
	switch {
	case s.err != nil:
		t.Errorf("memory scan: %v", s.err)
	case !s.placeholder:
		t.Errorf("memory scan of pid %d (%d bytes) did not find the placeholder: the scan itself is broken", s.pid, s.bytes)
	case s.real:
		t.Errorf("the real value is in the sandbox's memory (pid %d)", s.pid)
	default:
		t.Logf("memory scan: pid %d, %d bytes read, placeholder found, real value absent", s.pid, s.bytes)
	}

	// What the result records.
	for _, rec := range res.Network {
		t.Logf("network: %+v", rec)
	}
	sec, ok := findRecord(res.Network, "api.secret.test", pa)
	if !ok || !sec.Allowed || len(sec.Secrets) != 1 || sec.Secrets[0] != "GITHUB_TOKEN" {
		t.Errorf("secret host record %+v (found %v): want allowed with secrets [GITHUB_TOKEN]", sec, ok)
	}
	pl, ok := findRecord(res.Network, "plain.test", pc)
	if !ok || len(pl.Placeholders) != 1 || pl.Placeholders[0] != "GITHUB_TOKEN" || len(pl.Secrets) != 0 {
		t.Errorf("plain host record %+v (found %v): want placeholders [GITHUB_TOKEN], no secrets", pl, ok)
	}
	if oth, _ := findRecord(res.Network, "other.test", pb); len(oth.Secrets) != 0 {
		t.Errorf("other host record %+v: a secret went there", oth)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// pidWithEnv finds the process whose environment holds kv.
func pidWithEnv(kv []byte) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(b, kv) {
			return pid
		}
	}
	return 0
}

// scanMemory reads every readable mapping of pid and reports whether a and
// b occur.
func scanMemory(pid int, a, b []byte) (foundA, foundB bool, n int64, err error) {
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return false, false, 0, err
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return false, false, 0, err
	}
	defer mem.Close()
	sc := bufio.NewScanner(maps)
	buf := make([]byte, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1][0] != 'r' {
			continue
		}
		lohi := strings.SplitN(f[0], "-", 2)
		lo, err1 := strconv.ParseUint(lohi[0], 16, 64)
		hi, err2 := strconv.ParseUint(lohi[1], 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		overlap := max(len(a), len(b))
		for off := lo; off < hi; {
			k := min(uint64(len(buf)), hi-off)
			m, rerr := mem.ReadAt(buf[:k], int64(off))
			if m > 0 {
				n += int64(m)
				foundA = foundA || bytes.Contains(buf[:m], a)
				foundB = foundB || bytes.Contains(buf[:m], b)
			}
			if rerr != nil || m == 0 {
				break
			}
			if uint64(m) < k || k <= uint64(overlap) {
				off += uint64(m)
			} else {
				off += uint64(m) - uint64(overlap)
			}
		}
	}
	return foundA, foundB, n, sc.Err()
}

// TestSecretsGrantOnlyTheirNames: with allow-net alone, code may read the
// secrets' placeholders (the server grants their names to deno's
// allow-env) and nothing else of the environment.
func TestSecretsGrantOnlyTheirNames(t *testing.T) {
	pol, err := egress.NewPolicy([]string{"api.secret.test"}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := egress.NewSecrets([]egress.Secret{{Name: "GITHUB_TOKEN", Value: "ghp_0123456789abcdef", Hosts: []string{"api.secret.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.DenoFlags = []string{"--allow-net=api.secret.test"}
	o.Net = &NetOptions{Policy: pol, Secrets: secrets}
	r, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("runner with secrets: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	res := runCode(t, r, `
let home;
try { home = Deno.env.get("HOME"); } catch (e) { home = (e as Error).name; }
export default { tok: Deno.env.get("GITHUB_TOKEN"), home };
`, 30*time.Second)
	var got struct{ Tok, Home string }
	if err := json.Unmarshal(res.ReturnValue, &got); err != nil {
		t.Fatalf("return value %s (status %s, %+v): %v", res.ReturnValue, res.Status, res.Error, err)
	}
	if got.Tok != secrets.Placeholder("GITHUB_TOKEN") || got.Home != "NotCapable" {
		t.Errorf("GITHUB_TOKEN = %q, HOME read: %q; want the placeholder and NotCapable", got.Tok, got.Home)
	}
}

// TestSecretsReachTools: a CLI tool in the root (curl) sends a secret's placeholder to its host
// over HTTPS. The door stands in for that host with its own CA; curl trusts it because the
// tools' CA variables name the root's bundle with the door's CA appended, so the upstream sees
// the real value and curl reads back only the placeholder.
func TestSecretsReachTools(t *testing.T) {
	testRoot(t)
	if !slices.Contains(rootTools.Names(), "curl") || rootTools.CABundle == "" {
		unavailable(t, "the test root has no curl or no CA bundle (tools %v, bundle %q)", rootTools.Names(), rootTools.CABundle)
	}
	real := "ghp_REALVALUE_" + strconv.FormatInt(time.Now().UnixNano(), 36) + "_tool"
	_, pool, cert := testenv.TLSFor(t, "api.secret.test")
	seen := &seenHeaders{}
	port := echoServer(t, &cert, seen)
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	h := &netHooks{names: map[string][]netip.Addr{"api.secret.test": lo}}
	pol, err := egress.NewPolicy([]string{"api.secret.test"}, false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := egress.NewSecrets([]egress.Secret{{Name: "GITHUB_TOKEN", Value: real, Hosts: []string{"api.secret.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	placeholder := secrets.Placeholder("GITHUB_TOKEN")
	o := testOptions(t)
	o.DenoFlags = []string{"--allow-run=curl", "--allow-env=CURL_CA_BUNDLE"}
	o.Net = &NetOptions{Policy: pol, Resolver: h.resolve, Dial: h.dial, Secrets: secrets, UpstreamRoots: pool}
	r, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("runner with secrets: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	res := runCode(t, r, fmt.Sprintf(`const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const tok = Deno.env.get("GITHUB_TOKEN");
const r = await new Deno.Command("curl", { args: ["-sS", "--max-time", "20", "-H", "Authorization: token " + tok,
  "https://api.secret.test:%d/curl"] }).output();
export default { code: r.code, out: dec(r.stdout), err: dec(r.stderr), bundle: Deno.env.get("CURL_CA_BUNDLE") };`, port), 60*time.Second)
	var got struct {
		Code             int
		Out, Err, Bundle string
	}
	if err := json.Unmarshal(res.ReturnValue, &got); err != nil {
		t.Fatalf("return value %s (status %s, %+v): %v", res.ReturnValue, res.Status, res.Error, err)
	}
	if got.Code != 0 || got.Bundle != "/conductor/trust/"+CABundleName {
		t.Fatalf("curl exited %d (%s), CURL_CA_BUNDLE=%q", got.Code, got.Err, got.Bundle)
	}
	if s := seen.get("/curl"); len(s) != 1 || s[0] != "token "+real {
		t.Errorf("the secret host saw %q, want the real value", s)
	}
	if strings.Contains(got.Out, real) || !strings.Contains(got.Out, "token "+placeholder) {
		t.Errorf("curl read %q: want the placeholder, never the value", got.Out)
	}
}
