package install

import (
	"net/url"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// TestFailure: an install's failure text is the end of its stderr (else the sandbox's error),
// preceded by what the door refused, each destination once, when the installer explains it.
func TestFailure(t *testing.T) {
	explain := func(refused []string) string { return "refused: " + strings.Join(refused, ", ") }
	tests := []struct {
		name    string
		res     sandbox.Result
		explain func([]string) string
		want    string
	}{
		{"success", sandbox.Result{Status: sandbox.StatusSuccess, Stderr: "warning\n"}, explain, ""},
		{"last four lines", sandbox.Result{Status: sandbox.StatusError, Stderr: "1\n2\n3\n4\n5\n"}, nil, "2\n3\n4\n5"},
		{"no stderr: the error", sandbox.Result{Status: sandbox.StatusTimeout, Error: &sandbox.ErrorInfo{Message: "timed out"}}, nil, "timed out"},
		{"refused, explained once each", sandbox.Result{Status: sandbox.StatusError, Stderr: "connect failed\n", Network: []egress.Record{
			{Host: "files.example.test", Port: 443}, {Host: "index.example.test", Port: 443, Allowed: true}, {Host: "files.example.test", Port: 443}, {Host: "dns.example.test"},
		}}, explain, "refused: files.example.test:443, dns.example.test\nconnect failed"},
		{"refused, no explanation", sandbox.Result{Status: sandbox.StatusError, Stderr: "x\n", Network: []egress.Record{{Host: "a.test", Port: 80}}}, nil, "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := failure(&tc.res, tc.explain); got != tc.want {
				t.Errorf("failure = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNetworkSummary: each destination once with its decision, in order of first use.
func TestNetworkSummary(t *testing.T) {
	tests := []struct {
		recs []egress.Record
		want string
	}{
		{nil, ""},
		{[]egress.Record{{Host: "pypi.org", Port: 443, Allowed: true}, {Host: "pypi.org", Port: 443, Allowed: true}, {Host: "evil.test"}, {Host: "::1", Port: 80}},
			"pypi.org:443 allowed, evil.test refused, [::1]:80 refused"},
	}
	for _, tc := range tests {
		if got := NetworkSummary(tc.recs); got != tc.want {
			t.Errorf("NetworkSummary(%v) = %q, want %q", tc.recs, got, tc.want)
		}
	}
}

// TestRegistryRule: the npm registry's host (lower case) and port, 443 or 80 by scheme when
// the URL names none.
func TestRegistryRule(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://registry.npmjs.org/", "registry.npmjs.org:443"},
		{"http://127.0.0.1:4873/", "127.0.0.1:4873"},
		{"http://Npm.Example.com/", "npm.example.com:80"},
		{"https://npm.example.com:8443/repo/", "npm.example.com:8443"},
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		r, err := RegistryRule(u)
		if err != nil || r.String() != tc.want {
			t.Errorf("RegistryRule(%s) = %s (%v), want %s", tc.url, r, err, tc.want)
		}
	}
}

// TestNPMRegistry: NPM_CONFIG_REGISTRY, when set, names the registry; it must be an http(s) URL.
func TestNPMRegistry(t *testing.T) {
	tests := []struct{ env, want, err string }{
		{"https://registry.example.com/npm/", "https://registry.example.com/npm/", ""},
		{"http://127.0.0.1:4873/", "http://127.0.0.1:4873/", ""},
		{"ftp://registry.example.com/", "", "want an http(s) URL"},
		{"registry.example.com", "", "want an http(s) URL"},
	}
	for _, tc := range tests {
		t.Setenv("NPM_CONFIG_REGISTRY", tc.env)
		u, err := NPMRegistry(t.Context())
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("NPM_CONFIG_REGISTRY=%s: err %v, want one saying %q", tc.env, err, tc.err)
		case tc.err == "" && (err != nil || URLString(u) != tc.want):
			t.Errorf("NPM_CONFIG_REGISTRY=%s: %s (%v), want %s", tc.env, URLString(u), err, tc.want)
		}
	}
}
