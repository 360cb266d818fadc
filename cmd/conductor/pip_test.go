package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// wheel builds a pure-Python wheel of one module: NAME/__init__.py with the given source, and its
// dist-info (METADATA, WHEEL, RECORD with each file's digest, as pip checks).
func wheel(t *testing.T, name, version, source string) []byte {
	t.Helper()
	info := name + "-" + version + ".dist-info"
	files := [][2]string{
		{name + "/__init__.py", source},
		{info + "/METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: conductor-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	for _, f := range files {
		sum := sha256.Sum256([]byte(f[1]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(f[1]))
	}
	record.WriteString(info + "/RECORD,,\n")
	files = append(files, [2]string{info + "/RECORD", record.String()})
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, f := range files {
		w, err := z.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// simpleIndex serves a PEP 503 simple index on loopback: /simple/NAME/ lists links (href ->
// text), /files/F serves files[F]. It returns the index URL.
func simpleIndex(t *testing.T, links map[string]map[string]string, files map[string][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := strings.CutPrefix(r.URL.Path, "/simple/"); ok {
			l, ok := links[strings.TrimSuffix(name, "/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<!DOCTYPE html><html><body>\n")
			for href, text := range l {
				fmt.Fprintf(w, "<a href=%q>%s</a>\n", href, text)
			}
			fmt.Fprint(w, "</body></html>\n")
			return
		}
		if f, ok := files[strings.TrimPrefix(r.URL.Path, "/files/")]; ok {
			w.Write(f)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/simple/"
}

// needPip makes the test Unavailable without a python3 whose pip conductor can copy.
func needPip(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("python3", "-E", "-s", "-c", "import pip; print(pip.__version__)").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "no python3 with pip on PATH (pypi: installs run the interpreter's own pip): %v %s", err, out)
	}
}

// TestPipInstall (issue 12): `conductor deps install` installs a pypi: package with pip from the
// index PIP_INDEX_URL names (a wheel this test builds, served on loopback) in an install
// sandbox that reaches only the index; Python code then imports it from config.PyPackagesDir,
// which is read-only. An index linking a file elsewhere (another loopback port, a name) is
// refused at the door, never dialed, and the error says so; a version the index lacks and a
// release without a wheel fail naming wheels only.
func TestPipInstall(t *testing.T) {
	needPip(t)
	var elsewhereHits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhereHits.Add(1) }))
	t.Cleanup(elsewhere.Close)
	tiny := wheel(t, "tinypkg", "1.0.0", "VALUE = 42\ndef hello():\n    return 'hello from tinypkg'\n")
	sum := sha256.Sum256(tiny)
	const tinyFile = "tinypkg-1.0.0-py3-none-any.whl"
	index := simpleIndex(t, map[string]map[string]string{
		"tinypkg":    {"../../files/" + tinyFile + "#sha256=" + hex.EncodeToString(sum[:]): tinyFile},
		"sdistonly":  {"../../files/sdistonly-1.0.0.tar.gz": "sdistonly-1.0.0.tar.gz"},
		"otherport":  {elsewhere.URL + "/files/otherport-1.0.0-py3-none-any.whl": "otherport-1.0.0-py3-none-any.whl"},
		"othername":  {"http://files.example.test:" + strconv.Itoa(port(t, elsewhere.URL)) + "/files/othername-1.0.0-py3-none-any.whl": "othername-1.0.0-py3-none-any.whl"},
		"notpresent": {},
	}, map[string][]byte{tinyFile: tiny, "sdistonly-1.0.0.tar.gz": []byte("not really a tarball")})
	indexHostPort := strings.TrimSuffix(strings.TrimPrefix(index, "http://"), "/simple/")
	dir := dataDir(t)
	env := func(allow string) []string {
		return []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, "MCP_CONDUCTOR_ALLOWED_PACKAGES=" + allow, "PIP_INDEX_URL=" + index}
	}

	t0 := time.Now()
	out, errOut, code := conductor(t, "", env("pypi:tinypkg==1.0.0"), "deps", "install")
	t.Logf("deps install of one wheel: %v", time.Since(t0).Round(time.Millisecond))
	if code != 0 || !strings.Contains(out, "pypi:tinypkg==1.0.0") || !strings.Contains(out, "installed") {
		t.Fatalf("deps install: exit %d\n%s\n%s", code, out, errOut)
	}
	// The door's decisions, as the log reports them: the index, allowed, and nothing else.
	if want := `network="` + indexHostPort + ` allowed"`; !strings.Contains(errOut, want) {
		t.Errorf("the install's log lacks %s (the index allowed, nothing else reached):\n%s", want, errOut)
	}
	views, _ := filepath.Glob(filepath.Join(dir, "deps", "*", "pypi", "tinypkg", "__init__.py"))
	if len(views) != 1 {
		t.Fatalf("tinypkg is not in the view's pypi directory: %v", views)
	}
	if metas, _ := filepath.Glob(filepath.Join(dir, "deps", "*", "pypi", "tinypkg-1.0.0.dist-info", "METADATA")); len(metas) != 1 {
		t.Errorf("no tinypkg-1.0.0.dist-info in the view")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "deps", "*", "pypi", ".*")); len(tmp) != 0 {
		t.Errorf("the install left %v in the view", tmp)
	}
	out, errOut, code = conductor(t, "", env("pypi:tinypkg==1.0.0"), "deps", "install")
	if code != 0 || !strings.Contains(out, "already installed") {
		t.Errorf("second deps install: exit %d, want already installed\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = conductor(t, "", env("pypi:tinypkg==1.0.0"), "deps", "status")
	if code != 0 || !strings.Contains(out, "installed: tinypkg 1.0.0") || !strings.Contains(out, "/conductor/pypi") {
		t.Errorf("deps status: exit %d, want tinypkg's installed version\n%s\n%s", code, out, errOut)
	}
	if out, errOut, _ = conductor(t, "", env("pypi:tinypkg==1.0.0"), "doctor"); !strings.Contains(out, "pypi:tinypkg==1.0.0 (1.0.0); pypi from "+index) {
		t.Errorf("doctor does not list tinypkg's installed version:\n%s\n%s", out, errOut)
	}
	if out, errOut, code = conductor(t, "", env("pypi:tinypkg==1.0.0"), "deps", "list", "--json"); code != 0 ||
		!strings.Contains(out, `"package": "pypi:tinypkg==1.0.0",`) || !strings.Contains(out, `"versions": [`+"\n"+`      "1.0.0"`) {
		t.Errorf("deps list --json: exit %d\n%s\n%s", code, out, errOut)
	}

	// A run imports it from the read-only mount, which is on sys.path, and the import check
	// before the run finds it there; a module nothing provides is refused, naming the allowlist.
	prog := `import tinypkg
print(tinypkg.hello(), tinypkg.VALUE, tinypkg.__file__)
for p in ("/conductor/pypi/new.py", "/conductor/pypi/tinypkg/__init__.py"):
    try:
        open(p, "a").write("x")
        print("WROTE", p)
    except OSError as e:
        print("refused", p, e.errno)
`
	out, errOut, code = conductor(t, prog, env("pypi:tinypkg==1.0.0"), "exec", "--language", "python", "-")
	if code != 0 || !strings.Contains(out, "hello from tinypkg 42 /conductor/pypi/tinypkg/__init__.py") {
		t.Fatalf("import from the view: exit %d\n%s\n%s", code, out, errOut)
	}
	// A new file: EROFS (30). The installed files belong to the view's owner, whom the run's
	// user namespace does not map: the permission check (EACCES, 13) comes before the mount's.
	if strings.Contains(out, "WROTE") || !strings.Contains(out, "refused /conductor/pypi/new.py 30") ||
		!strings.Contains(out, "refused /conductor/pypi/tinypkg/__init__.py 30") && !strings.Contains(out, "refused /conductor/pypi/tinypkg/__init__.py 13") {
		t.Errorf("writes into /conductor/pypi: want both refused (EROFS, or EACCES for the view's files):\n%s", out)
	}

	// serve: the install at start finds it installed, and run_python_code, from the launchers'
	// pool, imports it.
	t.Run("serve", func(t *testing.T) {
		t.Setenv("PIP_INDEX_URL", index)
		cs, stop := startServe(t, dir, "pypi:tinypkg==1.0.0")
		defer stop()
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "run_python_code", Arguments: map[string]any{
			"python_code": "import tinypkg\ntinypkg.hello()"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError || !strings.Contains(resultText(res), "hello from tinypkg") {
			t.Fatalf("run_python_code importing tinypkg: %s", resultText(res))
		}
		res, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "run_python_code", Arguments: map[string]any{
			"python_code": "import tinypkg\nimport otherpkg"}})
		if err != nil {
			t.Fatal(err)
		}
		if txt := resultText(res); !res.IsError || !strings.Contains(txt, "otherpkg") || !strings.Contains(txt, "Allowed PyPI packages: pypi:tinypkg==1.0.0") {
			t.Errorf("an import no package provides: want refused naming the allowlist, got %s", txt)
		}
	})

	failures := []struct {
		name, allow string
		want        []string
	}{
		{"version not on the index", "pypi:tinypkg==2.0.0", []string{"No matching distribution found for tinypkg==2.0.0", "from versions: 1.0.0", "wheels only"}},
		{"sdist only", "pypi:sdistonly==1.0.0", []string{"No matching distribution found for sdistonly==1.0.0", "from versions: none", "wheels only", "source distribution"}},
		{"file on another port", "pypi:otherport==1.0.0", []string{"refused 127.0.0.1:" + strconv.Itoa(port(t, elsewhere.URL)), "reaches only the index (" + indexHostPort, "link files on another host"}},
		{"file on another host name", "pypi:othername==1.0.0", []string{"refused files.example.test", "reaches only the index (" + indexHostPort}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Now()
			out, errOut, code := conductor(t, "", env(tc.allow), "deps", "install")
			t.Logf("%s: failed in %v:\n%s", tc.name, time.Since(t0).Round(time.Millisecond), out)
			if code != 1 || !strings.Contains(out, "FAILED") {
				t.Fatalf("deps install %s: exit %d, want 1 with FAILED\n%s\n%s", tc.allow, code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("deps install %s: output lacks %q\n%s", tc.allow, w, out)
				}
			}
			if refused, ok := strings.CutPrefix(tc.want[0], "refused "); ok {
				// The door's decisions, as logged: the index allowed, the other destination refused.
				if want := `network="` + indexHostPort + " allowed, " + refused + ` refused"`; !strings.Contains(errOut, want) {
					t.Errorf("the log lacks %s:\n%s", want, errOut)
				}
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("the server the index linked elsewhere got %d requests; the door must refuse before dialing", n)
	}
}

// port is a URL's port.
func port(t *testing.T, u string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}
