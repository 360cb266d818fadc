package rootfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/conductor-sandbox/conductor/config"
)

func TestRootContents(t *testing.T) {
	t.Parallel()
	deno := testDeno(t)
	r := ensure(t, NewStore(filepath.Join(t.TempDir(), "store")), bootstrapOpts(deno, "console.log('boot')"))

	// Expected set, derived independently of the plan: fixed entries, every library's lookup
	// path and real path, and all their parent directories.
	want := map[string]bool{}
	addWithParents := func(p string) {
		for ; p != "/"; p = path.Dir(p) {
			want[p] = true
		}
		want["/"] = true
	}
	for _, p := range []string{
		"/usr/bin/deno", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/nsswitch.conf", "/etc/resolv.conf",
		"/proc", "/dev", "/tmp", "/deno-dir", "/conductor/trust", "/conductor/bootstrap.js", config.OutputsDir,
		// /dev: the device mount points and the descriptor symlinks.
		"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
		"/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr",
	} {
		addWithParents(p)
	}
	libs, err := Libraries(deno)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		addWithParents(l)
		addWithParents(realPath(t, l))
	}

	got := map[string]bool{}
	err = filepath.WalkDir(r.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.Path, p)
		name := filepath.Join("/", rel)
		got[name] = true
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		mode := info.Mode()
		if mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			t.Errorf("%s has mode %v", name, mode)
		}
		if mode.Type() != fs.ModeSymlink && mode.Perm()&0o022 != 0 {
			t.Errorf("%s is writable by group or others: %v", name, mode)
		}
		if os.Geteuid() == 0 && (st.Uid != 0 || st.Gid != 0) {
			t.Errorf("%s is owned by %d:%d", name, st.Uid, st.Gid)
		}
		wantPerm := fs.FileMode(0o644)
		switch {
		case mode.IsDir():
			wantPerm = 0o755
		case mode.Type() == fs.ModeSymlink:
			wantPerm = 0o777
			target, _ := os.Readlink(p)
			if filepath.IsAbs(target) {
				t.Errorf("%s -> %s is absolute: it would resolve on the host", name, target)
			}
		case name == "/usr/bin/deno" || strings.HasSuffix(name, "/ld-linux-x86-64.so.2"):
			wantPerm = 0o755
		case !mode.IsRegular():
			t.Errorf("%s has type %v", name, mode.Type())
		}
		if mode.Perm() != wantPerm {
			t.Errorf("%s has permissions %v, want %v", name, mode.Perm(), wantPerm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range got {
		if !want[p] {
			t.Errorf("unexpected %s in the root", p)
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("%s missing from the root", p)
		}
	}
	if got["/sys"] {
		t.Error("the root has /sys")
	}
	for _, d := range []string{"/proc", "/tmp", "/deno-dir"} {
		if ents, err := os.ReadDir(filepath.Join(r.Path, d)); err != nil || len(ents) != 0 {
			t.Errorf("mount point %s: %d entries, %v", d, len(ents), err)
		}
	}
	for _, n := range r.DevNodes {
		if st, err := os.Lstat(filepath.Join(r.Path, n)); err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
			t.Errorf("device mount point %s: want an empty file, got %v, %v", n, st, err)
		}
	}

	// Every library name the loader uses resolves, inside the root, to a copy of the host file.
	for _, l := range libs {
		inRoot := resolveInRoot(t, r.Path, l)
		if sum(t, inRoot) != sum(t, l) {
			t.Errorf("%s in the root differs from the host's", l)
		}
	}
	if sum(t, filepath.Join(r.Path, "usr/bin/deno")) != sum(t, deno) {
		t.Error("/usr/bin/deno differs from the host deno")
	}

	etc := map[string]string{
		"passwd":        "sandbox:x:0:0:sandbox:/tmp:/nonexistent\n",
		"group":         "sandbox:x:0:\n",
		"hosts":         "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 sandbox\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
		"resolv.conf":   "nameserver 127.0.0.53\n",
	}
	for name, content := range etc {
		if b, err := os.ReadFile(filepath.Join(r.Path, "etc", name)); err != nil || string(b) != content {
			t.Errorf("/etc/%s = %q, %v; want %q", name, b, err, content)
		}
	}
}

