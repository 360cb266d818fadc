package cgroups

import (
	"fmt"
	"path/filepath"
	"strconv"

	cgcfg "github.com/opencontainers/cgroups"
)

// CPU weights of a sandbox's cgroup relative to its siblings (the other sandboxes and, where the
// sandboxes sit under conductor's own cgroup, the server's threads).
//
// A pool's refill boots in the background at the low weight, so it takes the CPU that running code
// leaves idle and little of the rest: on v1 cpu.shares 64 against the default 1024, on v2 cpu.weight
// 6 against the default 100 — the same 1/16 on both kinds of host. Not the minimum (2 shares,
// weight 1): a refill must still finish in a few seconds on a host whose CPUs something else keeps
// busy, and a request that waits for it raises it to the default (sandbox.Background).
const (
	lowShares     = 64
	defaultShares = 1024
	lowWeightV2   = defaultWeight * lowShares / defaultShares // 6
	defaultWeight = 100
)

// CanLowerWeight reports whether sandboxes here can be given a CPU weight: the cpu controller is
// usable in their cgroups (so libcontainer can create one with a weight and its file can be
// written later).
func (h *Host) CanLowerWeight() bool {
	if h.Mode == ModeNone || !h.Controllers[LimitCPU] {
		return false
	}
	for _, c := range h.pending {
		if c == LimitCPU {
			return false
		}
	}
	return true
}

// LowerWeight gives the cgroup cg (from Config) the low CPU weight a background boot runs at.
// It reports false, leaving cg as it was, when CanLowerWeight does not hold.
func (h *Host) LowerWeight(cg *cgcfg.Cgroup) bool {
	if cg == nil || cg.Resources == nil || !h.CanLowerWeight() {
		return false
	}
	if h.Mode == ModeUnified {
		cg.Resources.CpuWeight = lowWeightV2
	} else {
		cg.Resources.CpuShares = lowShares
	}
	return true
}

// DefaultWeight writes the default CPU weight into a sandbox's cgroup, given libcontainer's
// CgroupPaths of it (controller → directory; "" is cgroup v2's).
func (h *Host) DefaultWeight(paths map[string]string) error {
	dir, file, value := paths["cpu"], "cpu.shares", strconv.Itoa(defaultShares)
	if h.Mode == ModeUnified {
		dir, file, value = paths[""], "cpu.weight", strconv.Itoa(defaultWeight)
	}
	if dir == "" {
		return fmt.Errorf("cgroups: the sandbox has no cpu cgroup (paths %v) to give the default weight", paths)
	}
	if err := h.env.write(filepath.Join(dir, file), value); err != nil {
		return fmt.Errorf("cgroups: restore the default CPU weight: %w", err)
	}
	return nil
}
