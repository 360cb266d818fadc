package deps

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseAllowlist(t *testing.T) {
	tests := []struct {
		in   string
		want []Package // nil with err
		err  string    // substring of the error; "" = valid
		at   int       // ParseError.Index
	}{
		{"", []Package{}, "", 0},
		{"npm:zod@^3", []Package{{NPM, "zod", "^3"}}, "", 0},
		{"npm:zod@^3,npm:axios@^1,jsr:@std/path@^1", []Package{{NPM, "zod", "^3"}, {NPM, "axios", "^1"}, {JSR, "@std/path", "^1"}}, "", 0},
		{"npm:@scope/pkg@1.2.3", []Package{{NPM, "@scope/pkg", "1.2.3"}}, "", 0},
		{"npm:zod@~3.22", []Package{{NPM, "zod", "~3.22"}}, "", 0},
		{"npm:zod@3.x,npm:a@1.2.*,npm:b@^1.X.x", []Package{{NPM, "zod", "3.x"}, {NPM, "a", "1.2.*"}, {NPM, "b", "^1.X.x"}}, "", 0},
		{"npm:pkg@1.0.0-beta.1,npm:lodash.merge@4,npm:a-b_c~d@0", []Package{{NPM, "pkg", "1.0.0-beta.1"}, {NPM, "lodash.merge", "4"}, {NPM, "a-b_c~d", "0"}}, "", 0},
		{"jsr:@std/assert@1.0.0,jsr:@a-1/b-2@^0.1", []Package{{JSR, "@std/assert", "1.0.0"}, {JSR, "@a-1/b-2", "^0.1"}}, "", 0},

		{"npm:zod", nil, "has no version; admins must pin one, e.g. npm:zod@^1 or npm:zod@1.2.3", 1},
		{"npm:zod@^3,jsr:@std/path", nil, "has no version", 2},
		{"npm:zod@", nil, `has a version "" that is empty`, 1},
		{"zod@^3", nil, "has no registry; write npm:zod@^3, jsr:zod@^3 or pypi:NAME==VERSION", 1},
		{"NPM:zod@3", nil, "upper-case scheme; write npm:", 1},
		{"https://example.com/x@1", nil, "uses https:, but only npm:, jsr: and pypi: packages can be allowed", 1},
		{"node:fs@1", nil, "uses node:", 1},
		{"npm:zod@^3,npm:zod@^3", nil, "lists npm:zod again (entry 1 is npm:zod@^3); list each package once", 2},
		{"npm:zod@^3,npm:axios@1,npm:zod@^4", nil, "lists npm:zod again", 3},
		{"npm:@a/b@1,jsr:@a/b@2", nil, `share the name @a/b, so the bare import "@a/b" would be ambiguous`, 2},
		{"npm:zod@^3,", nil, "is empty (two commas in a row, or a leading or trailing comma)", 2},
		{",npm:zod@^3", nil, "is empty", 1},
		{"npm:zod@^3,,npm:axios@^1", nil, "is empty", 2},
		{"npm:zod@^3, npm:axios@^1", nil, "contains whitespace at byte 0", 2},
		{"npm:zod@^3 ", nil, "contains whitespace at byte 10", 1},
		{"npm:zod@^3/v4", nil, `has a subpath "/v4"; an entry names a whole package`, 1},
		{"npm:zod@*", nil, "does not pin a major version", 1},
		{"npm:zod@x", nil, "does not pin a major version", 1},
		{"npm:zod@latest", nil, "does not start with a major version number", 1},
		{"npm:zod@>=3", nil, `contains '>' at byte 8`, 1},
		{"npm:zod@^3||^4", nil, `contains '|'`, 1},
		{"npm:zod@1.2.3.4", nil, "more than three numbers", 1},
		{"npm:zod@1.x.3", nil, "number after a wildcard", 1},
		{"npm:zod@01", nil, "does not start with a major version number", 1},
		{"npm:zod@1.02", nil, `has "02" where a number or x belongs`, 1},
		{"npm:zod@1-beta", nil, "prerelease without a full MAJOR.MINOR.PATCH", 1},
		{"npm:zod@1.0.0-01", nil, "leading zero", 1},
		{"npm:zod@1.0.0-", nil, "empty prerelease identifier", 1},
		{"npm:zod@~^1", nil, "more than one ^ or ~", 1},
		{"npm:Zod@3", nil, `has a package name "Zod" that has upper-case letters`, 1},
		{"jsr:path@1", nil, "is not scoped (jsr names are always @scope/name)", 1},
		{"jsr:@std/pa.th@1", nil, `contains '.' (jsr names use a-z, 0-9 and -)`, 1},
		{"jsr:@-x/y@1", nil, "starts with '-'", 1},
		{"npm:/zod@1", nil, "has a / after npm:", 1},
		{"npm:node_modules@1", nil, "is node_modules, a reserved name", 1},
		{"npm:@x/node_modules@1", nil, "is node_modules, a reserved name", 1},
		{"npm:favicon.ico@1", nil, "is a reserved name", 1},
		{"npm:.bin@1", nil, `starts with '.'`, 1},
		{"npm:@scope@1", nil, "scope without a package", 1},
		{"npm:z\u00f6d@1", nil, "contains a non-ASCII character at byte 5", 1},
		{"npm:zod%40@1", nil, "contains percent-encoding (%) at byte 7", 1},
		{"npm:zod@1\x00", nil, "contains a NUL byte", 1},
		{"npm:" + strings.Repeat("a", 215) + "@1", nil, "longer than 214 bytes", 1},
		{"npm:" + strings.Repeat("a", 600) + "@1", nil, "longer than 512 bytes", 1},
	}
	for _, tc := range tests {
		name := tc.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			a, err := ParseAllowlist(tc.in)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ParseAllowlist(%q): %v", tc.in, err)
				}
				if got := a.Packages(); !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Fatalf("ParseAllowlist(%q) = %+v, want %+v", tc.in, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseAllowlist(%q) = %+v, want an error", tc.in, a.Packages())
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseAllowlist(%q): %T is not a *ParseError", tc.in, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.err) {
				t.Errorf("ParseAllowlist(%q) error\n  %s\nwant it to contain\n  %s", tc.in, msg, tc.err)
			}
			if pe.Index != tc.at || pe.Count != strings.Count(tc.in, ",")+1 {
				t.Errorf("ParseAllowlist(%q): entry %d of %d, want %d", tc.in, pe.Index, pe.Count, tc.at)
			}
			if !strings.Contains(msg, AllowlistGrammar) {
				t.Errorf("error does not state the grammar: %s", msg)
			}
		})
	}
	if len(tests) < 15 {
		t.Fatalf("only %d cases", len(tests))
	}
}

