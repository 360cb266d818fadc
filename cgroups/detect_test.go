package cgroups

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const pfx = "conductor-"

var full = Limits{Memory: 256 << 20, Pids: 80, CPUs: 1.5}

func detectFake(t *testing.T, f *fakeHost, deleg string) *Host {
	t.Helper()
	h, err := Detect(context.Background(), Options{Prefix: pfx, Delegated: deleg, env: f.env()})
	if err != nil {
		t.Fatal(err)
	}
	if l := f.leftovers(); len(l) > 0 {
		t.Fatalf("Detect left probe directories behind: %v", l)
	}
	return h
}

func usable(h *Host) []string {
	var out []string
	for _, n := range limitNames {
		if h.Controllers[n] {
			out = append(out, n)
		}
	}
	return out
}

func missingNames(ms []LimitError) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Limit)
	}
	return out
}

func mustMissing(t *testing.T, h *Host, l Limits, want []string, fixHas ...string) []LimitError {
	t.Helper()
	ms := h.Missing(l)
	if got := missingNames(ms); !reflect.DeepEqual(got, want) {
		t.Fatalf("Missing = %v, want %v (%+v)", got, want, ms)
	}
	for _, m := range ms {
		if m.Reason == "" || m.Fix == "" {
			t.Fatalf("LimitError without reason or fix: %+v", m)
		}
		for _, s := range fixHas {
			if !strings.Contains(m.Fix, s) {
				t.Fatalf("%s fix %q lacks %q", m.Limit, m.Fix, s)
			}
		}
	}
	return ms
}

