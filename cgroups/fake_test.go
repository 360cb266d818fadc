package cgroups

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// fakeHost is a cgroup tree in a temp directory plus the /proc text describing it. Its
// hooks model what matters of cgroupfs: mkdir creates the controller files, a directory
// belongs to whoever created it, unprivileged users can only create/remove entries in
// directories they own, and rmdir removes the control files with the directory.
type fakeHost struct {
	t      *testing.T
	root   string // fake /sys/fs/cgroup
	mi     []string
	cg     string
	v2     bool
	euid   int
	pid    int
	owners map[string]int
	xattr  map[string]bool
	noSwap bool
	noCFS  bool
	writes []string
	// systemd as PID 1 and its transient scopes (Claim): systemdPID1, the process
	// environment, the error startScope returns and the requests it got.
	systemdPID1 bool
	environ     map[string]string
	scopeErr    error
	scopes      []scopeRequest
}

const fakePid = 4321

func newFake(t *testing.T) *fakeHost {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cgroup")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return &fakeHost{t: t, root: root, pid: fakePid, owners: map[string]int{}, xattr: map[string]bool{},
		mi: []string{"22 1 0:21 / / rw - overlay overlay rw", "31 23 0:28 / " + root + " rw - tmpfs tmpfs rw"}}
}

// v1 mounts a fake v1 hierarchy at <root>/<dir> carrying opts (e.g. "memory" or "cpu,cpuacct").
func (f *fakeHost) v1(dir, opts string) *fakeHost {
	p := filepath.Join(f.root, dir)
	f.mkdirAll(p)
	f.mi = append(f.mi, fmt.Sprintf("%d 31 0:%d / %s rw,relatime - cgroup cgroup rw,%s", 40+len(f.mi), 40+len(f.mi), p, opts))
	return f
}

// unified mounts cgroup2 at <root>/unified (hybrid) or makes the root itself cgroup2.
func (f *fakeHost) unified(hybrid bool) *fakeHost {
	p := f.root
	if hybrid {
		p = filepath.Join(f.root, "unified")
		f.mkdirAll(p)
	} else {
		f.v2 = true
	}
	f.mi = append(f.mi, fmt.Sprintf("%d 31 0:%d / %s rw,relatime - cgroup2 cgroup2 rw,nsdelegate", 40+len(f.mi), 40+len(f.mi), p))
	return f
}

func (f *fakeHost) mkdirAll(p string) {
	if err := os.MkdirAll(p, 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// dir creates <root>/<rel> owned (in the model) by uid, with the given files.
func (f *fakeHost) dir(rel string, uid int, files map[string]string) string {
	p := filepath.Join(f.root, rel)
	f.mkdirAll(p)
	f.owners[p] = uid
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(p, n), []byte(c), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	return p
}

func (f *fakeHost) owner(p string) int {
	if u, ok := f.owners[p]; ok {
		return u
	}
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		if u, ok := f.owners[filepath.Dir(p)]; ok {
			return u
		}
	}
	return 0
}

func (f *fakeHost) env() *sysEnv {
	return &sysEnv{
		root:       f.root,
		mountinfo:  func() ([]byte, error) { return []byte(strings.Join(f.mi, "\n") + "\n"), nil },
		selfCgroup: func() ([]byte, error) { return []byte(f.cg), nil },
		isCgroup2:  func(p string) (bool, error) { return f.v2 && p == f.root, nil },
		euid:       f.euid,
		pid:        f.pid,
		write: func(p, data string) error {
			f.writes = append(f.writes, strings.TrimPrefix(p, f.root)+"="+data)
			if filepath.Base(p) == "cgroup.subtree_control" {
				cur := fieldSet(readString(p))
				cur[strings.TrimPrefix(data, "+")] = true
				var ks []string
				for k := range cur {
					ks = append(ks, k)
				}
				slices.Sort(ks)
				data = strings.Join(ks, " ")
			}
			return os.WriteFile(p, []byte(data), 0o644)
		},
		delegateXattr: func(d string) bool { return f.xattr[d] },
		mkdir: func(p string) error {
			if f.euid != 0 && f.owner(filepath.Dir(p)) != f.euid {
				return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.EACCES}
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			f.owners[p] = f.euid
			files := []string{"cgroup.procs"}
			rel := strings.TrimPrefix(p, f.root+"/")
			hier := strings.SplitN(rel, "/", 2)[0]
			switch {
			case f.v2:
				files = append(files, "cgroup.controllers", "cgroup.subtree_control", "memory.max", "pids.max", "cpu.max")
			case strings.Contains(hier, "memory"):
				files = append(files, "memory.limit_in_bytes")
				if !f.noSwap {
					files = append(files, "memory.memsw.limit_in_bytes")
				}
			case strings.Contains(hier, "cpu") && !f.noCFS:
				files = append(files, "cpu.cfs_quota_us")
			}
			for _, n := range files {
				if err := os.WriteFile(filepath.Join(p, n), nil, 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		rmdir: func(p string) error {
			if f.euid != 0 && f.owner(filepath.Dir(p)) != f.euid {
				return &fs.PathError{Op: "rmdir", Path: p, Err: syscall.EACCES}
			}
			ents, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if !e.IsDir() {
					os.Remove(filepath.Join(p, e.Name()))
				}
			}
			return syscall.Rmdir(p)
		},
		writable: func(d string) bool {
			st, err := os.Stat(d)
			return err == nil && st.IsDir() && (f.euid == 0 || f.owner(d) == f.euid)
		},
		owner:      f.owner,
		systemd:    func() bool { return f.systemdPID1 },
		getenv:     func(k string) string { return f.environ[k] },
		startScope: f.startScope,
	}
}

// startScope models systemd starting conductor-<pid>.scope with Delegate=yes: the user's
// manager puts it in user@UID.service/user.slice (owned by the user), the system manager
// in system.slice (marked delegated); the process moves there.
func (f *fakeHost) startScope(_ context.Context, r scopeRequest) (string, error) {
	f.scopes = append(f.scopes, r)
	if f.scopeErr != nil {
		return "", f.scopeErr
	}
	rel := "system.slice/" + r.Unit
	if r.Rootless {
		rel = fmt.Sprintf("user.slice/user-%d.slice/user@%d.service/user.slice/%s", f.euid, f.euid, r.Unit)
	}
	d := f.dir(rel, f.euid, map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "", "cgroup.procs": fmt.Sprintf("%d\n", r.Pid)})
	f.xattr[d] = !r.Rootless
	f.cg = "0::/" + rel + "\n"
	return d, nil
}

// leftovers lists directories below root whose name contains "probe-" (Detect must clean up).
func (f *fakeHost) leftovers() []string {
	var out []string
	filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.Contains(d.Name(), probeInfix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// hybridFake is this build machine's layout: v1 hierarchies, empty cgroup2 at unified,
// our memory cgroup /process_api/x, everything else /.
func hybridFake(t *testing.T, euid int) *fakeHost {
	f := newFake(t)
	f.euid = euid
	for _, h := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
		f.v1(h, h)
	}
	f.v1("systemd", "xattr,name=systemd")
	f.unified(true)
	f.dir("unified", 0, map[string]string{"cgroup.controllers": ""})
	f.dir("memory/process_api/x", 0, nil)
	f.cg = "12:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:/process_api/x\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n"
	return f
}
