package cgroups

import (
	"reflect"
	"testing"
)

const (
	// Debian 12 / this build machine: v1 hierarchies + empty cgroup2 at unified.
	miHybrid = `22 1 0:21 / / rw,relatime - overlay overlay rw
23 22 0:22 / /sys rw,nosuid - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`
	pcHybrid = `9:name=systemd:/
8:pids:/
5:devices:/
4:memory:/process_api/2a10
2:cpuacct:/
1:cpu:/
0::/
`
	// Ubuntu 20.04 style legacy: combined cpu,cpuacct mount, no cgroup2.
	miLegacy = `25 24 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
27 25 0:25 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
29 25 0:27 / /sys/fs/cgroup/devices rw,nosuid - cgroup cgroup rw,devices
`
	pcLegacy = `5:devices:/user.slice
4:pids:/user.slice/user-1000.slice/session-2.scope
3:memory:/user.slice/user-1000.slice/session-2.scope
2:cpu,cpuacct:/user.slice
`
	// Unified host, rootless user in a delegated systemd-run scope.
	miUnified = `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	pcUnifiedRootless = `0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope
`
	// Container with a cgroup namespace: mount root is a sub-tree.
	miContainer = `500 400 0:26 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw
501 500 0:99 / /sys/fs/cgroup/with\040space rw - tmpfs tmpfs rw
`
)

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		v1     map[string]string
		v2     string
		hasV2  bool
		errors bool
	}{
		{"hybrid", pcHybrid, map[string]string{"name=systemd": "/", "pids": "/", "devices": "/", "memory": "/process_api/2a10", "cpuacct": "/", "cpu": "/"}, "/", true, false},
		{"legacy combined", pcLegacy, map[string]string{"devices": "/user.slice", "pids": "/user.slice/user-1000.slice/session-2.scope", "memory": "/user.slice/user-1000.slice/session-2.scope", "cpu": "/user.slice", "cpuacct": "/user.slice"}, "", false, false},
		{"unified rootless", pcUnifiedRootless, map[string]string{}, "/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope", true, false},
		{"path with colon", "0::/a:b\n", map[string]string{}, "/a:b", true, false},
		{"malformed", "garbage\n", nil, "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := parseProcCgroup([]byte(tc.in))
			if tc.errors {
				if err == nil {
					t.Fatal("expected an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pc.V1, tc.v1) || pc.V2 != tc.v2 || pc.HasV2 != tc.hasV2 {
				t.Fatalf("got %+v, want v1=%v v2=%q hasV2=%v", pc, tc.v1, tc.v2, tc.hasV2)
			}
		})
	}
}

func TestParseMountinfoAndMode(t *testing.T) {
	tests := []struct {
		name    string
		mi, pc  string
		rootV2  bool
		mode    Mode
		mounts  []mount
		noteHas string
	}{
		{
			name: "hybrid", mi: miHybrid, pc: pcHybrid, mode: ModeHybrid,
			mounts: []mount{
				{"/sys/fs/cgroup/cpu", "/", "cgroup", []string{"cpu"}},
				{"/sys/fs/cgroup/cpuacct", "/", "cgroup", []string{"cpuacct"}},
				{"/sys/fs/cgroup/memory", "/", "cgroup", []string{"memory"}},
				{"/sys/fs/cgroup/devices", "/", "cgroup", []string{"devices"}},
				{"/sys/fs/cgroup/pids", "/", "cgroup", []string{"pids"}},
				{"/sys/fs/cgroup/systemd", "/", "cgroup", []string{"name=systemd"}}, // xattr, release_agent= dropped
				{"/sys/fs/cgroup/unified", "/", "cgroup2", nil},
			},
		},
		{
			name: "legacy", mi: miLegacy, pc: pcLegacy, mode: ModeLegacy,
			mounts: []mount{
				{"/sys/fs/cgroup/cpu,cpuacct", "/", "cgroup", []string{"cpu", "cpuacct"}},
				{"/sys/fs/cgroup/memory", "/", "cgroup", []string{"memory"}},
				{"/sys/fs/cgroup/pids", "/", "cgroup", []string{"pids"}},
				{"/sys/fs/cgroup/devices", "/", "cgroup", []string{"devices"}},
			},
		},
		{
			name: "unified", mi: miUnified, pc: pcUnifiedRootless, rootV2: true, mode: ModeUnified,
			mounts: []mount{{"/sys/fs/cgroup", "/", "cgroup2", nil}},
		},
		{
			name: "container sub-tree root, escaped path", mi: miContainer, pc: "0::/\n", rootV2: true, mode: ModeUnified,
			mounts: []mount{{"/sys/fs/cgroup", "/docker/abc", "cgroup2", nil}},
		},
		{
			name: "tmpfs without hierarchies", mi: "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", pc: "", mode: ModeNone,
		},
		{
			name: "cgroup2 at a place libcontainer ignores", mi: "41 31 0:38 / /run/cg2 rw - cgroup2 cgroup2 rw\n", pc: "0::/\n", mode: ModeNone,
			mounts: []mount{{"/run/cg2", "/", "cgroup2", nil}}, noteHas: "/run/cg2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := parseProcCgroup([]byte(tc.pc))
			if err != nil {
				t.Fatal(err)
			}
			known := map[string]bool{}
			for c := range pc.V1 {
				known[c] = true
			}
			ms, err := parseMountinfo([]byte(tc.mi), known)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ms, tc.mounts) {
				t.Fatalf("mounts:\n got %+v\nwant %+v", ms, tc.mounts)
			}
			mode, notes := classifyMode("/sys/fs/cgroup", tc.rootV2, ms)
			if mode != tc.mode {
				t.Fatalf("mode %q, want %q", mode, tc.mode)
			}
			if tc.noteHas != "" && !containsAny(notes, tc.noteHas) {
				t.Fatalf("notes %q lack %q", notes, tc.noteHas)
			}
		})
	}
	if _, err := parseMountinfo([]byte("1 2 3\n"), nil); err == nil {
		t.Fatal("malformed mountinfo accepted")
	}
}

func TestUnescapeAndFsPath(t *testing.T) {
	if got := unescapeMountinfo(`/a\040b\011c\134`); got != "/a b\tc\\" {
		t.Fatalf("unescape: %q", got)
	}
	tests := []struct {
		m     mount
		cg    string
		want  string
		found bool
	}{
		{mount{Point: "/sys/fs/cgroup/memory", Root: "/"}, "/process_api/x", "/sys/fs/cgroup/memory/process_api/x", true},
		{mount{Point: "/sys/fs/cgroup", Root: "/docker/abc"}, "/docker/abc/sub", "/sys/fs/cgroup/sub", true},
		{mount{Point: "/sys/fs/cgroup", Root: "/docker/abc"}, "/docker/abc", "/sys/fs/cgroup", true},
		{mount{Point: "/sys/fs/cgroup", Root: "/docker/abc"}, "/docker/other", "", false},
	}
	for _, tc := range tests {
		got, ok := fsPath(tc.m, tc.cg)
		if got != tc.want || ok != tc.found {
			t.Errorf("fsPath(%+v, %q) = %q,%v want %q,%v", tc.m, tc.cg, got, ok, tc.want, tc.found)
		}
	}
}
