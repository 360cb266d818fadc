package mcp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSnippets: snippets are the directory's regular files with a known extension, named by
// base name; bad files are skipped; an added, edited or removed file is seen on the next call.
func TestSnippets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, code string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	langs := map[string]string{".py": "python", ".ts": "typescript", ".js": "javascript", ".mjs": "javascript"}
	s := NewSnippets(dir, func(ext string) (string, bool) { l, ok := langs[ext]; return l, ok }, nil)
	write("a.py", "print(1)")
	write("b.mjs", "console.log(1)")
	write("c.rb", "puts 1")                                                                    // unknown extension
	write("big.py", strings.Repeat("#", MaxSnippetBytes+1))                                    // too large
	write("bin.py", "\xff\xfe")                                                                // not UTF-8
	write("dup.py", "1")                                                                       // two files named dup
	write("dup.ts", "1")                                                                       //
	if err := os.Symlink(filepath.Join(dir, "a.py"), filepath.Join(dir, "l.py")); err != nil { // a link
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d.py"), 0o755); err != nil { // a directory
		t.Fatal(err)
	}
	names := func() string {
		var n []string
		for k, v := range s.List() {
			n = append(n, k+":"+v.Language)
		}
		slices.Sort(n)
		return strings.Join(n, ",")
	}
	if got := names(); got != "a:python,b:javascript" {
		t.Fatalf("snippets %s, want a:python,b:javascript", got)
	}
	write("e.ts", "console.log(2)")
	if got := names(); got != "a:python,b:javascript,e:typescript" {
		t.Errorf("after adding e.ts: %s", got)
	}
	write("a.py", "print(2)")
	// A later modification time, set: a write within the file system's timestamp granularity
	// keeps the old one (the size is the same), and a 10 ms sleep only made that rare.
	if st, err := os.Stat(filepath.Join(dir, "a.py")); err != nil {
		t.Fatal(err)
	} else if err := os.Chtimes(filepath.Join(dir, "a.py"), st.ModTime().Add(time.Second), st.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if sn, err := s.Get("a"); err != nil || sn.Code != "print(2)" || sn.FileName != "a.py" {
		t.Errorf("after editing a.py: %+v, %v", sn, err)
	}
	if err := os.Remove(filepath.Join(dir, "b.mjs")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("b"); err == nil || !strings.Contains(err.Error(), "a, e") {
		t.Errorf("removed snippet b: %v, want an error listing a, e", err)
	}
	var none *Snippets
	if _, err := none.Get("a"); err == nil || !strings.Contains(err.Error(), "MCP_CONDUCTOR_SNIPPETS") {
		t.Errorf("no snippets: %v", err)
	}
}
