package outputs

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCheckName: an accepted name is safe to use as a path below a directory and to show.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a.png", "../x", "a/./b", "/abs", "a\x01b", "\xff", "a//b", "sub/dir/x.csv", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if name == "" || len(name) > MaxNameBytes || !utf8.ValidString(name) || strings.HasPrefix(name, "/") {
			t.Fatalf("accepted %q", name)
		}
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("accepted %q with component %q", name, c)
			}
		}
		for _, r := range name {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("accepted %q with %U", name, r)
			}
		}
	})
}

// FuzzSniff: any bytes get a type; an image type only with its signature; a type by extension
// only for UTF-8 text.
func FuzzSniff(f *testing.F) {
	f.Add("x.png", []byte(pngHead))
	f.Add("x.csv", []byte("a,b\n"))
	f.Add("x.svg", []byte("<?xml version=\"1.0\"?><svg>"))
	f.Add("x.json", []byte("\xff\xfe{}"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		got := Sniff(name, data)
		if got == "" {
			t.Fatal("no type")
		}
		head := data[:min(len(data), SniffBytes)]
		switch got {
		case TypePNG, TypeJPEG, TypeGIF, TypeWebP:
			if len(head) < 3 {
				t.Fatalf("%s from %d bytes", got, len(head))
			}
		case TypeSVG:
			if !strings.Contains(string(head), "<svg") {
				t.Fatalf("svg without <svg: %q", head)
			}
		case "text/csv", "application/json", "text/markdown":
			if !utf8Prefix(head) {
				t.Fatalf("%s for bytes that are not UTF-8: %q", got, head)
			}
		}
	})
}
