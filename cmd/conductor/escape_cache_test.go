package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// dataDir returns a private data directory for conductor (MCP_CONDUCTOR_DATA_DIR)
// that shares the checkout's deno, sandbox root and Go caches but has its own dependency
// cache. It is searchable by the unprivileged uid the sandbox runs as.
func dataDir(t *testing.T) string {
	t.Helper()
	build := filepath.Join(filepath.Dir(binary(t)), "..", ".build")
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"deno", "rootfs"} {
		src, err := filepath.Abs(filepath.Join(build, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(src); err != nil {
			t.Fatalf("no %s in %s (run `make build`): %v", name, build, err)
		}
		if err := os.Symlink(src, filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
	}
	shareGoCache(t, build, d)
	return d
}

// shareGoCache makes the data directory d use the checkout's seeded Go build caches, so a test's
// server does not seed its own (about a minute) when the host has go.
func shareGoCache(t *testing.T, build, d string) {
	t.Helper()
	src, err := filepath.Abs(filepath.Join(build, "gocache"))
	if err == nil {
		err = os.MkdirAll(src, 0o755)
	}
	if err == nil {
		err = os.Symlink(src, filepath.Join(d, "gocache"))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// execResult is the part of `conductor exec --json` these tests read.
type execResult struct {
	Status      string          `json:"status"`
	ReturnValue json.RawMessage `json:"returnValue"`
	Error       *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// execIn runs code with `conductor exec --json` over data dir dir and
// allowlist allow, and returns the decoded result.
func execIn(t *testing.T, dir, allow, code string) (execResult, string) {
	t.Helper()
	env := []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, "MCP_CONDUCTOR_ALLOWED_PACKAGES=" + allow}
	out, errOut, _ := conductor(t, code, env, "exec", "--json", "-")
	var res execResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("exec under %q: stdout is not a result: %v\n%s\n%s", allow, err, out, errOut)
	}
	return res, out + errOut
}

// TestEscapeCacheView is issue 9's finding 2: code that imports at run time
// (eval, new Function, a computed specifier: nothing the source check sees)
// must not load a package the admin did not allow, even though another
// allowlist installed it into the same data directory. Each allowlist sees
// only its own view of the dependency cache.
func TestEscapeCacheView(t *testing.T) {
	dir := dataDir(t)
	const (
		allowA = "npm:is-number@^7"
		allowB = "npm:is-odd@^3" // depends on is-number@^6, not 7
	)
	for _, allow := range []string{allowA, allowB} {
		env := []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, "MCP_CONDUCTOR_ALLOWED_PACKAGES=" + allow}
		out, errOut, code := conductor(t, "", env, "deps", "install")
		if code != 0 || !strings.Contains(out, allow) {
			t.Fatalf("deps install %s: exit %d\n%s\n%s", allow, code, out, errOut)
		}
	}

	attacks := []struct{ name, code string }{
		{"eval", `const m = await eval('import("npm:is-number@7.0.0")'); return m.default("12")`},
		{"new_Function", `const m = await new Function("return import('npm:is-number@7.0.0')")(); return m.default("12")`},
		{"computed_specifier", `const s = ["npm:is-number", "7.0.0"].join("@"); const m = await eval("import(s)"); return m.default("12")`},
	}
	allowlists := []struct {
		name, allow string
		loads       bool
	}{
		{"A_loads_it", allowA, true},
		{"empty", "", false},
		{"B_same_data_dir", allowB, false},
		{"C_never_installed", "npm:left-pad@^1", false},
	}
	for _, al := range allowlists {
		for _, at := range attacks {
			t.Run(al.name+"/"+at.name, func(t *testing.T) {
				res, all := execIn(t, dir, al.allow, at.code)
				if al.loads {
					if res.Status != "success" || string(res.ReturnValue) != "true" {
						t.Fatalf("under %q the allowed package must load: %s", al.allow, all)
					}
					return
				}
				if res.Status == "success" {
					t.Fatalf("under %q code loaded npm:is-number@7.0.0, installed only for another allowlist: %s", al.allow, all)
				}
				if res.Error == nil || !strings.Contains(res.Error.Message, `npm package not found in cache: "is-number"`) {
					t.Fatalf("want deno's refusal: is-number not in this allowlist's cache; got %s", all)
				}
			})
		}
	}

	// A path that climbs out of an allowed package into another one's files
	// (deno resolves it inside DENO_DIR/npm) finds nothing to climb to.
	t.Run("B_path_out_of_allowed_package", func(t *testing.T) {
		res, all := execIn(t, dir, allowB, `const m = await eval('import("npm:is-odd@3.0.1/../../is-number/7.0.0/index.js")'); return m.default("12")`)
		if res.Status == "success" {
			t.Fatalf("under %q a path out of is-odd loaded is-number@7: %s", allowB, all)
		}
		if res.Error == nil || !strings.Contains(res.Error.Message, "Cannot find module") || !strings.Contains(res.Error.Message, "is-number/7.0.0/index.js") {
			t.Fatalf("want deno's refusal: no is-number@7 file in this allowlist's cache; got %s", all)
		}
	})

	// The server's path: pre-started (pooled) sandboxes of `serve` with the
	// empty allowlist over the same data dir.
	t.Run("serve_empty_pooled", func(t *testing.T) {
		res := serveRun(t, dir, "", attacks[0].code)
		if !res.IsError || !strings.Contains(resultText(res), `npm package not found in cache: \"is-number\"`) {
			t.Fatalf("serve with no packages allowed loaded is-number@7, or failed another way: %s", resultText(res))
		}
	})

	// A dependency of an allowed package is in the view, so it stays
	// importable (documented): is-odd@^3 brings is-number@6.
	t.Run("B_transitive_dependency_importable", func(t *testing.T) {
		res, all := execIn(t, dir, allowB, `const m = await eval('import("npm:is-number@6.0.0")'); return m.default("12")`)
		if res.Status != "success" || string(res.ReturnValue) != "true" {
			t.Fatalf("is-number@6 (a dependency of is-odd@3) should load under %q: %s", allowB, all)
		}
	})
}

// viewNames lists the view directories under dir's dependency cache.
func viewNames(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "deps", "*", "deno-dir"))
	var names []string
	for _, p := range m {
		names = append(names, filepath.Base(filepath.Dir(p)))
	}
	return names
}

