package artifacts

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzURI: every name's URI parses as a URL whose host is "outputs" and whose path is the id and
// the name again, with no query or fragment: a name cannot make a URI that means something else.
func FuzzURI(f *testing.F) {
	for _, s := range []string{"plot.png", "a b/c?d#e", "%41", "ü/ø", "a+b=c&d", "..", "x/../y", ":", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		uri := OutputURI("0123456789abcdef0123456789abcdef", name)
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("%q: %v", uri, err)
		}
		if u.Scheme != "conductor" || u.Host != "outputs" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("%q parses as %+v", uri, u)
		}
		if u.Path != "/0123456789abcdef0123456789abcdef/"+name {
			t.Fatalf("%q: path %q, want the name %q back", uri, u.Path, name)
		}
	})
}

// FuzzValidPath: an accepted workspace path stays below any directory it is joined to.
func FuzzValidPath(f *testing.F) {
	for _, s := range []string{"a.md", "../x", "a/./b", "/abs", "a//b", "sub/dir/x.csv", "a/..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !ValidPath(p) {
			return
		}
		root := "/ws/alice"
		if j := filepath.Join(root, p); !strings.HasPrefix(j, root+"/") || filepath.Clean(j) != root+"/"+p {
			t.Fatalf("accepted %q joins to %q", p, j)
		}
	})
}
