package deps

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParsePyPIEntries(t *testing.T) {
	tests := []struct {
		in   string
		want []Package // nil with err
		err  string
	}{
		{"pypi:pyyaml==6.0.1", []Package{{PyPI, "pyyaml", "==6.0.1"}}, ""},
		{"pypi:PyYAML==6.0", []Package{{PyPI, "pyyaml", "==6.0"}}, ""},
		{"pypi:Foo_Bar.baz==1", []Package{{PyPI, "foo-bar-baz", "==1"}}, ""},
		{"pypi:requests~=2.31", []Package{{PyPI, "requests", "~=2.31"}}, ""},
		{"pypi:a==1.0rc1,pypi:b==2.0.post3,pypi:c==3.1.dev0,pypi:d==1a2.post1.dev3", []Package{{PyPI, "a", "==1.0rc1"}, {PyPI, "b", "==2.0.post3"}, {PyPI, "c", "==3.1.dev0"}, {PyPI, "d", "==1a2.post1.dev3"}}, ""},
		{"npm:zod@^3,pypi:zod==1.0", []Package{{NPM, "zod", "^3"}, {PyPI, "zod", "==1.0"}}, ""}, // different worlds: no ambiguity

		{"pypi:pyyaml", nil, "has no version; admins must pin one, e.g. pypi:pyyaml==1.2.3"},
		{"pypi:pyyaml>=6", nil, `has ">=6"; pin a version with == or ~=`},
		{"pypi:pyyaml<7", nil, "pin a version with == or ~="},
		{"pypi:pyyaml@6", nil, "pin a version with == or ~="},
		{"pypi:pyyaml==6.*", nil, "is not a release"},
		{"pypi:pyyaml==06.0", nil, "is not a release"},
		{"pypi:pyyaml==1!2.0", nil, "is not a release"},
		{"pypi:pyyaml==6.0+local", nil, "is not a release"},
		{"pypi:pyyaml==", nil, "is empty"},
		{"pypi:pyyaml~=6", nil, "~= needs two or more"},
		{"pypi:pyyaml~=6rc1", nil, "~= needs two or more"},
		{"pypi:==6.0", nil, `has a distribution name "" that is empty`},
		{"pypi:-yaml==6.0", nil, "does not start and end with a letter or digit"},
		{"pypi:py/yaml==6.0", nil, `contains '/'`},
		{"pypi:py yaml==6.0", nil, "contains whitespace"},
		{"pypi:pyyaml==6.0,pypi:PyYAML==6.0.1", nil, "lists pypi:pyyaml again (entry 1 is pypi:pyyaml==6.0"},
		{"pypi:py_yaml==6.0,pypi:py-yaml==6.0", nil, "lists pypi:py-yaml again"},
		{"PYPI:pyyaml==6.0", nil, "upper-case scheme; write pypi:"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			a, err := ParseAllowlist(tc.in)
			if tc.err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseAllowlist(%q) = %v; want a *ParseError containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAllowlist(%q): %v", tc.in, err)
			}
			if got := a.Packages(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Packages() = %v; want %v", got, tc.want)
			}
		})
	}
}

// TestPyPIStaysOutOfDeno: pypi entries are for Python only: deno's import map, its checks and
// its tool description never name them.
func TestPyPIStaysOutOfDeno(t *testing.T) {
	a := mustParse(t, "npm:zod@^3,pypi:pyyaml==6.0.1")
	m, err := a.ImportMap()
	if err != nil || strings.Contains(string(m), "pyyaml") {
		t.Errorf("ImportMap = %s, %v; want no pyyaml", m, err)
	}
	for _, spec := range []string{"pyyaml", "npm:pyyaml", "pypi:pyyaml"} {
		if _, err := a.Check(spec); err == nil {
			t.Errorf("Check(%q) accepted a pypi package for deno", spec)
		}
	}
	if d := a.Description(); strings.Contains(d, "pyyaml") || !strings.Contains(d, "npm:zod@^3") {
		t.Errorf("Description = %q", d)
	}
	if got := a.PythonPackages(); len(got) != 1 || got[0].Specifier() != "pypi:pyyaml==6.0.1" || got[0].PipRequirement() != "pyyaml==6.0.1" {
		t.Errorf("PythonPackages = %v", got)
	}
	if a.Len() != 2 {
		t.Errorf("Len = %d; want 2", a.Len())
	}
	only := mustParse(t, "pypi:pyyaml==6.0.1")
	if d := only.Description(); !strings.HasPrefix(d, "No packages are allowed") {
		t.Errorf("a pypi-only allowlist's deno description = %q", d)
	}
}