func TestDetectFakeTrees(t *testing.T) {
	tests := []struct {
		name  string
		build func(t *testing.T) (*fakeHost, string)
		check func(t *testing.T, f *fakeHost, h *Host)
	}{
		{
			name:  "hybrid root (this machine)",
			build: func(t *testing.T) (*fakeHost, string) { return hybridFake(t, 0), "" },
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if h.Mode != ModeHybrid || h.Rootless || h.Delegated != "" {
					t.Fatalf("mode %q rootless %v delegated %q", h.Mode, h.Rootless, h.Delegated)
				}
				if got := usable(h); !reflect.DeepEqual(got, limitNames) {
					t.Fatalf("usable %v", got)
				}
				want := map[string]string{"memory": "/process_api/x", "pids": "/", "cpu": "/", "cpuacct": "/", "cpuset": "/", "devices": "/", "freezer": "/", "blkio": "/", "name=systemd": "/", "": "/"}
				if !reflect.DeepEqual(h.Parent, want) {
					t.Fatalf("Parent %v", h.Parent)
				}
				if !containsAny(h.Notes, "has no controllers (hybrid host)") {
					t.Fatalf("notes %q", h.Notes)
				}
				mustMissing(t, h, full, nil)
				cg, deg, err := h.Config("conductor-a", full, false)
				if err != nil || len(deg) != 0 {
					t.Fatal(err, deg)
				}
				if cg.Path != "conductor-a" || cg.Name != "" || cg.Parent != "" || cg.Rootless {
					t.Fatalf("naming %+v", cg)
				}
				if cg.Memory != 256<<20 || cg.MemorySwap != 256<<20 || cg.MemorySwappiness != nil || *cg.PidsLimit != 80 || cg.CpuQuota != 150000 || cg.CpuPeriod != 100000 {
					t.Fatalf("resources %+v", cg.Resources)
				}
			},
		},
		{
			name: "legacy root, combined cpu,cpuacct, no swap accounting, no CFS bandwidth",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t)
				f.noSwap, f.noCFS = true, true
				f.v1("cpu,cpuacct", "cpu,cpuacct").v1("memory", "memory").v1("pids", "pids").v1("devices", "devices")
				f.dir("memory/user.slice", 0, nil)
				f.cg = "5:devices:/\n4:pids:/\n3:memory:/user.slice\n2:cpu,cpuacct:/\n"
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if h.Mode != ModeLegacy {
					t.Fatalf("mode %q", h.Mode)
				}
				if h.Parent["cpu"] != "/" || h.Parent["cpuacct"] != "/" || h.Parent["memory"] != "/user.slice" || h.Parent[""] != "" {
					t.Fatalf("Parent %v", h.Parent)
				}
				ms := mustMissing(t, h, full, []string{"cpu"}, "CONFIG_CFS_BANDWIDTH")
				if !strings.Contains(ms[0].Reason, "cfs_quota_us") {
					t.Fatalf("reason %q", ms[0].Reason)
				}
				if !containsAny(h.Notes, "swap accounting is off") {
					t.Fatalf("notes %q", h.Notes)
				}
				cg, deg, err := h.Config("conductor-a", full, true)
				if err != nil {
					t.Fatal(err)
				}
				if cg.MemorySwap != 0 || cg.MemorySwappiness == nil || *cg.MemorySwappiness != 0 || cg.CpuQuota != 0 {
					t.Fatalf("resources %+v", cg.Resources)
				}
				if len(deg) != 1 || !strings.HasPrefix(deg[0], "cpu: not enforced (") {
					t.Fatalf("degraded %q", deg)
				}
			},
		},
		{
			name:  "hybrid rootless without delegation",
			build: func(t *testing.T) (*fakeHost, string) { return hybridFake(t, 1000), "" },
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if !h.Rootless || len(usable(h)) != 0 || len(h.Parent) != 0 {
					t.Fatalf("rootless %v usable %v parent %v", h.Rootless, usable(h), h.Parent)
				}
				ms := mustMissing(t, h, Limits{Memory: 1 << 30, Pids: 64}, []string{"memory", "pids"},
					"mkdir -p "+filepath.Join(f.root, "memory", pfx+h.userName)+" "+filepath.Join(f.root, "pids", pfx+h.userName),
					"chown -R "+h.userName, "MCP_CONDUCTOR_CGROUP_PARENT=/"+pfx+h.userName, "systemd.unified_cgroup_hierarchy=1")
				if !strings.Contains(ms[0].Reason, "permission denied") {
					t.Fatalf("reason %q", ms[0].Reason)
				}
				_, _, err := h.Config("conductor-a", full, false)
				if !errors.Is(err, ErrUnenforceable) {
					t.Fatalf("err %v", err)
				}
				cg, deg, err := h.Config("conductor-a", full, true)
				if err != nil {
					t.Fatal(err)
				}
				if cg.Path != "" || cg.Parent != "" || cg.Name != "conductor-a" || !cg.Rootless || cg.Memory != 0 || cg.PidsLimit != nil || cg.CpuQuota != 0 {
					t.Fatalf("cg %+v res %+v", cg, cg.Resources)
				}
				if len(deg) != 3 {
					t.Fatalf("degraded %q", deg)
				}
			},
		},
		{
			name: "hybrid rootless, relative delegation in memory and pids only",
			build: func(t *testing.T) (*fakeHost, string) {
				f := hybridFake(t, 1000)
				f.dir("memory/process_api/x/conductor-deleg", 1000, nil)
				f.dir("pids/conductor-deleg", 1000, nil)
				return f, "conductor-deleg"
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if got := usable(h); !reflect.DeepEqual(got, []string{"memory", "pids"}) {
					t.Fatalf("usable %v", got)
				}
				if h.Delegated != "conductor-deleg" {
					t.Fatalf("Delegated %q", h.Delegated)
				}
				want := map[string]string{"memory": "/process_api/x/conductor-deleg", "pids": "/conductor-deleg"}
				if !reflect.DeepEqual(h.Parent, want) {
					t.Fatalf("Parent %v", h.Parent)
				}
				ms := mustMissing(t, h, full, []string{"cpu"}, "mkdir -p "+filepath.Join(f.root, "cpu", "conductor-deleg"), "already set")
				if !strings.Contains(ms[0].Reason, "does not exist") {
					t.Fatalf("reason %q", ms[0].Reason)
				}
				cg, deg, err := h.Config("conductor-a", full, true)
				if err != nil {
					t.Fatal(err)
				}
				if cg.Path != "" || cg.Parent != "conductor-deleg" || cg.Name != "conductor-a" || !cg.Rootless {
					t.Fatalf("naming %+v", cg)
				}
				if cg.Memory != 256<<20 || *cg.PidsLimit != 80 || cg.CpuQuota != 0 || len(deg) != 1 {
					t.Fatalf("resources %+v degraded %q", cg.Resources, deg)
				}
			},
		},
		{
			name: "legacy root with absolute delegation",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t)
				f.v1("memory", "memory").v1("pids", "pids").v1("cpu", "cpu").v1("devices", "devices")
				f.dir("memory/srv", 0, nil)
				f.dir("pids/srv", 0, nil)
				f.dir("cpu/srv", 0, nil)
				f.cg = "4:memory:/a\n3:pids:/a\n2:cpu:/a\n1:devices:/a\n"
				return f, "/srv"
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if got := usable(h); !reflect.DeepEqual(got, limitNames) {
					t.Fatalf("usable %v", got)
				}
				if h.Parent["memory"] != "/srv" || h.Parent["devices"] != "/srv" {
					t.Fatalf("Parent %v", h.Parent)
				}
				if !containsAny(h.Notes, "never remove) the delegated parent in hierarchies where it is missing: "+filepath.Join(f.root, "devices/srv")) {
					t.Fatalf("notes %q", h.Notes)
				}
				cg, _, err := h.Config("conductor-a", full, false)
				if err != nil || cg.Path != "/srv/conductor-a" || cg.Rootless {
					t.Fatalf("cg %+v err %v", cg, err)
				}
			},
		},
		{
			name: "unified root in a cgroup namespace (own cgroup is the root)",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t).unified(false)
				f.dir("", 0, map[string]string{"cgroup.controllers": "cpuset cpu io memory pids", "cgroup.subtree_control": "cpu memory pids", "cgroup.procs": "1\n4321\n"})
				f.cg = "0::/\n"
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if h.Mode != ModeUnified || !reflect.DeepEqual(usable(h), limitNames) || h.Parent[""] != "/" {
					t.Fatalf("mode %q usable %v parent %v", h.Mode, usable(h), h.Parent)
				}
				cg, _, err := h.Config("conductor-a", full, false)
				if err != nil || cg.Path != "/conductor-a" || cg.MemorySwap != cg.Memory {
					t.Fatalf("cg %+v err %v", cg, err)
				}
				if err := h.PrepareDelegation(context.Background()); err != nil || len(f.writes) != 0 {
					t.Fatalf("PrepareDelegation must be a no-op: %v %v", err, f.writes)
				}
			},
		},
		{
			name: "unified root service without Delegate=yes",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t).unified(false)
				f.dir("system.slice/conductor.service", 0, map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n"})
				f.cg = "0::/system.slice/conductor.service\n"
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if len(usable(h)) != 0 || h.Delegated != "" {
					t.Fatalf("usable %v delegated %q", usable(h), h.Delegated)
				}
				mustMissing(t, h, full, limitNames, "Delegate=yes", "PrepareDelegation")
				if err := h.PrepareDelegation(context.Background()); err != nil || len(f.writes) != 0 {
					t.Fatalf("PrepareDelegation must not touch an undelegated cgroup: %v %v", err, f.writes)
				}
			},
		},
		{
			name: "unified root service with Delegate=yes (xattr): PrepareDelegation",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t).unified(false)
				d := f.dir("system.slice/conductor.service", 0, map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n"})
				f.xattr[d] = true
				f.cg = "0::/system.slice/conductor.service\n"
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if !reflect.DeepEqual(usable(h), limitNames) || h.Delegated != "/system.slice/conductor.service" {
					t.Fatalf("usable %v delegated %q", usable(h), h.Delegated)
				}
				if _, _, err := h.Config("conductor-a", full, false); err == nil || !strings.Contains(err.Error(), "PrepareDelegation") {
					t.Fatalf("Config before PrepareDelegation: %v", err)
				}
				if err := h.PrepareDelegation(context.Background()); err != nil {
					t.Fatal(err)
				}
				want := []string{
					"/system.slice/conductor.service/conductor-server/cgroup.procs=4321",
					"/system.slice/conductor.service/cgroup.subtree_control=+memory",
					"/system.slice/conductor.service/cgroup.subtree_control=+pids",
					"/system.slice/conductor.service/cgroup.subtree_control=+cpu",
				}
				if !reflect.DeepEqual(f.writes, want) {
					t.Fatalf("writes %q", f.writes)
				}
				cg, _, err := h.Config("conductor-a", full, false)
				if err != nil || cg.Path != "/system.slice/conductor.service/conductor-a" || cg.Rootless {
					t.Fatalf("cg %+v err %v", cg, err)
				}
				// A later Detect (we now live in the server leaf) finds the same parent, enabled.
				f.cg = "0::/system.slice/conductor.service/conductor-server\n"
				h2 := detectFake(t, f, "")
				if h2.Parent[""] != "/system.slice/conductor.service" || !reflect.DeepEqual(usable(h2), limitNames) || len(h2.pending) != 0 {
					t.Fatalf("second Detect: parent %v usable %v pending %v", h2.Parent, usable(h2), h2.pending)
				}
			},
		},
		{
			name: "unified rootless in an owned systemd-run scope without cpu delegation",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t).unified(false)
				f.euid = 1000
				f.dir("user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope", 1000,
					map[string]string{"cgroup.controllers": "memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n"})
				f.cg = pcUnifiedRootless
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				scope := "/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope"
				if !h.Rootless || h.Delegated != scope || !reflect.DeepEqual(usable(h), []string{"memory", "pids"}) {
					t.Fatalf("rootless %v delegated %q usable %v", h.Rootless, h.Delegated, usable(h))
				}
				mustMissing(t, h, full, []string{"cpu"}, "/etc/systemd/system/user@.service.d/delegate.conf", "Delegate=cpu cpuset io memory pids")
				if err := h.PrepareDelegation(context.Background()); err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(f.writes, scope+"/conductor-server/cgroup.procs=4321") || !slices.Contains(f.writes, scope+"/cgroup.subtree_control=+pids") || containsAny(f.writes, "+cpu") {
					t.Fatalf("writes %q", f.writes)
				}
				cg, deg, err := h.Config("conductor-a", full, true)
				if err != nil || cg.Path != scope+"/conductor-a" || !cg.Rootless || cg.Memory == 0 || cg.CpuQuota != 0 || len(deg) != 1 {
					t.Fatalf("cg %+v err %v deg %q", cg, err, deg)
				}
			},
		},
		{
			name: "unified rootless in a root-owned session scope",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t).unified(false)
				f.euid = 1000
				f.dir("user.slice/user-1000.slice/session-3.scope", 0, map[string]string{"cgroup.controllers": "memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n"})
				f.cg = "0::/user.slice/user-1000.slice/session-3.scope\n"
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if h.Delegated != "" || len(usable(h)) != 0 {
					t.Fatalf("delegated %q usable %v", h.Delegated, usable(h))
				}
				ms := mustMissing(t, h, Limits{Memory: 1 << 20, Pids: 5}, []string{"memory", "pids"}, "systemd-run --user --scope -p Delegate=yes", "loginctl enable-linger")
				if !strings.Contains(ms[0].Reason, "not been delegated") {
					t.Fatalf("reason %q", ms[0].Reason)
				}
				if err := h.PrepareDelegation(context.Background()); err != nil || len(f.writes) != 0 {
					t.Fatalf("PrepareDelegation: %v %v", err, f.writes)
				}
				cg, _, err := h.Config("conductor-a", full, true)
				if err != nil || cg.Path != "" || cg.Name != "conductor-a" || !cg.Rootless {
					t.Fatalf("cg %+v err %v", cg, err)
				}
			},
		},
		{
			name: "unified rootless, owned scope shared with other processes",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t).unified(false)
				f.euid = 1000
				f.dir("user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope", 1000,
					map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n77\n"})
				f.cg = pcUnifiedRootless
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				ms := mustMissing(t, h, full, limitNames, "alone")
				if !strings.Contains(ms[0].Reason, "[77]") {
					t.Fatalf("reason %q", ms[0].Reason)
				}
				if err := h.PrepareDelegation(context.Background()); err != nil || len(f.writes) != 0 {
					t.Fatalf("PrepareDelegation must not act: %v %v", err, f.writes)
				}
			},
		},
		{
			name: "unified rootless, delegated parent that does not contain us",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t).unified(false)
				f.euid = 1000
				f.dir("conductor-alice", 1000, map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "cpu memory pids", "cgroup.procs": ""})
				f.dir("user.slice/user-1000.slice/session-3.scope", 0, map[string]string{"cgroup.procs": "4321\n"})
				f.cg = "0::/user.slice/user-1000.slice/session-3.scope\n"
				return f, f.root + "/conductor-alice" // the /sys/fs/cgroup prefix is accepted
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if h.Parent[""] != "/conductor-alice" {
					t.Fatalf("Parent %v", h.Parent)
				}
				ms := mustMissing(t, h, full, limitNames, "cgroup.procs; exec conductor")
				if !strings.Contains(ms[0].Reason, "common ancestor") {
					t.Fatalf("reason %q", ms[0].Reason)
				}
			},
		},
		{
			name: "no cgroup filesystem",
			build: func(t *testing.T) (*fakeHost, string) {
				f := newFake(t)
				f.cg = "0::/\n"
				return f, ""
			},
			check: func(t *testing.T, f *fakeHost, h *Host) {
				if h.Mode != ModeNone {
					t.Fatalf("mode %q", h.Mode)
				}
				mustMissing(t, h, full, limitNames, "mount -t cgroup2")
				_, _, err := h.Config("conductor-a", Limits{}, true)
				if !errors.Is(err, ErrUnenforceable) {
					t.Fatalf("err %v", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, deleg := tc.build(t)
			h := detectFake(t, f, deleg)
			tc.check(t, f, h)
			if f.leftovers() != nil {
				t.Fatalf("probe leftovers %v", f.leftovers())
			}
		})
	}
}

