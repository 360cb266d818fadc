package cgroups

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaimScope: on cgroup v2 without delegation Start obtains a transient
// Delegate=yes scope (conductor-<pid>.scope) through the user bus (rootless) or the
// system bus (root), moves into its server leaf and enforces every limit; when it
// cannot (no user bus, systemd not PID 1, the manager refused), it does not move and
// the limit errors say why and what to do once, so Config refuses (fail closed).
func TestClaimScope(t *testing.T) {
	const appScope = "user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-claude-77.scope"
	desktop := func(t *testing.T) *fakeHost { // rootless, in a desktop app's scope shared with the app
		f := newFake(t).unified(false)
		f.euid = 1000
		f.systemdPID1 = true
		f.dir(appScope, 1000, map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "", "cgroup.procs": "77\n4321\n"})
		f.cg = "0::/" + appScope + "\n"
		bus := filepath.Join(t.TempDir(), "run-user-1000")
		if err := os.MkdirAll(bus, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bus, "bus"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		f.environ = map[string]string{"XDG_RUNTIME_DIR": bus}
		return f
	}
	rootService := func(t *testing.T) *fakeHost { // root in an undelegated system service
		f := newFake(t).unified(false)
		f.systemdPID1 = true
		f.dir("system.slice/mcp-host.service", 0, map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n"})
		f.cg = "0::/system.slice/mcp-host.service\n"
		return f
	}
	userScope := "/user.slice/user-1000.slice/user@1000.service/user.slice/conductor-4321.scope"
	for _, tc := range []struct {
		name  string
		host  func(t *testing.T) *fakeHost
		deleg string
		// obtained: the scope's cgroup, Bus; else the reason and fix parts of every limit error.
		obtained, bus  string
		reason, fix    []string
		wantScopeCalls int
	}{
		{name: "desktop app scope: user bus from XDG_RUNTIME_DIR", host: desktop,
			obtained: userScope, bus: "user", wantScopeCalls: 1},
		{name: "desktop app scope without controllers", host: func(t *testing.T) *fakeHost {
			f := desktop(t)
			f.dir(appScope, 1000, map[string]string{"cgroup.controllers": ""})
			return f
		}, obtained: userScope, bus: "user", wantScopeCalls: 1},
		{name: "desktop: DBUS_SESSION_BUS_ADDRESS", host: func(t *testing.T) *fakeHost {
			f := desktop(t)
			f.environ = map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}
			return f
		}, obtained: userScope, bus: "user", wantScopeCalls: 1},
		{name: "root in an undelegated service: system bus", host: rootService,
			obtained: "/system.slice/conductor-4321.scope", bus: "system", wantScopeCalls: 1},
		{name: "no user bus", host: func(t *testing.T) *fakeHost {
			f := desktop(t)
			f.environ = nil
			return f
		}, reason: []string{"app-gnome-claude-77.scope also holds processes", "could not obtain a delegated cgroup itself: no user bus: DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus (XDG_RUNTIME_DIR is unset too)"},
			fix: []string{"loginctl enable-linger", "dbus-user-session", "XDG_RUNTIME_DIR=/run/user/1000", "systemd-run --user --scope -p Delegate=yes", "MCP_CONDUCTOR_ALLOW_DEGRADED=1"}},
		{name: "XDG_RUNTIME_DIR without a bus socket", host: func(t *testing.T) *fakeHost {
			f := desktop(t)
			f.environ = map[string]string{"XDG_RUNTIME_DIR": t.TempDir()}
			return f
		}, reason: []string{"no user bus", "/bus: no such file or directory"}, fix: []string{"dbus-user-session"}},
		{name: "user bus unreachable", host: func(t *testing.T) *fakeHost {
			f := desktop(t)
			f.environ = map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
			f.scopeErr = errors.New(`dial unix /nonexistent: connect: no such file or directory`)
			return f
		}, reason: []string{"user bus unix:path=/nonexistent", "did not start a transient scope with Delegate=yes", "dial unix /nonexistent: connect: no such file or directory"},
			fix: []string{"loginctl enable-linger", "MCP_CONDUCTOR_ALLOW_DEGRADED=1"}, wantScopeCalls: 1},
		{name: "root: system manager refused", host: func(t *testing.T) *fakeHost {
			f := rootService(t)
			f.scopeErr = errors.New("org.freedesktop.DBus.Error.AccessDenied")
			return f
		}, reason: []string{"not delegated to conductor", "systemd (system bus) did not start", "AccessDenied"},
			fix: []string{"Delegate=yes", "MCP_CONDUCTOR_CGROUP_PARENT", "MCP_CONDUCTOR_ALLOW_DEGRADED=1"}, wantScopeCalls: 1},
		{name: "systemd not PID 1", host: func(t *testing.T) *fakeHost {
			f := desktop(t)
			f.systemdPID1 = false
			return f
		}, reason: []string{"systemd is not the init system (no /run/systemd/system)"}, fix: []string{"MCP_CONDUCTOR_CGROUP_PARENT", "MCP_CONDUCTOR_ALLOW_DEGRADED=1"}},
		{name: "admin's parent: never a scope", host: rootService, deleg: "/conductor-admin",
			wantScopeCalls: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.host(t)
			if tc.deleg != "" {
				f.dir(strings.TrimPrefix(tc.deleg, "/"), 0, map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "", "cgroup.procs": ""})
			}
			h, err := Start(context.Background(), Options{Prefix: pfx, Delegated: tc.deleg, env: f.env()})
			if err != nil {
				t.Fatal(err)
			}
			if len(f.scopes) != tc.wantScopeCalls {
				t.Fatalf("startScope called %d times (%+v), want %d", len(f.scopes), f.scopes, tc.wantScopeCalls)
			}
			for _, r := range f.scopes {
				if r.Unit != "conductor-4321.scope" || r.Pid != fakePid || r.Rootless != (f.euid != 0) {
					t.Fatalf("scope request %+v", r)
				}
			}
			switch {
			case tc.obtained != "":
				if h.Scope == nil || h.Scope.Unit != "conductor-4321.scope" || h.Scope.Path != tc.obtained || h.Scope.Bus != tc.bus {
					t.Fatalf("Scope = %+v, want %s through the %s bus", h.Scope, tc.obtained, tc.bus)
				}
				if m := h.Missing(full); len(m) > 0 {
					t.Fatalf("limits missing in the obtained scope: %+v", m)
				}
				cg, _, err := h.Config("conductor-a", full, false)
				if err != nil || cg.Path != tc.obtained+"/conductor-a" {
					t.Fatalf("Config: %+v %v, want a sandbox below %s", cg, err, tc.obtained)
				}
				if len(f.writes) == 0 || f.writes[0] != tc.obtained+"/conductor-server/cgroup.procs=4321" {
					t.Fatalf("writes %q: want the move into the scope's server leaf first", f.writes)
				}
			case tc.reason != nil:
				if h.Scope != nil || h.ScopeErr == nil {
					t.Fatalf("Scope %+v, ScopeErr %v: want a refusal", h.Scope, h.ScopeErr)
				}
				if len(f.writes) != 0 {
					t.Fatalf("a refusal wrote %q", f.writes)
				}
				ms := mustMissing(t, h, full, []string{"memory", "pids", "cpu"}, tc.fix...)
				for _, m := range ms {
					for _, s := range tc.reason {
						if !strings.Contains(m.Reason, s) {
							t.Fatalf("%s reason %q lacks %q", m.Limit, m.Reason, s)
						}
					}
				}
				if _, _, err := h.Config("conductor-a", full, false); !errors.Is(err, ErrUnenforceable) || !strings.Contains(err.Error(), tc.reason[len(tc.reason)-1]) {
					t.Fatalf("Config after a refusal: %v, want ErrUnenforceable naming %q", err, tc.reason[len(tc.reason)-1])
				}
			default:
				if h.Scope != nil || h.ScopeErr != nil {
					t.Fatalf("Scope %+v, ScopeErr %v: want neither", h.Scope, h.ScopeErr)
				}
			}
		})
	}
}

// TestClaimDoesNotMoveIntoLeaf: Claim (doctor) obtains the scope but leaves the server
// leaf and the controllers to PrepareDelegation, which a later Start does without a
// second scope.
func TestClaimDoesNotMoveIntoLeaf(t *testing.T) {
	f := newFake(t).unified(false)
	f.systemdPID1 = true
	f.dir("system.slice/mcp-host.service", 0, map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n"})
	f.cg = "0::/system.slice/mcp-host.service\n"
	h, err := Claim(context.Background(), Options{Prefix: pfx, env: f.env()})
	if err != nil || h.Scope == nil {
		t.Fatalf("Claim: %+v %v", h, err)
	}
	if len(f.writes) != 0 || len(h.pending) != 3 {
		t.Fatalf("Claim wrote %q (pending %v): want nothing written, three controllers pending", f.writes, h.pending)
	}
	if _, err := Start(context.Background(), Options{Prefix: pfx, env: f.env()}); err != nil {
		t.Fatal(err)
	}
	if len(f.scopes) != 1 || len(f.writes) != 4 {
		t.Fatalf("Start after Claim: scopes %+v, writes %q: want no second scope, the leaf move and three controllers", f.scopes, f.writes)
	}
}
