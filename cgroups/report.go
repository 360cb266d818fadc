package cgroups

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Report is the cgroup section of `conductor doctor`.
type Report struct {
	Mode     Mode `json:"mode"`
	Rootless bool `json:"rootless"`
	EUID     int  `json:"euid"`
	// Mounts are all cgroup/cgroup2 mounts of this process's mount namespace.
	Mounts []MountReport `json:"mounts"`
	// OwnCgroups is this process's cgroup per v1 controller (from /proc/self/cgroup);
	// the cgroup v2 path is under the key "cgroup2".
	OwnCgroups map[string]string `json:"own_cgroups"`
	// Parents are the directories sandbox cgroups are created in, per controller
	// ("cgroup2" for the v2 tree).
	Parents    map[string]string `json:"parents"`
	Delegated  string            `json:"delegated,omitempty"`
	Delegation string            `json:"delegation"` // human-readable delegation status
	Limits     []LimitStatus     `json:"limits"`
	Notes      []string          `json:"notes,omitempty"`
}

// MountReport describes one cgroup mount.
type MountReport struct {
	Path        string   `json:"path"`
	Type        string   `json:"type"` // cgroup (v1) or cgroup2
	Root        string   `json:"root"`
	Controllers []string `json:"controllers,omitempty"`
}

// LimitStatus says whether and how one limit is enforced.
type LimitStatus struct {
	Limit       string `json:"limit"`               // memory, pids, cpu
	Requested   string `json:"requested,omitempty"` // "" = not configured
	Enforceable bool   `json:"enforceable"`
	How         string `json:"how,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Fix         string `json:"fix,omitempty"`
}

// Report describes the host for `conductor doctor`, for the limits l an admin configured.
func (h *Host) Report(l Limits) Report {
	r := Report{
		Mode: h.Mode, Rootless: h.Rootless, EUID: h.euid,
		OwnCgroups: map[string]string{}, Parents: map[string]string{},
		Delegated: h.Delegated, Notes: slices.Clone(h.Notes),
	}
	for _, m := range h.mounts {
		r.Mounts = append(r.Mounts, MountReport{Path: m.Point, Type: m.FSType, Root: m.Root, Controllers: m.Controllers})
	}
	for c, p := range h.own.V1 {
		r.OwnCgroups[c] = p
	}
	if h.own.HasV2 {
		r.OwnCgroups["cgroup2"] = h.own.V2
	}
	for k, d := range h.parentDir {
		if k == "" {
			k = "cgroup2"
		}
		r.Parents[k] = d
	}
	r.Delegation = h.delegationStatus()

	// Fixes for the configured limits are computed together (one mkdir/chown command on
	// v1); the others individually.
	missing := map[string]LimitError{}
	for _, e := range h.Missing(l) {
		missing[e.Limit] = e
	}
	all := Limits{Memory: 1, Pids: 1, CPUs: 1}
	for _, e := range h.Missing(all) {
		if _, ok := missing[e.Limit]; !ok {
			missing[e.Limit] = e
		}
	}
	for _, n := range limitNames {
		st := LimitStatus{Limit: n, Requested: requestedString(n, l), Enforceable: h.Controllers[n], How: h.how[n]}
		if !st.Enforceable {
			st.How = ""
			if e, ok := missing[n]; ok {
				st.Reason, st.Fix = e.Reason, e.Fix
			}
		}
		r.Limits = append(r.Limits, st)
	}
	return r
}

func requestedString(n string, l Limits) string {
	switch {
	case n == LimitMemory && l.Memory > 0:
		return fmt.Sprintf("%d bytes (%.1f MiB)", l.Memory, float64(l.Memory)/(1<<20))
	case n == LimitPids && l.Pids > 0:
		return strconv.FormatInt(l.Pids, 10)
	case n == LimitCPU && l.CPUs > 0:
		return strconv.FormatFloat(l.CPUs, 'f', -1, 64) + " CPUs"
	}
	return ""
}

func (h *Host) delegationStatus() string {
	var usable []string
	for _, n := range limitNames {
		if h.Controllers[n] {
			usable = append(usable, n)
		}
	}
	u := strings.Join(usable, ", ")
	if u == "" {
		u = "none"
	}
	switch h.Mode {
	case ModeNone:
		return "n/a: no cgroup filesystem"
	case ModeUnified:
		switch {
		case h.Delegated != "" && len(h.pending) > 0:
			return fmt.Sprintf("%s is delegated to conductor; PrepareDelegation pending (will enable +%s); usable: %s", h.Delegated, strings.Join(h.pending, " +"), u)
		case h.Delegated != "":
			return fmt.Sprintf("%s is delegated to conductor; usable: %s", h.Delegated, u)
		case h.Rootless:
			return fmt.Sprintf("none: conductor's cgroup %s is not owned by uid %d; usable: %s", h.v2parent, h.euid, u)
		default:
			return fmt.Sprintf("not delegated: only controllers already enabled in %s/cgroup.subtree_control are used; usable: %s", h.parentDir[""], u)
		}
	default:
		switch {
		case h.deleg != "":
			return fmt.Sprintf("MCP_CONDUCTOR_CGROUP_PARENT=%s; usable: %s", h.deleg, u)
		case h.Rootless:
			return "none: cgroup v1 needs root to pre-create and chown a directory per hierarchy (MCP_CONDUCTOR_CGROUP_PARENT); usable: " + u
		default:
			return "not needed (root): sandbox cgroups go below conductor's own cgroup in each hierarchy; usable: " + u
		}
	}
}
