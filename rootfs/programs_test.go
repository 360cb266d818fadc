package rootfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// hostDataDir makes a directory for data trees outside /tmp (the root's /tmp is a mount point,
// so data there is refused): under /var/tmp, not the checkout, which may itself lie under /tmp
// (a CI clone in /tmp failed that way). Removed after the test.
func hostDataDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/var/tmp", "conductor-programs-test-")
	if err != nil {
		testenv.Unavailable(t, "a directory outside /tmp for data trees: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// needFile stops the test (testenv.Unavailable: fails under CI=true) when a host file it
// copies is absent.
func needFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		testenv.Unavailable(t, "%s is missing: %v", p, err)
	}
}

// TestProgramsWithData: a program's data tree lands at its own path with its modes and inner
// relative links, and every ELF file in it (an executable and a shared object without
// PT_INTERP) brings its library closure, each library once.
func TestProgramsWithData(t *testing.T) {
	t.Parallel()
	needFile(t, "/usr/bin/curl")
	needFile(t, "/usr/lib/x86_64-linux-gnu/libcurl.so.4")
	lib, err := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/libcurl.so.4")
	must(t, err)
	deno := smallELF(t, t.TempDir(), "deno")
	tool := smallELF(t, t.TempDir(), "tool")
	data := hostDataDir(t)
	must(t, os.MkdirAll(filepath.Join(data, "share", "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(data, "share", "sub", "template"), []byte("hello"), 0o600))
	copyFile(t, "/usr/bin/curl", filepath.Join(data, "helper"), 0o755)
	copyFile(t, lib, filepath.Join(data, "libplugin.so"), 0o644)
	must(t, os.Symlink("helper", filepath.Join(data, "helper-alias")))
	must(t, os.Symlink("../helper", filepath.Join(data, "share", "up")))
	must(t, os.Symlink(filepath.Join(data, "share", "sub"), filepath.Join(data, "abs-inside"))) // made relative
	extra := filepath.Join(hostDataDir(t), "ca.crt")
	must(t, os.WriteFile(extra, []byte("cert"), 0o644))
	// Copies keep their sources' modification times (a Python .pyc is valid only for its
	// source's mtime).
	old := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	must(t, os.Chtimes(filepath.Join(data, "share", "sub", "template"), old, old))
	must(t, os.Chtimes(extra, old, old))

	opts := Options{Deno: deno, Programs: []Program{
		{Host: tool, Path: "/usr/bin/tool", Data: []string{data, extra}},
		{Host: "/usr/bin/curl", Path: "/usr/bin/curl"}, // shares most of helper's closure
	}}
	r := ensure(t, NewStore(filepath.Join(t.TempDir(), "store")), opts)
	must(t, r.Verify(context.Background()))

	mode := func(p string) os.FileMode {
		st, err := os.Lstat(filepath.Join(r.Path, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return st.Mode()
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{"/usr/bin/tool", 0o755},
		{"/usr/bin/curl", 0o755},
		{data + "/helper", 0o755},
		{data + "/libplugin.so", 0o644},
		{data + "/share/sub", os.ModeDir | 0o755},
		{data + "/share/sub/template", 0o644}, // made readable for the sandbox's uid
		{extra, 0o644},
	} {
		if got := mode(c.path); got != c.want {
			t.Errorf("%s: mode %v, want %v", c.path, got, c.want)
		}
	}
	for _, p := range []string{data + "/share/sub/template", extra} {
		st, err := os.Stat(filepath.Join(r.Path, p))
		must(t, err)
		if !st.ModTime().Equal(old) {
			t.Errorf("%s: modification time %v, want its source's %v", p, st.ModTime(), old)
		}
	}
	for link, want := range map[string]string{data + "/helper-alias": "helper", data + "/share/up": "../helper", data + "/abs-inside": "share/sub"} {
		if got, err := os.Readlink(filepath.Join(r.Path, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	// helper (an executable) and libplugin.so (a shared object) bring their closures.
	for _, obj := range []string{"/usr/bin/curl", lib} {
		libs, err := defaultResolver().objectClosure(obj, nil)
		must(t, err)
		for _, l := range libs {
			if _, err := os.Stat(filepath.Join(r.Path, l.Real)); err != nil {
				t.Errorf("%s of %s is missing from the root: %v", l.Real, obj, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(r.Path, lib)); err != nil {
		t.Errorf("curl's libcurl is missing: %v", err)
	}
}

// TestProgramClosureDedup: programs sharing libraries get each library once, the closure of a
// host file reached twice (a program that is also data) is walked once, and the plan holds no
// library twice at different paths.
func TestProgramClosureDedup(t *testing.T) {
	t.Parallel()
	needFile(t, "/usr/bin/curl")
	deno := smallELF(t, t.TempDir(), "deno")
	r := defaultResolver()
	p := &plan{entries: map[string]*entry{}}
	pp := &programPlanner{p: p, r: r, done: map[fileKey]bool{}, cache: loadCache{}}
	for _, pr := range []Program{
		{Host: deno, Path: "/usr/bin/deno"},
		{Host: "/usr/bin/curl", Path: "/usr/bin/curl"},
		{Host: "/usr/bin/curl", Path: "/usr/bin/curl2"},
	} {
		must(t, pp.add(pr))
	}
	if len(pp.done) != 2 {
		t.Errorf("closures walked for %d distinct files, want 2 (deno's copy and curl)", len(pp.done))
	}
	libs, err := r.closure("/usr/bin/curl")
	must(t, err)
	files := 0
	for _, e := range p.entries {
		if e.Type == typeFile && strings.Contains(e.Path, "/lib") {
			files++
		}
	}
	if files != len(libs) {
		t.Errorf("%d library files in the plan, want curl's %d (true's libraries are a subset)", files, len(libs))
	}
}

// TestProgramDataRefusals: links leaving the data tree, and data or program paths the root or
// the sandbox own, are refused with a reason.
func TestProgramDataRefusals(t *testing.T) {
	t.Parallel()
	deno := smallELF(t, t.TempDir(), "deno")
	outside := hostDataDir(t)
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644))
	script := filepath.Join(outside, "script")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	for _, c := range []struct {
		name    string
		link    string // target of data/link; "" for none
		prog    Program
		wantErr error
		wantMsg string
	}{
		{name: "relative escape", link: "../secret", wantErr: ErrEscapingLink},
		{name: "absolute outside", link: "/etc/passwd", wantErr: ErrEscapingLink},
		{name: "program under /tmp", prog: Program{Path: "/tmp/tool"}, wantMsg: "inside /tmp"},
		{name: "program relative", prog: Program{Path: "usr/bin/tool"}, wantMsg: "clean absolute path"},
		{name: "data in /conductor", prog: Program{Path: "/usr/bin/tool", Data: []string{"/conductor/x"}}, wantMsg: "inside /conductor"},
		{name: "not executable", prog: Program{Host: filepath.Join(outside, "secret"), Path: "/usr/bin/tool"}, wantMsg: "not an executable"},
		{name: "script", prog: Program{Host: script, Path: "/usr/bin/tool"}, wantErr: ErrNotELF},
	} {
		t.Run(c.name, func(t *testing.T) {
			pr := c.prog
			if pr.Host == "" {
				pr.Host = deno
			}
			if c.link != "" {
				dir := filepath.Join(outside, "tree-"+strings.ReplaceAll(c.name, " ", "-"))
				must(t, os.Mkdir(dir, 0o755))
				must(t, os.Symlink(c.link, filepath.Join(dir, "link")))
				pr = Program{Host: deno, Path: "/usr/bin/tool", Data: []string{dir}}
			}
			_, err := newPlan(context.Background(), Options{Deno: deno, Programs: []Program{pr}}, defaultResolver(), loadDigests(""))
			switch {
			case err == nil:
				t.Fatal("accepted")
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Fatalf("error %v, want %v", err, c.wantErr)
			case c.wantMsg != "" && !strings.Contains(err.Error(), c.wantMsg):
				t.Fatalf("error %q lacks %q", err, c.wantMsg)
			}
		})
	}
}

// TestProgramChangesHash: adding a program, or a data file to it, changes the root's hash and
// switches the store; the same options again reuse the root without building.
func TestProgramChangesHash(t *testing.T) {
	t.Parallel()
	deno := smallELF(t, t.TempDir(), "deno")
	tool := smallELF(t, t.TempDir(), "tool")
	data := hostDataDir(t)
	must(t, os.WriteFile(filepath.Join(data, "a"), []byte("1"), 0o644))
	s := NewStore(filepath.Join(t.TempDir(), "store"))
	base := ensure(t, s, Options{Deno: deno})
	withTool := Options{Deno: deno, Programs: []Program{{Host: tool, Path: "/usr/bin/tool", Data: []string{data}}}}
	r1 := ensure(t, s, withTool)
	if r1.Hash == base.Hash {
		t.Fatal("adding a program did not change the hash")
	}
	builds := s.builds.Load()
	if again := ensure(t, s, withTool); again.Hash != r1.Hash || s.builds.Load() != builds {
		t.Fatalf("same programs: hash %s (was %s), builds %d (was %d)", again.Hash, r1.Hash, s.builds.Load(), builds)
	}
	must(t, os.WriteFile(filepath.Join(data, "b"), []byte("2"), 0o644))
	if r2 := ensure(t, s, withTool); r2.Hash == r1.Hash {
		t.Fatal("a new data file did not change the hash")
	}
}

// TestProgramTreesAndSkip: a tree lands at its own in-root path (not its host path), and the
// program's skip patterns leave out matching files and whole directories, in data and trees
// alike; a tree inside a path the root owns is refused.
func TestProgramTreesAndSkip(t *testing.T) {
	t.Parallel()
	deno := smallELF(t, t.TempDir(), "deno")
	tool := smallELF(t, t.TempDir(), "tool")
	data, tree := hostDataDir(t), hostDataDir(t)
	for _, f := range []string{"pkg/a.go", "pkg/a_test.go", "pkg/testdata/big/x.bin", "keep.txt"} {
		for _, top := range []string{data, tree} {
			must(t, os.MkdirAll(filepath.Dir(filepath.Join(top, f)), 0o755))
			must(t, os.WriteFile(filepath.Join(top, f), []byte(f), 0o644))
		}
	}
	prog := Program{Host: tool, Path: "/usr/bin/tool", Data: []string{data}, Trees: []Tree{{Host: tree, Path: "/var/cache/tool"}},
		Skip: []string{"testdata", "*_test.go"}}
	r := ensure(t, NewStore(filepath.Join(t.TempDir(), "store")), Options{Deno: deno, Programs: []Program{prog}})
	must(t, r.Verify(context.Background()))
	for _, c := range []struct {
		path    string
		present bool
	}{
		{data + "/pkg/a.go", true},
		{data + "/keep.txt", true},
		{data + "/pkg/a_test.go", false},
		{data + "/pkg/testdata", false},
		{"/var/cache/tool/pkg/a.go", true},
		{"/var/cache/tool/keep.txt", true},
		{"/var/cache/tool/pkg/a_test.go", false},
		{"/var/cache/tool/pkg/testdata", false},
		{tree, false}, // not at its host path
	} {
		_, err := os.Lstat(filepath.Join(r.Path, c.path))
		if (err == nil) != c.present {
			t.Errorf("%s: present=%v, want %v", c.path, err == nil, c.present)
		}
	}
	prog.Trees = []Tree{{Host: tree, Path: "/conductor/cache"}}
	if _, err := newPlan(context.Background(), Options{Deno: deno, Programs: []Program{prog}}, defaultResolver(), loadDigests("")); err == nil || !strings.Contains(err.Error(), "inside /conductor") {
		t.Errorf("a tree inside /conductor: %v, want a refusal", err)
	}
}
