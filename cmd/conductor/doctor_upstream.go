package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
)

// upstreamReport is one upstream MCP server in `conductor doctor`'s report.
// Unlike errors the code or the model see, it may quote the server's
// stderr: the doctor's reader is the admin.
type upstreamReport struct {
	Name      string   `json:"name"`
	Transport string   `json:"transport"`
	State     string   `json:"state"`
	Tools     int      `json:"tools"`
	Resources int      `json:"resources"`
	Prompts   int      `json:"prompts"`
	Error     string   `json:"error,omitempty"`
	Stderr    []string `json:"stderr,omitempty"` // last lines (stdio), secrets redacted
	// RequireApproval names the tools whose calls from code wait for the
	// user's approval: "every tool", or the list; "" when none does.
	RequireApproval string `json:"requireApproval,omitempty"`
}

// approvalOf describes sc's requireApproval for the report.
func approvalOf(sc *upstream.ServerConfig) string {
	if sc == nil {
		return ""
	}
	if sc.RequireApproval {
		return "every tool"
	}
	return strings.Join(sc.ApprovalTools, ", ")
}

// upstreamConnectLimit bounds how long `doctor --upstreams` waits for the
// upstreams to connect and list.
const upstreamConnectLimit = 45 * time.Second

// checkUpstreams checks the MCP config (serve refuses to start when it is
// invalid, so that is a failing check) and, when connect is set, starts
// every enabled upstream, lists it and reports its state, with the last
// stderr lines of stdio servers that failed. An upstream that does not
// start and list within the limit fails the doctor with its own check
// ("upstream NAME"): serve would run without it, and code calling it fails.
func checkUpstreams(ctx context.Context, rep *doctorReport, connect bool) {
	s, err := config.Load(os.LookupEnv)
	if err != nil {
		return // the settings check reports it
	}
	cfg, err := loadUpstreams(s)
	if err != nil {
		rep.add(check{Name: "mcp config", Detail: err.Error(), Fix: "fix the file (or " + config.VarMCPConfig + "); conductor serve refuses to start until then"})
		return
	}
	if len(cfg.Servers) == 0 {
		rep.add(check{Name: "mcp config", OK: true, Detail: "no upstream MCP servers configured"})
		return
	}
	detail := fmt.Sprintf("%s: %d upstream MCP servers", cfg.Path, len(cfg.Servers))
	if !connect {
		detail += " (not started: -upstreams=false)"
	}
	rep.add(check{Name: "mcp config", OK: true, Detail: detail})
	if !connect {
		return
	}
	m := upstream.NewManager(cfg, upstream.Options{ConnectTimeout: upstreamConnectLimit - 5*time.Second})
	defer m.Close()
	cctx, cancel := context.WithTimeout(ctx, upstreamConnectLimit)
	defer cancel()
	m.ConnectAll(cctx)
	for _, st := range m.Status(ctx) {
		r := upstreamReport{Name: st.Name, Transport: st.Transport, State: st.State,
			Tools: st.Tools, Resources: st.Resources, Prompts: st.Prompts, Error: st.LastError}
		if st.State != upstream.StateConnected && st.State != upstream.StateDisabled {
			r.Stderr = m.LastStderr(st.Name)
		}
		for i := range cfg.Servers {
			if cfg.Servers[i].Name == st.Name {
				r.RequireApproval = approvalOf(&cfg.Servers[i])
			}
		}
		rep.Upstreams = append(rep.Upstreams, r)
		if c, failed := upstreamCheck(cfg.Path, r); failed {
			rep.add(c)
		}
	}
}

// upstreamCheck is the failing check of an upstream that did not start and list (failed is false
// for one that did, or is disabled).
func upstreamCheck(path string, r upstreamReport) (c check, failed bool) {
	if r.State == upstream.StateConnected || r.State == upstream.StateDisabled {
		return check{}, false
	}
	c = check{Name: "upstream " + r.Name, Detail: fmt.Sprintf("%s, %s within %s: %s", r.Transport, r.State, upstreamConnectLimit, r.Error)}
	if len(r.Stderr) > 0 {
		c.Detail += "; its stderr ends: " + strings.Join(r.Stderr, " | ")
	}
	c.Fix = fmt.Sprintf("fix its entry in %s (command, args, env, url), or set \"disabled\": true; serve starts without it and code calling it fails", path)
	return c, true
}

// printUpstreams writes the upstream section of the text report.
func printUpstreams(w io.Writer, ups []upstreamReport) {
	if len(ups) == 0 {
		return
	}
	fmt.Fprintln(w, "  upstream MCP servers:")
	for _, u := range ups {
		switch u.State {
		case upstream.StateConnected:
			fmt.Fprintf(w, "    %-16s %s, connected: %d tools, %d resources, %d prompts (after the allowlists)\n", u.Name, u.Transport, u.Tools, u.Resources, u.Prompts)
		case upstream.StateDisabled:
			fmt.Fprintf(w, "    %-16s %s, disabled\n", u.Name, u.Transport)
		default:
			fmt.Fprintf(w, "    %-16s %s, %s: %s\n", u.Name, u.Transport, u.State, u.Error)
			for _, l := range u.Stderr {
				fmt.Fprintf(w, "    %-16s stderr: %s\n", "", l)
			}
		}
		if u.RequireApproval != "" {
			fmt.Fprintf(w, "    %-16s calls from code ask the user's approval (MCP elicitation) for: %s\n", "", u.RequireApproval)
		}
	}
}

// loadUpstreams reads the upstream MCP servers file the settings name (none: no servers).
func loadUpstreams(s config.Settings) (*upstream.Config, error) {
	path, explicit := s.MCPConfigFile()
	if path == "" {
		return &upstream.Config{}, nil
	}
	return upstream.LoadConfig(path, explicit, os.LookupEnv)
}
