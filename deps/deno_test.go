package deps

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the real deno: they install one tiny npm package
// (is-number@7, one metadata request and one tarball of a few KB) into a
// private DENO_DIR once per test run, then run code against that cache the
// way the sandbox does — --cached-only --no-remote --no-config and the
// allowlist's import map — with any network use made to fail.

// denoBinary finds the deno to test against: $CONDUCTOR_DENO, else the
// repository's .build/deno. Without one the test fails under CI=true and is
// skipped otherwise.
func denoBinary(t *testing.T) string { return testenv.Deno(t) }

// denoEnv is the environment for deno: ours, less anything that points deno
// at another cache or config, plus a private DENO_DIR.
func denoEnv(denoDir string, extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return strings.HasPrefix(name, "DENO_") || name == "NO_COLOR" || name == "RUST_BACKTRACE"
	})
	return append(env, append([]string{
		"DENO_DIR=" + denoDir,
		"DENO_NO_UPDATE_CHECK=1",
		"NO_COLOR=1",
		"RUST_BACKTRACE=0",
	}, extra...)...)
}

// offline makes every network request deno might try fail at once: its HTTP
// client honours these proxy variables, and nothing listens on port 9 of
// the loopback address.
var offline = []string{
	"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9",
	"http_proxy=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
	"NO_PROXY=", "no_proxy=", "DENO_EMIT_CACHE_MODE=disable",
}

func runIn(t *testing.T, deno, dir string, env []string, timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, deno, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// The shared cache: npm:is-number@7 installed once per test run.
var shared struct {
	once sync.Once
	dir  string
	err  error
}

const installList = "npm:is-number@7"

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// installed returns a DENO_DIR holding installList, installed the way
// conductor installs: `deno cache` over InstallProgram, in an empty
// directory.
func installed(t *testing.T, deno string) string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "conductor-deps-cache-")
		if shared.err != nil {
			return
		}
		a, err := ParseAllowlist(installList)
		if err != nil {
			shared.err = err
			return
		}
		work, err := os.MkdirTemp("", "conductor-deps-install-")
		if err != nil {
			shared.err = err
			return
		}
		defer os.RemoveAll(work)
		for _, p := range a.Packages() {
			if err := os.WriteFile(filepath.Join(work, "install.ts"), []byte(InstallProgram(p)), 0o644); err != nil {
				shared.err = err
				return
			}
			_, stderr, err := runIn(t, deno, work, denoEnv(shared.dir, "DENO_EMIT_CACHE_MODE=disable"), 2*time.Minute, CacheArgs("install.ts")...)
			if err != nil {
				shared.err = errors.New("deno " + strings.Join(CacheArgs("install.ts"), " ") + ": " + err.Error() + "\n" + stderr)
				return
			}
		}
		// Nothing was written next to the program: no node_modules, no
		// deno.lock.
		if ents, err := os.ReadDir(work); err != nil || len(ents) != 1 {
			shared.err = errors.New("deno cache left files in its working directory")
		}
	})
	if shared.err != nil {
		t.Fatalf("installing %s: %v", installList, shared.err)
	}
	return shared.dir
}

