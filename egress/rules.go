package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Rule allows one destination.
//
// Host is a DNS name ("registry.npmjs.org"), a wildcard for the subdomains of
// a name ("*.example.com": a.example.com and a.b.example.com, not
// example.com itself), or an IP literal ("203.0.113.7", "2001:db8::1").
// Names are compared case-insensitively, without a trailing dot. An IP literal
// rule matches only a destination given as that IP, and a name rule never
// matches an IP literal: a sandbox cannot reach an allowed name's server by
// its address, nor any address by a name.
//
// Port is the destination port, 1–65535. Port 0 means 80 and 443 (NOT any
// port — deno's allow-net without a port means any port; whoever translates
// deno flags into rules must decide). AnyPort means every port (what
// ParseNetEntry gives an allow-net entry without a port).
type Rule struct {
	Host string
	Port int
}

// AnyPort as Rule.Port matches every port.
const AnyPort = -1

// String formats the rule as host:port ("host:80|443" for Port 0,
// "host:*" for AnyPort).
func (r Rule) String() string {
	port := strconv.Itoa(r.Port)
	switch r.Port {
	case 0:
		port = "80|443"
	case AnyPort:
		port = "*"
	}
	if strings.Contains(r.Host, ":") {
		return "[" + r.Host + "]:" + port
	}
	return r.Host + ":" + port
}

// ParseRule parses "host", "host:port", "*.domain:port", "1.2.3.4:port",
// "[2001:db8::1]:port" or a bare IPv6 literal. A missing port gives Port 0
// (80 and 443).
func ParseRule(s string) (Rule, error) {
	if s == "" {
		return Rule{}, errors.New("egress: empty rule")
	}
	host, portStr := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			if !strings.HasSuffix(s, "]") {
				return Rule{}, fmt.Errorf("egress: rule %q: %v", s, err)
			}
			h, p = s[1:len(s)-1], ""
		}
		if !strings.Contains(h, ":") {
			return Rule{}, fmt.Errorf("egress: rule %q: brackets enclose an IPv6 literal only (as in [2001:db8::1]:443)", s)
		}
		host, portStr = h, p
	case strings.Count(s, ":") == 1:
		i := strings.LastIndexByte(s, ':')
		host, portStr = s[:i], s[i+1:]
	}
	port := 0
	if portStr != "" || strings.HasSuffix(s, ":") {
		p, ok := parsePort(portStr)
		if !ok {
			return Rule{}, fmt.Errorf("egress: rule %q: bad port %q", s, portStr)
		}
		port = p
	}
	r := Rule{Host: host, Port: port}
	if _, err := compileRule(r); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// compiled is a validated, normalized rule.
type compiled struct {
	name     string     // normalized DNS name (no wildcard prefix), or ""
	wildcard bool       // name is a suffix: matches strict subdomains only
	ip       netip.Addr // valid for IP literal rules
	port     int        // 0 = 80 and 443
	src      Rule
}

func compileRule(r Rule) (compiled, error) {
	if r.Port < AnyPort || r.Port > 65535 {
		return compiled{}, fmt.Errorf("egress: rule %v: port out of range", r)
	}
	if strings.TrimSpace(r.Host) != r.Host {
		return compiled{}, fmt.Errorf("egress: rule %q: surrounding spaces", r.Host)
	}
	h := strings.ToLower(r.Host)
	c := compiled{port: r.Port, src: r}
	if strings.HasPrefix(h, "*.") {
		name, kind := normalizeHost(h[2:])
		if kind != hostName {
			return compiled{}, fmt.Errorf("egress: rule %q: a wildcard must precede a DNS name", r.Host)
		}
		if !strings.Contains(name, ".") {
			return compiled{}, fmt.Errorf("egress: rule %q: a wildcard needs at least two labels after it (no *.com)", r.Host)
		}
		c.name, c.wildcard = name, true
		return c, nil
	}
	inner, bracketed := strings.CutPrefix(h, "[")
	if bracketed || strings.HasSuffix(h, "]") {
		// Brackets are a matching pair around an IPv6 literal, nothing else: "[a" would
		// otherwise name the host "a" yet print back as a rule that does not parse.
		var closed bool
		inner, closed = strings.CutSuffix(inner, "]")
		if !bracketed || !closed || !strings.Contains(inner, ":") {
			return compiled{}, fmt.Errorf("egress: rule %q: brackets enclose an IPv6 literal only (as in [2001:db8::1]:443)", r.Host)
		}
	}
	name, kind := normalizeHost(inner)
	switch kind {
	case hostIP:
		ip, _ := netip.ParseAddr(name)
		if !dialableAddr(ip) {
			return compiled{}, fmt.Errorf("egress: rule %q: unspecified (0.0.0.0/8, ::), multicast and broadcast addresses cannot be allowed", r.Host)
		}
		c.ip = ip
	case hostName:
		c.name = name
	default:
		return compiled{}, fmt.Errorf("egress: rule %q: not a DNS name or IP literal", r.Host)
	}
	return c, nil
}