func TestParseErrorText(t *testing.T) {
	_, err := ParseAllowlist("npm:zod@^3,npm:axios")
	want := `package allowlist entry 2 of 2 ("npm:axios"): has no version; admins must pin one, e.g. npm:axios@^1 or npm:axios@1.2.3 (the allowlist is ` + AllowlistGrammar + ")"
	if err == nil || err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
}

func TestPackagesIsACopy(t *testing.T) {
	a := mustParse(t, "npm:zod@^3")
	a.Packages()[0].Version = "^2"
	if r, err := a.Check("npm:zod"); err != nil || r.Specifier != "npm:zod@^3" {
		t.Errorf("the allowlist changed through Packages: %+v, %v", r, err)
	}
	var nilList *Allowlist
	if nilList.Packages() != nil || nilList.Len() != 0 {
		t.Error("nil allowlist is not empty")
	}
}

func TestDescription(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "No packages are allowed. node: built-ins are always available."},
		{"npm:zod@^3,npm:axios@^1", "Allowed packages: npm:zod@^3, npm:axios@^1 (import them without a version, e.g. npm:zod or zod; the server fixes the version). node: built-ins are always available."},
		{"jsr:@std/path@^1", "Allowed packages: jsr:@std/path@^1 (import them without a version, e.g. jsr:@std/path or @std/path; the server fixes the version). node: built-ins are always available."},
	}
	for _, tc := range tests {
		if got := mustParse(t, tc.in).Description(); got != tc.want {
			t.Errorf("Description(%q)\n  %s\nwant\n  %s", tc.in, got, tc.want)
		}
	}
	if got := (*Allowlist)(nil).Description(); got != tests[0].want {
		t.Errorf("nil Description = %q", got)
	}
}

