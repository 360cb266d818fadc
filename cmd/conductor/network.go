package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

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
	if pol, err = pol.WithDeny(s.NetDeny); err != nil {
		return nil, fmt.Errorf("%s: deny-net: %w", config.VarRunArgs, err)
	}
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("%s: allow-net: %w", config.VarRunArgs, err)
	}
	secrets, err := netSecrets(s.NetSecrets, pol)
	if err != nil {
		return nil, err
	}
	return &sandbox.NetOptions{Policy: pol, Secrets: secrets}, nil
}

// netSecrets are the admin's MCP_CONDUCTOR_NET_SECRETS, checked against the
// policy: a secret for a host code cannot reach is refused at start.
func netSecrets(in []config.NetSecret, pol egress.Policy) (*egress.Secrets, error) {
	list := make([]egress.Secret, len(in))
	for i, n := range in {
		list[i] = egress.Secret{Name: n.Name, Value: n.Value, Hosts: n.Hosts}
	}
	secrets, err := egress.NewSecrets(list)
	if err == nil {
		err = secrets.CheckPolicy(pol)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.VarNetSecrets, err)
	}
	return secrets, nil
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
	}
	detail := "runs reach: " + n.Policy.String() +
		"; DNS from the sandbox's responder (fake addresses), TCP through the door, no UDP elsewhere, no IPv6"
	if n.Secrets != nil {
		detail += "; secrets (placeholders in code, real values only in HTTPS request headers to): " + n.Secrets.String()
	}
	return check{Name: "network", OK: true, Detail: detail}
}

// networkDescription is what the tool description says runs can reach.
func networkDescription(s config.Settings) string {
	n, err := netOptions(s)
	if err != nil || n == nil {
		return ""
	}
	if n.Secrets == nil {
		return n.Policy.String()
	}
	return n.Policy.String() + ". Secrets: " + n.Secrets.String() + " — read each with Deno.env.get(NAME) and use it as the real " +
		"credential (e.g. an Authorization header): the value is a placeholder, which the server replaces with the real one only in " +
		"HTTPS request headers to those hosts (and back to the placeholder in their answers)"
}

// networkProof shows the door works on this host: a sandbox (deno's own
// net check wide open, the door listing only one of two loopback listeners
// doctor starts) reaches the listed one, and the other sees nothing.
func networkProof(ctx context.Context, log *slog.Logger) check {
	c := check{Name: "network proof"}
	a, err := newApp(ctx, log)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer a.Close()
	var hits [2]atomic.Int32
	var ports [2]int
	for i := range ports {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			c.Detail = err.Error()
			return c
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				hits[i].Add(1)
				_, _ = conn.Write([]byte("conductor doctor"))
				conn.Close()
			}
		}()
	}
	o := a.runnerO
	o.Workspace, o.WorkspaceQuota, o.SpillMax = "", 0, 0
	o.DenoFlags = []string{"--allow-net"}
	o.Net = &sandbox.NetOptions{Policy: egress.Policy{Allow: []egress.Rule{{Host: "127.0.0.1", Port: ports[0]}}}}
	r, err := sandbox.New(ctx, o)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer r.Close()
	code := fmt.Sprintf(`const read = async (port: number) => {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    const b = new Uint8Array(64); const n = await c.read(b); c.close();
    return n === null ? "closed" : new TextDecoder().decode(b.subarray(0, n));
  } catch (e) { return "refused: " + (e as Error).message; }
};
export default [await read(%d), await read(%d)];`, ports[0], ports[1])
	res, err := r.Run(ctx, sandbox.Job{Code: code, Timeout: 30 * time.Second})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	var got []string
	_ = json.Unmarshal(res.ReturnValue, &got)
	switch {
	case res.Status != sandbox.StatusSuccess || len(got) != 2:
		c.Detail = fmt.Sprintf("the probe run did not finish: %s %s", res.Status, res.ReturnValue)
	case got[0] != "conductor doctor" || hits[0].Load() != 1:
		c.Detail = "a sandbox could not reach a listed loopback listener through the door: " + got[0]
	case hits[1].Load() != 0:
		c.Detail = "a sandbox reached a loopback listener the door does not list: the network is NOT enforced here"
	default:
		c.OK = true
		c.Detail = "a sandbox reached 127.0.0.1:" + strconv.Itoa(ports[0]) + " (listed) and not 127.0.0.1:" +
			strconv.Itoa(ports[1]) + " (unlisted; the door recorded: " + refusal(res.Network, ports[1]) + ")"
	}
	return c
}

func refusal(recs []egress.Record, port int) string {
	for _, r := range recs {
		if r.Port == port && !r.Allowed {
			return r.Reason
		}
	}
	return "no record"
}
