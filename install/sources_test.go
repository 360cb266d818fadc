package install

import (
	"strings"
	"testing"
)

// TestPipIndexRules: PIP_INDEX_URL names the index (PyPI by default); the install may reach its
// host and port only, plus PyPI's files host with pypi.org; plain http only to loopback.
func TestPipIndexRules(t *testing.T) {
	tests := []struct {
		env   string
		rules string // the rules, comma-separated; "" = refused
		err   string
	}{
		{"", "pypi.org:443,files.pythonhosted.org:443", ""},
		{"https://pypi.org/simple/", "pypi.org:443,files.pythonhosted.org:443", ""},
		{"https://mirror.example.com:8443/pypi/simple/", "mirror.example.com:8443", ""},
		{"https://Mirror.Example.com/simple", "mirror.example.com:443", ""},
		{"http://127.0.0.1:3141/simple/", "127.0.0.1:3141", ""},
		{"http://localhost:3141/simple/", "localhost:3141,127.0.0.1:3141", ""},
		{"http://mirror.example.com/simple/", "", "plain http only to a loopback address"},
		{"https://user:secret@mirror.example.com/simple/", "", "credentials in the URL"},
		{"ftp://mirror.example.com/simple/", "", "want an http(s) URL"},
		{"/srv/wheels", "", "want an http(s) URL"},
	}
	for _, tc := range tests {
		t.Setenv("PIP_INDEX_URL", tc.env)
		u, err := PipIndex()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("PIP_INDEX_URL=%s: err %v, want one saying %q (and no password)", tc.env, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("PIP_INDEX_URL=%s: %v", tc.env, err)
			continue
		}
		rules, err := IndexRules(u)
		var got []string
		for _, r := range rules {
			got = append(got, r.String())
		}
		if err != nil || strings.Join(got, ",") != tc.rules {
			t.Errorf("PIP_INDEX_URL=%s: rules %v (%v), want %s", tc.env, got, err, tc.rules)
		}
	}
}
