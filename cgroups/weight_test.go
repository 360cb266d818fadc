package cgroups

import (
	"testing"

	cgcfg "github.com/opencontainers/cgroups"
)

// TestWeight: a background boot's cgroup gets the low weight in the file of its host's kind only
// where the cpu controller is usable (not pending delegation), and DefaultWeight writes the
// default into the right file of libcontainer's paths.
func TestWeight(t *testing.T) {
	tests := []struct {
		name       string
		h          *Host
		wantLower  bool
		wantShares uint64
		wantWeight uint64
		file, def  string
	}{
		{"v1 cpu usable", &Host{Mode: ModeHybrid, Controllers: map[string]bool{LimitCPU: true}}, true, 64, 0, "cpu.shares", "1024"},
		{"legacy cpu usable", &Host{Mode: ModeLegacy, Controllers: map[string]bool{LimitCPU: true}}, true, 64, 0, "cpu.shares", "1024"},
		{"v2 cpu usable", &Host{Mode: ModeUnified, Controllers: map[string]bool{LimitCPU: true}}, true, 0, 6, "cpu.weight", "100"},
		{"v2 cpu pending delegation", &Host{Mode: ModeUnified, Controllers: map[string]bool{LimitCPU: true}, pending: []string{LimitMemory, LimitCPU}}, false, 0, 0, "", ""},
		{"no cpu controller", &Host{Mode: ModeHybrid, Controllers: map[string]bool{LimitMemory: true, LimitPids: true}}, false, 0, 0, "", ""},
		{"no cgroups", &Host{Mode: ModeNone, Controllers: map[string]bool{LimitCPU: true}}, false, 0, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cg := &cgcfg.Cgroup{Resources: &cgcfg.Resources{}}
			if got := tc.h.LowerWeight(cg); got != tc.wantLower {
				t.Fatalf("LowerWeight = %v, want %v", got, tc.wantLower)
			}
			if cg.Resources.CpuShares != tc.wantShares || cg.Resources.CpuWeight != tc.wantWeight {
				t.Errorf("cpu shares %d weight %d, want %d and %d", cg.Resources.CpuShares, cg.Resources.CpuWeight, tc.wantShares, tc.wantWeight)
			}
			if !tc.wantLower {
				return
			}
			var wrote []string
			tc.h.env = &sysEnv{write: func(path, data string) error { wrote = append(wrote, path+"="+data); return nil }}
			paths := map[string]string{"cpu": "/cg/cpu/sb", "cpuacct": "/cg/cpu/sb", "memory": "/cg/memory/sb", "": "/cg/unified/sb"}
			if err := tc.h.DefaultWeight(paths); err != nil {
				t.Fatal(err)
			}
			want := "/cg/cpu/sb/" + tc.file + "=" + tc.def
			if tc.h.Mode == ModeUnified {
				want = "/cg/unified/sb/" + tc.file + "=" + tc.def
			}
			if len(wrote) != 1 || wrote[0] != want {
				t.Errorf("DefaultWeight wrote %q, want [%s]", wrote, want)
			}
			if err := tc.h.DefaultWeight(map[string]string{"memory": "/cg/memory/sb"}); err == nil {
				t.Error("DefaultWeight without a cpu path: no error")
			}
		})
	}
}
