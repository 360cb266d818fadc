package deps

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func mustAllow(t *testing.T, s string) *Allowlist {
	t.Helper()
	a, err := ParseAllowlist(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestViewName: a view is named by the canonical allowlist, the registry and
// the deno version; the admin's order does not matter, everything else does.
func TestViewName(t *testing.T) {
	const (
		reg  = "https://registry.npmjs.org/"
		deno = "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)"
	)
	base := ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:axios@^1"), Registry: reg, Deno: deno}
	tests := []struct {
		name string
		key  ViewKey
		same bool
	}{
		{"identical", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:axios@^1"), Registry: reg, Deno: deno}, true},
		{"other order", ViewKey{Allowlist: mustAllow(t, "npm:axios@^1,npm:zod@^3"), Registry: reg, Deno: deno}, true},
		{"registry without trailing slash", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:axios@^1"), Registry: "https://registry.npmjs.org", Deno: deno}, true},
		{"other version of a package", ViewKey{Allowlist: mustAllow(t, "npm:zod@^4,npm:axios@^1"), Registry: reg, Deno: deno}, false},
		{"version written another way", ViewKey{Allowlist: mustAllow(t, "npm:zod@3.x,npm:axios@^1"), Registry: reg, Deno: deno}, false},
		{"a package removed", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3"), Registry: reg, Deno: deno}, false},
		{"a package added", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:axios@^1,npm:is-number@^7"), Registry: reg, Deno: deno}, false},
		{"same name in jsr", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:axios@^1,jsr:@std/path@^1"), Registry: reg, Deno: deno}, false},
		{"other registry", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:axios@^1"), Registry: "https://npm.example.com/", Deno: deno}, false},
		{"other deno version", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:axios@^1"), Registry: reg, Deno: "deno 2.9.7 (stable, release, x86_64-unknown-linux-gnu)"}, false},
		{"empty allowlist", ViewKey{Allowlist: mustAllow(t, ""), Registry: reg, Deno: deno}, false},
		// Entries cannot be merged into one another by the separator.
		{"entries are lines, not a string", ViewKey{Allowlist: mustAllow(t, "npm:zod@^3"), Registry: reg, Deno: deno + "\npackage npm:axios@^1"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, want := tc.key.Name(), base.Name()
			if !IsViewName(got) {
				t.Fatalf("name %q is not a view name", got)
			}
			if (got == want) != tc.same {
				t.Fatalf("name %s vs %s: same=%v, want %v\n%s---\n%s", got, want, got == want, tc.same, tc.key.Canonical(), base.Canonical())
			}
		})
	}
}

func TestIsViewName(t *testing.T) {
	for s, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef":  true,
		"0123456789ABCDEF0123456789abcdef":  false,
		"0123456789abcdef0123456789abcde":   false,
		"0123456789abcdef0123456789abcdef0": false,
		"npm":                               false,
		".installed":                        false,
		"0123456789abcdef0123456789abcdeg":  false,
	} {
		if got := IsViewName(s); got != want {
			t.Errorf("IsViewName(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestViewsPrune: Prune never removes the kept view nor one a process holds
// open, keeps the most recent others it is asked to, and removes the old
// shared layout's content only when asked.
func TestViewsPrune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The old shared layout: deno's cache directly in <data>/deps.
	if err := os.MkdirAll(filepath.Join(dir, "npm", "registry.npmjs.org"), 0o755); err != nil {
		t.Fatal(err)
	}
	vs := NewViews(dir)
	key := func(allow string) ViewKey {
		return ViewKey{Allowlist: mustAllow(t, allow), Registry: "https://registry.npmjs.org/", Deno: "deno 2.9.6"}
	}
	open := func(allow string) *View {
		v, err := vs.Open(ctx, key(allow))
		if err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(v.Cache); err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
			t.Fatalf("view cache %s: %v %v", v.Cache, st, err)
		}
		return v
	}
	cur := open("npm:a@^1")
	defer cur.Release()
	held := open("npm:b@^1")
	defer held.Release()
	old := open("npm:c@^1")
	old.Release()
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old.Dir, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	recent := open("npm:d@^1")
	recent.Release()

	removed, err := vs.Prune(ctx, PruneOptions{Keep: []string{cur.Name}, KeepRecent: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{old.Name}) {
		t.Fatalf("removed %v, want only the older unused view %s", removed, old.Name)
	}
	views, legacy, err := vs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range views {
		names = append(names, v.Name)
		if v.Name == held.Name && !v.InUse {
			t.Errorf("view %s is held but listed as not in use", v.Name)
		}
	}
	for _, want := range []string{cur.Name, held.Name, recent.Name} {
		if !slices.Contains(names, want) {
			t.Errorf("view %s was removed; left: %v", want, names)
		}
	}
	if !slices.Equal(legacy, []string{"npm"}) {
		t.Errorf("legacy %v, want [npm]", legacy)
	}

	// Explicit prune: everything unused except the current view, and the
	// old layout.
	removed, err = vs.Prune(ctx, PruneOptions{Keep: []string{cur.Name}, Legacy: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{recent.Name, "npm"}) {
		t.Fatalf("removed %v, want [%s npm]", removed, recent.Name)
	}
	// Once released, the held view goes too; the current one never does.
	held.Release()
	if removed, err = vs.Prune(ctx, PruneOptions{Keep: []string{cur.Name}}); err != nil || !slices.Equal(removed, []string{held.Name}) {
		t.Fatalf("removed %v %v, want [%s]", removed, err, held.Name)
	}
	if _, err := os.Stat(cur.Cache); err != nil {
		t.Fatalf("current view removed: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != viewsLock && e.Name() != cur.Name {
			t.Errorf("left in the views dir: %s", e.Name())
		}
	}
}

// TestViewInstalledMarkers: markers live beside the view's DENO_DIR (not in
// what sandboxes mount) and are per view.
func TestViewInstalledMarkers(t *testing.T) {
	ctx := context.Background()
	vs := NewViews(t.TempDir())
	k := ViewKey{Allowlist: mustAllow(t, "npm:a@^1,npm:b@^2"), Registry: "https://r/", Deno: "deno 2"}
	v, err := vs.Open(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	a := k.Allowlist.Packages()[0]
	if v.Installed(a) {
		t.Fatal("installed before MarkInstalled")
	}
	if err := v.MarkInstalled(a); err != nil {
		t.Fatal(err)
	}
	if !v.Installed(a) {
		t.Fatal("not installed after MarkInstalled")
	}
	if ents, _ := os.ReadDir(v.Cache); len(ents) != 0 {
		t.Fatalf("the view's DENO_DIR holds conductor's files: %v", ents)
	}
	dir, installed, ok := vs.Inspect(k)
	if !ok || dir != v.Dir || !slices.Equal(installed, []Package{a}) {
		t.Fatalf("Inspect = %s %v %v", dir, installed, ok)
	}
	other := ViewKey{Allowlist: mustAllow(t, "npm:a@^1"), Registry: "https://r/", Deno: "deno 2"}
	if _, installed, ok := vs.Inspect(other); ok || len(installed) != 0 {
		t.Fatalf("another allowlist's view sees %v (exists %v)", installed, ok)
	}
}

// TestViewsOpenExisting: OpenExisting creates nothing; it opens (and holds)
// a view that exists.
func TestViewsOpenExisting(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "deps")
	vs := NewViews(dir)
	k := ViewKey{Allowlist: mustAllow(t, "npm:a@^1"), Registry: "https://r/", Deno: "deno 2"}
	if v, err := vs.OpenExisting(ctx, k); !errors.Is(err, ErrNoView) || v != nil {
		t.Fatalf("OpenExisting of a missing view = %v, %v; want ErrNoView", v, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenExisting created %s: %v", dir, err)
	}
	created, err := vs.Open(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	created.Release()
	v, err := vs.OpenExisting(ctx, k)
	if err != nil || v.Cache != created.Cache {
		t.Fatalf("OpenExisting = %v, %v; want %s", v, err, created.Cache)
	}
	defer v.Release()
	if removed, err := vs.Prune(ctx, PruneOptions{}); err != nil || len(removed) != 0 {
		t.Fatalf("Prune removed %v (%v) while OpenExisting's view is held", removed, err)
	}
}

// TestViewNamePython: with pypi: packages the interpreter and the index name the view too (a new
// Python or index gets a new, empty view); without them they do not count, so an npm-only view
// keeps its name.
func TestViewNamePython(t *testing.T) {
	const (
		reg   = "https://registry.npmjs.org/"
		deno  = "deno 2.9.6"
		py    = "Python 3.11.7 /usr/bin/python3.11"
		index = "https://pypi.org/simple/"
	)
	withPy := func(allow, python, idx string) string {
		return ViewKey{Allowlist: mustAllow(t, allow), Registry: reg, Deno: deno, Python: python, PyIndex: idx}.Name()
	}
	base := withPy("npm:zod@^3,pypi:pyyaml==6.0.1", py, index)
	for name, other := range map[string]string{
		"other Python version": withPy("npm:zod@^3,pypi:pyyaml==6.0.1", "Python 3.11.8 /usr/bin/python3.11", index),
		"other interpreter":    withPy("npm:zod@^3,pypi:pyyaml==6.0.1", "Python 3.11.7 /opt/py/bin/python3.11", index),
		"other index":          withPy("npm:zod@^3,pypi:pyyaml==6.0.1", py, "https://mirror.example.com/simple/"),
		"other pypi version":   withPy("npm:zod@^3,pypi:pyyaml==6.0.2", py, index),
	} {
		if other == base {
			t.Errorf("%s: same view name %s", name, base)
		}
	}
	if withPy("npm:zod@^3,pypi:pyyaml==6.0.1", py, "https://pypi.org/simple") != base {
		t.Error("a trailing slash of the index changed the view")
	}
	npmOnly := ViewKey{Allowlist: mustAllow(t, "npm:zod@^3"), Registry: reg, Deno: deno}.Name()
	if withPy("npm:zod@^3", py, index) != npmOnly || withPy("npm:zod@^3", "", "") != npmOnly {
		t.Error("without pypi: packages the interpreter or index changed the view's name")
	}
}
