package egress

import (
	"net/netip"
	"testing"
)

func TestParseRule(t *testing.T) {
	good := map[string]Rule{
		"registry.npmjs.org":     {Host: "registry.npmjs.org", Port: 0},
		"api.example.com:443":    {Host: "api.example.com", Port: 443},
		"*.example.com:8443":     {Host: "*.example.com", Port: 8443},
		"203.0.113.7:80":         {Host: "203.0.113.7", Port: 80},
		"[2001:db8::1]:443":      {Host: "2001:db8::1", Port: 443},
		"[2001:db8::1]":          {Host: "2001:db8::1", Port: 0},
		"2001:db8::1":            {Host: "2001:db8::1", Port: 0},
		"Example.COM.:443":       {Host: "Example.COM.", Port: 443},
		"under_score.example.io": {Host: "under_score.example.io"},
	}
	for in, want := range good {
		got, err := ParseRule(in)
		if err != nil || got != want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "host:", "host:0", "host:65536", "host:-1", "host:443x", "exa mple.com", "*.com", "*", "*.",
		"a.*.example.com", "0.0.0.0:80", "[::]:443", "224.0.0.1", "255.255.255.255:80", "127.1:80",
		"0x7f.0.0.1", "2130706433", "[fe80::1%eth0]:443", "ümlaut.example", "-lead.example", "trail-.example",
		"a..b", " padded.example", "user@host:443", "host/path", "[::1:443",
		"[[A]", "[example.com]:80", "[example.com]", "a]", "[2001:db8::1",
	} {
		if r, err := ParseRule(in); err == nil {
			t.Errorf("ParseRule(%q) = %+v, want an error", in, r)
		}
	}
}

func TestRuleMatching(t *testing.T) {
	rs, err := compileRules([]Rule{
		{Host: "Registry.NPMjs.org.", Port: 443},
		{Host: "*.cdn.example.com", Port: 0},
		{Host: "203.0.113.7", Port: 8080},
		{Host: "2001:db8::1", Port: 443},
		{Host: "::ffff:198.51.100.1", Port: 443},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host string
		port int
		want bool
	}{
		{"registry.npmjs.org", 443, true},
		{"REGISTRY.npmjs.ORG.", 443, true},
		{"registry.npmjs.org", 80, false},
		{"registry.npmjs.org", 8443, false},
		{"evil-registry.npmjs.org", 443, false},
		{"registry.npmjs.org.evil.com", 443, false},
		{"npmjs.org", 443, false},
		{"a.cdn.example.com", 443, true},
		{"a.b.cdn.example.com", 80, true},
		{"a.cdn.example.com", 8080, false}, // Port 0 = 80 and 443 only
		{"cdn.example.com", 443, false},    // the wildcard is for subdomains only
		{"xcdn.example.com", 443, false},
		{"203.0.113.7", 8080, true},
		{"203.0.113.7", 443, false},
		{"[2001:db8::1]", 443, false}, // brackets are not part of a normalized host
		{"2001:db8:0::1", 443, true},
		{"::ffff:203.0.113.7", 8080, true}, // mapped form is the same address
		{"198.51.100.1", 443, true},
	}
	for _, tc := range cases {
		host, kind := normalizeHost(tc.host)
		_, got := rs.match(host, kind, tc.port)
		if got != tc.want {
			t.Errorf("match(%q, %d) = %v, want %v (normalized %q kind %d)", tc.host, tc.port, got, tc.want, host, kind)
		}
	}
	// A name rule never matches an IP, and vice versa.
	byName, _ := compileRules([]Rule{{Host: "localhost", Port: 80}})
	if _, ok := byName.match("127.0.0.1", hostIP, 80); ok {
		t.Error("a name rule matched an IP literal")
	}
	byIP, _ := compileRules([]Rule{{Host: "127.0.0.1", Port: 80}})
	if _, ok := byIP.match("localhost", hostName, 80); ok {
		t.Error("an IP rule matched a name")
	}
}

func TestPublicAddr(t *testing.T) {
	public := []string{"8.8.8.8", "203.0.113.7", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"}
	private := []string{
		"127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254",
		"100.64.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255", "240.0.0.1", "198.18.0.1",
		"192.0.0.8", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "fec0::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::1",
		"2002:a9fe:a9fe::1",
	}
	for _, s := range public {
		if !publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s should be public", s)
		}
	}
	for _, s := range private {
		if publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s should not be public", s)
		}
	}
	for _, s := range []string{"0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "0.1.2.3", "ff02::1", "::ffff:0.0.0.0"} {
		if dialableAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s should never be dialable", s)
		}
	}
	for _, s := range []string{"127.0.0.1", "10.0.0.1", "::1"} {
		if !dialableAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s should be dialable inside a private grant", s)
		}
	}
}
