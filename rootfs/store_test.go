package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestEnsureBuildsOnceAndSwitchesOnChange(t *testing.T) {
	t.Parallel()
	deno := testDeno(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	s := NewStore(dir)

	if _, err := s.Current(ctx); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Current on an empty store: %v, want ErrNotBuilt", err)
	}

	start := time.Now()
	r1 := ensure(t, s, bootstrapOpts(deno, "one"))
	t.Logf("fresh build: %v", time.Since(start))
	if s.builds.Load() != 1 {
		t.Fatalf("builds = %d after the first Ensure", s.builds.Load())
	}
	if r1.Path != filepath.Join(dir, r1.Hash, "rootfs") || !filepath.IsAbs(r1.Path) {
		t.Errorf("Path %s is not <dir>/<hash>/rootfs", r1.Path)
	}
	if r1.DenoPath != "/usr/bin/deno" || r1.DenoDir != "/deno-dir" || r1.BootstrapDir != "/conductor" {
		t.Errorf("in-root paths: %q %q %q", r1.DenoPath, r1.DenoDir, r1.BootstrapDir)
	}
	if got := readCurrentT(t, dir); got != r1.Hash {
		t.Errorf("current -> %s, want %s", got, r1.Hash)
	}
	if b, err := os.ReadFile(filepath.Join(r1.Path, "conductor/bootstrap.js")); err != nil || string(b) != "one" {
		t.Errorf("bootstrap.js = %q, %v", b, err)
	}

	// Identical inputs: no build, same root.
	start = time.Now()
	r2 := ensure(t, s, bootstrapOpts(deno, "one"))
	noop := time.Since(start)
	t.Logf("no-op Ensure: %v", noop)
	if s.builds.Load() != 1 || r2.Hash != r1.Hash || r2.Path != r1.Path {
		t.Fatalf("second Ensure rebuilt (builds=%d) or moved (%s vs %s)", s.builds.Load(), r2.Path, r1.Path)
	}
	if noop > time.Second {
		t.Errorf("no-op Ensure took %v", noop)
	}
	// A fresh Store value (a restarted server) also reuses it.
	s2 := NewStore(dir)
	if r := ensure(t, s2, bootstrapOpts(deno, "one")); r.Hash != r1.Hash || s2.builds.Load() != 0 {
		t.Errorf("restarted store rebuilt: hash %s builds %d", r.Hash, s2.builds.Load())
	}

	oldManifest, err := os.ReadFile(filepath.Join(dir, r1.Hash, manifestName))
	if err != nil {
		t.Fatal(err)
	}

	// New bootstrap bytes: new hash, current switches, the old root stays intact.
	r3 := ensure(t, s, bootstrapOpts(deno, "two"))
	if r3.Hash == r1.Hash || s.builds.Load() != 2 {
		t.Fatalf("changed bootstrap: hash %s (old %s), builds %d", r3.Hash, r1.Hash, s.builds.Load())
	}
	if got := readCurrentT(t, dir); got != r3.Hash {
		t.Errorf("current -> %s, want %s", got, r3.Hash)
	}
	cur, err := s.Current(ctx)
	if err != nil || cur.Hash != r3.Hash {
		t.Fatalf("Current = %v, %v; want %s", cur, err, r3.Hash)
	}
	cur.Release()
	if err := r1.Verify(ctx); err != nil {
		t.Errorf("old root changed after the switch: %v", err)
	}
	if m, err := os.ReadFile(filepath.Join(dir, r1.Hash, manifestName)); err != nil || !bytes.Equal(m, oldManifest) {
		t.Errorf("old manifest changed: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(r1.Path, "conductor/bootstrap.js")); string(b) != "one" {
		t.Errorf("old bootstrap.js = %q", b)
	}
	if err := r3.Verify(ctx); err != nil {
		t.Errorf("new root: %v", err)
	}

	// Switching back to the first inputs reuses the existing directory instead of rebuilding.
	if r := ensure(t, s, bootstrapOpts(deno, "one")); r.Hash != r1.Hash || s.builds.Load() != 2 {
		t.Errorf("switch back: hash %s builds %d", r.Hash, s.builds.Load())
	}
	if got := readCurrentT(t, dir); got != r1.Hash {
		t.Errorf("current -> %s after switching back", got)
	}
	assertNoLeftovers(t, dir)
}

func readCurrentT(t *testing.T, dir string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, "current"))
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// assertNoLeftovers checks the store holds no temporary build, trash or link.
func assertNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, buildPrefix) || strings.HasPrefix(n, trashPrefix) || n == currentTmpName || strings.HasSuffix(n, ".tmp") {
			t.Errorf("leftover %s in store", n)
		}
	}
}

func TestEnsureTracksSourceChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	bin := smallELF(t, src, "deno")
	s := NewStore(filepath.Join(t.TempDir(), "store"))
	opts := Options{Deno: bin}
	base := ensure(t, s, opts).Hash

	info, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, same mtime, one byte different (at the end, where the ELF stays valid): the
	// digest cache must notice through ctime.
	changed := bytes.Clone(content)
	changed[len(changed)-1] ^= 0xff
	if err := os.WriteFile(bin, changed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	r := ensure(t, s, opts)
	if r.Hash == base || s.builds.Load() != 2 {
		t.Fatalf("in-place change of deno not detected: hash %s builds %d", r.Hash, s.builds.Load())
	}
	if b, _ := os.ReadFile(filepath.Join(r.Path, "usr/bin/deno")); !bytes.Equal(b, changed) {
		t.Error("root holds the old deno")
	}
	// Renaming a new file over it (what fetch-deno.sh does) with the original content goes back.
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	if r := ensure(t, s, opts); r.Hash != base {
		t.Errorf("restored deno: hash %s, want %s", r.Hash, base)
	}
	if err := ctx.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureRejectsBadOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := smallELF(t, dir, "deno")
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		opts    Options
		is      error
		mention string
	}{
		{"no deno", Options{}, nil, "Options.Deno is empty"},
		{"missing deno", Options{Deno: filepath.Join(dir, "none")}, os.ErrNotExist, "none"},
		{"deno not ELF", Options{Deno: script}, ErrNotELF, "script"},
		{"bootstrap escapes", Options{Deno: bin, Bootstrap: map[string][]byte{"../etc/passwd": nil}}, nil, "clean relative path"},
		{"bootstrap absolute", Options{Deno: bin, Bootstrap: map[string][]byte{"/x.js": nil}}, nil, "clean relative path"},
		{"extra relative", Options{Deno: bin, Extra: map[string][]byte{"etc/x": nil}}, nil, "clean absolute path"},
		{"extra under a mount", Options{Deno: bin, Extra: map[string][]byte{"/tmp/x": nil}}, nil, "hidden by the /tmp mount"},
		{"extra creates /sys", Options{Deno: bin, Extra: map[string][]byte{"/sys/x": nil}}, nil, "no /sys"},
		{"extra replaces deno", Options{Deno: bin, Extra: map[string][]byte{"/usr/bin/deno": nil}}, nil, "defined twice"},
		{"extra below a file", Options{Deno: bin, Extra: map[string][]byte{"/etc/hosts/x": nil}}, nil, "to be a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storeDir := filepath.Join(t.TempDir(), "store")
			r, err := NewStore(storeDir).Ensure(context.Background(), tc.opts)
			if err == nil {
				r.Release()
				t.Fatal("Ensure succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if _, err := os.Lstat(filepath.Join(storeDir, "current")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed Ensure left a current link: %v", err)
			}
			assertNoLeftovers(t, storeDir)
		})
	}
}

func TestConcurrentEnsureBuildsOnce(t *testing.T) {
	t.Parallel()
	deno := testDeno(t)
	dir := filepath.Join(t.TempDir(), "store")
	s := NewStore(dir)
	const goroutines = 6
	roots := make([]*Root, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			roots[i], errs[i] = s.Ensure(context.Background(), bootstrapOpts(deno, "same"))
		})
	}
	wg.Wait()
	for i := range goroutines {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v", i, errs[i])
		}
		defer roots[i].Release()
		if roots[i].Hash != roots[0].Hash || roots[i].Path != roots[0].Path {
			t.Errorf("Ensure %d returned %s, Ensure 0 %s", i, roots[i].Path, roots[0].Path)
		}
	}
	if n := s.builds.Load(); n != 1 {
		t.Errorf("%d builds for %d concurrent identical Ensure calls", n, goroutines)
	}
	assertOnlyRoots(t, dir, roots[0].Hash)
}

func TestConcurrentEnsureAcrossProcesses(t *testing.T) {
	t.Parallel()
	deno := testDeno(t)
	dir := filepath.Join(t.TempDir(), "store")
	const procs = 4
	type result struct {
		out []byte
		err error
	}
	results := make([]result, procs)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			cmd := helperCmd(helperEnsure, "STORE="+dir, "DENO="+deno, "BOOTSTRAP=cross")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				err = errors.Join(err, errors.New(stderr.String()))
			}
			results[i] = result{out, err}
		})
	}
	wg.Wait()
	builds, hashes := 0, map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("helper %d: %v", i, r.err)
		}
		var n int
		var h string
		line := strings.TrimSpace(string(r.out))
		if _, err := fmt.Sscanf(line, "built=%d hash=%s", &n, &h); err != nil {
			t.Fatalf("helper %d printed %q: %v", i, line, err)
		}
		builds += n
		hashes[h] = true
	}
	if builds != 1 || len(hashes) != 1 {
		t.Errorf("%d processes: %d builds, %d distinct hashes", procs, builds, len(hashes))
	}
	for h := range hashes {
		assertOnlyRoots(t, dir, h)
	}
}

