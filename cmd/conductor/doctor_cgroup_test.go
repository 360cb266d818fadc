package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/cgroups"
)

// TestDelegationCheck: doctor names the transient scope it obtained and the bus, or
// the refusal (a failure unless degraded mode is allowed), and says nothing when
// Claim did not need to try.
func TestDelegationCheck(t *testing.T) {
	refused := errors.New("no user bus: DBUS_SESSION_BUS_ADDRESS is unset")
	for _, tc := range []struct {
		name     string
		host     *cgroups.Host
		degraded bool
		shown    bool
		ok       bool
		detail   string
	}{
		{"scope obtained", &cgroups.Host{Scope: &cgroups.Scope{Unit: "conductor-42.scope", Bus: "user", Path: "/user.slice/x/conductor-42.scope"}}, false, true, true,
			"transient scope conductor-42.scope (Delegate=yes) obtained through the user bus"},
		{"refused", &cgroups.Host{ScopeErr: refused}, false, true, false, "could not obtain a transient scope with Delegate=yes: no user bus"},
		{"refused, degraded allowed", &cgroups.Host{ScopeErr: refused}, true, true, true, "DEGRADED (MCP_CONDUCTOR_ALLOW_DEGRADED=1)"},
		{"not needed", &cgroups.Host{}, false, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, shown := delegationCheck(tc.host, tc.degraded)
			if shown != tc.shown || c.OK != tc.ok || !strings.Contains(c.Detail, tc.detail) {
				t.Fatalf("delegationCheck = %+v shown %v; want shown %v ok %v detail containing %q", c, shown, tc.shown, tc.ok, tc.detail)
			}
		})
	}
}