// resolveInRoot follows symlinks of the in-root path p the way a chrooted process would, failing
// if any step leaves the root, and returns the host path of the final regular file.
func resolveInRoot(t *testing.T, root, p string) string {
	t.Helper()
	for range 40 {
		host := filepath.Join(root, p)
		info, err := os.Lstat(host)
		if err != nil {
			t.Fatalf("%s does not resolve inside the root: %v", p, err)
		}
		if info.Mode().IsRegular() {
			return host
		}
		if info.Mode().Type() != fs.ModeSymlink {
			t.Fatalf("%s resolves to a %v", p, info.Mode().Type())
		}
		target, err := os.Readlink(host)
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(path.Dir(p), target)
		}
		if target = path.Clean(target); strings.HasPrefix(target, "/..") {
			t.Fatalf("%s escapes the root via %s", p, target)
		}
		p = target
	}
	t.Fatalf("%s: too many symlinks", p)
	return ""
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestCurrentDetectsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := smallELF(t, t.TempDir(), "deno")
	write := func(t *testing.T, p string, b []byte) {
		t.Helper()
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string, r *Root)
		// verifyStale: whether the full Verify of the previously returned root fails too (false
		// when only store metadata was touched).
		verifyStale bool
		// currentBlind: the cheap check cannot see it; only Verify can.
		currentBlind bool
		rootOnly     bool // needs root
		linkOnly     bool // only the current link is damaged
	}{
		{name: "content changed, same size, mtime restored", tamper: func(t *testing.T, _ string, r *Root) {
			p := filepath.Join(r.Path, "etc/hosts")
			info, err := os.Stat(p)
			must(t, err)
			write(t, p, []byte("6.6.6.6 localhost\n::1 localhost\n"))
			must(t, os.Chtimes(p, info.ModTime(), info.ModTime()))
		}, verifyStale: true},
		{name: "deno replaced by rename", tamper: func(t *testing.T, _ string, r *Root) {
			p := filepath.Join(r.Path, "usr/bin/deno")
			b, err := os.ReadFile(p)
			must(t, err)
			b[len(b)-1] ^= 1
			write(t, p+".x", b)
			must(t, os.Chmod(p+".x", 0o755))
			if err := os.Rename(p+".x", p); err != nil {
				t.Fatal(err)
			}
		}, verifyStale: true},
		{name: "mode changed", tamper: func(t *testing.T, _ string, r *Root) {
			must(t, os.Chmod(filepath.Join(r.Path, "etc/passwd"), 0o666))
		}, verifyStale: true},
		{name: "setuid added", tamper: func(t *testing.T, _ string, r *Root) {
			if err := os.Chmod(filepath.Join(r.Path, "usr/bin/deno"), 0o755|fs.ModeSetuid); err != nil {
				t.Fatal(err)
			}
		}, verifyStale: true},
		{name: "owner changed", tamper: func(t *testing.T, _ string, r *Root) {
			if err := os.Lchown(filepath.Join(r.Path, "etc/group"), 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, verifyStale: true, rootOnly: true},
		{name: "file added", tamper: func(t *testing.T, _ string, r *Root) {
			write(t, filepath.Join(r.Path, "etc/shadow"), nil)
		}, verifyStale: true},
		{name: "sys added", tamper: func(t *testing.T, _ string, r *Root) {
			must(t, os.Mkdir(filepath.Join(r.Path, "sys"), 0o755))
		}, verifyStale: true},
		{name: "file removed", tamper: func(t *testing.T, _ string, r *Root) {
			must(t, os.Remove(filepath.Join(r.Path, "etc/resolv.conf")))
		}, verifyStale: true},
		{name: "symlink retargeted", tamper: func(t *testing.T, _ string, r *Root) {
			p := filepath.Join(r.Path, "lib64/ld-linux-x86-64.so.2")
			must(t, os.Remove(p))
			must(t, os.Symlink("/lib64/ld-linux-x86-64.so.2", p))
		}, verifyStale: true},
		{name: "manifest edited", tamper: func(t *testing.T, dir string, r *Root) {
			p := filepath.Join(dir, r.Hash, manifestName)
			b, err := os.ReadFile(p)
			must(t, err)
			write(t, p, bytes.Replace(b, []byte(`"perm": 420`), []byte(`"perm": 438`), 1))
		}},
		{name: "current points at junk", tamper: func(t *testing.T, dir string, r *Root) {
			must(t, os.Remove(filepath.Join(dir, "current")))
			must(t, os.Symlink("../../etc", filepath.Join(dir, "current")))
		}, linkOnly: true},
		{name: "content changed beneath the filesystem (manifest stats forged)", tamper: func(t *testing.T, dir string, r *Root) {
			p := filepath.Join(r.Path, "etc/hosts")
			write(t, p, []byte("6.6.6.6 localhost\n::1 localhost\n"))
			forgeManifestStats(t, filepath.Join(dir, r.Hash, manifestName), r.Path)
		}, verifyStale: true, currentBlind: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.rootOnly {
				requireRoot(t, "chown")
			}
			dir := filepath.Join(t.TempDir(), "store")
			s := NewStore(dir)
			r := ensure(t, s, Options{Deno: bin})
			if err := r.Verify(ctx); err != nil {
				t.Fatalf("fresh root: %v", err)
			}
			tc.tamper(t, dir, r)

			cur, err := s.Current(ctx)
			if tc.currentBlind {
				if err != nil {
					t.Fatalf("Current: %v (the cheap check was expected not to see this)", err)
				}
				cur.Release()
			} else if !errors.Is(err, ErrStale) {
				t.Errorf("Current after tampering: %v, want ErrStale", err)
			}
			if err := r.Verify(ctx); tc.verifyStale != errors.Is(err, ErrStale) {
				t.Errorf("Verify after tampering: %v, want stale=%v", err, tc.verifyStale)
			}

			// Ensure repairs the store: same inputs, same hash, a root that verifies. What the cheap
			// check cannot see needs FullVerify.
			if tc.currentBlind {
				blind := ensure(t, s, Options{Deno: bin})
				if err := blind.Verify(ctx); !errors.Is(err, ErrStale) || s.builds.Load() != 1 {
					t.Errorf("Ensure without FullVerify rebuilt (builds %d) or repaired (%v)", s.builds.Load(), err)
				}
			}
			fixed := ensure(t, s, Options{Deno: bin, FullVerify: true})
			if fixed.Hash != r.Hash {
				t.Errorf("repaired root hash %s, want %s", fixed.Hash, r.Hash)
			}
			if err := fixed.Verify(ctx); err != nil {
				t.Errorf("repaired root: %v", err)
			}
			wantBuilds := int64(2)
			if tc.linkOnly {
				wantBuilds = 1 // the root itself is intact and reused
			}
			if n := s.builds.Load(); n != wantBuilds {
				t.Errorf("builds = %d, want %d", n, wantBuilds)
			}
			if cur, err := s.Current(ctx); err != nil {
				t.Errorf("Current after repair: %v", err)
			} else {
				cur.Release()
			}
		})
	}
}

