package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/sandbox"
)

func init() { sandbox.MaybeInit() }

// npmTarball is an npm package tarball: package/package.json and package/index.js.
func npmTarball(t *testing.T, name, version, source string) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, f := range [][2]string{
		{"package/package.json", `{"name":"` + name + `","version":"` + version + `","main":"index.js"}`},
		{"package/index.js", source},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// npmPackage is one package of the loopback registry: its version and the tarball, served
// from the registry itself or, with elsewhere set, from that base URL.
type npmPackage struct {
	version, source, elsewhere string
}

// npmRegistry serves packages on loopback as an npm registry (packument at /NAME, tarball at
// /NAME/-/NAME-VERSION.tgz) and counts each package's requests (hits).
func npmRegistry(t *testing.T, pkgs map[string]npmPackage) (reg *url.URL, hits func(name string) int) {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var base string
	tarballs := map[string][]byte{} // file -> tarball, written before the server starts
	for name, p := range pkgs {
		tarballs[tarballFile(name, p.version)] = npmTarball(t, name, p.version, p.source)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		counts[name]++
		mu.Unlock()
		if tb, ok := tarballs[r.URL.Path]; ok {
			w.Write(tb)
			return
		}
		p, ok := pkgs[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		file := tarballFile(name, p.version)
		tgz := tarballs[file]
		from := base
		if p.elsewhere != "" {
			from = p.elsewhere
		}
		sha := sha1.Sum(tgz)
		sri := sha512.Sum512(tgz)
		v := map[string]any{"name": name, "version": p.version, "dist": map[string]any{
			"tarball": from + file, "shasum": hex.EncodeToString(sha[:]), "integrity": "sha512-" + base64.StdEncoding.EncodeToString(sri[:]),
		}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"name": name, "dist-tags": map[string]string{"latest": p.version}, "versions": map[string]any{p.version: v}})
	}))
	t.Cleanup(srv.Close)
	base = srv.URL
	u, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	return u, func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[name]
	}
}

// tarballFile is a tarball's path on the registry.
func tarballFile(name, version string) string {
	return "/" + name + "/-/" + name + "-" + version + ".tgz"
}

// TestPackages (issue 15, the seams): Packages installs each npm: package with deno cache in an
// install sandbox on sandbox's generic hook, from a loopback registry this test serves: a
// package lands in the view's cache and is marked installed, and the next call finds it cached
// without asking the registry; a package whose tarball lives on another port is refused at the
// door (that server is never reached) and stays unmarked; a package the registry lacks fails
// with deno's words; a jsr: package is refused with the reason. The install's files are gone.
func TestPackages(t *testing.T) {
	var elsewhereHits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhereHits.Add(1) }))
	t.Cleanup(elsewhere.Close)
	reg, regHits := npmRegistry(t, map[string]npmPackage{
		"tinynpm":   {version: "1.0.0", source: "module.exports = 'hello from tinynpm';\n"},
		"otherhost": {version: "1.0.0", source: "module.exports = 1;\n", elsewhere: elsewhere.URL},
	})
	allow, err := deps.ParseAllowlist("npm:tinynpm@^1,npm:otherhost@^1,npm:notthere@^1,jsr:@std/path@^1")
	if err != nil {
		t.Fatal(err)
	}
	var root *rootfs.Root
	r := sandboxtest.Runner(t, func(o *sandbox.Options) { o.NPMRegistry, root = reg.String(), o.Root })
	dir := t.TempDir()
	view, err := deps.NewViews(dir).Open(t.Context(), deps.ViewKey{Allowlist: allow, Registry: reg.String(), Deno: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = view.Release() })
	o := Options{Sandboxes: r, DenoPath: root.DenoPath, DenoDir: root.DenoDir, View: view, Allow: allow, Registry: reg}

	byName := func(results []Result) map[string]Result {
		m := map[string]Result{}
		for _, res := range results {
			m[res.Package] = res
		}
		return m
	}
	got := byName(Packages(t.Context(), o, false))
	tests := []struct {
		pkg, errHas string
		ok          bool
	}{
		{"npm:tinynpm@^1", "", true},
		{"npm:otherhost@^1", "", false},
		{"npm:notthere@^1", "notthere", false},
		{"jsr:@std/path@^1", "only npm: packages", false},
	}
	for _, tc := range tests {
		res, found := got[tc.pkg]
		var p deps.Package
		for _, q := range allow.Packages() {
			if q.Specifier() == tc.pkg {
				p = q
			}
		}
		switch {
		case !found:
			t.Errorf("%s: no result", tc.pkg)
		case res.OK != tc.ok || res.Cached || !strings.Contains(res.Error, tc.errHas):
			t.Errorf("%s: ok=%v cached=%v error %q, want ok=%v and an error with %q", tc.pkg, res.OK, res.Cached, res.Error, tc.ok, tc.errHas)
		case view.Installed(p) != tc.ok:
			t.Errorf("%s: marked installed %v, want %v", tc.pkg, view.Installed(p), tc.ok)
		}
	}
	if rec := got["npm:otherhost@^1"].Network; !strings.Contains(NetworkSummary(rec), strings.TrimPrefix(elsewhere.URL, "http://")+" refused") || elsewhereHits.Load() != 0 {
		t.Errorf("the tarball on another port: network %q, %d hits there; want refused, never reached", NetworkSummary(rec), elsewhereHits.Load())
	}
	var index string
	_ = filepath.WalkDir(view.Cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "index.js" && strings.Contains(p, "tinynpm") {
			b, _ := os.ReadFile(p)
			index = string(b)
		}
		if err == nil && strings.HasPrefix(d.Name(), ".install-") {
			t.Errorf("an install's file was left in the view: %s", p)
		}
		return nil
	})
	if !strings.Contains(index, "hello from tinynpm") {
		t.Errorf("tinynpm's index.js in the view's cache: %q", index)
	}

	before := regHits("tinynpm")
	if before == 0 {
		t.Errorf("the registry was never asked for tinynpm")
	}
	again := byName(Packages(t.Context(), o, false))["npm:tinynpm@^1"]
	if !again.OK || !again.Cached || again.Network != nil || regHits("tinynpm") != before {
		t.Errorf("second install: %+v, registry asked %d more times; want cached without asking", again, regHits("tinynpm")-before)
	}
}
