package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Policy is the network policy of a run: the admin's allow-net, enforced
// by the door (StartDoor) below deno, so code that gets past deno's own
// check (allow-all with FFI, a deno bug) still reaches only what it lists.
type Policy struct {
	// Allow are the allow-net entries (ParseNetEntry): names, name:port,
	// IP literals. An IP-literal entry reaches that address whatever its
	// class (loopback, private, ...): the admin named it.
	Allow []Rule
	// AnyPublic is bare allow-net or allow-all: any name, any public
	// address, any port.
	AnyPublic bool
	// Deny are deny-net entries: refused even where Allow or AnyPublic
	// would allow them (deno applies deny first too). A name denied at
	// every port is not answered by the DNS responder.
	Deny []Rule
	// Private are the non-public ranges the admin grants
	// (MCP_CONDUCTOR_NET_PRIVATE): a name resolving into one of them, or
	// with AnyPublic an IP literal inside one, may be dialed. Nothing else
	// non-public is ever dialed for a name (DNS rebinding).
	Private []netip.Prefix
}

// ErrNoNetwork is a Policy that allows nothing: StartDoor refuses it (a
// sandbox without network needs no door).
var ErrNoNetwork = errors.New("egress: the policy allows no destination")

// ParseNetEntry parses one deno allow-net value ("host", "host:port",
// "1.2.3.4[:port]", "[2001:db8::1][:port]"). Without a port it means every
// port, as in deno.
func ParseNetEntry(s string) (Rule, error) {
	r, err := ParseRule(s)
	if err != nil {
		return Rule{}, err
	}
	if r.Port == 0 && !strings.HasSuffix(s, ":0") {
		r.Port = AnyPort
	}
	return r, nil
}

// NewPolicy builds a Policy from allow-net values (nil with anyPublic) and
// the private grants (CIDRs).
func NewPolicy(allowNet []string, anyPublic bool, private []netip.Prefix) (Policy, error) {
	p := Policy{AnyPublic: anyPublic, Private: private}
	var errs []error
	for _, v := range allowNet {
		r, err := ParseNetEntry(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Allow = append(p.Allow, r)
		if strings.EqualFold(r.Host, "localhost") {
			// Inside the sandbox localhost is 127.0.0.1 (its /etc/hosts),
			// which the door sees as that literal: the host's loopback,
			// which is what the admin named.
			p.Allow = append(p.Allow, Rule{Host: "127.0.0.1", Port: r.Port})
		}
	}
	return p, errors.Join(errs...)
}

// WithDeny adds deny-net values (ParseNetEntry syntax) to the policy.
func (p Policy) WithDeny(denyNet []string) (Policy, error) {
	var errs []error
	for _, v := range denyNet {
		r, err := ParseNetEntry(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Deny = append(p.Deny, r)
		if strings.EqualFold(r.Host, "localhost") {
			p.Deny = append(p.Deny, Rule{Host: "127.0.0.1", Port: r.Port})
		}
	}
	return p, errors.Join(errs...)
}

// String describes the policy for people (doctor, the tool description).
func (p Policy) String() string {
	var b strings.Builder
	switch {
	case p.AnyPublic:
		b.WriteString("any public address, any port")
		if len(p.Allow) > 0 {
			b.WriteString("; also ")
		}
	case len(p.Allow) == 0:
		return "no network"
	}
	for i, r := range p.Allow {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.String())
	}
	if len(p.Deny) > 0 {
		ds := make([]string, len(p.Deny))
		for i, r := range p.Deny {
			ds[i] = r.String()
		}
		fmt.Fprintf(&b, "; except %s", strings.Join(ds, ", "))
	}
	if len(p.Private) > 0 {
		ps := make([]string, len(p.Private))
		for i, pr := range p.Private {
			ps[i] = pr.String()
		}
		fmt.Fprintf(&b, "; non-public ranges granted: %s", strings.Join(ps, ", "))
	} else {
		b.WriteString("; loopback, private, link-local, CGNAT and metadata addresses only through IP-literal entries")
	}
	return b.String()
}

// Validate reports what is wrong with the policy (ErrNoNetwork if it
// allows nothing).
func (p Policy) Validate() error {
	_, err := compilePolicy(p)
	return err
}

// policy is a compiled Policy.
type policy struct {
	rules     ruleSet
	deny      ruleSet
	anyPublic bool
	private   []netip.Prefix
}

func compilePolicy(p Policy) (*policy, error) {
	rs, err := compileRules(p.Allow)
	if err != nil {
		return nil, err
	}
	if !p.AnyPublic && len(rs) == 0 {
		return nil, ErrNoNetwork
	}
	for _, pr := range p.Private {
		if !pr.IsValid() {
			return nil, fmt.Errorf("egress: private grant %v is not a valid CIDR", pr)
		}
	}
	deny, err := compileRules(p.Deny)
	if err != nil {
		return nil, err
	}
	return &policy{rules: rs, deny: deny, anyPublic: p.AnyPublic, private: p.Private}, nil
}

// Reasons recorded for refusals. They are read by the agent, which cannot
// change the settings: they say who can.
const (
	reasonNotListed = "not in the server's allow-net (MCP_CONDUCTOR_RUN_ARGS); only the admin can add it"
	reasonDenied    = "listed in the server's deny-net (MCP_CONDUCTOR_RUN_ARGS); only the admin can change it"
	reasonNonPublic = "a loopback, private, link-local, CGNAT or metadata address: reachable only through an IP-literal allow-net entry or a range in MCP_CONDUCTOR_NET_PRIVATE, which only the admin sets"
)

// lookupAllowed reports whether the DNS responder may answer for name: some
// rule names it (at any port), or any public name is allowed. A refused
// name is never resolved anywhere.
func (p *policy) lookupAllowed(name string) bool {
	for _, c := range p.deny {
		if c.port == AnyPort {
			if _, ok := (ruleSet{c}).match(name, hostName, AnyPort); ok {
				return false
			}
		}
	}
	if p.anyPublic {
		return true
	}
	_, ok := p.rules.match(name, hostName, AnyPort)
	return ok
}

// destAllowed decides a destination before anything is resolved or
// dialed. For a name, the addresses it resolves to are vetted afterwards
// (dialable).
func (p *policy) destAllowed(host string, kind hostKind, port int) (bool, string) {
	if _, ok := p.deny.match(host, kind, port); ok {
		return false, reasonDenied
	}
	if _, ok := p.rules.match(host, kind, port); ok {
		return true, ""
	}
	if !p.anyPublic {
		return false, reasonNotListed
	}
	if kind == hostIP {
		if a, _ := netip.ParseAddr(host); !p.dialable(a) {
			return false, reasonNonPublic
		}
	}
	return true, ""
}

// dialable vets an address reached through a name (or, in any-public mode,
// an unlisted IP literal): public, or inside a granted range, and never
// unspecified, multicast or broadcast.
func (p *policy) dialable(a netip.Addr) bool {
	a = a.Unmap()
	if !dialableAddr(a) {
		return false
	}
	if publicAddr(a) {
		return true
	}
	for _, pr := range p.private {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}