// forgeManifestStats rewrites a manifest's stat fields to the root's current ones, simulating a
// change the filesystem did not record (e.g. a raw block-device write).
func forgeManifestStats(t *testing.T, manifestPath, rootDir string) {
	t.Helper()
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	scanned, err := scanTree(context.Background(), rootDir, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Entries {
		for _, d := range scanned {
			if d.Path == m.Entries[i].Path {
				m.Entries[i].Size, m.Entries[i].Mtime, m.Entries[i].Ctime = d.Size, d.Mtime, d.Ctime
			}
		}
	}
	if err := m.write(manifestPath); err != nil {
		t.Fatal(err)
	}
}

func TestRepairKeepsHeldDamagedRootUntilReleased(t *testing.T) {
	// Not parallel: a child forked by another test shares flock holds until it execs, which
	// would make a released root look held for a moment.
	ctx := context.Background()
	bin := smallELF(t, t.TempDir(), "deno")
	dir := filepath.Join(t.TempDir(), "store")
	s := NewStore(dir)
	old, err := s.Ensure(ctx, Options{Deno: bin})
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.Chmod(filepath.Join(old.Path, "etc/hosts"), 0o600))
	fixed := ensure(t, s, Options{Deno: bin})
	if s.builds.Load() != 2 {
		t.Fatalf("builds = %d, want a rebuild", s.builds.Load())
	}
	// The damaged, held root was moved aside, not deleted.
	trash, _ := filepath.Glob(filepath.Join(dir, trashPrefix+"*", old.Hash, "rootfs", "etc", "hosts"))
	if len(trash) != 1 {
		t.Fatalf("held damaged root not kept aside: %q", trash)
	}
	old.Release()
	ensure(t, s, Options{Deno: bin}) // sweeps
	assertOnlyRoots(t, dir, fixed.Hash)
}

