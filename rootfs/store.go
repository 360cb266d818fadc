package rootfs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/conductor-sandbox/conductor/internal/flock"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Options are the inputs of a root.
type Options struct {
	Deno string // path of the deno binary on the host: the root's first program, at /usr/bin/deno
	// Programs are the root's other programs (CLI tools, runtimes), each with its data and, like
	// deno, its library closure. Adding or changing one changes the root's hash.
	Programs  []Program
	Bootstrap map[string][]byte // files placed under /conductor/ in the root, e.g. "bootstrap.js"
	Extra     map[string][]byte // optional extra files by absolute in-root path (for tests)
	// MountPoints are extra empty directories (absolute, clean) the sandbox
	// bind-mounts host directories over, such as the workspace at its own
	// path. A path below one of the root's own mount points needs none.
	MountPoints []string
	// FullVerify makes Ensure re-hash an existing root (~100 ms) before reusing it, and rebuild it
	// on a mismatch, instead of trusting the cheap stat-based check.
	FullVerify bool
}

// Store manages roots under a directory (e.g. <checkout>/.build/rootfs or
// /var/lib/conductor/rootfs). It is safe for concurrent use by goroutines and processes.
type Store struct {
	dir      string
	resolver *resolver
	log      *slog.Logger
	builds   atomic.Int64 // roots built by this Store value (tests)
}

// Names inside the store directory.
const (
	lockName       = ".lock"
	currentName    = "current"
	currentTmpName = ".current.tmp"
	buildPrefix    = ".build-"
	trashPrefix    = ".trash-"
)

// NewStore returns a store rooted at dir. Nothing is touched until the first call.
// It logs nothing; use WithLogger to see builds.
func NewStore(dir string) *Store {
	return &Store{dir: filepath.Clean(dir), resolver: defaultResolver(), log: slog.New(slog.DiscardHandler)}
}

// WithLogger makes the store log builds and prunes to log.
func (s *Store) WithLogger(log *slog.Logger) *Store {
	s.log = log
	return s
}

// Ensure returns the current root for opts, building it if the content hash of what it would
// build differs from the current one; see the package documentation for the layout. After
// switching to a new root it prunes old ones, keeping the previous root and every held root.
// The returned root is held until Release.
func (s *Store) Ensure(ctx context.Context, opts Options) (*Root, error) {
	dir, err := s.resolveDir(true)
	if err != nil {
		return nil, err
	}
	lock, err := lockStore(ctx, filepath.Join(dir, lockName), syscall.LOCK_EX, true)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	s.sweep(dir)

	dc := loadDigests(digestCachePath(dir))
	p, err := newPlan(ctx, opts, s.resolver, dc)
	if err != nil {
		return nil, err
	}
	if err := dc.save(); err != nil {
		s.log.Warn("rootfs: digest cache not saved", "err", err)
	}

	cur, err := readCurrent(dir)
	if errors.Is(err, ErrStale) {
		s.log.Warn("rootfs: replacing a damaged current link", "err", err)
	} else if err != nil && !errors.Is(err, ErrNotBuilt) {
		return nil, err
	}
	if cur == p.hash {
		r, err := open(ctx, dir, p.hash)
		if err == nil && opts.FullVerify {
			if err = r.Verify(ctx); err != nil {
				r.Release()
			}
		}
		if err == nil {
			s.recordStats(dir, r)
			return r, nil
		}
		if !errors.Is(err, ErrStale) {
			return nil, err
		}
		// Damaged: the check below fails the same way, discards it and rebuilds.
	}

	hashDir := filepath.Join(dir, p.hash)
	if err := usable(ctx, hashDir, p.hash, opts.FullVerify); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("rootfs: discarding a damaged root and rebuilding it", "hash", p.hash, "err", err)
			if err := discard(dir, p.hash); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		if err := build(ctx, dir, p); err != nil {
			return nil, err
		}
		s.builds.Add(1)
		s.log.Info("rootfs: built root", "hash", p.hash, "dir", hashDir, "took", time.Since(start))
	}
	if err := setCurrent(dir, p.hash); err != nil {
		return nil, err
	}
	r, err := open(ctx, dir, p.hash)
	if err != nil {
		return nil, err
	}
	s.recordStats(dir, r)
	if cur != p.hash {
		if _, err := prune(ctx, dir, 2); err != nil {
			s.log.Warn("rootfs: pruning old roots failed", "err", err)
		}
	}
	return r, nil
}

// recordStats writes back the manifest of a root whose files open verified by content because
// their inodes or times were not the recorded ones (a copied or restored store), so the next open
// takes the cheap path. The caller holds the store lock exclusively. A store that cannot be
// written keeps working; every open of it then hashes those files.
func (s *Store) recordStats(dir string, r *Root) {
	if !r.refreshed {
		return
	}
	if err := r.manifest.replace(filepath.Join(dir, r.Hash, manifestName)); err != nil {
		s.log.Warn("rootfs: recording a copied root's file stats failed; it is verified by content at every open", "hash", r.Hash, "err", err)
		return
	}
	r.refreshed = false
	s.log.Info("rootfs: root verified by content and its file stats recorded (copied or restored store)", "hash", r.Hash)
}

// Current returns the current root without building: ErrNotBuilt if there is none, ErrStale if
// the cheap check (see the package documentation) finds it changed since it was built. The
// returned root is held until Release.
func (s *Store) Current(ctx context.Context) (*Root, error) {
	dir, err := s.resolveDir(false)
	if err != nil {
		return nil, err
	}
	lock, err := lockStore(ctx, filepath.Join(dir, lockName), syscall.LOCK_SH, false)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	hash, err := readCurrent(dir)
	if err != nil {
		return nil, err
	}
	return open(ctx, dir, hash)
}

