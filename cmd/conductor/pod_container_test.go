//go:build seccomp

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	cgcfg "github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // the device-rule writers
	devcfg "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// runc's default masked and read-only /proc paths (what every pod container gets with
// procMount: Default).
var (
	podMaskedPaths = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	podReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// podUser is the Deployment's runAsUser; podIDBase is where the pod's user namespace (hostUsers:
// false) maps its ids on the host.
const (
	podUser   = 65532
	podIDBase = 200000
)

// podSeccomp is runtimeDefaultNoSysAdmin as a libcontainer seccomp config.
func podSeccomp() *configs.Seccomp {
	sc := &configs.Seccomp{DefaultAction: configs.Allow}
	for _, r := range runtimeDefaultNoSysAdmin {
		errno := uint(r.errno)
		if r.mask == 0 {
			sc.Syscalls = append(sc.Syscalls, &configs.Syscall{Name: r.syscall, Action: configs.Errno, ErrnoRet: &errno})
			continue
		}
		for bit := uint64(1); bit != 0; bit <<= 1 {
			if r.mask&bit != 0 {
				sc.Syscalls = append(sc.Syscalls, &configs.Syscall{Name: r.syscall, Action: configs.Errno, ErrnoRet: &errno,
					Args: []*configs.Arg{{Index: 0, Value: bit, ValueTwo: bit, Op: configs.MaskEqualTo}}})
			}
		}
	}
	return sc
}

// podConfigWith is a libcontainer container configured as a pod's container would be by default
// (seccompDefault: the runtime's seccomp rule; maskedProc: runc's masked /proc) or, both false, with the
// Deployment's securityContext (procMount Unmasked, seccomp Unconfined); both with hostUsers: false, no
// capabilities, no_new_privs, a read-only root and cgroup mount, this checkout's binary and data
// read-only at /opt/conductor.
func podConfigWith(t *testing.T, seccompDefault, maskedProc bool) *configs.Config {
	t.Helper()
	root := t.TempDir()
	// The pod's ids are not the host's root: let them reach the root directory (TempDir is 0700).
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"usr", "etc", "proc", "dev", "sys", "tmp", "opt/conductor/bin", "opt/conductor/data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	repo := testenv.RepoRoot()
	const ro = unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	mounts := []*configs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		{Source: "sysfs", Destination: "/sys", Device: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY},
		{Source: "cgroup", Destination: "/sys/fs/cgroup", Device: "cgroup", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY},
		{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777,size=256m"},
		{Source: "/usr", Destination: "/usr", Device: "bind", Flags: ro},
		{Source: "/etc", Destination: "/etc", Device: "bind", Flags: ro},
		{Source: filepath.Join(repo, "bin"), Destination: "/opt/conductor/bin", Device: "bind", Flags: ro},
		{Source: filepath.Join(repo, ".build"), Destination: "/opt/conductor/data", Device: "bind", Flags: ro},
	}
	cfg := &configs.Config{
		Rootfs:          root,
		Readonlyfs:      true,
		NoNewPrivileges: true,
		Capabilities:    &configs.Capabilities{},
		Hostname:        "conductor-pod",
		Namespaces: configs.Namespaces{
			{Type: configs.NEWUSER}, {Type: configs.NEWNS}, {Type: configs.NEWNET},
			{Type: configs.NEWPID}, {Type: configs.NEWIPC}, {Type: configs.NEWUTS}, {Type: configs.NEWCGROUP},
		},
		UIDMappings: []configs.IDMap{{ContainerID: 0, HostID: podIDBase, Size: 65536}},
		GIDMappings: []configs.IDMap{{ContainerID: 0, HostID: podIDBase, Size: 65536}},
		Mounts:      mounts,
		Devices:     specconv.AllowedDevices,
		Networks:    []*configs.Network{{Type: "loopback"}},
		Cgroups: &cgcfg.Cgroup{
			Path:      fmt.Sprintf("k8s-podtest-%d-%d", os.Getpid(), podSeq.Add(1)), // relative: under this process's own cgroup; not conductor-*, which conductor sweeps
			Resources: &cgcfg.Resources{Devices: podDeviceRules()},
		},
		Version: "1.3.0",
	}
	if maskedProc {
		cfg.MaskPaths, cfg.ReadonlyPaths = podMaskedPaths, podReadonlyPaths
	}
	if seccompDefault {
		cfg.Seccomp = podSeccomp()
	}
	return cfg
}

// podRun runs argv as the pod's user in a fresh pod container of cfg, with env and stdin, and
// returns its stdout, stderr and exit state.
func podRun(t *testing.T, cfg *configs.Config, argv, env []string, stdin string) (stdout, stderr string, state *os.ProcessState) {
	t.Helper()
	ctr, err := libcontainer.Create(t.TempDir(), fmt.Sprintf("podtest-%d-%d", os.Getpid(), podSeq.Add(1)), cfg)
	if err != nil {
		t.Fatalf("create the pod container: %v", err)
	}
	defer func() { _ = ctr.Destroy() }()
	var out, errOut bytes.Buffer
	p := &libcontainer.Process{
		Args: argv,
		Env:  append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}, env...),
		UID:  podUser, GID: podUser, Cwd: "/",
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Init: true,
	}
	// runc's init dies with the thread that started it (Pdeathsig): start, exec and wait on one
	// locked OS thread, as the sandbox does.
	type result struct {
		state *os.ProcessState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := ctr.Start(p); err != nil {
			done <- result{nil, fmt.Errorf("start: %w", err)}
			return
		}
		if err := ctr.Exec(); err != nil {
			done <- result{nil, fmt.Errorf("exec: %w", err)}
			return
		}
		ps, err := p.Wait()
		if ps != nil {
			err = nil // an exit status is an answer
		}
		done <- result{ps, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("run %q in the pod container: %v\nstderr:\n%s", argv, r.err, &errOut)
	}
	return out.String(), errOut.String(), r.state
}