// denoVersion returns the first line of `deno --version` on the host.
func denoVersion(t *testing.T, deno string) string {
	t.Helper()
	out, err := exec.Command(deno, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	return lines(string(out))[0]
}

func TestChrootDenoVersion(t *testing.T) {
	t.Parallel()
	deno := testDeno(t)
	requireRoot(t, "chroot")
	r := ensure(t, NewStore(filepath.Join(t.TempDir(), "store")), bootstrapOpts(deno, ""))
	cmd := exec.Command(r.DenoPath, "--version")
	cmd.Dir = "/"
	cmd.Env = []string{"DENO_NO_UPDATE_CHECK=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: r.Path}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s %s --version: %v\n%s", r.Path, r.DenoPath, err, out)
	}
	if got, want := lines(string(out))[0], denoVersion(t, deno); got != want {
		t.Errorf("in the root: %q, on the host: %q", got, want)
	}
}

func TestChrootDenoRunsReadOnly(t *testing.T) {
	t.Parallel()
	deno := testDeno(t)
	requireRoot(t, "mount and chroot")
	ctx := context.Background()
	r := ensure(t, NewStore(filepath.Join(t.TempDir(), "store")), bootstrapOpts(deno, "export const hi = 'boot';\n"))
	script := `
const hosts = Deno.readTextFileSync("/etc/hosts").includes("::1 localhost");
const { hi } = await import("file:///conductor/bootstrap.js");
let ro = "writable";
try { Deno.writeTextFileSync("/etc/x", "") } catch (e) { ro = e.message }
let sys = "present";
try { Deno.statSync("/sys") } catch (e) { sys = e.name }
console.log(JSON.stringify({ sum: 1 + 1, hosts, hi, ro, sys, tmp: Deno.makeTempFileSync().startsWith("/tmp/") }));
`
	cmd := helperCmd(helperChroot, helperRootEnv+"="+r.Path)
	cmd.Args = append(cmd.Args, "--", r.DenoPath, "eval", "--ext=mjs", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deno eval in the read-only root: %v\n%s", err, out)
	}
	var got struct {
		Sum    int
		Hosts  bool
		Hi, Ro string
		Sys    string
		Tmp    bool
	}
	ls := lines(string(out))
	if len(ls) == 0 || json.Unmarshal([]byte(ls[len(ls)-1]), &got) != nil {
		t.Fatalf("unexpected output:\n%s", out)
	}
	want := struct {
		Sum    int
		Hosts  bool
		Hi, Ro string
		Sys    string
		Tmp    bool
	}{2, true, "boot", got.Ro, "NotFound", true}
	if got != want || !strings.Contains(got.Ro, "Read-only file system") {
		t.Errorf("deno in the root reported %+v, want %+v\n%s", got, want, out)
	}
	// The run left the root untouched.
	if err := r.Verify(ctx); err != nil {
		t.Error(err)
	}
}