// Prune removes roots other than the current one, keeping the keep most recently current
// (the current root counts; keep < 1 means 1) and every root that is held. It returns the
// hashes removed.
func (s *Store) Prune(ctx context.Context, keep int) ([]string, error) {
	dir, err := s.resolveDir(false)
	if errors.Is(err, ErrNotBuilt) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lock, err := lockStore(ctx, filepath.Join(dir, lockName), syscall.LOCK_EX, false)
	if errors.Is(err, ErrNotBuilt) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	return prune(ctx, dir, keep)
}

// resolveDir returns the store directory as an absolute path without symlinks (libcontainer
// refuses a rootfs path that goes through one), creating it if asked. A missing directory is
// ErrNotBuilt otherwise.
func (s *Store) resolveDir(create bool) (string, error) {
	dir, err := filepath.Abs(s.dir)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("rootfs: %w", err)
		}
	}
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return "", ErrNotBuilt
	}
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	return real, nil
}

// readCurrent returns the hash the current link names.
func readCurrent(dir string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, currentName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNotBuilt
	}
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if !isHash(target) {
		return "", fmt.Errorf("%w: %s/%s points at %q", ErrStale, dir, currentName, target)
	}
	return target, nil
}

// isHash reports whether name looks like a root directory name.
func isHash(name string) bool {
	if len(name) != 64 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil && strings.ToLower(name) == name
}

// usable checks an existing <hash> directory (cheaply, or in full); fs.ErrNotExist if there is none.
func usable(ctx context.Context, hashDir, hash string, full bool) error {
	if _, err := os.Lstat(hashDir); err != nil {
		return err
	}
	m, err := readManifest(filepath.Join(hashDir, manifestName), hash)
	if err != nil {
		return err
	}
	rootDir := filepath.Join(hashDir, rootfsName)
	if _, err := m.check(ctx, rootDir); err != nil || !full {
		return err
	}
	return verifyTree(ctx, rootDir, hash, m)
}

// setCurrent atomically points <dir>/current at hash, and marks the root's directory mtime as
// the moment it became current (the order Prune keeps by).
func setCurrent(dir, hash string) error {
	tmp := filepath.Join(dir, currentTmpName)
	os.Remove(tmp)
	if err := os.Symlink(hash, tmp); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, currentName)); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	now := time.Now()
	if err := os.Chtimes(filepath.Join(dir, hash), now, now); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// sweep removes what crashed builds, switches and removals left behind. Callers hold the store
// lock exclusively, so no build is in progress.
func (s *Store) sweep(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), buildPrefix):
			if err := os.RemoveAll(name); err != nil {
				s.log.Warn("rootfs: removing an abandoned build failed", "dir", name, "err", err)
			}
		case strings.HasPrefix(e.Name(), trashPrefix):
			sub, _ := os.ReadDir(name)
			for _, d := range sub {
				if _, err := removeUnheld(filepath.Join(name, d.Name())); err != nil {
					s.log.Warn("rootfs: removing a discarded root failed", "dir", name, "err", err)
				}
			}
			os.Remove(name) // succeeds once empty
		case e.Name() == currentTmpName:
			os.Remove(name)
		}
	}
}

// discard moves <dir>/<hash> aside into a .trash- directory and removes it unless it is held
// (then a later sweep does).
func discard(dir, hash string) error {
	trash, err := os.MkdirTemp(dir, trashPrefix)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	moved := filepath.Join(trash, hash)
	if err := os.Rename(filepath.Join(dir, hash), moved); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if removed, err := removeUnheld(moved); err != nil || !removed {
		return err
	}
	return os.Remove(trash)
}

// removeUnheld removes the root directory d unless a reader holds it, and reports whether it did.
func removeUnheld(d string) (bool, error) {
	hold, err := os.Open(filepath.Join(d, holdName))
	if err == nil {
		defer hold.Close()
		got, err := flock.Try(hold, syscall.LOCK_EX)
		if err != nil || !got {
			return false, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("rootfs: %w", err)
	}
	if err := os.RemoveAll(d); err != nil {
		return false, fmt.Errorf("rootfs: %w", err)
	}
	return true, nil
}

// isHeld reports whether a reader holds the root directory d. Under the exclusive store lock
// the answer cannot change, as readers take their hold under the shared store lock.
func isHeld(d string) (bool, error) {
	hold, err := os.Open(filepath.Join(d, holdName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rootfs: %w", err)
	}
	defer hold.Close()
	got, err := flock.Try(hold, syscall.LOCK_EX)
	return !got, err
}

// prune implements Store.Prune; the caller holds the store lock exclusively.
func prune(ctx context.Context, dir string, keep int) ([]string, error) {
	cur, err := readCurrent(dir)
	if err != nil && !errors.Is(err, ErrNotBuilt) && !errors.Is(err, ErrStale) {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	type cand struct {
		hash  string
		mtime time.Time
	}
	var cands []cand
	for _, e := range ents {
		if !e.IsDir() || !isHash(e.Name()) || e.Name() == cur {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		cands = append(cands, cand{e.Name(), info.ModTime()})
	}
	slices.SortFunc(cands, func(a, b cand) int { return b.mtime.Compare(a.mtime) })
	keep = max(keep, 1)
	if cur != "" {
		keep--
	}
	var removed []string
	for i, c := range cands {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if i < keep {
			continue
		}
		held, err := isHeld(filepath.Join(dir, c.hash))
		if err != nil {
			return removed, err
		}
		if held {
			continue
		}
		if err := discard(dir, c.hash); err != nil {
			return removed, err
		}
		removed = append(removed, c.hash)
	}
	return removed, nil
}
