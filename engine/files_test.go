package engine

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCheckFiles: each rule refuses what it is for, naming the rule and the limit; good
// names, sub-directories among them, pass.
func TestCheckFiles(t *testing.T) {
	l := FileLimits{Count: 4, Depth: 2, NameBytes: 40, Bytes: 100, BytesSetting: "MCP_CONDUCTOR_MAX_CODE"}
	one := func(n string) []File { return []File{{Name: "main.py", Content: "x"}, {Name: n, Content: "y"}} }
	tests := []struct {
		name    string
		files   []File
		mention []string // nil: accepted
	}{
		{"plain", one("util.py"), nil},
		{"sub-directory", one("data/x.json"), nil},
		{"dots inside a name", one("a..b/c.d"), nil},
		{"unicode", one("données/é.txt"), nil},
		{"empty", one(""), []string{"empty"}},
		{"absolute", one("/etc/passwd"), []string{"absolute"}},
		{"parent", one("../x"), []string{`".."`, "leave the working directory"}},
		{"parent inside", one("a/../../x"), []string{`".."`}},
		{"the directory itself", one("."), []string{"working directory itself"}},
		{"dot component", one("./x"), []string{"not a clean path", `"x"`}},
		{"doubled slash", one("a//b"), []string{"not a clean path"}},
		{"trailing slash", one("a/"), []string{"not a clean path"}},
		{"NUL", one("a\x00b"), []string{"control character"}},
		{"newline", one("a\nb"), []string{"control character"}},
		{"C1 control", one("a\u0085b"), []string{"control character"}},
		{"backslash", one(`a\b`), []string{"backslash"}},
		{"invalid UTF-8", one("a\xffb"), []string{"UTF-8"}},
		{"too deep", one("a/b/c/d"), []string{"3 directories deep", "limit is 2"}},
		{"name too long", one(strings.Repeat("n", 41)), []string{"41 bytes", "limit is 40"}},
		{"duplicate", one("main.py"), []string{"twice"}},
		{"file and directory", []File{{Name: "a"}, {Name: "a/b"}}, []string{`"a" is a file`}},
		{"too many", []File{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "e"}}, []string{"5 files", "limit is 4"}},
		{"too many bytes", []File{{Name: "a", Content: strings.Repeat("x", 60)}, {Name: "b", Content: strings.Repeat("x", 41)}}, []string{"101 bytes", "limit is 100", "admin", "MCP_CONDUCTOR_MAX_CODE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFiles(tc.files, l)
			if tc.mention == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFileName) {
				t.Fatalf("CheckFiles = %v, want ErrFileName", err)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// FuzzCheckFiles: whatever name is accepted stays inside the working directory: relative, clean,
// no "..", no control bytes, within the depth and length limits.
func FuzzCheckFiles(f *testing.F) {
	for _, s := range []string{"main.py", "data/x.json", "../x", "/abs", "a//b", "a\x00", ".", "..", "a/./b", "é/ü", "a\\..\\b"} {
		f.Add(s)
	}
	l := DefaultFileLimits
	f.Fuzz(func(t *testing.T, name string) {
		if CheckFiles([]File{{Name: name}}, l) != nil {
			return
		}
		joined := path.Join("/work", name)
		switch {
		case !strings.HasPrefix(joined, "/work/") || joined == "/work":
			t.Fatalf("%q accepted, resolves to %q", name, joined)
		case path.Clean(name) != name || path.IsAbs(name) || !utf8.ValidString(name):
			t.Fatalf("%q accepted, not clean and relative UTF-8", name)
		case len(name) > l.NameBytes || strings.Count(name, "/") > l.Depth:
			t.Fatalf("%q accepted beyond the limits", name)
		}
		for _, c := range strings.Split(name, "/") {
			if c == ".." || c == "." || c == "" {
				t.Fatalf("%q accepted with component %q", name, c)
			}
		}
		for _, r := range name {
			if r < 0x20 || r == 0x7f || r == '\\' {
				t.Fatalf("%q accepted with %q", name, r)
			}
		}
	})
}
