package egress

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// denoPath finds deno: CONDUCTOR_DENO, else the checkout's .build/deno.
func denoPath(t *testing.T) string { return testenv.Deno(t) }

// runDenoInNS runs deno with a clean environment, born inside ns.
func runDenoInNS(t *testing.T, ns *testNS, dir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, denoPath(t), args...)
	cmd.Dir = dir
	cmd.Env = append([]string{
		"HOME=" + dir, "DENO_DIR=" + filepath.Join(dir, "deno-dir"), "DENO_NO_UPDATE_CHECK=1",
		"NO_COLOR=1", "PATH=/usr/bin:/bin",
	}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var startErr error
	if err := ns.inNS(func() { startErr = cmd.Start() }); err != nil {
		t.Fatal(err)
	}
	if startErr != nil {
		t.Fatal(startErr)
	}
	err := cmd.Wait()
	return stdout.String(), stderr.String(), err
}

// TestDenoThroughProxy runs real deno inside the test namespace (only lo,
// no route, no DNS) with the proxy's Env: fetch over http:// and https://,
// denied destinations, a loopback target (deno must not bypass the proxy for
// it), and an npm package install from a registry reachable only through
// the proxy. The upstreams are on the host loopback; the names *.test exist
// only in the proxy's test resolver.
func TestDenoThroughProxy(t *testing.T) {
	requireRoot(t)
	denoPath(t)
	ns := newNetNS(t)
	dir := t.TempDir()

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello over http")
	}))
	defer plain.Close()
	caPEM, leaf := testCerts(t, "upstream.test", "registry.test")
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over https (sni %s)", r.TLS.ServerName)
	}))
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	secure.StartTLS()
	defer secure.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := newFakeRegistry(t, nil)
	tlsReg := newFakeRegistry(t, &leaf)

	hp, tp, rp, trp := portOf(plain.Listener), portOf(secure.Listener), portOf(reg.ln), portOf(tlsReg.ln)
	loop := netip.MustParseAddr("127.0.0.1")
	h := &hooks{names: map[string][]netip.Addr{"upstream.test": {loop}, "registry.test": {loop}}}
	p := startProxy(t, ns, h, Options{
		Allow: []Rule{
			{Host: "upstream.test", Port: hp}, {Host: "upstream.test", Port: tp},
			{Host: "registry.test", Port: rp}, {Host: "registry.test", Port: trp},
		},
		AllowPrivate: true, // the test's "public" upstreams are on the host loopback
	})
	env := append(p.Env(), "DENO_CERT="+caFile)

	urls := map[string]string{
		"http":         fmt.Sprintf("http://upstream.test:%d/", hp),
		"https":        fmt.Sprintf("https://upstream.test:%d/", tp),
		"deniedHTTP":   fmt.Sprintf("http://denied.test:%d/", hp),
		"deniedHTTPS":  "https://denied.test/",
		"loopbackHTTP": fmt.Sprintf("http://127.0.0.1:%d/", hp),
	}
	script := `const urls = JSON.parse(Deno.args[0]);
const out = {};
for (const [name, url] of Object.entries(urls)) {
  try {
    const r = await fetch(url);
    out[name] = { status: r.status, egress: r.headers.get("x-conductor-egress"), body: (await r.text()).trim() };
  } catch (e) {
    out[name] = { error: String(e), cause: String(e.cause) };
  }
}
console.log(JSON.stringify(out));
`
	if err := os.WriteFile(filepath.Join(dir, "probe.js"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	urlsJSON, _ := json.Marshal(urls)
	// deno's own permissions name the destinations, never the proxy's address.
	perms := fmt.Sprintf("--allow-net=upstream.test:%d,upstream.test:%d,denied.test,127.0.0.1:%d", hp, tp, hp)
	stdout, stderr, err := runDenoInNS(t, ns, dir, env, "run", "--no-prompt", perms, "probe.js", string(urlsJSON))
	if err != nil {
		t.Fatalf("deno: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	t.Logf("deno fetch results: %s", stdout)
	var res map[string]struct {
		Status int    `json:"status"`
		Egress string `json:"egress"`
		Body   string `json:"body"`
		Error  string `json:"error"`
		Cause  string `json:"cause"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("deno output %q: %v", stdout, err)
	}
	if r := res["http"]; r.Status != 200 || r.Body != "hello over http" {
		t.Errorf("http:// through HTTP_PROXY: %+v", r)
	}
	if r := res["https"]; r.Status != 200 || r.Body != "hello over https (sni upstream.test)" {
		t.Errorf("https:// through HTTPS_PROXY (CONNECT): %+v", r)
	}
	if r := res["deniedHTTP"]; r.Status != 403 || r.Egress != "denied" || !strings.Contains(r.Body, "allowlist") {
		t.Errorf("denied http://: %+v", r)
	}
	// For https, deno only reports that the tunnel was refused.
	if r := res["deniedHTTPS"]; r.Error == "" || !strings.Contains(r.Cause, "unsuccessful tunnel") {
		t.Errorf("denied https://: %+v", r)
	}
	// Loopback targets are proxied too (no implicit NO_PROXY): the proxy's
	// 403, not "connection refused" from the empty namespace.
	if r := res["loopbackHTTP"]; r.Status != 403 || r.Egress != "denied" {
		t.Errorf("http://127.0.0.1 (deno must not bypass the proxy for loopback): %+v", r)
	}
	if resolved, _ := h.calls(); strings.Contains(strings.Join(resolved, " "), "denied.test") {
		t.Errorf("denied.test was resolved: %v", resolved)
	}

	// npm: a package from a registry only the proxy can reach, over plain
	// HTTP (HTTP_PROXY) and over TLS (HTTPS_PROXY, CONNECT) as from
	// registry.npmjs.org.
	for _, r := range []struct {
		name string
		reg  *fakeRegistry
	}{{"http", reg}, {"https", tlsReg}} {
		npmDir := filepath.Join(dir, "npm-"+r.name)
		os.MkdirAll(npmDir, 0o755)
		os.WriteFile(filepath.Join(npmDir, "main.js"), []byte(`import { answer } from "npm:egress-probe@1.0.0";
console.log(answer);
`), 0o644)
		npmEnv := append(env, "NPM_CONFIG_REGISTRY="+r.reg.base+"/")
		stdout, stderr, err := runDenoInNS(t, ns, npmDir, npmEnv, "run", "--no-prompt", "--node-modules-dir=none", "main.js")
		if err != nil || strings.TrimSpace(stdout) != "egress-ok" {
			t.Fatalf("npm package from the %s registry through the proxy: %v\nstdout: %s\nstderr: %s", r.name, err, stdout, stderr)
		}
		if got := r.reg.paths(); len(got) < 2 {
			t.Fatalf("%s registry saw %v, want the packument and the tarball", r.name, got)
		} else {
			t.Logf("%s registry requests through the proxy: %v", r.name, got)
		}
	}
	st := p.Stats()
	t.Logf("proxy stats: %+v", st)
	if st.Allowed < 5 || st.Denied < 3 {
		t.Errorf("stats %+v: want >= 5 allowed (http, https, 2 x packument+tarball, one may share a tunnel), >= 3 denied", st)
	}
}

func portOf(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// testCerts makes a CA and a leaf for host (rustls refuses a CA certificate
// used as the server's own).
func testCerts(t *testing.T, hosts ...string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "egress test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}

// fakeRegistry serves one npm package, egress-probe@1.0.0, on the host
// loopback (over TLS if cert is set); its tarball URL names registry.test,
// so deno must come back through the proxy for it.
type fakeRegistry struct {
	ln   net.Listener
	base string
	mu   sync.Mutex
	seen []string
}

func newFakeRegistry(t *testing.T, cert *tls.Certificate) *fakeRegistry {
	t.Helper()
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{
		"package/package.json": `{"name":"egress-probe","version":"1.0.0","type":"module","main":"index.js"}`,
		"package/index.js":     `export const answer = "egress-ok";` + "\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	sum512 := sha512.Sum512(tgz.Bytes())
	sum1 := sha1.Sum(tgz.Bytes())

	r := &fakeRegistry{}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.ln = ln
	scheme := "http"
	if cert != nil {
		scheme = "https"
	}
	base := fmt.Sprintf("%s://registry.test:%d", scheme, portOf(ln))
	r.base = base
	packument, _ := json.Marshal(map[string]any{
		"name":      "egress-probe",
		"dist-tags": map[string]string{"latest": "1.0.0"},
		"versions": map[string]any{"1.0.0": map[string]any{
			"name": "egress-probe", "version": "1.0.0",
			"dist": map[string]string{
				"tarball":   base + "/egress-probe/-/egress-probe-1.0.0.tgz",
				"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum512[:]),
				"shasum":    hex.EncodeToString(sum1[:]),
			},
		}},
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.URL.Path)
		r.mu.Unlock()
		switch req.URL.Path {
		case "/egress-probe":
			w.Header().Set("Content-Type", "application/json")
			w.Write(packument)
		case "/egress-probe/-/egress-probe-1.0.0.tgz":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(tgz.Bytes())
		default:
			http.NotFound(w, req)
		}
	})}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *fakeRegistry) paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}
