package sandbox

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Spill files: where the full output goes, inside the workspace, when the
// inline copy is capped.
const (
	spillParent  = ".conductor"
	spillSub     = "output"
	spillDirName = spillParent + "/" + spillSub
	// DefaultSpillTotal bounds all spill files together when
	// Options.SpillTotal is 0.
	DefaultSpillTotal = 256 << 20
	// spillDirMode lets a sandbox reach a spill file by its exact path but
	// not list the directory, nor create, rename or remove anything in it.
	spillDirMode = 0o711
	spillMode    = 0o644
	// spillTokenBytes of randomness name one run's spill files.
	spillTokenBytes = 16
	// dirAttempts bounds how often a tampered directory is replaced in one open.
	dirAttempts = 3
)

// spillName matches the files conductor creates in the output directory;
// trimming touches nothing else.
var spillName = regexp.MustCompile(`^([0-9a-f]{32})\.(stdout|stderr)\.txt$`)

// ErrSpillDir reports an output directory that could not be made trustworthy.
var ErrSpillDir = errors.New("workspace output directory")

// workspace is the host side of MCP_CONDUCTOR_WORKSPACE.
type workspace struct {
	path     string
	shown    string // the path the sandbox sees it at; "" = path (see Runner.workspaceOf)
	uid, gid int    // the directory's owner; spill files are given to it
	asRoot   bool   // root mode: the output dir is the server's, files the owner's
	dirUID   int    // owner of the output dir in root mode: one the sandbox cannot map
	spillMax int64
	total    int64
	log      *slog.Logger

	mu     sync.Mutex      // serialises trimming with the set of open spills
	active map[string]bool // tokens of runs whose spill files may still grow
}

func makeWorkspace(path string, uid, gid int, asRoot bool, spillMax, total int64, log *slog.Logger) *workspace {
	w := &workspace{path: path, uid: uid, gid: gid, asRoot: asRoot, spillMax: spillMax, total: total, log: log, active: map[string]bool{}}
	w.dirUID = os.Geteuid()
	if w.dirUID == uid {
		// The sandbox writes as the workspace's owner: the output dir
		// must belong to someone else, whom its mount does not map.
		w.dirUID = nobodyID
		if uid == nobodyID {
			w.dirUID = 0
		}
	}
	return w
}

// sandboxPath is where the sandbox sees the workspace.
func (w *workspace) sandboxPath() string {
	if w.shown != "" {
		return w.shown
	}
	return w.path
}

// resolveSafely is how the host opens anything inside the workspace: the
// sandbox may have planted symlinks there, and none may be followed, nor may
// the path leave the workspace.
var resolveSafely = &unix.OpenHow{Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}

// spillRun is one run's spill: both of its streams share the random token
// that names their files and the budget of spillMax bytes.
type spillRun struct {
	ws     *workspace
	token  string
	tokErr error
	left   atomic.Int64
	used   atomic.Bool // a file was created
	done   sync.Once
}

func (w *workspace) newRun() *spillRun {
	s := &spillRun{ws: w}
	var rnd [spillTokenBytes]byte
	if _, err := unix.Getrandom(rnd[:], 0); err != nil {
		s.tokErr = fmt.Errorf("spill name: %w", err)
	}
	s.token = hex.EncodeToString(rnd[:])
	s.left.Store(w.spillMax)
	return s
}

// take claims up to n bytes of the run's budget and returns how many it got.
func (s *spillRun) take(n int64) int64 {
	for {
		left := s.left.Load()
		got := min(left, n)
		if got <= 0 {
			return 0
		}
		if s.left.CompareAndSwap(left, left-got) {
			return got
		}
	}
}

