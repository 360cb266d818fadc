package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
)

// Stateless HTTP (MCP_CONDUCTOR_HTTP_STATELESS, issue 17's horizontal scale): every POST is
// answered on its own by whichever replica gets it, so nothing may depend on a session.

// errStatelessRefused is serve's refusal of MCP_CONDUCTOR_HTTP_STATELESS with something it
// cannot honour.
var errStatelessRefused = errors.New(config.VarHTTPStateless + " cannot be honoured")

// statelessProblem says why stateless serving cannot honour the settings: on stdio there is
// nothing to make stateless; an upstream with requireApproval needs the server to ask the
// client (elicitation: refused by the go-sdk in stateless mode) or, on the newer protocol, a
// paused run kept in one replica's memory that the client's retry may not reach. nil = fine.
func statelessProblem(s config.Settings, stdio bool, up *upstream.Config) error {
	if !s.HTTPStateless {
		return nil
	}
	if stdio {
		return fmt.Errorf("%w: it is only for serve --http (stdio is one session by nature); "+
			"allowed: unset it, or serve with --http (the admin sets it)", errStatelessRefused)
	}
	var needs []string
	if up != nil {
		for _, sc := range up.Servers {
			if sc.RequireApproval || len(sc.ApprovalTools) > 0 {
				needs = append(needs, sc.Name)
			}
		}
	}
	if len(needs) > 0 {
		return fmt.Errorf("%w: upstream %s in %s require approval, which a stateless server cannot ask for "+
			"(no server-to-client requests; a paused run would live on one replica only); allowed: remove requireApproval "+
			"from those servers, or unset %s and route each client to one replica (the admin changes either)",
			errStatelessRefused, strings.Join(needs, ", "), config.VarMCPConfig, config.VarHTTPStateless)
	}
	return nil
}

// statelessCheck is doctor's line for MCP_CONDUCTOR_HTTP_STATELESS (doctor cannot know whether
// serve will get --http, so only the upstream conflict fails).
func statelessCheck(s config.Settings) check {
	c := check{Name: "http stateless", OK: true}
	if !s.HTTPStateless {
		c.Detail = "HTTP keeps MCP sessions (" + config.VarHTTPStateless + " unset): route each client to one replica"
		return c
	}
	up, err := loadUpstreams(s)
	if err != nil {
		c.OK = false
		c.Detail = fmt.Sprintf("%s: %v", config.VarMCPConfig, err)
		c.Fix = "fix " + config.VarMCPConfig
		return c
	}
	if err := statelessProblem(s, false, up); err != nil {
		c.OK = false
		c.Detail = err.Error()
		c.Fix = "remove requireApproval from those upstream servers, or unset " + config.VarHTTPStateless + "; serve refuses to start until then"
		return c
	}
	c.Detail = "serve --http answers each POST on its own (no sessions, no approvals, no GET stream); only for serve --http, stdio refuses it"
	return c
}
