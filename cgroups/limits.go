package cgroups

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	cgcfg "github.com/opencontainers/cgroups"
	// Registers the v1 device-rule writer (cgcfg.DevicesSetV1) and the v2 eBPF device
	// filter: without it every config carrying device rules fails with
	// ErrDevicesUnsupported. Config always emits device rules, so link it here.
	_ "github.com/opencontainers/cgroups/devices"
	devcfg "github.com/opencontainers/cgroups/devices/config"
)

// Limits are the per-sandbox resource limits an admin asks for.
type Limits struct {
	Memory int64   // bytes, 0 = none
	Pids   int64   // max tasks (processes + threads), 0 = none
	CPUs   float64 // CPU quota in cores (e.g. 1.5), 0 = none
}

// CPUPeriod is the CFS period (µs) Config uses; the quota is CPUs*CPUPeriod.
const CPUPeriod = 100000

// LimitError says why one limit cannot be enforced here and how an admin can fix it.
type LimitError struct {
	Limit  string `json:"limit"` // "memory", "pids" or "cpu"
	Reason string `json:"reason"`
	Fix    string `json:"fix"`
}

func (e LimitError) Error() string {
	return fmt.Sprintf("%s limit cannot be enforced: %s; fix: %s", e.Limit, e.Reason, e.Fix)
}

// ErrUnenforceable is returned (wrapped, together with the LimitErrors) by Config when
// requested limits cannot be enforced and degraded mode was not allowed.
var ErrUnenforceable = errors.New("cgroups: requested limits cannot be enforced on this host")

// DefaultPids is the default pids.max for one sandbox on a host with ncpu CPUs.
//
// pids.max counts tasks, i.e. threads, not processes. Measured with deno 2.9 on 2 CPUs:
// an idle `deno run` has 6 threads (main + tokio workers + V8 platform workers, the
// latter two scale with the CPU count); every Web Worker adds ~1.5-2 (its isolate thread
// plus V8/tokio helpers); bursts of concurrent file operations grow tokio's blocking pool
// (64 parallel reads: 24 threads). 64 fixed headroom covers the blocking-pool burst plus a
// handful of workers and a subprocess or two; 8 per CPU covers the per-CPU runtime
// threads with room for workers that scale with navigator.hardwareConcurrency. The limit
// exists to stop fork/thread bombs, not to ration threads, so it errs on the generous side.
func DefaultPids(ncpu int) int64 {
	if ncpu < 1 {
		ncpu = 1
	}
	return 64 + 8*int64(ncpu)
}

func (l Limits) validate() error {
	switch {
	case l.Memory < 0:
		return fmt.Errorf("cgroups: memory limit %d is negative", l.Memory)
	case l.Pids < 0:
		return fmt.Errorf("cgroups: pids limit %d is negative", l.Pids)
	case l.CPUs < 0 || math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0):
		return fmt.Errorf("cgroups: CPU limit %v is not a non-negative number", l.CPUs)
	case l.CPUs > 0 && cpuQuota(l.CPUs) < 1000:
		return fmt.Errorf("cgroups: CPU limit %v is below the kernel minimum of 0.01 CPUs (1 ms per 100 ms)", l.CPUs)
	}
	return nil
}

func cpuQuota(cpus float64) int64 { return int64(math.Round(cpus * CPUPeriod)) }

// requested lists the limits l asks for, in a fixed order.
func (l Limits) requested() []string {
	var out []string
	if l.Memory > 0 {
		out = append(out, LimitMemory)
	}
	if l.Pids > 0 {
		out = append(out, LimitPids)
	}
	if l.CPUs > 0 {
		out = append(out, LimitCPU)
	}
	return out
}

// Missing lists each limit in l that cannot be enforced here, with an actionable fix.
func (h *Host) Missing(l Limits) []LimitError {
	var out []LimitError
	var v1fix []string
	for _, n := range l.requested() {
		if h.Controllers[n] {
			continue
		}
		e, ok := h.why[n]
		if !ok {
			e = LimitError{Limit: n, Reason: "the " + n + " controller was not detected as usable", Fix: "run `conductor doctor` for details"}
		}
		if e.Fix == "" {
			v1fix = append(v1fix, n)
		}
		out = append(out, e)
	}
	if len(v1fix) > 0 {
		fix := h.v1DelegationFix(v1fix)
		for i := range out {
			if out[i].Fix == "" {
				out[i].Fix = fix
			}
		}
	}
	return out
}

