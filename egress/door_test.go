package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// TestPolicyDecisions is the decision layer alone: which destinations a
// policy lets the door resolve and dial, and what it dials. The dial hook
// records every address; nothing outside loopback is ever connected to.
func TestPolicyDecisions(t *testing.T) {
	names := map[string][]netip.Addr{
		"api.example.com":   {netip.MustParseAddr("93.184.216.34")},
		"rebind.example":    {netip.MustParseAddr("127.0.0.1")},
		"private.example":   {netip.MustParseAddr("10.1.2.3")},
		"meta.example":      {netip.MustParseAddr("169.254.169.254")},
		"meta6.example":     {netip.MustParseAddr("fd00:ec2::254")},
		"cgnat.example":     {netip.MustParseAddr("100.64.1.1")},
		"linklocal.example": {netip.MustParseAddr("169.254.7.7")},
		"mixed.example":     {netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("93.184.216.35")},
		"rebind-all.example": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3"),
			netip.MustParseAddr("169.254.169.254")},
		"zero.example": {netip.MustParseAddr("0.0.0.0")},
	}
	pfx := netip.MustParsePrefix
	cases := []struct {
		name    string
		allow   []string
		any     bool
		private []netip.Prefix
		host    string
		port    int
		want    string // the dialed address, or "" if nothing may be dialed
		reason  string // a fragment of the refusal
		resolve bool   // whether the name may be resolved at all
	}{
		{"listed name any port", []string{"api.example.com"}, false, nil, "api.example.com", 8443, "93.184.216.34:8443", "", true},
		{"listed name:port", []string{"api.example.com:443"}, false, nil, "api.example.com", 443, "93.184.216.34:443", "", true},
		{"listed name other port", []string{"api.example.com:443"}, false, nil, "api.example.com", 80, "", "not in the server's allow-net", false},
		{"unlisted name never resolved", []string{"api.example.com"}, false, nil, "other.example", 443, "", "not in the server's allow-net", false},
		{"rebinding to loopback", []string{"rebind.example"}, false, nil, "rebind.example", 80, "", "127.0.0.1: a loopback", true},
		{"rebinding granted", []string{"rebind.example"}, false, []netip.Prefix{pfx("127.0.0.0/8")}, "rebind.example", 80, "127.0.0.1:80", "", true},
		{"private name", []string{"private.example"}, false, nil, "private.example", 5432, "", "MCP_CONDUCTOR_NET_PRIVATE", true},
		{"private name granted", []string{"private.example"}, false, []netip.Prefix{pfx("10.0.0.0/8")}, "private.example", 5432, "10.1.2.3:5432", "", true},
		{"metadata by name", nil, true, []netip.Prefix{pfx("10.0.0.0/8")}, "meta.example", 80, "", "metadata", true},
		{"metadata v6 by name", nil, true, nil, "meta6.example", 80, "", "metadata", true},
		{"cgnat by name", nil, true, nil, "cgnat.example", 80, "", "CGNAT", true},
		{"link-local by name", nil, true, nil, "linklocal.example", 80, "", "link-local", true},
		{"mixed keeps the public one", nil, true, nil, "mixed.example", 443, "93.184.216.35:443", "", true},
		{"any-public name", nil, true, nil, "api.example.com", 22, "93.184.216.34:22", "", true},
		{"any-public metadata literal", nil, true, nil, "169.254.169.254", 80, "", "metadata", false},
		{"any-public loopback literal", nil, true, nil, "127.0.0.1", 80, "", "loopback", false},
		{"any-public private literal", nil, true, nil, "192.168.1.1", 80, "", "private", false},
		{"any-public granted literal", nil, true, []netip.Prefix{pfx("192.168.0.0/16")}, "192.168.1.1", 80, "192.168.1.1:80", "", false},
		{"any-public public literal", nil, true, nil, "93.184.216.34", 443, "93.184.216.34:443", "", false},
		{"listed literal loopback", []string{"127.0.0.1:8080"}, false, nil, "127.0.0.1", 8080, "127.0.0.1:8080", "", false},
		{"listed literal other port", []string{"127.0.0.1:8080"}, false, nil, "127.0.0.1", 8081, "", "not in the server's allow-net", false},
		{"unlisted loopback literal", []string{"127.0.0.1:8080"}, false, nil, "127.0.0.2", 8080, "", "not in the server's allow-net", false},
		{"listed metadata literal", []string{"169.254.169.254:80"}, false, nil, "169.254.169.254", 80, "169.254.169.254:80", "", false},
		{"localhost means the host's loopback", []string{"localhost:8080"}, false, nil, "127.0.0.1", 8080, "127.0.0.1:8080", "", false},
		{"name rule never matches a literal", []string{"api.example.com"}, false, nil, "93.184.216.34", 443, "", "not in the server's allow-net", false},
		{"rebinding to several non-public addresses", []string{"rebind-all.example"}, false, nil, "rebind-all.example", 443, "", "127.0.0.1, 10.1.2.3, 169.254.169.254: a loopback", true},
		{"unspecified by name, even inside a grant", []string{"zero.example"}, false, []netip.Prefix{pfx("0.0.0.0/0")}, "zero.example", 80, "", "resolves only to 0.0.0.0", true},
		{"any-public unspecified literal, even inside a grant", nil, true, []netip.Prefix{pfx("0.0.0.0/0")}, "0.0.0.0", 80, "", "loopback", false},
		{"unlisted IPv6 loopback literal", []string{"127.0.0.1:8080"}, false, nil, "::1", 8080, "", "not in the server's allow-net", false},
		{"any-public IPv6 loopback literal", nil, true, nil, "::1", 80, "", "loopback", false},
		{"any-public NAT64 of a private address", nil, true, nil, "64:ff9b::a00:1", 80, "", "private", false},
		{"IPv4-mapped literal is the IPv4 address", []string{"127.0.0.1:8080"}, false, nil, "::ffff:127.0.0.1", 8080, "127.0.0.1:8080", "", false},
		{"listed IPv6 literal", []string{"[2001:db8::1]:443"}, false, nil, "2001:db8::1", 443, "[2001:db8::1]:443", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := NewPolicy(tc.allow, tc.any, tc.private)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := compilePolicy(pol)
			if err != nil {
				t.Fatal(err)
			}
			h := &hooks{names: names, failDial: true}
			o := DoorOptions{Resolver: h.resolve, Dial: h.dial}
			setDoorDefaults(&o)
			d := &Door{o: o, pol: cp, ctx: context.Background()}
			host, kind := normalizeHost(tc.host)
			up, reason := d.open(host, kind, tc.port)
			if up != nil {
				up.Close()
				t.Fatal("the test dialer connected")
			}
			resolved, dialed := h.calls()
			if tc.want == "" {
				if len(dialed) != 0 {
					t.Errorf("dialed %v, want nothing", dialed)
				}
				if !strings.Contains(reason, tc.reason) {
					t.Errorf("reason %q, want it to contain %q", reason, tc.reason)
				}
			} else if len(dialed) != 1 || dialed[0] != tc.want {
				t.Errorf("dialed %v, want [%s] (reason %q)", dialed, tc.want, reason)
			}
			if !tc.resolve && len(resolved) != 0 {
				t.Errorf("resolved %v, want no lookup", resolved)
			}
		})
	}
}