// podChecks are doctor's expected checks: name -> ok and what the detail or fix says.
type podChecks map[string]struct {
	ok   bool
	says []string
}

// TestPodContainerDoctor runs the built `conductor doctor --json` as uid 65532 inside a real
// libcontainer container configured as a pod. By default (runc's masked /proc, the runtime's
// default seccomp rule, no capabilities, a non-root user, hostUsers: false, read-only cgroup
// mount) doctor says the user namespace cannot be created because of the seccomp filter and names
// the seccompProfile fix. With seccomp Unconfined but runc's masked /proc, doctor's proc check
// names the masked paths and the procMount fix. With the Deployment's securityContext (procMount Unmasked, seccomp
// Unconfined) the user namespace is created, /proc is not masked, and doctor names the next wall: the read-only
// cgroup filesystem (the per-sandbox limits; the ConfigMap's ALLOW_DEGRADED).
func TestPodContainerDoctor(t *testing.T) {
	podPrerequisites(t)
	cases := []struct {
		name                string
		seccomp, maskedProc bool
		want                podChecks
	}{
		{"default pod", true, true, podChecks{
			"user namespaces": {false, []string{"operation not permitted", "seccomp filter", "securityContext.seccompProfile", "Unconfined"}},
		}},
		{"seccomp Unconfined, procMount Default", false, true, podChecks{
			"user namespaces": {true, []string{"available"}},
			"proc":            {false, []string{"/proc is masked", "/proc/keys", "securityContext.procMount", "Unmasked", "hostUsers: false"}},
		}},
		{"Deployment securityContext", false, false, podChecks{
			"user namespaces": {true, []string{"available"}},
			"proc":            {true, []string{"not masked"}},
			"limits":          {false, []string{"cannot create a cgroup", "read-only file system"}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, ps := podRun(t, podConfigWith(t, c.seccomp, c.maskedProc),
				[]string{"/opt/conductor/bin/conductor", "doctor", "--json", "-upstreams=false"},
				[]string{"MCP_CONDUCTOR_DATA_DIR=/opt/conductor/data", "MCP_CONDUCTOR_STATE_DIR=/tmp/state"}, "")
			var rep doctorReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("doctor --json in the pod: %v (%v)\nstdout:\n%s\nstderr:\n%s", err, ps, out, errOut)
			}
			if !rep.Rootless {
				t.Error("doctor in the pod is not rootless (want uid 65532)")
			}
			if rep.OK || ps.ExitCode() == 0 {
				t.Errorf("doctor ok=%v exit %d in the pod; want a failing check", rep.OK, ps.ExitCode())
			}
			seen := map[string]bool{}
			for _, ch := range rep.Checks {
				t.Logf("%-16s ok=%-5v %s %s", ch.Name, ch.OK, ch.Detail, ch.Fix)
				w, ok := c.want[ch.Name]
				if !ok {
					continue
				}
				seen[ch.Name] = true
				text := ch.Detail + " | " + ch.Fix
				if ch.OK != w.ok {
					t.Errorf("%s: ok = %v, want %v: %s", ch.Name, ch.OK, w.ok, text)
				}
				for _, s := range w.says {
					if !strings.Contains(text, s) {
						t.Errorf("%s: lacks %q: %s", ch.Name, s, text)
					}
				}
			}
			for name := range c.want {
				if !seen[name] {
					t.Errorf("doctor has no %q check", name)
				}
			}
		})
	}
}