func TestImportMap(t *testing.T) {
	a := mustParse(t, "npm:zod@^3,npm:@scope/pkg@1.2.3,jsr:@std/path@^1")
	b, err := a.ImportMap()
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Imports map[string]string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	want := map[string]string{
		"npm:zod":         "npm:zod@^3",
		"npm:/zod":        "npm:zod@^3",
		"zod":             "npm:zod@^3",
		"zod/":            "npm:/zod@^3/",
		"npm:@scope/pkg":  "npm:@scope/pkg@1.2.3",
		"npm:/@scope/pkg": "npm:@scope/pkg@1.2.3",
		"@scope/pkg":      "npm:@scope/pkg@1.2.3",
		"@scope/pkg/":     "npm:/@scope/pkg@1.2.3/",
		"jsr:@std/path":   "jsr:@std/path@^1",
		"jsr:/@std/path":  "jsr:@std/path@^1",
		"@std/path":       "jsr:@std/path@^1",
		"@std/path/":      "jsr:/@std/path@^1/",
	}
	if !reflect.DeepEqual(m.Imports, want) {
		t.Errorf("import map\n%s\nwant %v", b, want)
	}
	b2, _ := mustParse(t, "jsr:@std/path@^1,npm:@scope/pkg@1.2.3,npm:zod@^3").ImportMap()
	if string(b) != string(b2) {
		t.Errorf("import map depends on the entry order:\n%s\n%s", b, b2)
	}
	empty, err := (*Allowlist)(nil).ImportMap()
	if err != nil || string(empty) != "{\n  \"imports\": {}\n}\n" {
		t.Errorf("empty import map = %q, %v", empty, err)
	}
}

func TestImportMapFor(t *testing.T) {
	a := mustParse(t, "npm:zod@^3,jsr:@std/path@^1")
	b, err := a.ImportMapFor([]string{"npm:zod/v4", "npm:zod@^3/v4/core", "zod/mini", "node:fs", "jsr:@std/path/posix", "npm:zod"})
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Imports map[string]string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Imports) != 10 || m.Imports["npm:zod/v4"] != "npm:zod@^3/v4" || m.Imports["jsr:@std/path/posix"] != "jsr:@std/path@^1/posix" {
		t.Errorf("ImportMapFor:\n%s", b)
	}
	if _, err := a.ImportMapFor([]string{"npm:zod/v4", "npm:zod@^2/v4"}); !errors.Is(err, ErrVersionMismatch) {
		t.Errorf("ImportMapFor accepted a mismatched version: %v", err)
	}
}

func TestInstallProgram(t *testing.T) {
	got := InstallProgram(Package{NPM, "zod", "^3"})
	want := "// Generated by conductor: deno cache fetches this allowlisted package.\nimport \"npm:zod@^3\";\n"
	if got != want {
		t.Errorf("InstallProgram = %q, want %q", got, want)
	}
	// Whatever a Package holds, the program is one comment and one import
	// of one string literal.
	hostile := InstallProgram(Package{NPM, "x\";\nDeno.exit(1);//\u2028</script>", "1"})
	lines := strings.Split(strings.TrimSuffix(hostile, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], `import "`) || !strings.HasSuffix(lines[1], `";`) {
		t.Fatalf("hostile package escaped the string literal:\n%s", hostile)
	}
	var s string
	if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(lines[1], "import "), ";")), &s); err != nil || !strings.HasPrefix(s, "npm:x\";\n") {
		t.Errorf("literal %s does not decode to the specifier: %q, %v", lines[1], s, err)
	}
}