// v1DelegationFix is the admin fix for an unprivileged conductor on cgroup v1: root
// pre-creates one directory per hierarchy and chowns it to the user.
func (h *Host) v1DelegationFix(ctrls []string) string {
	var dirs []string
	for _, c := range ctrls {
		switch {
		case h.deleg != "" && h.ctrlDir[c] != "":
			dirs = append(dirs, h.ctrlDir[c])
		case h.ctrlMount[c] != "":
			dirs = append(dirs, filepath.Join(h.ctrlMount[c], h.prefix+h.userName))
		}
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	d := strings.Join(dirs, " ")
	cmd := fmt.Sprintf("mkdir -p %s && chown -R %s %s", d, h.userName, d)
	if h.deleg != "" {
		return fmt.Sprintf("as root: %s (MCP_CONDUCTOR_CGROUP_PARENT=%s is already set; cgroup v1 directories do not survive a reboot, so re-create them at boot, e.g. from a systemd oneshot unit); or run conductor as root",
			cmd, h.deleg)
	}
	return fmt.Sprintf("run conductor as root; or, as root, once per boot (cgroup v1 directories do not survive a reboot, e.g. from a systemd oneshot unit): %s; then set MCP_CONDUCTOR_CGROUP_PARENT=/%s%s; or move the host to cgroup v2 (Debian/Ubuntu: add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, reboot) and start conductor with systemd-run --user --scope -p Delegate=yes conductor …",
		cmd, h.prefix, h.userName)
}

func (h *Host) validName(name string) error {
	switch {
	case !strings.HasPrefix(name, h.prefix) || len(name) == len(h.prefix):
		return fmt.Errorf("cgroups: sandbox cgroup name %q must start with prefix %q", name, h.prefix)
	case strings.ContainsAny(name, "/\x00") || name == "." || name == "..":
		return fmt.Errorf("cgroups: sandbox cgroup name %q must be a single path element", name)
	case name == h.prefix+serverLeaf || strings.HasPrefix(name, h.prefix+probeInfix):
		return fmt.Errorf("cgroups: sandbox cgroup name %q is reserved", name)
	}
	return nil
}

// Config returns the libcontainer cgroup config for the sandbox cgroup name (which must
// start with the Prefix). With allowDegraded=false, any requested limit that cannot be
// enforced makes it fail with an error wrapping ErrUnenforceable and the LimitErrors;
// with allowDegraded=true it returns the config without those limits plus one
// "<limit>: not enforced (<reason>)" line per dropped limit.
//
// The cgroup is named as follows (see pathForm):
//   - root, v1/hybrid, no delegation: Path = name, which libcontainer resolves below our own
//     cgroup in every hierarchy (fs.subsysPath -> cgroups.GetOwnCgroupPath).
//   - root with a delegated parent: Path = <delegated>/name.
//   - rootless v1/hybrid: Parent = <delegated>, Name = name, Path = "". With Path empty,
//     libcontainer's fs manager skips hierarchies the user cannot write (devices, cpuset,
//     freezer, name=systemd, ...) instead of failing, while Set still fails if a limit's own
//     hierarchy was skipped, so it fails closed.
//   - cgroup v2: Path = /<parent>/name, absolute, because libcontainer resolves a relative
//     v2 path against the parent of our own cgroup, not our own cgroup.
func (h *Host) Config(name string, l Limits, allowDegraded bool) (*cgcfg.Cgroup, []string, error) {
	if err := h.validName(name); err != nil {
		return nil, nil, err
	}
	if err := l.validate(); err != nil {
		return nil, nil, err
	}
	if h.Mode == ModeNone {
		return nil, nil, fmt.Errorf("%w: no cgroup filesystem is mounted at %s, so libcontainer cannot create a sandbox at all", ErrUnenforceable, h.env.root)
	}
	missing := h.Missing(l)
	if len(missing) > 0 && !allowDegraded {
		errs := make([]error, len(missing))
		for i := range missing {
			errs[i] = missing[i]
		}
		return nil, nil, fmt.Errorf("%w (allow degraded mode to run without them):\n%w", ErrUnenforceable, errors.Join(errs...))
	}
	var degraded []string
	for _, m := range missing {
		degraded = append(degraded, fmt.Sprintf("%s: not enforced (%s)", m.Limit, m.Reason))
	}
	use := func(n string) bool { return h.Controllers[n] && slices.Contains(l.requested(), n) }
	for _, n := range h.pending {
		if use(n) {
			return nil, nil, fmt.Errorf("cgroups: %s must be enabled in %s/cgroup.subtree_control first: call PrepareDelegation once at startup, before creating sandboxes", n, h.parentDir[""])
		}
	}

	r := &cgcfg.Resources{Devices: defaultDeviceRules()}
	if use(LimitMemory) {
		r.Memory = l.Memory
		if h.Mode == ModeUnified || h.swapAcct {
			r.MemorySwap = l.Memory // v1: memsw == mem; v2: converted to memory.swap.max=0
		} else {
			zero := uint64(0)
			r.MemorySwappiness = &zero
		}
	}
	if use(LimitPids) {
		p := l.Pids
		r.PidsLimit = &p
	}
	if use(LimitCPU) {
		r.CpuPeriod = CPUPeriod
		r.CpuQuota = cpuQuota(l.CPUs)
	}
	cg := &cgcfg.Cgroup{Resources: r, Rootless: h.Rootless}
	switch h.form {
	case formRelPath:
		cg.Path = name
	case formDelegPath:
		cg.Path = filepath.Join(h.deleg, name)
	case formParentName:
		cg.Parent, cg.Name = h.deleg, name
	case formNameOnly:
		cg.Name = name
	case formAbsV2:
		cg.Path = filepath.Join(h.v2parent, name)
	}
	return cg, degraded, nil
}

// defaultDeviceRules denies every device and then allows the character devices a deno
// sandbox needs: /dev/null, zero, full, random, urandom and tty.
func defaultDeviceRules() []*devcfg.Rule {
	rules := []*devcfg.Rule{{Type: devcfg.WildcardDevice, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: "rwm", Allow: false}}
	for _, mm := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}} {
		rules = append(rules, &devcfg.Rule{Type: devcfg.CharDevice, Major: mm[0], Minor: mm[1], Permissions: "rwm", Allow: true})
	}
	return rules
}