// podPrerequisites fails on CI (skips elsewhere) unless a libcontainer pod can be built here.
func podPrerequisites(t *testing.T) {
	t.Helper()
	bin := binary(t)
	if filepath.Dir(bin) != filepath.Join(testenv.RepoRoot(), "bin") {
		testenv.Unavailable(t, "the pod test mounts the checkout's bin/ and .build/; CONDUCTOR_BIN is %s", bin)
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "a libcontainer pod needs root (a user namespace with a 65536-id map, mounts, cgroups)")
	}
}

// TestPodContainerExec: with the Deployment's securityContext, `conductor exec` runs hello in a
// sandbox inside the pod, end to end: the data volume seeded as the Deployment's init container
// does (deno copied into a volume the pod's user owns; conductor builds the sandbox root there),
// MCP_CONDUCTOR_ALLOW_DEGRADED=1 as in the ConfigMap (the cgroup mount is read-only), and the
// result lists the memory and pids limits it could not enforce. The same pod with procMount
// Default (runc's masked /proc) and seccomp Unconfined cannot start a sandbox: the kernel refuses
// the sandbox's fresh /proc — why the Deployment sets procMount: Unmasked.
func TestPodContainerExec(t *testing.T) {
	podPrerequisites(t)
	cases := []struct {
		name       string
		maskedProc bool
		ok         bool
	}{
		{"Deployment securityContext", false, true},
		{"procMount Default", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := podConfigWith(t, false, c.maskedProc)
			cfg.Mounts = append(cfg.Mounts, &configs.Mount{Source: "tmpfs", Destination: "/var/lib/conductor", Device: "tmpfs",
				Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: fmt.Sprintf("mode=0755,uid=%d,gid=%d,size=2g", podUser, podUser)})
			if err := os.MkdirAll(filepath.Join(cfg.Rootfs, "var/lib/conductor"), 0o755); err != nil {
				t.Fatal(err)
			}
			script := "cp /opt/conductor/data/deno /var/lib/conductor/deno && exec /opt/conductor/bin/conductor exec --json -"
			out, errOut, ps := podRun(t, cfg, []string{"/bin/sh", "-c", script},
				[]string{"MCP_CONDUCTOR_DATA_DIR=/var/lib/conductor", "MCP_CONDUCTOR_STATE_DIR=/tmp/state", "MCP_CONDUCTOR_ALLOW_DEGRADED=1"},
				"console.log('hello from the pod')")
			t.Logf("%v\nstdout:\n%s\nstderr (end):\n%s", ps, tail(out, 3000), tail(errOut, 2000))
			if !c.ok {
				if ps.ExitCode() == 0 || strings.Contains(out, "hello from the pod") {
					t.Fatalf("hello ran with runc's masked /proc (exit %d); want the sandbox refused", ps.ExitCode())
				}
				if all := out + errOut; !strings.Contains(all, "proc") {
					t.Errorf("the failure does not name /proc:\n%s", tail(all, 2000))
				}
				return
			}
			var res struct {
				Status   string   `json:"status"`
				Stdout   string   `json:"stdout"`
				Degraded []string `json:"degraded"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("exec --json in the pod: %v", err)
			}
			if res.Status != "success" || res.Stdout != "hello from the pod\n" {
				t.Errorf("status %q stdout %q; want success and the hello line", res.Status, res.Stdout)
			}
			if d := strings.Join(res.Degraded, "; "); !strings.Contains(d, "memory: not enforced") || !strings.Contains(d, "read-only file system") {
				t.Errorf("degraded %q: want the memory limit named, not enforced (read-only cgroup mount)", d)
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// podSeq makes each pod container's id and cgroup unique.
var podSeq atomic.Int64

// podDeviceRules are the device cgroup rules of a pod container: runc's allowed devices.
func podDeviceRules() []*devcfg.Rule {
	rules := []*devcfg.Rule{{Type: devcfg.WildcardDevice, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: "rwm", Allow: false}}
	for _, d := range specconv.AllowedDevices {
		r := d.Rule
		rules = append(rules, &r)
	}
	return rules
}
