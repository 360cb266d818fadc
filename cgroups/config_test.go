package cgroups

import (
	"errors"
	"strings"
	"testing"

	devcfg "github.com/opencontainers/cgroups/devices/config"
)

func TestConfigErrorsAndDegraded(t *testing.T) {
	f := hybridFake(t, 1000)
	f.dir("pids/conductor-deleg", 1000, nil)
	h := detectFake(t, f, "/conductor-deleg") // only pids delegated

	tests := []struct {
		name     string
		l        Limits
		degraded bool
		wantErr  error // errors.Is target, nil = success
		errHas   []string
		wantDeg  []string // prefixes of the degraded lines
	}{
		{name: "enforceable only", l: Limits{Pids: 10}},
		{name: "nothing requested", l: Limits{}},
		{name: "missing, strict", l: Limits{Memory: 1 << 30, Pids: 10, CPUs: 1}, wantErr: ErrUnenforceable,
			errHas: []string{"memory limit cannot be enforced", "cpu limit cannot be enforced", "fix: as root: mkdir -p", "allow degraded"}},
		{name: "missing, degraded", l: Limits{Memory: 1 << 30, Pids: 10, CPUs: 1}, degraded: true,
			wantDeg: []string{"memory: not enforced (the delegated cgroup /conductor-deleg does not exist in the memory hierarchy", "cpu: not enforced ("}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cg, deg, err := h.Config("conductor-x1", tc.l, tc.degraded)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				var le LimitError
				if !errors.As(err, &le) || le.Limit != "memory" {
					t.Fatalf("errors.As LimitError: %+v", le)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("error %q lacks %q", err, s)
					}
				}
				if cg != nil {
					t.Fatal("config returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(deg) != len(tc.wantDeg) {
				t.Fatalf("degraded %q, want %q", deg, tc.wantDeg)
			}
			for i := range deg {
				if !strings.HasPrefix(deg[i], tc.wantDeg[i]) || !strings.HasSuffix(deg[i], ")") {
					t.Fatalf("degraded[%d] = %q, want prefix %q", i, deg[i], tc.wantDeg[i])
				}
			}
			if cg.Memory != 0 || cg.CpuQuota != 0 {
				t.Fatalf("unenforceable limit leaked into config: %+v", cg.Resources)
			}
			if tc.l.Pids > 0 && (cg.PidsLimit == nil || *cg.PidsLimit != tc.l.Pids) {
				t.Fatalf("pids %v", cg.PidsLimit)
			}
			if tc.l.Pids == 0 && cg.PidsLimit != nil {
				t.Fatal("pids limit set although none requested")
			}
			if cg.Parent != "/conductor-deleg" || cg.Name != "conductor-x1" || !cg.Rootless {
				t.Fatalf("naming %+v", cg)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	h := detectFake(t, hybridFake(t, 0), "")
	bad := []struct {
		name string
		l    Limits
	}{
		{"other-x", Limits{}},
		{"conductor-", Limits{}},
		{"conductor-a/b", Limits{}},
		{"conductor-server", Limits{}},
		{"conductor-probe-1-2", Limits{}},
		{"conductor-ok", Limits{Memory: -1}},
		{"conductor-ok", Limits{Pids: -1}},
		{"conductor-ok", Limits{CPUs: 0.001}},
		{"conductor-ok", Limits{CPUs: -2}},
	}
	for _, b := range bad {
		if _, _, err := h.Config(b.name, b.l, true); err == nil || errors.Is(err, ErrUnenforceable) {
			t.Errorf("Config(%q, %+v) = %v, want a validation error", b.name, b.l, err)
		}
	}
	cg, _, err := h.Config("conductor-ok", Limits{CPUs: 0.01}, false)
	if err != nil || cg.CpuQuota != 1000 {
		t.Fatalf("cpu 0.01: %v %+v", err, cg)
	}
}

func TestDeviceRules(t *testing.T) {
	h := detectFake(t, hybridFake(t, 0), "")
	cg, _, err := h.Config("conductor-d", Limits{}, false)
	if err != nil {
		t.Fatal(err)
	}
	rules := cg.Devices
	if len(rules) != 7 || rules[0].Allow || rules[0].Type != devcfg.WildcardDevice {
		t.Fatalf("first rule must deny everything: %+v", rules[0])
	}
	got := map[string]bool{}
	for _, r := range rules[1:] {
		if !r.Allow || r.Type != devcfg.CharDevice {
			t.Fatalf("rule %+v", r)
		}
		got[r.CgroupString()] = true
	}
	for _, want := range []string{"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm"} {
		if !got[want] {
			t.Errorf("missing %q in %v", want, got)
		}
	}
}

func TestDefaultPids(t *testing.T) {
	for _, tc := range []struct {
		ncpu int
		want int64
	}{{0, 72}, {1, 72}, {2, 80}, {16, 192}, {64, 576}} {
		if got := DefaultPids(tc.ncpu); got != tc.want {
			t.Errorf("DefaultPids(%d) = %d, want %d", tc.ncpu, got, tc.want)
		}
	}
	// deno idles with 6 threads on 2 CPUs; 4 workers took it to 12: the default must leave
	// several times that.
	if DefaultPids(2) < 4*12 {
		t.Fatal("default pids too tight for deno")
	}
}

func TestReport(t *testing.T) {
	h := detectFake(t, hybridFake(t, 1000), "")
	r := h.Report(Limits{Memory: 128 << 20, Pids: 50})
	if r.Mode != ModeHybrid || !r.Rootless || r.EUID != 1000 || len(r.Limits) != 3 {
		t.Fatalf("report %+v", r)
	}
	if r.OwnCgroups["memory"] != "/process_api/x" || r.OwnCgroups["cgroup2"] != "/" {
		t.Fatalf("own %v", r.OwnCgroups)
	}
	mem := r.Limits[0]
	if mem.Limit != "memory" || mem.Enforceable || mem.Requested != "134217728 bytes (128.0 MiB)" || !strings.Contains(mem.Fix, "chown -R") {
		t.Fatalf("memory status %+v", mem)
	}
	// The configured limits share one fix (memory+pids); cpu, not configured, still gets its own.
	if strings.Contains(mem.Fix, "/cpu/") || !strings.Contains(r.Limits[2].Fix, "/cpu/") || r.Limits[2].Requested != "" {
		t.Fatalf("fixes: %q / %q", mem.Fix, r.Limits[2].Fix)
	}
	if !strings.HasPrefix(r.Delegation, "none: cgroup v1") || len(r.Mounts) != 10 {
		t.Fatalf("delegation %q mounts %d", r.Delegation, len(r.Mounts))
	}

	hr := detectFake(t, hybridFake(t, 0), "")
	rr := hr.Report(Limits{CPUs: 2})
	if !rr.Limits[2].Enforceable || !strings.Contains(rr.Limits[2].How, "cpu.cfs_quota_us") || rr.Limits[2].Requested != "2 CPUs" || rr.Parents["cgroup2"] == "" {
		t.Fatalf("root report %+v", rr)
	}
}
