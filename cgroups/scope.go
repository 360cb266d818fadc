package cgroups

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	cgcfg "github.com/opencontainers/cgroups"
	cgsystemd "github.com/opencontainers/cgroups/systemd"
)

// Scope is the transient systemd scope Claim obtained for this process.
type Scope struct {
	Unit string `json:"unit"` // conductor-<pid>.scope
	Bus  string `json:"bus"`  // "user" (rootless: the user's systemd manager) or "system"
	Path string `json:"path"` // its cgroup, relative to the cgroup v2 mount
}

// Named reasons Claim could not obtain a scope (wrapped in the limit errors' reasons).
var (
	// ErrNoSystemd: systemd is not PID 1 (no /run/systemd/system).
	ErrNoSystemd = errors.New("systemd is not the init system (no /run/systemd/system)")
	// ErrNoUserBus: rootless and neither DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR/bus.
	ErrNoUserBus = errors.New("no user bus: DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus")
)

// scopeRequest is what Claim asks systemd for.
type scopeRequest struct {
	Unit     string // conductor-<pid>.scope
	Rootless bool   // the user bus (the user's systemd manager), else the system bus
	Pid      int
}

// startScopeSystemd asks systemd, through libcontainer's systemd cgroup manager, for a
// transient scope with Delegate=yes holding r.Pid, and returns the scope's cgroup
// (absolute path under the cgroup v2 mount).
func startScopeSystemd(_ context.Context, r scopeRequest) (string, error) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(r.Unit, scopePrefix+"-"), ".scope")
	if !ok {
		return "", fmt.Errorf("scope unit %q: want %s-<name>.scope", r.Unit, scopePrefix)
	}
	cg := &cgcfg.Cgroup{
		Name:        name,
		ScopePrefix: scopePrefix,
		Rootless:    r.Rootless,
		Resources:   &cgcfg.Resources{},
		SystemdProps: []sddbus.Property{
			sddbus.PropDescription("conductor MCP server (pid " + strconv.Itoa(r.Pid) + "): delegated cgroup for its sandboxes"),
			{Name: "CollectMode", Value: dbus.MakeVariant("inactive-or-failed")},
		},
	}
	m, err := cgsystemd.NewUnifiedManager(cg, "")
	if err != nil {
		return "", err
	}
	if err := m.Apply(r.Pid); err != nil {
		return "", err
	}
	return m.Path(""), nil
}

// scopePrefix starts the unit name of conductor's transient scope: conductor-<pid>.scope.
const scopePrefix = "conductor"

func scopeUnit(pid int) string { return fmt.Sprintf("%s-%d.scope", scopePrefix, pid) }

// userBusAddress is the user bus libcontainer dials (DBUS_SESSION_BUS_ADDRESS, else
// $XDG_RUNTIME_DIR/bus when it exists), or why there is none.
func userBusAddress(getenv func(string) string) (string, error) {
	if a := getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	xdg := getenv("XDG_RUNTIME_DIR")
	if xdg == "" {
		return "", fmt.Errorf("%w (XDG_RUNTIME_DIR is unset too)", ErrNoUserBus)
	}
	if _, err := os.Stat(filepath.Join(xdg, "bus")); err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNoUserBus, err)
	}
	return "unix:path=" + filepath.Join(xdg, "bus"), nil
}

// Claim is Detect plus, on cgroup v2, obtaining a delegated cgroup when this process has
// none: when its own cgroup is not delegated to it (a desktop app's app-*.scope, a login
// session, an undelegated service, or a delegated cgroup shared with other processes),
// no Options.Delegated is set and systemd is PID 1, it asks systemd for a transient
// scope conductor-<pid>.scope with Delegate=yes holding this process (the user's manager
// through the user bus when rootless, the system manager when root), moves there and
// detects again. The scope is collected by systemd when conductor and its sandboxes have
// exited. When that is impossible the limit errors say why and what to do once.
//
// Claim never moves the process into a server leaf (PrepareDelegation does), so doctor
// may call it: it reports what serve will do.
func Claim(ctx context.Context, o Options) (*Host, error) {
	if o.env == nil {
		o.env = defaultEnv()
	}
	h, err := Detect(ctx, o)
	if err != nil || h.Mode != ModeUnified || h.deleg != "" || len(h.undelegated) == 0 {
		return h, err
	}
	env := o.env
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	bus := "system"
	if h.Rootless {
		bus = "user"
	}
	r := scopeRequest{Unit: scopeUnit(env.pid), Rootless: h.Rootless, Pid: env.pid}
	var path string
	switch {
	case !env.systemd():
		err = ErrNoSystemd
	case h.Rootless:
		var addr string
		if addr, err = userBusAddress(env.getenv); err == nil {
			bus = "user bus " + addr
			if path, err = env.startScope(ctx, r); err != nil {
				err = fmt.Errorf("the user's systemd manager (user bus %s) did not start a transient scope with Delegate=yes: %w", addr, err)
			}
		}
	default:
		if path, err = env.startScope(ctx, r); err != nil {
			err = fmt.Errorf("systemd (system bus) did not start a transient scope with Delegate=yes: %w", err)
		}
	}
	if err != nil {
		log.Warn("cgroups: no delegated cgroup obtained", "unit", r.Unit, "bus", bus, "err", err)
		h.refuseScope(err)
		return h, nil
	}
	rel := cgRel(env.root, path)
	log.Info("cgroups: moved into a transient systemd scope with Delegate=yes", "unit", r.Unit, "bus", bus, "path", rel)
	h2, err := Detect(ctx, o)
	if err != nil {
		return nil, err
	}
	h2.Scope = &Scope{Unit: r.Unit, Bus: strings.Fields(bus)[0], Path: rel}
	return h2, nil
}

// refuseScope rewrites the reasons of the limits that failed for want of delegation:
// conductor tried to obtain a delegated scope and could not (why).
func (h *Host) refuseScope(why error) {
	h.ScopeErr = why
	fix := fmt.Sprintf("once, as root: loginctl enable-linger %s (the user's systemd manager and its bus then run without a login) and install dbus-user-session (Debian/Ubuntu; log in again afterwards); start conductor from a session that has XDG_RUNTIME_DIR=/run/user/%d set; or wrap it yourself: systemd-run --user --scope -p Delegate=yes conductor …", h.userName, h.euid)
	switch {
	case errors.Is(why, ErrNoSystemd) && h.Rootless:
		fix = fmt.Sprintf("have root create an empty cgroup owned by %s, with memory and pids enabled in its parent's cgroup.subtree_control, start conductor inside it and set MCP_CONDUCTOR_CGROUP_PARENT=<that cgroup>", h.userName)
	case errors.Is(why, ErrNoSystemd):
		fix = "set MCP_CONDUCTOR_CGROUP_PARENT to an empty cgroup dedicated to conductor"
	case !h.Rootless:
		fix = "run conductor as a systemd service with Delegate=yes (systemd-run -p Delegate=yes --unit=conductor conductor …), or set MCP_CONDUCTOR_CGROUP_PARENT to an empty cgroup dedicated to conductor"
	}
	fix += "; MCP_CONDUCTOR_ALLOW_DEGRADED=1 runs without limits (not recommended)"
	for l := range h.undelegated {
		e := h.why[l]
		e.Reason = fmt.Sprintf("%s; conductor could not obtain a delegated cgroup itself: %v", e.Reason, why)
		e.Fix = fix
		h.why[l] = e
	}
}
