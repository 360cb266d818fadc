package main

import (
	"fmt"
	"os"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// netOptions turns the admin's network settings into the sandboxes' door
// policy: the allow-net list (or any public address for bare allow-net and
// allow-all) and the MCP_CONDUCTOR_NET_PRIVATE grants. nil = no network.
func netOptions(s config.Settings) (*sandbox.NetOptions, error) {
	if !s.Network {
		return nil, nil
	}
	pol, err := egress.NewPolicy(s.NetHosts, s.NetHosts == nil, s.NetPrivate)
	if err != nil {
		return nil, fmt.Errorf("%s: allow-net: %w", config.VarRunArgs, err)
	}
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("%s: allow-net: %w", config.VarRunArgs, err)
	}
	return &sandbox.NetOptions{Policy: pol}, nil
}

// networkCheck is doctor's account of the network: the effective policy,
// and whether it can be enforced here.
func networkCheck(s config.Settings) check {
	n, err := netOptions(s)
	switch {
	case err != nil:
		return check{Name: "network", Detail: err.Error(), Fix: "fix allow-net in " + config.VarRunArgs}
	case n == nil:
		return check{Name: "network", OK: true, Detail: "none: runs reach no network (no allow-net or allow-all in " + config.VarRunArgs + ")"}
	case os.Geteuid() != 0:
		return check{Name: "network", Detail: "allow-net is set, but " + egress.ErrRootless.Error(),
			Fix: "run conductor as root, or remove allow-net/allow-all from " + config.VarRunArgs}
	}
	return check{Name: "network", OK: true, Detail: "runs reach: " + n.Policy.String() +
		"; DNS from the sandbox's responder (fake addresses), TCP through the door, no UDP elsewhere, no IPv6"}
}

// networkDescription is what the tool description says runs can reach.
func networkDescription(s config.Settings) string {
	n, err := netOptions(s)
	if err != nil || n == nil {
		return ""
	}
	return n.Policy.String()
}