// open creates the run's spill file for stream, exclusively, in the verified
// output directory. It returns the file and its path, the same on both sides.
func (s *spillRun) open(stream string) (*os.File, string, error) {
	if s.tokErr != nil {
		return nil, "", s.tokErr
	}
	w := s.ws
	w.mu.Lock()
	w.active[s.token] = true
	w.mu.Unlock()
	s.used.Store(true)
	dir, err := w.outputDir()
	if err != nil {
		return nil, "", err
	}
	defer unix.Close(dir)
	name := s.token + "." + stream + ".txt"
	how := *resolveSafely
	how.Flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	how.Mode = spillMode
	fd, err := unix.Openat2(dir, name, &how)
	if err != nil {
		return nil, "", fmt.Errorf("workspace: create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Chmod(spillMode); err != nil { // whatever the umask
		f.Close()
		return nil, "", fmt.Errorf("workspace: chmod %s: %w", name, err)
	}
	if w.asRoot {
		if err := f.Chown(w.uid, w.gid); err != nil {
			f.Close()
			return nil, "", fmt.Errorf("workspace: chown %s: %w", name, err)
		}
	}
	return f, filepath.Join(w.sandboxPath(), spillDirName, name), nil
}

// finish ends the run's spill: its files are closed (by the caller) and
// may now count towards trimming, which keeps them as the newest.
func (s *spillRun) finish() {
	if s.used.Load() {
		s.done.Do(s.trim)
	}
}

func (s *spillRun) trim() {
	w := s.ws
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.active, s.token)
	removed, err := w.trimLocked(s.token)
	if err != nil {
		w.log.Warn("trimming spill files", "err", err)
	}
	if len(removed) > 0 {
		w.log.Info("removed old spill files", "files", removed, "limit", w.total)
	}
}

// outputDir opens .conductor/output, making it if needed, as a directory
// the host can trust: reached without links, and in root mode owned by
// dirUID with mode 0711. Anything else there (a sandbox-made directory, a
// link, a file) is moved aside and replaced.
func (w *workspace) outputDir() (int, error) {
	root, err := unix.Open(w.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("workspace: %w", err)
	}
	defer unix.Close(root)
	parent, err := w.ensureDir(root, spillParent, false)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	return w.ensureDir(parent, spillSub, true)
}

// ensureDir opens name in parent as a real directory. A trusted directory
// must also be the server's own (root mode).
func (w *workspace) ensureDir(parent int, name string, trusted bool) (int, error) {
	mode := uint32(0o755)
	if trusted {
		mode = spillDirMode
	}
	for range dirAttempts {
		created := unix.Mkdirat(parent, name, mode) == nil
		how := *resolveSafely
		how.Flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		fd, err := unix.Openat2(parent, name, &how)
		var bad string
		switch {
		case err == nil:
			if bad = w.adopt(fd, created, trusted); bad == "" {
				return fd, nil
			}
			unix.Close(fd)
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.EXDEV):
			bad = "not a plain directory: " + err.Error()
		default:
			return -1, fmt.Errorf("%w: open %s: %w", ErrSpillDir, name, err)
		}
		if err := w.moveAside(parent, name, bad); err != nil {
			return -1, err
		}
	}
	return -1, fmt.Errorf("%w: %s keeps being replaced", ErrSpillDir, name)
}

// adopt fixes up a directory the host just made and says what is wrong with
// an existing one ("" = nothing).
func (w *workspace) adopt(fd int, created, trusted bool) string {
	if !w.asRoot {
		if created && trusted {
			_ = unix.Fchmod(fd, spillDirMode)
		}
		return "" // rootless: everything is one uid; nothing to tell apart
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err.Error()
	}
	if !trusted {
		if created {
			_ = unix.Fchown(fd, w.uid, w.gid)
		}
		return ""
	}
	if created && int(st.Uid) == os.Geteuid() {
		if err := unix.Fchown(fd, w.dirUID, -1); err != nil {
			return "chown: " + err.Error()
		}
		if err := unix.Fchmod(fd, spillDirMode); err != nil {
			return "chmod: " + err.Error()
		}
		if err := unix.Fstat(fd, &st); err != nil {
			return err.Error()
		}
	}
	if int(st.Uid) != w.dirUID || st.Mode&0o7777 != spillDirMode {
		return fmt.Sprintf("owner %d mode %#o, want owner %d mode %#o (made or changed by a sandbox?)", st.Uid, st.Mode&0o7777, w.dirUID, spillDirMode)
	}
	return ""
}

