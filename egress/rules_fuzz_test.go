package egress

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRule: allow-net and deny-net entries come from the admin, but the
// hosts they are matched against come from sandboxed code. A rule that
// parses prints back to itself, matches its own host at its ports, and
// never matches across kinds (a name rule an IP literal, an IP rule a
// name) or anything normalizeHost calls bad.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"registry.npmjs.org", "api.example.com:443", "*.example.com:8443", "203.0.113.7:80", "[2001:db8::1]:443",
		"[2001:db8::1]", "2001:db8::1", "Example.COM.:443", "under_score.example.io", "::ffff:198.51.100.1",
		"host:0", "*.com", "127.1:80", "0x7f.0.0.1", "[fe80::1%eth0]:443", "[example.com]:80", "a..b", "localhost",
	} {
		f.Add(s, "a.example.com", uint16(443))
	}
	f.Fuzz(func(t *testing.T, s, other string, port16 uint16) {
		port := int(port16)
		if e, err := ParseNetEntry(s); err == nil {
			if r, _ := ParseRule(s); e.Host != r.Host || (e.Port != AnyPort && e.Port != r.Port) {
				t.Fatalf("ParseNetEntry(%q) = %+v, ParseRule = %+v", s, e, r)
			}
		}
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		// String round-trips (Port 0 prints as 80|443: parse it without).
		str := strings.TrimSuffix(r.String(), ":80|443")
		if back, err := ParseRule(str); err != nil || back != r {
			t.Fatalf("ParseRule(%q) = %+v; its String %q parses as %+v, %v", s, r, str, back, err)
		}
		c, err := compileRule(r)
		if err != nil {
			t.Fatalf("ParseRule(%q) accepted a rule compileRule refuses: %v", s, err)
		}
		rs := ruleSet{c}
		ports := []int{c.port}
		if c.port == 0 {
			ports = []int{80, 443}
		}
		own, kind := c.name, hostName
		if c.ip.IsValid() {
			own, kind = c.ip.String(), hostIP
		} else if c.wildcard {
			own = "sub." + c.name
		}
		for _, p := range ports {
			if p == AnyPort {
				p = 1 + port%65535
			}
			if _, ok := rs.match(own, kind, p); !ok {
				t.Fatalf("rule %q does not match its own host %q:%d", s, own, p)
			}
		}
		if c.wildcard {
			if _, ok := rs.match(c.name, hostName, AnyPort); ok {
				t.Fatalf("wildcard rule %q matches %q itself", s, c.name)
			}
		}
		// Against any other host.
		name, k := normalizeHost(other)
		m, ok := rs.match(name, k, port)
		switch {
		case !ok:
		case k == hostBad:
			t.Fatalf("rule %q matches the bad host %q", s, other)
		case k == hostIP && !c.ip.IsValid(), k == hostName && c.ip.IsValid():
			t.Fatalf("rule %q matches %q across kinds", s, other)
		case !m.matchPort(port):
			t.Fatalf("rule %q matches port %d", s, port)
		case k == hostName && !c.wildcard && name != c.name,
			k == hostName && c.wildcard && !strings.HasSuffix(name, "."+c.name):
			t.Fatalf("rule %q matches the name %q", s, name)
		}
	})
}

// FuzzNormalizeHost: every host the door decides comes through
// normalizeHost (a DNS question's name, a rule's host). What it accepts is
// canonical: lower-case, idempotent, a plain ASCII name or a canonical IP
// literal without a zone, and never one of the numeric shorthands
// resolvers turn into addresses.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"Example.COM.", "127.1", "0x7f.0.0.1", "2130706433", "::ffff:10.0.0.1", "fe80::1%eth0",
		"xn--mnchen-3ya.de", "münchen.de", "a..b", "-a.b", "1.2.3.4", "1.2.3.4.", "[::1]", "a.1b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n, k := normalizeHost(h)
		if k == hostBad {
			if n != "" {
				t.Fatalf("bad host %q normalized to %q", h, n)
			}
			return
		}
		if n2, k2 := normalizeHost(n); n2 != n || k2 != k {
			t.Fatalf("normalizeHost(%q) = %q, %v; again: %q, %v", h, n, k, n2, k2)
		}
		if n != strings.ToLower(n) || !strings.EqualFold(strings.TrimSuffix(h, "."), n) && k == hostName {
			t.Fatalf("normalizeHost(%q) = %q", h, n)
		}
		switch k {
		case hostIP:
			a, err := netip.ParseAddr(n)
			if err != nil || a.Zone() != "" || a.String() != n || a.Is4In6() {
				t.Fatalf("normalizeHost(%q) = %q, not a canonical IP literal (%v)", h, n, err)
			}
		case hostName:
			for i := 0; i < len(n); i++ {
				if b := n[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
					t.Fatalf("name %q has byte %q", n, b)
				}
			}
			labels := strings.Split(n, ".")
			if last := labels[len(labels)-1]; last[0] >= '0' && last[0] <= '9' {
				t.Fatalf("name %q ends in a numeric label", n)
			}
			if ip := net.ParseIP(n); ip != nil {
				t.Fatalf("name %q parses as an IP", n)
			}
		}
	})
}