// startServe starts `conductor serve` (stdio, pool of one) over data dir dir
// and allowlist allow, connected to a real MCP client; stop ends it.
func startServe(t *testing.T, dir, allow string) (cs *sdk.ClientSession, stop func()) {
	t.Helper()
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(os.Environ(), "MCP_CONDUCTOR_STATE_DIR="+t.TempDir(), "MCP_CONDUCTOR_DATA_DIR="+dir,
		"MCP_CONDUCTOR_ALLOWED_PACKAGES="+allow, "MCP_CONDUCTOR_POOL_SIZE=1")
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "cache-view-test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nstderr: %s", err, stderr.String())
	}
	done := false
	stop = func() {
		if !done {
			done = true
			if err := cs.Close(); err != nil {
				t.Errorf("close: %v\nstderr: %s", err, stderr.String())
			}
		}
	}
	t.Cleanup(stop)
	return cs, stop
}

// callRun runs code once through run_deno_code.
func callRun(t *testing.T, cs *sdk.ClientSession, code string) *sdk.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "run_deno_code", Arguments: map[string]any{"deno_code": code}})
	if err != nil {
		t.Fatalf("run_deno_code: %v", err)
	}
	return res
}

// serveRun starts `conductor serve` (stdio, with its pool) over data dir dir
// and allowlist allow, runs code once through a real MCP client, and stops it.
func serveRun(t *testing.T, dir, allow, code string) *sdk.CallToolResult {
	t.Helper()
	cs, stop := startServe(t, dir, allow)
	defer stop()
	return callRun(t, cs, code)
}

// resultText is a tool result's structured content and text, for assertions.
func resultText(res *sdk.CallToolResult) string {
	b, _ := json.Marshal(res.StructuredContent)
	out := string(b)
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			out += "\n" + tc.Text
		}
	}
	return out
}