func TestDetectRejectsBadOptions(t *testing.T) {
	f := hybridFake(t, 0)
	for _, o := range []Options{{Prefix: ""}, {Prefix: "a/b"}, {Prefix: "conductor-", Delegated: "/"}, {Prefix: "conductor-", Delegated: "../x"}} {
		o.env = f.env()
		if _, err := Detect(context.Background(), o); err == nil {
			t.Errorf("Detect(%+v) accepted", o)
		}
	}
}

// TestStartPreparesDelegation: Start, the setup of the server and of the tests that start
// sandboxes, leaves a Delegate=yes cgroup v2 service ready for sandboxes (Detect alone does
// not: Config then asks for PrepareDelegation), and a second Start in the moved process does
// nothing more.
func TestStartPreparesDelegation(t *testing.T) {
	f := newFake(t).unified(false)
	d := f.dir("system.slice/conductor.service", 0, map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "", "cgroup.procs": "4321\n"})
	f.xattr[d] = true
	f.cg = "0::/system.slice/conductor.service\n"
	h, err := Start(context.Background(), Options{Prefix: pfx, env: f.env()})
	if err != nil {
		t.Fatal(err)
	}
	if cg, _, err := h.Config("conductor-a", full, false); err != nil || cg.Path != "/system.slice/conductor.service/conductor-a" {
		t.Fatalf("Config after Start: %+v %v", cg, err)
	}
	if len(f.writes) != 4 || f.writes[0] != "/system.slice/conductor.service/conductor-server/cgroup.procs=4321" {
		t.Fatalf("writes %q: want the move into the server leaf and three controllers enabled", f.writes)
	}
	f.cg = "0::/system.slice/conductor.service/conductor-server\n"
	if _, err := Start(context.Background(), Options{Prefix: pfx, env: f.env()}); err != nil || len(f.writes) != 4 {
		t.Fatalf("second Start: %v, writes %q", err, f.writes)
	}
}