// assertOnlyRoots checks the store holds exactly the given root directories.
func assertOnlyRoots(t *testing.T, dir string, hashes ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if e.IsDir() {
			got = append(got, e.Name())
		}
	}
	want := map[string]bool{}
	for _, h := range hashes {
		want[h] = true
	}
	if len(got) != len(want) {
		t.Errorf("store directories %q, want %q", got, hashes)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("unexpected directory %s in store", g)
		}
	}
	assertNoLeftovers(t, dir)
}

func TestPruneKeepsCurrentPreviousAndHeld(t *testing.T) {
	// Not parallel: a child forked by another test shares flock holds until it execs, which
	// would make a released root look held for a moment.
	ctx := context.Background()
	bin := smallELF(t, t.TempDir(), "deno")
	dir := filepath.Join(t.TempDir(), "store")
	s := NewStore(dir)
	build := func(tag string) *Root {
		r, err := s.Ensure(ctx, Options{Deno: bin, Bootstrap: map[string][]byte{"b.js": []byte(tag)}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := build("a")
	a.Release()
	b := build("b") // held
	c := build("c") // Ensure's prune removes a: not current, not previous, not held
	c.Release()
	d := build("d") // keeps c (previous) and b (held)
	defer d.Release()
	assertOnlyRoots(t, dir, b.Hash, c.Hash, d.Hash)

	removed, err := s.Prune(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != c.Hash {
		t.Errorf("Prune(1) removed %q, want [%s] (b is held)", removed, c.Hash)
	}
	assertOnlyRoots(t, dir, b.Hash, d.Hash)
	if err := b.Verify(ctx); err != nil {
		t.Errorf("held root damaged by Prune: %v", err)
	}

	b.Release()
	if err := b.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	removed, err = s.Prune(ctx, 0)
	if err != nil || len(removed) != 1 || removed[0] != b.Hash {
		t.Errorf("Prune(0) after release removed %q, %v", removed, err)
	}
	assertOnlyRoots(t, dir, d.Hash)

	// The current root survives even when it is not held.
	d.Release()
	if removed, err := s.Prune(ctx, 0); err != nil || len(removed) != 0 {
		t.Errorf("Prune removed the current root: %q, %v", removed, err)
	}
	if r, err := s.Current(ctx); err != nil || r.Hash != d.Hash {
		t.Errorf("Current after Prune: %v", err)
	} else {
		r.Release()
	}
	if removed, err := NewStore(filepath.Join(t.TempDir(), "none")).Prune(ctx, 1); err != nil || removed != nil {
		t.Errorf("Prune of a missing store: %q, %v", removed, err)
	}
}

func TestEnsureCleansUpAbandonedBuilds(t *testing.T) {
	t.Parallel()
	bin := smallELF(t, t.TempDir(), "deno")
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.MkdirAll(filepath.Join(dir, buildPrefix+"123", "rootfs", "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, currentTmpName)); err != nil {
		t.Fatal(err)
	}
	r := ensure(t, NewStore(dir), Options{Deno: bin})
	assertOnlyRoots(t, dir, r.Hash)
}

func TestEnsureCancelled(t *testing.T) {
	t.Parallel()
	bin := smallELF(t, t.TempDir(), "deno")
	dir := filepath.Join(t.TempDir(), "store")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewStore(dir).Ensure(ctx, Options{Deno: bin}); !errors.Is(err, context.Canceled) {
		t.Errorf("Ensure with a cancelled context: %v", err)
	}
	assertNoLeftovers(t, dir)
}

func TestCurrentWaitsForLockWithContext(t *testing.T) {
	t.Parallel()
	bin := smallELF(t, t.TempDir(), "deno")
	dir := filepath.Join(t.TempDir(), "store")
	s := NewStore(dir)
	ensure(t, s, Options{Deno: bin})
	lock, err := lockStore(context.Background(), filepath.Join(dir, lockName), syscall.LOCK_EX, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Current(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Current while a build holds the lock: %v, want DeadlineExceeded", err)
	}
}

func TestExtraFilesAndPathOrder(t *testing.T) {
	t.Parallel()
	// "/x/a-b" sorts before "/x/a/b" although a depth-first walk visits it after: the hash must
	// not depend on walk order.
	bin := smallELF(t, t.TempDir(), "deno")
	extra := map[string][]byte{"/x/a-b": []byte("1"), "/x/a/b": []byte("2"), "/x/a.c": []byte("3")}
	r := ensure(t, NewStore(filepath.Join(t.TempDir(), "store")), Options{Deno: bin, Extra: extra})
	if err := r.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, want := range extra {
		if b, err := os.ReadFile(filepath.Join(r.Path, name)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
}

func TestRootPathHasNoSymlinks(t *testing.T) {
	t.Parallel()
	bin := smallELF(t, t.TempDir(), "deno")
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	s := NewStore(filepath.Join(base, "link", "store"))
	r := ensure(t, s, Options{Deno: bin})
	if real, err := filepath.EvalSymlinks(r.Path); err != nil || real != r.Path {
		t.Errorf("Root.Path %s resolves to %s (%v); libcontainer requires a symlink-free rootfs", r.Path, real, err)
	}
	c, err := s.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if c.Path != r.Path {
		t.Errorf("Current().Path %s, Ensure %s", c.Path, r.Path)
	}
}

func TestMountPoints(t *testing.T) {
	deno := testDeno(t)
	ctx := context.Background()
	s := NewStore(t.TempDir())
	base, err := s.Ensure(ctx, Options{Deno: deno})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Ensure(ctx, Options{Deno: deno, MountPoints: []string{"/srv/work/space", "/tmp/inside-tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash == base.Hash {
		t.Fatal("a new mount point must change the root's hash")
	}
	if st, err := os.Stat(filepath.Join(r.Path, "srv/work/space")); err != nil || !st.IsDir() {
		t.Fatalf("mount point not created: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Path, "tmp/inside-tmp")); !os.IsNotExist(err) {
		t.Fatalf("a mount point below /tmp must not be built into the root: %v", err)
	}
	for _, bad := range []string{"relative", "/", "/a/../b", "/sys/x", "/usr/bin/deno"} {
		if _, err := s.Ensure(ctx, Options{Deno: deno, MountPoints: []string{bad}}); err == nil {
			t.Errorf("mount point %q accepted", bad)
		}
	}
}

// TestCopiedStoreVerifiesByContent: a store copied elsewhere (new inodes and ctimes, with or
// without the mtimes) is the same content and is accepted without a rebuild; a copy with one byte
// changed (size and mtime kept) is rejected as damaged and rebuilt.
func TestCopiedStoreVerifiesByContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := smallELF(t, t.TempDir(), "deno")
	src := filepath.Join(t.TempDir(), "store")
	opts := Options{Deno: bin, Bootstrap: map[string][]byte{"b.js": []byte("boot")}}
	ensure(t, NewStore(src), opts).Release()

	flipByte := func(t *testing.T, root string) {
		p := filepath.Join(root, "usr/bin/deno")
		info, err := os.Stat(p)
		must(t, err)
		b, err := os.ReadFile(p)
		must(t, err)
		b[len(b)/2] ^= 1
		must(t, os.WriteFile(p, b, 0o755))
		must(t, os.Chtimes(p, info.ModTime(), info.ModTime()))
	}
	cases := []struct {
		name   string
		cp     []string // cp's flags
		mutate func(t *testing.T, root string)
		stale  bool
	}{
		{name: "cp -a", cp: []string{"-a"}},
		{name: "cp -r (new mtimes)", cp: []string{"-r"}},
		{name: "cp -a, one byte changed", cp: []string{"-a"}, mutate: flipByte, stale: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := filepath.Join(t.TempDir(), "copy")
			if out, err := exec.Command("cp", append(tc.cp, src, dst)...).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, out)
			}
			s := NewStore(dst)
			if tc.mutate != nil {
				tc.mutate(t, filepath.Join(dst, currentName, rootfsName))
			}
			cur, err := s.Current(ctx)
			if tc.stale != errors.Is(err, ErrStale) {
				t.Fatalf("Current of the copy: %v, want stale=%v", err, tc.stale)
			}
			if err == nil {
				cur.Release()
			}
			r := ensure(t, s, opts)
			wantBuilds := int64(0)
			if tc.stale {
				wantBuilds = 1
			}
			if n := s.builds.Load(); n != wantBuilds {
				t.Errorf("builds = %d, want %d", n, wantBuilds)
			}
			if err := r.Verify(ctx); err != nil {
				t.Errorf("Verify: %v", err)
			}
			// Ensure recorded the copy's own inodes, so the next open takes the cheap path.
			var st syscall.Stat_t
			must(t, syscall.Stat(filepath.Join(r.Path, "usr/bin/deno"), &st))
			if e := r.manifest.byPath["/usr/bin/deno"]; e == nil || e.Ino != st.Ino || e.Ctime != st.Ctim.Nano() {
				t.Errorf("manifest entry %+v after Ensure, want inode %d ctime %d", e, st.Ino, st.Ctim.Nano())
			}
		})
	}
}
