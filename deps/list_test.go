package deps

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestViewStates: every allowlist entry in the admin's order, installed or not, with the versions
// the view's cache holds of it (npm: the deno cache's version directories, numerically ordered;
// pypi: the installed distribution's).
func TestViewStates(t *testing.T) {
	ctx := context.Background()
	vs := NewViews(t.TempDir())
	k := ViewKey{Allowlist: mustAllow(t, "npm:zod@^3,npm:@scope/pkg@1.0.0,npm:absent@^1,pypi:tiny-pkg==1.0.0"),
		Registry: "https://r/", Deno: "deno 2", Python: "3.11", PyIndex: "https://i/"}
	if states := vs.States(k); len(states) != 4 || states[0].Installed || states[0].String() != "NOT installed" {
		t.Fatalf("before the view exists: %+v", states)
	}
	v, err := vs.Open(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	mkdir := func(p ...string) {
		if err := os.MkdirAll(filepath.Join(p...), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	npm := filepath.Join(v.Cache, "npm", "registry.npmjs.org")
	mkdir(npm, "zod", "3.9.0")
	mkdir(npm, "zod", "3.23.8")
	mkdir(npm, "@scope", "pkg", "1.0.0")
	info := filepath.Join(PyPackagesIn(v.Dir), "tiny_pkg-1.0.0.dist-info")
	mkdir(info)
	if err := os.WriteFile(filepath.Join(info, "METADATA"), []byte("Metadata-Version: 2.1\nName: tiny-pkg\nVersion: 1.0.0\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	all := k.Allowlist.Packages()
	for _, i := range []int{0, 1, 3} {
		if err := v.MarkInstalled(all[i]); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, s := range vs.States(k) {
		got = append(got, s.Package.Specifier()+" "+s.String())
	}
	want := []string{
		"npm:zod@^3 installed: zod 3.9.0, 3.23.8",
		"npm:@scope/pkg@1.0.0 installed: @scope/pkg 1.0.0",
		"npm:absent@^1 NOT installed",
		"pypi:tiny-pkg==1.0.0 installed: tiny-pkg 1.0.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