func TestParseNetEntry(t *testing.T) {
	cases := []struct {
		in   string
		want Rule
		bad  bool
	}{
		{"api.example.com", Rule{Host: "api.example.com", Port: AnyPort}, false},
		{"api.example.com:443", Rule{Host: "api.example.com", Port: 443}, false},
		{"127.0.0.1", Rule{Host: "127.0.0.1", Port: AnyPort}, false},
		{"127.0.0.1:8080", Rule{Host: "127.0.0.1", Port: 8080}, false},
		{"[::1]:53", Rule{Host: "::1", Port: 53}, false},
		{"0.0.0.0:80", Rule{}, true},
		{"host:0", Rule{}, true},
		{"bad host", Rule{}, true},
	}
	for _, tc := range cases {
		got, err := ParseNetEntry(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseNetEntry(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
	if _, err := compilePolicy(Policy{}); !errors.Is(err, ErrNoNetwork) {
		t.Errorf("empty policy: %v, want ErrNoNetwork", err)
	}
}

// startDoor starts a door in ns with test hooks.
func startDoor(t *testing.T, ns *testNS, h *hooks, pol Policy) *Door {
	t.Helper()
	d, err := StartDoor(context.Background(), DoorOptions{
		NetNS: ns.path, Policy: pol, Resolver: h.resolve, Dial: h.dial,
		Logger: slog.New(slog.DiscardHandler), IdleTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("StartDoor: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestDoorInNetNS wires a real network namespace and connects from inside
// it: the responder answers listed names with fake addresses, TCP to them
// and to listed literals lands on the host's loopback server, everything
// else is refused and recorded, and UDP and IPv6 are closed.
func TestDoorInNetNS(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	other, otherHits := countingListener(t)
	h := &hooks{names: map[string][]netip.Addr{"svc.test": {netip.MustParseAddr("127.0.0.1")}}}
	pol, err := NewPolicy([]string{"127.0.0.1:" + strconv.Itoa(echo.port), "svc.test:" + strconv.Itoa(echo.port), "svc.test:" + strconv.Itoa(other)}, false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	d := startDoor(t, ns, h, pol)

	// DNS, from inside.
	var aAns, aaaaAns, nxAns *dns.Msg
	var qerr error
	if err := ns.inNS(func() {
		cl := &dns.Client{Timeout: 3 * time.Second}
		q := func(name string, qt uint16) *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), qt)
			r, _, err := cl.Exchange(m, "127.0.0.53:53")
			if err != nil {
				qerr = errors.Join(qerr, err)
			}
			return r
		}
		aAns, aaaaAns, nxAns = q("svc.test", dns.TypeA), q("svc.test", dns.TypeAAAA), q("unlisted.test", dns.TypeA)
	}); err != nil || qerr != nil {
		t.Fatalf("DNS from inside: %v %v", err, qerr)
	}
	if len(aAns.Answer) != 1 || aAns.Answer[0].(*dns.A).A.String() != "198.18.0.1" {
		t.Fatalf("A svc.test = %v, want 198.18.0.1", aAns.Answer)
	}
	if aaaaAns.Rcode != dns.RcodeSuccess || len(aaaaAns.Answer) != 0 {
		t.Errorf("AAAA svc.test = %v %v, want NODATA", dns.RcodeToString[aaaaAns.Rcode], aaaaAns.Answer)
	}
	if nxAns.Rcode != dns.RcodeNameError {
		t.Errorf("A unlisted.test rcode %s, want NXDOMAIN", dns.RcodeToString[nxAns.Rcode])
	}

	roundTrip := func(addr string) error {
		c, err := ns.tryDial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "ping"); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return fmt.Errorf("echo %q", buf)
		}
		return nil
	}
	ep := strconv.Itoa(echo.port)
	for _, addr := range []string{"127.0.0.1:" + ep, "198.18.0.1:" + ep} {
		if err := roundTrip(addr); err != nil {
			t.Errorf("%s from inside: %v, want the host's echo server", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:" + strconv.Itoa(other), "127.0.0.2:" + ep, "198.18.0.99:" + ep, "203.0.113.9:" + ep} {
		if err := roundTrip(addr); err == nil {
			t.Errorf("%s from inside reached something, want refused", addr)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the unlisted host port got %d connections", n)
	}
	// svc.test is listed at the other port too: resolved, dialed, reached.
	if err := ns.inNS(func() {
		c, err := net.DialTimeout("tcp", "198.18.0.1:"+strconv.Itoa(other), 3*time.Second)
		if err == nil {
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the listed name:port to be reached", 3*time.Second, func() bool { return otherHits.Load() == 1 })

	// UDP other than to the responder, and IPv6, are closed.
	var udpErr, v6Err error
	if err := ns.inNS(func() {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			udpErr = err
			return
		}
		defer pc.Close()
		_, udpErr = pc.WriteTo([]byte("x"), pc.LocalAddr())
		var c net.Conn
		c, v6Err = net.DialTimeout("tcp6", "[::1]:"+ep, time.Second)
		if c != nil {
			c.Close()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(udpErr, unix.EPERM) {
		t.Errorf("UDP to 127.0.0.1 inside: %v, want EPERM", udpErr)
	}
	if !errors.Is(v6Err, unix.ECONNREFUSED) {
		t.Errorf("TCP to [::1] inside: %v, want ECONNREFUSED (a reset, at once)", v6Err)
	}

	recs, dropped := d.Records()
	want := map[string]bool{
		"127.0.0.1:" + ep: true, "svc.test:" + ep: true, "unlisted.test:0": false,
		"127.0.0.1:" + strconv.Itoa(other): false, "127.0.0.2:" + ep: false,
		"198.18.0.99:" + ep: false, "203.0.113.9:" + ep: false,
		"svc.test:" + strconv.Itoa(other): true,
	}
	got := map[string]Record{}
	for _, r := range recs {
		got[r.Host+":"+strconv.Itoa(r.Port)] = r
	}
	for k, allowed := range want {
		r, ok := got[k]
		switch {
		case !ok:
			t.Errorf("no record for %s in %+v", k, recs)
		case r.Allowed != allowed:
			t.Errorf("record %s allowed=%v (%q), want %v", k, r.Allowed, r.Reason, allowed)
		case !allowed && r.Reason == "":
			t.Errorf("record %s refused without a reason", k)
		case allowed && r.BytesOut == 0 && k != "svc.test:"+strconv.Itoa(other):
			t.Errorf("record %s counted no bytes", k)
		}
	}
	if dropped != 0 {
		t.Errorf("dropped %d records", dropped)
	}
	if r := got["127.0.0.2:"+ep]; !strings.Contains(r.Reason, "allow-net") {
		t.Errorf("127.0.0.2 reason %q, want it to name allow-net", r.Reason)
	}

	// Close ends a relay that is still open, and fails closed: with the
	// door gone, new connections fail.
	open, err := ns.tryDial("127.0.0.1:" + ep)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	_ = open.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(open, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(open, make([]byte, 1)); err != nil {
		t.Fatalf("relay before Close: %v", err)
	}
	closed := make(chan struct{})
	go func() { d.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a relay open")
	}
	if _, err := open.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a relay open across Close: read %v, want it ended", err)
	}
	if err := roundTrip("127.0.0.1:" + ep); err == nil {
		t.Error("a connection succeeded after the door closed")
	}
}

// TestDoorCaps: the per-execution limits refuse with a reason that names
// the limit — connections beyond MaxConns, and a relay beyond MaxBytes.
func TestDoorCaps(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	ep := strconv.Itoa(echo.port)
	h := &hooks{}
	pol, err := NewPolicy([]string{"127.0.0.1:" + ep}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := StartDoor(context.Background(), DoorOptions{
		NetNS: ns.path, Policy: pol, Resolver: h.resolve, Dial: h.dial,
		MaxConns: 2, MaxBytes: 64 << 10, IdleTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	echoN := func(n int) (int, error) {
		c, err := ns.tryDial("127.0.0.1:" + ep)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		go func() { _, _ = c.Write(make([]byte, n)) }()
		got, err := io.CopyN(io.Discard, c, int64(n))
		return int(got), err
	}
	if got, err := echoN(1000); err != nil || got != 1000 {
		t.Fatalf("first connection echoed %d: %v", got, err)
	}
	// 200 KiB out and back is over the 64 KiB limit: cut short.
	if got, err := echoN(200 << 10); err == nil || got >= 200<<10 {
		t.Errorf("a relay over MaxBytes echoed %d bytes (err %v), want it cut", got, err)
	}
	if _, err := echoN(10); err == nil {
		t.Error("a third connection over MaxConns=2 worked")
	}
	// The cut reaches the client before the door's relay returns and
	// records why.
	var recs []Record
	waitFor(t, "the byte limit recorded", 5*time.Second, func() bool {
		recs, _ = d.Records()
		return len(recs) == 3 && strings.Contains(recs[1].Reason, "byte limit")
	})
	if len(recs) != 3 {
		t.Fatalf("records %+v, want 3", recs)
	}
	if !strings.Contains(recs[1].Reason, "byte limit") {
		t.Errorf("record 2 reason %q, want the byte limit", recs[1].Reason)
	}
	if recs[2].Allowed || !strings.Contains(recs[2].Reason, "limit of 2 connections") {
		t.Errorf("record 3 = %+v, want refused over the connection limit", recs[2])
	}
}

// TestPolicyDeny: deny-net wins over allow-net and any-public, at the
// port it names; a name denied at every port is not even answered.
func TestPolicyDeny(t *testing.T) {
	cases := []struct {
		allow        []string
		any          bool
		deny         []string
		host         string
		port         int
		want         bool
		lookupWanted bool
	}{
		{nil, true, []string{"evil.example"}, "evil.example", 443, false, false},
		{nil, true, []string{"evil.example"}, "good.example", 443, true, true},
		{nil, true, []string{"evil.example:25"}, "evil.example", 25, false, true},
		{nil, true, []string{"evil.example:25"}, "evil.example", 443, true, true},
		{[]string{"api.example"}, false, []string{"api.example:8080"}, "api.example", 8080, false, true},
		{[]string{"127.0.0.1"}, false, []string{"127.0.0.1:22"}, "127.0.0.1", 22, false, false},
		{[]string{"127.0.0.1"}, false, []string{"localhost:22"}, "127.0.0.1", 22, false, false},
		{[]string{"127.0.0.1"}, false, []string{"127.0.0.1:22"}, "127.0.0.1", 80, true, false},
	}
	for _, tc := range cases {
		p, err := NewPolicy(tc.allow, tc.any, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p, err = p.WithDeny(tc.deny); err != nil {
			t.Fatal(err)
		}
		cp, err := compilePolicy(p)
		if err != nil {
			t.Fatal(err)
		}
		host, kind := normalizeHost(tc.host)
		ok, reason := cp.destAllowed(host, kind, tc.port)
		if ok != tc.want || (!ok && !strings.Contains(reason, "deny-net")) {
			t.Errorf("allow %v any %v deny %v: %s:%d allowed=%v (%q), want %v", tc.allow, tc.any, tc.deny, tc.host, tc.port, ok, reason, tc.want)
		}
		if kind == hostName && cp.lookupAllowed(host) != tc.lookupWanted {
			t.Errorf("deny %v: lookup of %s allowed=%v, want %v", tc.deny, host, !tc.lookupWanted, tc.lookupWanted)
		}
	}
}

// TestNormalizeHost: what the door accepts as a name (a DNS question, a
// rule) or an IP literal. Whatever else is hostBad, so the responder
// answers NXDOMAIN and no rule can match it: numeric shorthands some
// resolvers turn into addresses, zones, userinfo, percent-encoding,
// non-ASCII.
func TestNormalizeHost(t *testing.T) {
	cases := []struct {
		in   string
		want string
		kind hostKind
	}{
		{"API.Example.COM.", "api.example.com", hostName},
		{"under_score.example", "under_score.example", hostName},
		{"203.0.113.7", "203.0.113.7", hostIP},
		{"2001:DB8:0::1", "2001:db8::1", hostIP},
		{"::ffff:127.0.0.1", "127.0.0.1", hostIP},
		{"127.1", "", hostBad},
		{"2130706433", "", hostBad},
		{"0x7f.0.0.1", "", hostBad},
		{"1.2.3.4.5", "", hostBad},
		{"fe80::1%eth0", "", hostBad},
		{"user@api.example.com", "", hostBad},
		{"%61pi.example.com", "", hostBad},
		{"ällowed.example", "", hostBad},
		{"api .example.com", "", hostBad},
		{"a..b", "", hostBad},
		{"-lead.example", "", hostBad},
		{"trail-.example", "", hostBad},
		{"", "", hostBad},
		{".", "", hostBad},
		{strings.Repeat("a", 64) + ".example", "", hostBad},
	}
	for _, tc := range cases {
		got, kind := normalizeHost(tc.in)
		if got != tc.want || kind != tc.kind {
			t.Errorf("normalizeHost(%q) = %q, %d; want %q, %d", tc.in, got, kind, tc.want, tc.kind)
		}
	}
}

// TestStartDoorErrors: StartDoor refuses what it cannot wire, before it
// touches any namespace, with a reason.
func TestStartDoorErrors(t *testing.T) {
	ok, err := NewPolicy([]string{"127.0.0.1:80"}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    DoorOptions
		want string
	}{
		{"no netns", DoorOptions{Policy: ok}, "NetNS is required"},
		{"missing path", DoorOptions{NetNS: "/nonexistent/ns/net", Policy: ok}, "no such file"},
		{"not a namespace", DoorOptions{NetNS: "/proc/self/status", Policy: ok}, "not a network namespace"},
		{"wrong namespace type", DoorOptions{NetNS: "/proc/self/ns/uts", Policy: ok}, "not a network namespace"},
		{"empty policy", DoorOptions{NetNS: "/nonexistent/ns/net"}, ErrNoNetwork.Error()},
		{"bad rule", DoorOptions{NetNS: "/nonexistent/ns/net", Policy: Policy{Allow: []Rule{{Host: "exa mple.com", Port: 443}}}}, "not a DNS name"},
		{"unspecified rule", DoorOptions{NetNS: "/nonexistent/ns/net", Policy: Policy{Allow: []Rule{{Host: "0.0.0.0", Port: 443}}}}, "unspecified"},
		{"bad grant", DoorOptions{NetNS: "/nonexistent/ns/net", Policy: Policy{AnyPublic: true, Private: []netip.Prefix{{}}}}, "not a valid CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := StartDoor(context.Background(), tc.o)
			if err == nil {
				d.Close()
				t.Fatal("StartDoor succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestDoorDNSOnlyNames: even with any public name allowed, the responder
// hands out fake addresses for DNS names only; a question that is an IP
// literal or a numeric shorthand gets NXDOMAIN and is never resolved.
func TestDoorDNSOnlyNames(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	h := &hooks{}
	startDoor(t, ns, h, Policy{AnyPublic: true})
	rcodes := map[string]int{}
	var answer *dns.Msg
	var qerr error
	if err := ns.inNS(func() {
		cl := &dns.Client{Timeout: 3 * time.Second}
		for _, name := range []string{"svc.test", "127.1", "2130706433", "0x7f.0.0.1", "10.0.0.1", "1.2.3.4.5"} {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), dns.TypeA)
			r, _, err := cl.Exchange(m, ResolverAddr)
			if err != nil {
				qerr = errors.Join(qerr, fmt.Errorf("%s: %w", name, err))
				continue
			}
			rcodes[name] = r.Rcode
			if name == "svc.test" {
				answer = r
			}
		}
	}); err != nil || qerr != nil {
		t.Fatalf("DNS from inside: %v %v", err, qerr)
	}
	if answer == nil || len(answer.Answer) != 1 || answer.Answer[0].(*dns.A).A.String() != "198.18.0.1" {
		t.Fatalf("A svc.test = %v, want 198.18.0.1", answer)
	}
	for name, rc := range rcodes {
		if name != "svc.test" && rc != dns.RcodeNameError {
			t.Errorf("A %s: rcode %s, want NXDOMAIN", name, dns.RcodeToString[rc])
		}
	}
	if resolved, dialed := h.calls(); len(resolved)+len(dialed) != 0 {
		t.Errorf("lookups alone resolved %v / dialed %v on the host", resolved, dialed)
	}
}

// TestDoorIdle: a relay with no traffic either way for IdleTimeout ends,
// and says so in its record; a one-way download with a silent client is
// not idle.
func TestDoorIdle(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	// 's': one byte every 50 ms for 1.2 s, then close; 'q': stay silent.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil {
					return
				}
				if b[0] == 's' {
					for i := 0; i < 24; i++ {
						if _, err := c.Write([]byte{'.'}); err != nil {
							return
						}
						time.Sleep(50 * time.Millisecond)
					}
					return
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	target := ln.Addr().String()
	pol, err := NewPolicy([]string{target}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &hooks{}
	d, err := StartDoor(context.Background(), DoorOptions{
		NetNS: ns.path, Policy: pol, Resolver: h.resolve, Dial: h.dial, IdleTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	send := func(b byte) (net.Conn, time.Time) {
		c := ns.dial(t, target)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		return c, time.Now()
	}

	c, start := send('q')
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent relay: read %v, want it ended by the idle timeout", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 2*time.Second {
		t.Errorf("silent relay ended after %v, want ~300ms", el)
	}

	c2, _ := send('s')
	defer c2.Close()
	if got, err := io.ReadAll(c2); err != nil || len(got) != 24 {
		t.Errorf("streamed %d bytes (%v), want all 24 over 1.2 s despite a silent client and a 300 ms idle timeout", len(got), err)
	}
	waitFor(t, "both records to be final", 3*time.Second, func() bool {
		recs, _ := d.Records()
		return len(recs) == 2 && strings.Contains(recs[0].Reason, "idle")
	})
	recs, _ := d.Records()
	if !recs[0].Allowed || recs[0].BytesOut != 1 {
		t.Errorf("silent relay record %+v, want allowed, 1 byte out, ended idle", recs[0])
	}
	if recs[1].BytesIn != 24 || strings.Contains(recs[1].Reason, "idle") {
		t.Errorf("download record %+v, want 24 bytes in and no idle ending", recs[1])
	}
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	for i := 0; i < infoLogsPerSecond; i++ {
		if ok, _ := l.allow(t0); !ok {
			t.Fatalf("record %d refused within the budget", i)
		}
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.allow(t0.Add(500 * time.Millisecond)); ok {
			t.Fatal("record allowed past the budget")
		}
	}
	if ok, suppressed := l.allow(t0.Add(1100 * time.Millisecond)); !ok || suppressed != 5 {
		t.Fatalf("next window: ok=%v suppressed=%d, want true and 5", ok, suppressed)
	}
}