func TestCheckPython(t *testing.T) {
	a := mustParse(t, "npm:zod@^3,pypi:pyyaml==6.0.1,pypi:typing-extensions~=4.8")
	tests := []struct {
		spec string
		want string // the admin's specifier; "" with kind
		kind error
	}{
		{"pyyaml", "pypi:pyyaml==6.0.1", nil},
		{"PyYAML", "pypi:pyyaml==6.0.1", nil},
		{"pypi:pyyaml", "pypi:pyyaml==6.0.1", nil},
		{"pyyaml==6.0.1", "pypi:pyyaml==6.0.1", nil},
		{"typing_extensions", "pypi:typing-extensions~=4.8", nil},
		{"pyyaml==5.4", "", ErrVersionMismatch},
		{"pyyaml>=6", "", ErrVersionMismatch},
		{"zod", "", ErrNotAllowed},
		{"numpy", "", ErrNotAllowed},
		{"", "", ErrMalformed},
		{"../pyyaml", "", ErrMalformed},
		{"py yaml", "", ErrMalformed},
		{"pyyaml\x00", "", ErrMalformed},
		{strings.Repeat("a", 600), "", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			p, err := a.CheckPython(tc.spec)
			if tc.kind != nil {
				if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), "Allowed PyPI packages: pypi:pyyaml==6.0.1, pypi:typing-extensions~=4.8") {
					t.Fatalf("CheckPython(%q) = %v, %v; want %v naming the allowlist", tc.spec, p, err, tc.kind)
				}
				return
			}
			if err != nil || p.Specifier() != tc.want {
				t.Fatalf("CheckPython(%q) = %v, %v; want %s", tc.spec, p, err, tc.want)
			}
		})
	}
	var none *Allowlist
	if _, err := none.CheckPython("pyyaml"); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "No PyPI packages are allowed") {
		t.Errorf("empty allowlist: %v", err)
	}
}

func TestNormalizePyName(t *testing.T) {
	for in, want := range map[string]string{"PyYAML": "pyyaml", "a__b": "a-b", "A.-_B": "a-b", "zope.interface": "zope-interface", "x": "x"} {
		if got := NormalizePyName(in); got != want {
			t.Errorf("NormalizePyName(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzCheckPython: any dependency string is accepted only as an allowlisted package, never
// panics, and refusals name the allowlist.
func FuzzCheckPython(f *testing.F) {
	for _, s := range []string{"pyyaml", "PyYAML==6.0.1", "pypi:pyyaml", "numpy", "a==1", "\x00", "py-yaml~=6", "../x", "pyyaml==6.0.1 ; os_name"} {
		f.Add(s)
	}
	a := mustParse(f, "pypi:pyyaml==6.0.1,pypi:requests~=2.31")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := a.CheckPython(s)
		if err != nil {
			var ce *CheckError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Allowed PyPI packages") {
				t.Fatalf("CheckPython(%q): %v is not a *CheckError naming the allowlist", s, err)
			}
			return
		}
		if p.Specifier() != "pypi:pyyaml==6.0.1" && p.Specifier() != "pypi:requests~=2.31" {
			t.Fatalf("CheckPython(%q) = %v: not an allowlisted package", s, p)
		}
	})
}

// TestInstalledDists reads names and versions from *.dist-info/METADATA headers only (a body
// line that looks like a header does not count).
func TestInstalledDists(t *testing.T) {
	dir := t.TempDir()
	for info, meta := range map[string]string{
		"PyYAML-6.0.1.dist-info":  "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n\nName: not-this\n",
		"tinypkg-1.0.0.dist-info": "Metadata-Version: 2.1\nname: tinypkg\nversion: 1.0.0\n",
		"broken-1.dist-info":      "Metadata-Version: 2.1\n",
	} {
		if err := os.MkdirAll(filepath.Join(dir, info), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, info, "METADATA"), []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := InstalledDists(dir)
	want := []Dist{{"PyYAML", "6.0.1"}, {"tinypkg", "1.0.0"}}
	if !slices.Equal(got, want) {
		t.Fatalf("InstalledDists = %v, want %v", got, want)
	}
	if d, ok := FindDist(got, Package{Registry: PyPI, Name: "pyyaml", Version: "==6.0.1"}); !ok || d.Version != "6.0.1" {
		t.Errorf("FindDist(pyyaml) = %v, %v", d, ok)
	}
	if len(InstalledDists(filepath.Join(dir, "missing"))) != 0 {
		t.Error("a missing directory has distributions")
	}
}