// FuzzDestAllowed: the door's decision for a destination. A denied target
// is never allowed; without any-public only a listed one is; an unlisted
// non-public address never is; a name the DNS responder refuses is refused
// at every port; case and one trailing dot change nothing; and a refusal
// says who can change it.
func FuzzDestAllowed(f *testing.F) {
	f.Add("*.example.com", "bad.example.com:443", "BAD.example.com.", uint16(443), false, "")
	f.Add("api.example.com:443", "", "api.example.com", uint16(80), false, "")
	f.Add("example.com", "example.com:22", "example.com", uint16(22), true, "")
	f.Add("localhost:8080", "", "127.0.0.1", uint16(8080), false, "")
	f.Add("", "", "10.1.2.3", uint16(443), true, "10.0.0.0/8")
	f.Add("", "169.254.169.254", "169.254.169.254", uint16(80), true, "")
	f.Add("", "", "::ffff:127.0.0.1", uint16(443), true, "")
	f.Add("", "", "64:ff9b::7f00:1", uint16(443), true, "")
	f.Add("[2001:db8::1]:443", "", "2001:DB8::1", uint16(443), false, "")
	f.Fuzz(func(t *testing.T, allow, deny, host string, port16 uint16, anyPublic bool, private string) {
		port := int(port16)
		if port == 0 {
			return // no connection has port 0
		}
		var allowNet, denyNet []string
		if allow != "" {
			allowNet = []string{allow}
		}
		if deny != "" {
			denyNet = []string{deny}
		}
		var priv []netip.Prefix
		if pr, err := netip.ParsePrefix(private); err == nil {
			priv = []netip.Prefix{pr.Masked()}
		}
		pol, err := NewPolicy(allowNet, anyPublic, priv)
		if err != nil {
			return
		}
		if pol, err = pol.WithDeny(denyNet); err != nil {
			return
		}
		p, err := compilePolicy(pol)
		if err != nil {
			return
		}
		name, kind := normalizeHost(host)
		if kind == hostBad {
			return // the door refuses such a DNS question; original destinations are IPs
		}
		ok, reason := p.destAllowed(name, kind, port)
		_, denied := p.deny.match(name, kind, port)
		_, listed := p.rules.match(name, kind, port)
		switch {
		case denied && ok:
			t.Fatalf("%s:%d is denied (%q) but allowed", name, port, deny)
		case !anyPublic && ok && !listed:
			t.Fatalf("%s:%d is allowed without any-public and without a rule", name, port)
		case ok && kind == hostIP && !listed:
			if a := netip.MustParseAddr(name); !p.dialable(a) {
				t.Fatalf("unlisted non-dialable %s is allowed", name)
			}
		case !ok && (reason == "" || !strings.Contains(reason, "admin")):
			t.Fatalf("refusal of %s:%d says %q", name, port, reason)
		}
		if kind == hostName && !p.lookupAllowed(name) && ok {
			t.Fatalf("%s is refused by the DNS responder but allowed at port %d", name, port)
		}
		up, upKind := normalizeHost(strings.ToUpper(host) + ".")
		if !strings.HasSuffix(host, ".") && upKind == kind {
			if ok2, _ := p.destAllowed(up, upKind, port); ok2 != ok {
				t.Fatalf("%q and %q decided differently", host, strings.ToUpper(host)+".")
			}
		}
		// A request's Host that sameAuthority accepts names this destination.
		for _, rh := range []string{host, net.JoinHostPort(host, strconv.Itoa(port)), strings.ToUpper(host)} {
			if kind != hostName || !sameAuthority(rh, name, port) {
				continue
			}
			h, _, err := net.SplitHostPort(rh)
			if err != nil {
				h = rh
			}
			if n, k := normalizeHost(h); n != name || k != kind {
				t.Fatalf("sameAuthority(%q, %q, %d) but the Host normalizes to %q", rh, name, port, n)
			}
		}
	})
}