// TestDepsViewStatusAndPrune: `deps status` and `doctor` name the view the
// current allowlist mounts; `deps prune` removes other allowlists' unused
// views and the old shared layout's content, never the current view.
func TestDepsViewStatusAndPrune(t *testing.T) {
	dir := dataDir(t)
	const allow = "npm:is-number@^7"
	envA := []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, "MCP_CONDUCTOR_ALLOWED_PACKAGES=" + allow}
	out, errOut, code := conductor(t, "", envA, "deps", "install")
	if code != 0 {
		t.Fatalf("deps install: exit %d\n%s\n%s", code, out, errOut)
	}
	views, _ := filepath.Glob(filepath.Join(dir, "deps", "*", "deno-dir"))
	if len(views) != 1 {
		t.Fatalf("views after one install: %v", views)
	}
	viewA := filepath.Dir(views[0])
	if !strings.Contains(out, viewA) {
		t.Errorf("deps install does not name the view %s:\n%s", viewA, out)
	}
	// Another allowlist's view, and the old shared layout's content.
	envB := []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, "MCP_CONDUCTOR_ALLOWED_PACKAGES=npm:is-odd@^3"}
	if out, errOut, code := conductor(t, "", envB, "deps", "install"); code != 0 {
		t.Fatalf("deps install under another allowlist: exit %d\n%s\n%s", code, out, errOut)
	}
	legacy := filepath.Join(dir, "deps", "npm", "registry.npmjs.org", "is-number")
	if err := os.MkdirAll(legacy, 0o755); err != nil {
		t.Fatal(err)
	}
	// exec under an allowlist nothing was installed for says so, and
	// creates no view (it would mount an empty one).
	envC := []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, "MCP_CONDUCTOR_ALLOWED_PACKAGES=npm:left-pad@^1"}
	if _, errOut, code := conductor(t, "return 1", envC, "exec", "-"); code != 0 || !strings.Contains(errOut, "npm:left-pad@^1") || !strings.Contains(errOut, "deps install") {
		t.Fatalf("exec under an allowlist never installed: exit %d, want 0 and a warning naming the package; stderr %s", code, errOut)
	}
	if views, _ := filepath.Glob(filepath.Join(dir, "deps", "*", "deno-dir")); len(views) != 2 {
		t.Fatalf("views after installs of two allowlists and an exec of a third: %v", views)
	}

	out, errOut, code = conductor(t, "", envA, "deps", "status")
	if code != 0 || !strings.Contains(out, "view in use: "+filepath.Base(viewA)) || !strings.Contains(out, "installed") ||
		!strings.Contains(out, "other view: ") || !strings.Contains(out, "npm:is-odd@^3") || !strings.Contains(out, "old shared cache") {
		t.Fatalf("deps status: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = conductor(t, "", envA, "deps", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^npm:is-number@\^7 +installed: is-number 7\.\d+\.\d+$`).MatchString(out) {
		t.Errorf("deps list: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, _ = conductor(t, "", envA, "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
	}
	found := false
	for _, c := range rep.Checks {
		if c.Name == "packages" {
			found = true
			if !c.OK || !strings.Contains(c.Detail, viewA) || !strings.Contains(c.Detail, "all 1 installed in "+viewA+": npm:is-number@^7 (7.") {
				t.Errorf("doctor's packages check: %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("doctor has no packages check: %+v", rep.Checks)
	}

	// A server using B's view (another allowlist on the same data dir):
	// prune under A leaves B's view alone while that server runs.
	viewB := ""
	for _, v := range viewNames(t, dir) {
		if v != filepath.Base(viewA) {
			viewB = v
		}
	}
	cs, stop := startServe(t, dir, "npm:is-odd@^3")
	out, errOut, code = conductor(t, "", envA, "deps", "prune")
	if code != 0 {
		t.Fatalf("deps prune: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := viewNames(t, dir); !slices.Equal(got, []string{filepath.Base(viewA), viewB}) && !slices.Equal(got, []string{viewB, filepath.Base(viewA)}) {
		t.Fatalf("while a server uses view %s, prune left %v\n%s", viewB, got, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "deps", "npm")); !os.IsNotExist(err) {
		t.Fatalf("prune left the old shared cache: %v\n%s", err, out)
	}
	res := callRun(t, cs, `import isOdd from "npm:is-odd"; return isOdd(3)`)
	if res.IsError || !strings.Contains(resultText(res), `"returnValue":true`) {
		t.Fatalf("the server under B after the prune: %s", resultText(res))
	}
	stop()
	out, errOut, code = conductor(t, "", envA, "deps", "prune")
	if code != 0 {
		t.Fatalf("deps prune: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := viewNames(t, dir); !slices.Equal(got, []string{filepath.Base(viewA)}) {
		t.Fatalf("after the server stopped, prune left %v; want only the current view\n%s", got, out)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "deps"))
	if len(left) != 2 {
		t.Fatalf("after prune the deps dir holds %v; want only the current view and the lock", left)
	}
	// The current view still serves its package.
	res2, all := execIn(t, dir, allow, `import isNumber from "npm:is-number"; return isNumber("12")`)
	if res2.Status != "success" || string(res2.ReturnValue) != "true" {
		t.Fatalf("after prune: %s", all)
	}
}
