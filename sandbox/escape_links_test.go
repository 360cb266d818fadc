package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/conductor-sandbox/conductor/quota"
	"golang.org/x/sys/unix"
)

// probeWorkspaceLinks is probe 22: code in a sandbox with a workspace plants
// symlinks and hard links there that point out of it — to a host file and
// directory the sandbox cannot see (the bait), to the server's state dir, a
// `..` chain, a loop — and replaces the spill directory and its parent with
// links, one of them flipped between link and directory by a child process
// while output spills. Then the host does what it does with a workspace:
// spills output into it, trims old spill files, measures it for the quota
// before a run. From the host: nothing under the bait was opened, read or
// written (inotify, which a read through the link does trip — the control
// at the end), nothing was created in the state dir, the links the host met
// were moved aside rather than followed, every spill file is a regular file
// inside the workspace, and the quota's measure does not count the bait.
func probeWorkspaceLinks(t *testing.T, e *escapeEnv) {
	ws, _ := newWorkspace(t)
	bait := t.TempDir() // a host directory outside the workspace
	baitFile := filepath.Join(bait, "secret")
	secret := bytes.Repeat([]byte("host secret, never to be read through the workspace\n"), (8<<20)/52)
	if err := os.WriteFile(baitFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	secretSum := sha256.Sum256(secret)
	// The quota is below the bait's size: a measure that followed a link
	// to it would refuse the next run.
	const wsQuota = 6 << 20
	const flood = 24 << 10
	r := newTestRunner(t, func(o *Options) {
		o.Workspace = ws
		o.DenoFlags = []string{"--allow-all"}
		o.MaxOutput = 4096
		o.SpillMax = 64 << 10
		o.SpillTotal = 64 << 10 // the second run's finish trims the first run's files
		o.WorkspaceQuota = wsQuota
	})
	stateDir := r.opts.StateDir
	watch := watchDir(t, bait)

	params := func(phase int) map[string]any {
		return map[string]any{"ws": ws, "bait": bait, "baitFile": baitFile, "stateDir": stateDir, "phase": phase, "flood": flood}
	}
	resA := e.runWith(t, r, "links", false, params(1), 30*time.Second)
	if resA.Status != StatusSuccess {
		t.Fatalf("phase 1 run: %s %+v\nstderr: %s", resA.Status, resA.Error, lastLines(resA.Stderr, 10))
	}
	repA := parseReport(t, resA)
	resB := e.runWith(t, r, "links", false, params(2), 30*time.Second)
	if resB.Status != StatusSuccess {
		t.Fatalf("phase 2 run: %s %+v\nstderr: %s", resB.Status, resB.Error, lastLines(resB.Stderr, 10))
	}
	repB := parseReport(t, resB)
	// A plain run on top: the quota is measured before it, with every link
	// still there, and its output spills and trims.
	resC := runCode(t, r, `console.log("y".repeat(20000))`, 30*time.Second)
	e.outputs = append(e.outputs, resC.Stdout+resC.Stderr)
	if resC.Status != StatusSuccess {
		t.Errorf("plain run after the links: %s %+v (a quota measure that followed a link to the %d-byte bait would refuse it: quota %d)",
			resC.Status, resC.Error, len(secret), wsQuota)
	}

	// Measured before the test itself looks at the bait (which the watch
	// would see).
	used, usageErr := quota.Usage(context.Background(), ws, 0)
	own := lstatUsage(t, ws)
	hostEvents := watch.events(t)

	t.Run("inside: links out of the workspace lead nowhere", func(t *testing.T) {
		ok := anyOf("OK")
		expectOutcomes(t, "phase 1", repA.Links, map[string][]string{
			// Planting is allowed: the walls are elsewhere.
			"symlink shadow": ok, "symlink dotdot": ok, "symlink dirlink": ok, "symlink statelink": ok,
			"symlink loop": ok, "symlink etc-shadow": ok, "aside .conductor": ok, "symlink .conductor": ok,
			// The host paths they name do not exist in the sandbox.
			"open shadow": anyOf("ENOENT"), "open dotdot": anyOf("ENOENT"), "open dirlink/secret": anyOf("ENOENT"),
			"open statelink": anyOf("ENOENT"), "open loop": anyOf("ELOOP"),
			// A hard link never crosses a mount: the workspace is a bind
			// mount of its own. The control within it works.
			"link own.txt": ok, "link bait": anyOf("ENOENT"),
			"link root file": anyOf("EXDEV"), "link tmp file": anyOf("EXDEV"), "link proc fd": anyOf("EXDEV"),
			// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH (ENOENT), or since
			// Linux 6.10 an fd the caller opened itself — and then the
			// mount check holds (EXDEV).
			"link empty path": anyOf("ENOENT", "EXDEV"),
		})
		expectOutcomes(t, "phase 2", repB.Links, map[string][]string{
			"aside .conductor": ok, "mkdir .conductor": ok, "mkdir output": ok,
			"symlink spill-named": ok, "symlink spill-named dir": ok, "link spill-named": ok,
		})
		// The child that flipped .conductor while stdout spilled did flip it.
		var st unix.Stat_t
		flips, err := os.ReadFile(filepath.Join(ws, "flips.txt"))
		if err != nil || unix.Lstat(filepath.Join(ws, "flips.txt"), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			t.Errorf("no flips.txt from the flipping child (err %v)", err)
		} else if n, _ := strconv.Atoi(string(flips)); n < 10 {
			t.Errorf("the child flipped .conductor %q times, want at least 10", flips)
		} else {
			t.Logf(".conductor flipped %d times while stdout spilled", n)
		}
	})

	t.Run("host: nothing outside the workspace touched through them", func(t *testing.T) {
		if len(hostEvents) > 0 {
			t.Errorf("the host opened, read or changed the bait outside the workspace (spill, trim or quota): %v", hostEvents)
		}
		entries, err := os.ReadDir(bait)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "secret" {
			t.Errorf("bait directory holds %v, want only secret", dirNames(entries))
		}
		if got, err := os.ReadFile(baitFile); err != nil || sha256.Sum256(got) != secretSum {
			t.Errorf("bait file changed (err %v)", err)
		}
		// The state dir: no spill directory, no spill file, anywhere.
		_ = filepath.WalkDir(stateDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if n := d.Name(); n == spillSub || n == spillParent || spillName.MatchString(n) || strings.Contains(n, ".untrusted-") {
				t.Errorf("the host wrote %s into its state dir through a workspace link", p)
			}
			return nil
		})
		for _, n := range []string{"hl-bait", "hl-passwd", "hl-tmp", "hl-procfd", "hl-emptypath"} {
			if _, err := os.Lstat(filepath.Join(ws, n)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("hard link %s exists in the workspace (err %v)", n, err)
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(ws, "own-hardlink"), &st); err != nil || st.Nlink < 2 {
			t.Errorf("the control hard link within the workspace: nlink %d, err %v", st.Nlink, err)
		}
	})

	t.Run("host: links met by the spill moved aside, spill files inside", func(t *testing.T) {
		// .conductor was a link to the state dir when stderr spilled: the
		// host moved it aside instead of creating output/ in the state dir.
		matches, _ := filepath.Glob(filepath.Join(ws, spillParent+".untrusted-*"))
		found := false
		for _, m := range matches {
			if target, err := os.Readlink(m); err == nil && target == stateDir {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s.untrusted-* link to the state dir in the workspace (have %v): the host did not meet the link", spillParent, matches)
		}
		if resA.StderrFile == "" || resB.StderrFile == "" {
			t.Errorf("stderr was not spilled: phase 1 %q, phase 2 %q", resA.OutputNote, resB.OutputNote)
		}
		// As root the output directory must be the server's: the one the
		// sandbox made in phase 2, with its spill-named links, was moved
		// aside (rootless everything is one uid, and it is used as is:
		// listing and trimming skip its links, lstat).
		if r.ws.asRoot {
			aside, _ := filepath.Glob(filepath.Join(ws, spillParent+"*", spillSub+".untrusted-*", strings.Repeat("a", 32)+".stdout.txt"))
			if len(aside) == 0 {
				t.Errorf("the sandbox's own output directory was not moved aside")
			}
			for _, a := range aside {
				if target, err := os.Readlink(a); err != nil || target != baitFile {
					t.Errorf("%s: %q %v, want the sandbox's link to the bait, untouched", a, target, err)
				}
			}
		}
		for i, res := range []*Result{resA, resB, resC} {
			for _, f := range []string{res.StdoutFile, res.StderrFile} {
				if f == "" {
					continue
				}
				if !strings.HasPrefix(f, ws+"/"+spillDirName+"/") {
					t.Errorf("run %d spilled to %s, outside %s/%s", i, f, ws, spillDirName)
					continue
				}
				var st unix.Stat_t
				if err := unix.Lstat(f, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
					t.Errorf("run %d's spill file %s is not a regular file (mode %#o)", i, f, st.Mode)
				}
			}
			if res.StdoutTruncated && res.StdoutFile == "" && res.OutputNote == "" {
				t.Errorf("run %d: stdout cut, neither spilled nor explained", i)
			}
			t.Logf("run %d: stdout %q stderr %q note %q", i, res.StdoutFile, res.StderrFile, res.OutputNote)
		}
		// The output dir the host uses now is a real directory, reached
		// without links.
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(ws, spillDirName), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%s is not a directory after the runs (mode %#o, err %v)", spillDirName, st.Mode, err)
		}
	})

	t.Run("host: the quota's measure does not follow links", func(t *testing.T) {
		if usageErr != nil {
			t.Fatal(usageErr)
		}
		if used != own || used >= int64(len(secret)) {
			t.Errorf("workspace usage %d, want %d (its own entries' blocks, links not followed; the bait a link points to is %d bytes)", used, own, len(secret))
		}
		t.Logf("workspace usage %d bytes (the bait is %d)", used, len(secret))
	})

	// The control: the watch does see a read through the workspace's link.
	t.Run("control: a read through the link is seen", func(t *testing.T) {
		_ = watch.events(t) // the test's own looks at the bait above
		if _, err := os.ReadFile(filepath.Join(ws, "shadow")); err != nil {
			t.Fatalf("the host could not read through its own workspace link: %v", err)
		}
		if ev := watch.events(t); !strings.Contains(strings.Join(ev, " "), "open secret") {
			t.Errorf("inotify saw %v for a read through ws/shadow, want an open of secret: the watch proves nothing", ev)
		}
	})
}

// lstatUsage is the blocks of everything under dir, each inode once, no
// link followed: what quota.Usage must measure.
func lstatUsage(t *testing.T, dir string) int64 {
	t.Helper()
	seen := map[[2]uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if k := [2]uint64{st.Dev, st.Ino}; !seen[k] {
			seen[k] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return total
}

func dirNames(entries []os.DirEntry) []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

// dirWatch reports what happened in one host directory (inotify).
type dirWatch struct{ fd int }

func watchDir(t *testing.T, dir string) *dirWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		unavailable(t, "inotify: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_ALL_EVENTS); err != nil {
		t.Fatalf("inotify watch %s: %v", dir, err)
	}
	return &dirWatch{fd: fd}
}

// events drains what happened since the last call, as "<kind> <name>".
func (w *dirWatch) events(t *testing.T) []string {
	t.Helper()
	kinds := []struct {
		mask uint32
		name string
	}{
		{unix.IN_OPEN, "open"}, {unix.IN_ACCESS, "read"}, {unix.IN_MODIFY, "write"}, {unix.IN_ATTRIB, "attrib"},
		{unix.IN_CREATE, "create"}, {unix.IN_DELETE, "delete"}, {unix.IN_MOVED_FROM, "moved-from"},
		{unix.IN_MOVED_TO, "moved-to"}, {unix.IN_CLOSE_WRITE, "close-write"}, {unix.IN_CLOSE_NOWRITE, "close"},
		{unix.IN_DELETE_SELF, "delete-self"}, {unix.IN_MOVE_SELF, "move-self"}, {unix.IN_Q_OVERFLOW, "overflow"},
	}
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) || n <= 0 {
			return out
		}
		if err != nil {
			t.Fatalf("inotify read: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00"))
			if name == "" {
				name = "."
			}
			for _, k := range kinds {
				if ev.Mask&k.mask != 0 {
					out = append(out, k.name+" "+name)
				}
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
