package upstream

import "testing"

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"demo://resource/static/document/features.md", "demo://resource/static/document/features.md", true},
		{"demo://resource/static/document/features.md", "demo://resource/static/document/features.mdx", false},
		{"demo://resource/static/document/features.md", "demo://resource/static/document/features.m", false},
		{"*", "", true},
		{"*", "anything/at://all", true},
		{"demo://resource/dynamic/text/*", "demo://resource/dynamic/text/1", true},
		{"demo://resource/dynamic/text/*", "demo://resource/dynamic/text/a/b/c", true}, // '*' crosses '/'
		{"demo://resource/dynamic/text/*", "demo://resource/dynamic/blob/1", false},
		{"demo://resource/dynamic/text/*", "xdemo://resource/dynamic/text/1", false}, // anchored at the start
		{"simple-*", "simple-prompt", true},
		{"simple-*", "args-prompt", false},
		{"*-prompt", "args-prompt", true},
		{"*-prompt", "args-prompt-2", false}, // anchored at the end
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a**c", "ac", true},
		{"file:///etc/?", "file:///etc/a", false}, // '?' is literal
		{"file:///etc/?", "file:///etc/?", true},
		{"[a]", "a", false}, // so are brackets
		{"", "", true},
		{"", "x", false},
	}
	for _, c := range cases {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestAllowListDefaults(t *testing.T) {
	cases := []struct {
		name            string
		patterns        []string
		toolsRestricted bool
		uri             string
		allows, none    bool
	}{
		{"nothing configured: all", nil, false, "demo://x", true, false},
		{"allowedTools only: none", nil, true, "demo://x", false, true},
		{"empty list: none", []string{}, false, "demo://x", false, true},
		{"pattern matches", []string{"demo://*"}, true, "demo://x", true, false},
		{"pattern does not match", []string{"demo://*"}, true, "file:///etc/passwd", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAllowList("allowedResources", c.patterns, c.toolsRestricted)
			if got := a.allows(c.uri); got != c.allows {
				t.Errorf("allows(%q) = %v, want %v", c.uri, got, c.allows)
			}
			if got := a.none(); got != c.none {
				t.Errorf("none() = %v, want %v", got, c.none)
			}
		})
	}
}