func (c compiled) matchPort(port int) bool {
	if c.port == AnyPort {
		return true
	}
	if c.port == 0 {
		return port == 80 || port == 443
	}
	return c.port == port
}

type hostKind int

const (
	hostBad hostKind = iota
	hostName
	hostIP
)

// normalizeHost lower-cases a host from a request or a rule, drops one
// trailing dot, and classifies it. IP literals are returned in canonical
// form (IPv4-mapped IPv6 unmapped); zones are refused. Anything that is
// neither a canonical IP literal nor a plain ASCII DNS name is hostBad:
// percent-encoding, userinfo, non-ASCII (use punycode), and the numeric
// shorthands some resolvers turn into addresses ("127.1", "0x7f.1",
// "2130706433") — a name whose last label starts with a digit must be a
// dotted-quad IPv4 literal.
func normalizeHost(h string) (string, hostKind) {
	h = strings.ToLower(h)
	if strings.Contains(h, ":") {
		ip, err := netip.ParseAddr(h)
		if err != nil || ip.Zone() != "" || !ip.Is6() {
			return "", hostBad
		}
		return ip.Unmap().String(), hostIP
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return "", hostBad
	}
	labels := strings.Split(h, ".")
	last := labels[len(labels)-1]
	if last != "" && last[0] >= '0' && last[0] <= '9' {
		ip, err := netip.ParseAddr(h)
		if err != nil || !ip.Is4() {
			return "", hostBad
		}
		return ip.String(), hostIP
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", hostBad
		}
		for i := 0; i < len(l); i++ {
			b := l[i]
			if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
				return "", hostBad
			}
		}
	}
	return h, hostName
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, false
	}
	return p, true
}

// ruleSet answers "is host:port allowed?" without any lookup.
type ruleSet []compiled

func compileRules(rules []Rule) (ruleSet, error) {
	rs := make(ruleSet, 0, len(rules))
	for _, r := range rules {
		c, err := compileRule(r)
		if err != nil {
			return nil, err
		}
		rs = append(rs, c)
	}
	return rs, nil
}

// match reports the rule allowing a normalized destination, if any. Port
// AnyPort asks whether any port of host is allowed.
func (rs ruleSet) match(host string, kind hostKind, port int) (compiled, bool) {
	for _, c := range rs {
		if port != AnyPort && !c.matchPort(port) {
			continue
		}
		switch kind {
		case hostIP:
			if c.ip.IsValid() && c.ip.String() == host {
				return c, true
			}
		case hostName:
			if c.ip.IsValid() {
				continue
			}
			if !c.wildcard && host == c.name {
				return c, true
			}
			if c.wildcard && len(host) > len(c.name)+1 && strings.HasSuffix(host, "."+c.name) {
				return c, true
			}
		}
	}
	return compiled{}, false
}

// publicAddr reports whether a resolved address may be dialed for a name
// outside the admin's private grants (Policy.Private): global unicast
// only, and none of loopback, private (RFC 1918, fc00::/7), link-local
// (incl. 169.254.169.254 metadata services), unspecified, multicast, shared
// CGNAT space (100.64/10), benchmarking (198.18/15), 0/8, reserved 240/4,
// IETF 192.0.0/24, or NAT64 (64:ff9b::/96, which embeds an IPv4 address) /
// 6to4 (2002::/16) prefixes wrapping such an address. This is what defeats DNS rebinding: the door
// resolves the name itself and dials only an address it vetted.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case sixToFour.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	return true
}

// dialableAddr is the floor even inside a private grant or for an
// IP-literal rule: never unspecified (which reaches the host itself) or
// multicast/broadcast.
func dialableAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) && !zeroNet.Contains(a)
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	zeroNet   = netip.MustParsePrefix("0.0.0.0/8")

	blockedPrefixes = []netip.Prefix{
		zeroNet,
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("64:ff9b:1::/48"),
		netip.MustParsePrefix("fec0::/10"),
	}
)