// moveAside renames a tampered entry out of the way, keeping it for the
// admin to look at. A rename never follows a link.
func (w *workspace) moveAside(parent int, name, why string) error {
	var rnd [4]byte
	_, _ = unix.Getrandom(rnd[:], 0)
	aside := fmt.Sprintf("%s.untrusted-%s", name, hex.EncodeToString(rnd[:]))
	if err := unix.Renameat2(parent, name, parent, aside, unix.RENAME_NOREPLACE); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w: %s is %s, and moving it aside failed: %w", ErrSpillDir, name, why, err)
	}
	w.log.Warn("moved an untrusted spill directory aside", "workspace", w.path, "name", name, "to", aside, "why", why)
	return nil
}

type spillFile struct {
	name  string
	token string
	size  int64
	mtime int64 // ns
}

// trimLocked removes the oldest spill files until all of them fit in the
// total, never one of keep's run or of a run still writing. Only regular
// files with conductor's spill names are counted or removed.
func (w *workspace) trimLocked(keep string) ([]string, error) {
	dir, err := w.outputDir()
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	files, sum, err := w.listSpills(dir)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b spillFile) int { return int(min(max(a.mtime-b.mtime, -1), 1)) })
	var removed []string
	for _, f := range files {
		if sum <= w.total {
			break
		}
		if f.token == keep || w.active[f.token] {
			continue
		}
		if err := unix.Unlinkat(dir, f.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return removed, fmt.Errorf("remove %s: %w", f.name, err)
		}
		sum -= f.size
		removed = append(removed, f.name)
	}
	return removed, nil
}

func (w *workspace) listSpills(dir int) ([]spillFile, int64, error) {
	dup, err := unix.Dup(dir)
	if err != nil {
		return nil, 0, err
	}
	d := os.NewFile(uintptr(dup), spillDirName)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", spillDirName, err)
	}
	var files []spillFile
	var sum int64
	for _, name := range names {
		m := spillName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || (w.asRoot && int(st.Uid) != w.uid) {
			continue
		}
		size := max(st.Size, st.Blocks*512)
		files = append(files, spillFile{name: name, token: m[1], size: size, mtime: st.Mtim.Nano()})
		sum += size
	}
	return files, sum, nil
}

// workspaceName is what Runner.workspaceOf accepts: an identity's name, never a path.
var workspaceName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// workspaceOf is the workspace of identity name: <workspace>/<name>/, made on first use (0700,
// owned as the workspace; a link or anything but a directory there is refused), seen by the
// sandbox at the workspace's path.
func (r *Runner) workspaceOf(name string) (*workspace, error) {
	if !workspaceName.MatchString(name) {
		return nil, fmt.Errorf("workspace of %q: not an identity name (1 to 32 of a-z 0-9 _ -)", name)
	}
	r.idWSMu.Lock()
	defer r.idWSMu.Unlock()
	if w := r.idWS[name]; w != nil {
		return w, nil
	}
	base := r.ws
	dir, err := unix.Open(base.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: %w", base.path, err)
	}
	defer unix.Close(dir)
	if err := unix.Mkdirat(dir, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("workspace of %s: mkdir: %w", name, err)
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workspace of %s: %s/%s is not a directory (a link?): %w", name, base.path, name, err)
	}
	defer unix.Close(fd)
	if base.asRoot {
		if err := unix.Fchown(fd, base.uid, base.gid); err != nil {
			return nil, fmt.Errorf("workspace of %s: chown: %w", name, err)
		}
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		return nil, fmt.Errorf("workspace of %s: chmod: %w", name, err)
	}
	w := makeWorkspace(filepath.Join(base.path, name), base.uid, base.gid, base.asRoot, base.spillMax, base.total, base.log)
	w.shown = base.path
	if r.idWS == nil {
		r.idWS = map[string]*workspace{}
	}
	r.idWS[name] = w
	return w, nil
}