// tree lists the files and directories under dir, relative, for the log.
func tree(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	return out
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runArgs are the sandbox's deno flags around an import map.
func runArgs(importMap, file string) []string {
	return []string{"run", "--cached-only", "--no-remote", "--no-config", "--import-map=" + importMap, file}
}

func TestDenoInstallAndRunOffline(t *testing.T) {
	deno := denoBinary(t)
	a := mustParse(t, installList)
	denoDir := installed(t, deno)

	layout := tree(denoDir)
	t.Logf("DENO_DIR after install:\n  %s", strings.Join(layout, "\n  "))
	// npm/<registry host>/is-number/{7.0.0/,registry.json}: the host comes
	// from deno's registry setting, so it is matched, not named.
	for _, pattern := range []string{"npm/*/is-number/7.*/package.json", "npm/*/is-number/registry.json"} {
		if m, _ := filepath.Glob(filepath.Join(denoDir, pattern)); len(m) != 1 {
			t.Errorf("no %s in DENO_DIR", pattern)
		}
	}

	// The model's code: versionless npm:, bare, bare and npm: subpaths, the
	// admin's own version, dynamic imports and a data: module (the way the
	// sandbox evaluates user code).
	specs := []string{"npm:is-number", "is-number", "is-number/index.js", "npm:is-number/index.js", "npm:is-number@7"}
	for _, s := range specs {
		if r, err := a.Check(s); err != nil {
			t.Fatalf("Check(%q): %v", s, err)
		} else if !strings.HasPrefix(r.Specifier, "npm:is-number@7") {
			t.Fatalf("Check(%q) = %+v", s, r)
		}
	}
	if _, err := a.Check("npm:is-number@6"); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("Check(npm:is-number@6) = %v, want ErrVersionMismatch", err)
	}
	program := `import a from "npm:is-number";
import b from "is-number";
import c from "is-number/index.js";
import d from "npm:is-number/index.js";
import e from "npm:is-number@7";
const f = (await import("npm:" + "is-number")).default;
const mod = 'import x from "npm:is-number"; export default x;';
const g = (await import("data:application/typescript," + encodeURIComponent(mod))).default;
const h = (await import("npm:/" + "is-number")).default; // Check refuses it; the map pins it anyway
console.log(JSON.stringify([a, b, c, d, e, f, g, h].map((fn) => fn(42) && fn("4.2") && !fn("x"))));
console.log(import.meta.resolve("npm:is-number"), import.meta.resolve("is-number/index.js"));
`
	work := t.TempDir()
	main := writeFile(t, work, "main.ts", []byte(program))
	im, err := a.ImportMapFor(specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("import map:\n%s", im)
	imFile := writeFile(t, t.TempDir(), "import_map.json", im)

	check := func(name, importMap string) {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, err := runIn(t, deno, work, denoEnv(denoDir, offline...), time.Minute, runArgs(importMap, main)...)
			if err != nil {
				t.Fatalf("deno run: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			if len(lines) != 2 || lines[0] != "[true,true,true,true,true,true,true,true]" {
				t.Fatalf("unexpected output:\n%s\nstderr: %s", stdout, stderr)
			}
			// Both resolve to the cached 7.0.0 files.
			for _, u := range strings.Fields(lines[1]) {
				if !strings.HasPrefix(u, "file://") || !strings.HasSuffix(u, "/is-number/7.0.0/index.js") {
					t.Errorf("resolved as %q", lines[1])
				}
			}
		})
	}
	check("import map file", imFile)
	// deno also takes the import map as a data: URL, under --no-remote: a
	// per-run map needs no file.
	check("import map data URL", "data:application/json;base64,"+base64.StdEncoding.EncodeToString(im))
}

// What deno says when the import map pins a version the cache lacks, or a
// package that was never installed: the sandbox classifies these messages as
// dependency errors.
func TestDenoNotCached(t *testing.T) {
	deno := denoBinary(t)
	denoDir := installed(t, deno)
	tests := []struct {
		list, code string
		want       []string
	}{
		// The metadata of is-number is cached, 6.0.0's files are not.
		{"npm:is-number@6", `import x from "npm:is-number"; console.log(x(1));`,
			[]string{"error: Failed caching npm package 'is-number@6.0.0'", `npm package not found in cache: "is-number", --cached-only is specified.`}},
		{"npm:is-number@6", `import x from "is-number"; console.log(x(1));`,
			[]string{"'is-number@6.0.0'", "--cached-only is specified"}},
		// Nothing of is-odd is cached.
		{"npm:is-odd@3", `import x from "npm:is-odd"; console.log(x(1));`,
			[]string{"error: Failed loading ", ` for package "is-odd"`, `npm package not found in cache: "is-odd", --cached-only is specified.`}},
		// No such version in the cached metadata.
		{"npm:is-number@99", `import x from "npm:is-number"; console.log(x(1));`,
			[]string{"Could not find npm package 'is-number' matching '99'"}},
	}
	for _, tc := range tests {
		t.Run(tc.list, func(t *testing.T) {
			a := mustParse(t, tc.list)
			im, err := a.ImportMap()
			if err != nil {
				t.Fatal(err)
			}
			work := t.TempDir()
			imFile := writeFile(t, work, "import_map.json", im)
			main := writeFile(t, work, "main.ts", []byte(tc.code))
			stdout, stderr, err := runIn(t, deno, work, denoEnv(denoDir, offline...), time.Minute, runArgs(imFile, main)...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("deno run: %v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout, stderr)
			}
			t.Logf("deno's message:\n%s", stderr)
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestDenoBuiltins compares the node: built-ins Check accepts with the
// ones the deno under test provides.
func TestDenoBuiltins(t *testing.T) {
	deno := denoBinary(t)
	work := t.TempDir()
	main := writeFile(t, work, "main.ts", []byte(`import { builtinModules } from "node:module"; console.log(JSON.stringify(builtinModules));`))
	stdout, stderr, err := runIn(t, deno, work, denoEnv(t.TempDir(), offline...), time.Minute, "run", "--no-remote", "--no-config", main)
	if err != nil {
		t.Fatalf("deno run: %v\n%s", err, stderr)
	}
	var names []string
	if err := json.Unmarshal([]byte(stdout), &names); err != nil {
		t.Fatalf("output %q: %v", stdout, err)
	}
	got := map[string]bool{}
	for _, n := range names {
		got[strings.TrimPrefix(n, "node:")] = true
	}
	for n := range got {
		if !builtins[n] {
			t.Errorf("deno provides node:%s, which Check refuses; add it to builtins", n)
		}
	}
	for n := range builtins {
		if !got[n] {
			t.Errorf("Check accepts node:%s, which deno does not list", n)
		}
	}
}
