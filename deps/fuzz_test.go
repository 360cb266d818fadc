package deps

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzCheck: Check never panics; whatever it accepts consists of specifier
// bytes only, resolves to an allowlisted package (with the admin's version)
// or a node: built-in, and has no path tricks; whatever it rejects wraps
// exactly one sentinel and has a printable message.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"npm:zod", "npm:zod@^3/v4", "zod/v4", "@scope/pkg/sub", "jsr:@std/path@^1/posix",
		"node:fs/promises", "npm:zod@3/../../x", "npm:../x", "%2e%2e", `npm:zod\x`, "npm:zod\x00",
		"https://example.com/x", "data:,x", "./x.ts", "node_modules/zod", "npm:Zod", "npm:z\u043ed",
		"npm:/zod", "zod@3", "npm:@scope/pkg@1.2.3/a/b", "npm:is-number@7/index.js", "",
	} {
		f.Add(s)
	}
	a := mustParse(f, testList)
	pkgs := a.Packages()
	sentinels := []error{ErrNotAllowed, ErrVersionMismatch, ErrMalformed, ErrRemote, ErrRelative}
	f.Fuzz(func(t *testing.T, spec string) {
		r, err := a.Check(spec)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Check(%q): error wraps %d sentinels: %v", spec, n, err)
			}
			msg := err.Error()
			for i := 0; i < len(msg); i++ {
				if msg[i] < 0x20 || msg[i] >= 0x7f {
					t.Fatalf("Check(%q): error has byte %#x: %q", spec, msg[i], msg)
				}
			}
			return
		}
		for _, s := range []string{spec, r.Specifier} {
			if s == "" || len(s) > MaxSpecifierLen+maxVersionLen+1 {
				t.Fatalf("Check(%q) accepted, specifier %q has bad length", spec, s)
			}
			for i := 0; i < len(s); i++ {
				if !specByte(s[i]) {
					t.Fatalf("Check(%q) accepted with byte %q in %q", spec, s[i], s)
				}
			}
			if hasSegment(s, "..") || hasSegment(s, ".") || hasSegment(s, "node_modules") || strings.Contains(s, "//") {
				t.Fatalf("Check(%q) accepted a path trick: %q", spec, s)
			}
		}
		switch r.Kind {
		case KindBuiltin:
			if r.Specifier != spec || !builtins[strings.TrimPrefix(spec, "node:")] || r.Package != (Package{}) {
				t.Fatalf("Check(%q) = %+v: not a builtin", spec, r)
			}
		case KindPackage:
			if !slices.Contains(pkgs, r.Package) {
				t.Fatalf("Check(%q) = %+v: not an allowlisted package", spec, r)
			}
			if r.Specifier != r.Package.Specifier()+r.Subpath || subpath(r.Subpath) != "" {
				t.Fatalf("Check(%q) = %+v: specifier is not the package's", spec, r)
			}
			if !strings.Contains(spec, r.Package.Name) {
				t.Fatalf("Check(%q) = %+v: resolved to a package it does not name", spec, r)
			}
			if v := strings.TrimPrefix(spec, string(r.Package.Registry)+":"+r.Package.Name+"@"); v != spec && !strings.HasPrefix(v+"/", r.Package.Version+"/") {
				t.Fatalf("Check(%q) = %+v: accepted another version", spec, r)
			}
		default:
			t.Fatalf("Check(%q) = %+v: no kind", spec, r)
		}
	})
}

// FuzzParseAllowlist: ParseAllowlist never panics, and whatever it accepts
// round-trips: each package's specifier checks back to itself.
func FuzzParseAllowlist(f *testing.F) {
	for _, s := range []string{"", testList, "npm:zod", "npm:zod@^3,npm:zod@^3", "npm:@a/b@1,jsr:@a/b@1", "npm:zod@1.0.0-rc.1", "npm:zod@^3,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAllowlist(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseAllowlist(%q): %T", s, err)
			}
			return
		}
		for _, p := range a.Packages() {
			if p.Version == "" || p.Name == "" {
				t.Fatalf("ParseAllowlist(%q): %+v", s, p)
			}
			r, err := a.Check(p.Specifier())
			if err != nil || r.Package != p || r.Specifier != p.Specifier() {
				t.Fatalf("ParseAllowlist(%q): %s checks as %+v, %v", s, p.Specifier(), r, err)
			}
			if r, err := a.Check(p.Name); err != nil || r.Package != p {
				t.Fatalf("ParseAllowlist(%q): bare %s checks as %+v, %v", s, p.Name, r, err)
			}
		}
		if _, err := a.ImportMap(); err != nil {
			t.Fatal(err)
		}
	})
}
