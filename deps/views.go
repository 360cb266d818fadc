package deps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/conductor-sandbox/conductor/internal/flock"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Names inside the views directory and inside one view.
const (
	viewsLock    = ".lock"     // flock: shared to open a view, exclusive to remove one
	trashPrefix  = ".trash-"   // a view being removed
	viewCacheDir = "deno-dir"  // the view's DENO_DIR, mounted by every sandbox
	viewPyDir    = "pypi"      // the pypi: packages (pip --target), mounted at config.PyPackagesDir
	viewMeta     = "view.json" // what the view is for (ViewInfo)
	viewHold     = "hold"      // users hold a shared flock on it
	viewMarkers  = "installed" // one file per package whose install succeeded
	tmpSuffix    = ".tmp"      // view.json being written
)

// Sentinel errors.
var (
	// ErrViewsLock means the views directory could not be locked.
	ErrViewsLock = errors.New("dependency cache: cannot lock the views directory")
	// ErrNoView is OpenExisting's answer for a view never created.
	ErrNoView = errors.New("dependency cache: no view for this allowlist yet")
)

// Views is a directory of dependency-cache views, one per canonical
// allowlist (see the package documentation): <dir>/<name>/. It is safe for
// concurrent use by goroutines and processes.
type Views struct {
	dir string
}

// NewViews returns the views under dir (e.g. <data>/deps). Nothing is
// touched until the first call.
func NewViews(dir string) *Views { return &Views{dir: filepath.Clean(dir)} }

// Dir is the views directory.
func (vs *Views) Dir() string { return vs.dir }

// View is one open view: while it is open (until Release) no Prune, in this
// process or another, removes it.
type View struct {
	Name string // the view's name (ViewKey.Name)
	Dir  string // <views>/<name>
	// Cache is the view's DENO_DIR on the host: what sandboxes mount
	// (read-only to run code, writable to install into).
	Cache string
	// PyPackages is the directory of the view's pypi: packages on the host
	// (pip's --target; mounted read-only at config.PyPackagesDir in runs,
	// writable in the pip install sandbox). Open creates it when the
	// allowlist has pypi: packages; it may not exist otherwise.
	PyPackages string
	hold       *os.File
}

// ViewInfo describes a view, as stored in its view.json.
type ViewInfo struct {
	Name     string    `json:"name"`
	Packages []string  `json:"packages"` // the admin's entries, sorted
	Registry string    `json:"registry"`
	Deno     string    `json:"deno"`
	Python   string    `json:"python,omitempty"`
	PyIndex  string    `json:"pyIndex,omitempty"`
	Created  time.Time `json:"created"`
	// Filled in by List:
	Dir      string    `json:"dir,omitempty"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
	InUse    bool      `json:"inUse,omitempty"` // a process holds it open now
}

// Open opens (creating it if needed) the view for k and holds it until
// Release. The view's directory and its cache are made 0755, so the
// sandbox's unprivileged uid can enter them (the data directory above must
// be searchable too; the sandbox runner checks).
func (vs *Views) Open(ctx context.Context, k ViewKey) (*View, error) {
	return vs.open(ctx, k, true)
}

// OpenExisting is Open for a view that exists: ErrNoView if it does not.
func (vs *Views) OpenExisting(ctx context.Context, k ViewKey) (*View, error) {
	return vs.open(ctx, k, false)
}

func (vs *Views) open(ctx context.Context, k ViewKey, create bool) (_ *View, retErr error) {
	name := k.Name()
	v := &View{Name: name, Dir: filepath.Join(vs.dir, name)}
	v.Cache = filepath.Join(v.Dir, viewCacheDir)
	v.PyPackages = PyPackagesIn(v.Dir)
	if !create {
		if _, err := os.Stat(v.Cache); errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoView
		}
	}
	if err := os.MkdirAll(vs.dir, 0o755); err != nil {
		return nil, fmt.Errorf("dependency cache: %w", err)
	}
	lock, err := vs.lock(ctx, syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if !create {
		// Again under the lock: a Prune may have removed it meanwhile.
		if _, err := os.Stat(v.Cache); errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoView
		}
	}
	if err := os.MkdirAll(v.Cache, 0o755); err != nil {
		return nil, fmt.Errorf("dependency cache view: %w", err)
	}
	if create {
		dirs := []string{v.Dir, v.Cache}
		if len(k.Allowlist.PythonPackages()) > 0 {
			if err := os.MkdirAll(v.PyPackages, 0o755); err != nil {
				return nil, fmt.Errorf("dependency cache view: %w", err)
			}
			dirs = append(dirs, v.PyPackages)
		}
		for _, d := range dirs { // whatever the umask
			if err := os.Chmod(d, 0o755); err != nil {
				return nil, fmt.Errorf("dependency cache view: %w", err)
			}
		}
	}
	if err := writeMeta(v.Dir, k); err != nil {
		return nil, err
	}
	v.hold, err = os.OpenFile(filepath.Join(v.Dir, viewHold), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dependency cache view: %w", err)
	}
	defer func() {
		if retErr != nil {
			v.hold.Close()
		}
	}()
	if err := flock.Lock(ctx, v.hold, syscall.LOCK_SH); err != nil {
		return nil, err
	}
	now := time.Now()
	_ = os.Chtimes(v.Dir, now, now) // last used: Prune keeps the most recent
	return v, nil
}

// CacheDir is Cache, or "" for a nil view (no packages: nothing to mount).
func (v *View) CacheDir() string {
	if v == nil {
		return ""
	}
	return v.Cache
}

// Release lets Prune remove the view again. A nil view is a no-op.
func (v *View) Release() error {
	if v == nil || v.hold == nil {
		return nil
	}
	err := v.hold.Close()
	v.hold = nil
	return err
}

// marker is the file recording that p installed into the view.
func (v *View) marker(p Package) string {
	sum := sha256.Sum256([]byte(p.Specifier()))
	return filepath.Join(v.Dir, viewMarkers, hex.EncodeToString(sum[:8]))
}

// Installed reports whether p's install into the view succeeded before
// (never, for a nil view).
func (v *View) Installed(p Package) bool {
	if v == nil {
		return false
	}
	_, err := os.Stat(v.marker(p))
	return err == nil
}

// MarkInstalled records that p installed into the view.
func (v *View) MarkInstalled(p Package) error {
	m := v.marker(p)
	if err := os.MkdirAll(filepath.Dir(m), 0o755); err != nil {
		return fmt.Errorf("dependency cache view: %w", err)
	}
	return os.WriteFile(m, []byte(p.Specifier()+"\n"), 0o644)
}

// writeMeta writes <dir>/view.json once (atomically).
func writeMeta(dir string, k ViewKey) error {
	path := filepath.Join(dir, viewMeta)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	info := ViewInfo{Name: k.Name(), Registry: strings.TrimRight(k.Registry, "/"), Deno: k.Deno, Created: time.Now().UTC()}
	if len(k.Allowlist.PythonPackages()) > 0 {
		info.Python, info.PyIndex = k.Python, strings.TrimRight(k.PyIndex, "/")
	}
	for _, p := range k.Allowlist.Packages() {
		info.Packages = append(info.Packages, p.Specifier())
	}
	slices.Sort(info.Packages)
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("dependency cache view: %w", err)
	}
	tmp, err := os.CreateTemp(dir, viewMeta+".*"+tmpSuffix)
	if err != nil {
		return fmt.Errorf("dependency cache view: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("dependency cache view: %w", err)
	}
	_ = os.Chmod(tmp.Name(), 0o644)
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("dependency cache view: %w", err)
	}
	return nil
}

// Inspect returns what is known of the view for k without creating or
// holding it; ok is false when it does not exist. installed lists the
// packages of k whose install into it succeeded.
func (vs *Views) Inspect(k ViewKey) (dir string, installed []Package, ok bool) {
	v := &View{Name: k.Name(), Dir: filepath.Join(vs.dir, k.Name())}
	if st, err := os.Stat(v.Dir); err != nil || !st.IsDir() {
		return v.Dir, nil, false
	}
	for _, p := range k.Allowlist.Packages() {
		if v.Installed(p) {
			installed = append(installed, p)
		}
	}
	return v.Dir, installed, true
}

// List returns every view, most recently used first, and the names of the
// entries of the views directory that belong to no view (the old shared
// layout's content, which no sandbox mounts any more).
func (vs *Views) List(ctx context.Context) (views []ViewInfo, legacy []string, err error) {
	ents, err := os.ReadDir(vs.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dependency cache: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		switch {
		case e.Name() == viewsLock || strings.HasPrefix(e.Name(), trashPrefix):
		case e.IsDir() && IsViewName(e.Name()):
			views = append(views, vs.info(e.Name()))
		default:
			legacy = append(legacy, e.Name())
		}
	}
	slices.SortFunc(views, func(a, b ViewInfo) int { return b.LastUsed.Compare(a.LastUsed) })
	return views, legacy, nil
}

// info reads one view's view.json and state.
func (vs *Views) info(name string) ViewInfo {
	dir := filepath.Join(vs.dir, name)
	var info ViewInfo
	if b, err := os.ReadFile(filepath.Join(dir, viewMeta)); err == nil {
		_ = json.Unmarshal(b, &info)
	}
	info.Name, info.Dir = name, dir
	if st, err := os.Stat(dir); err == nil {
		info.LastUsed = st.ModTime()
	}
	held, _ := isHeld(dir)
	info.InUse = held
	return info
}

// PruneOptions say what Prune keeps besides every view in use.
type PruneOptions struct {
	Keep       []string // views kept by name (the current one)
	KeepRecent int      // the most recently used other views kept
	Legacy     bool     // also remove the old shared layout's content
}

// Prune removes every view that no process holds open, except those opts
// keeps, and, with opts.Legacy, the content of the old shared layout. It
// returns what it removed. While it runs no view can be opened, so a view
// it finds unheld stays unheld until it is gone.
func (vs *Views) Prune(ctx context.Context, opts PruneOptions) ([]string, error) {
	if _, err := os.Stat(vs.dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	lock, err := vs.lock(ctx, syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	vs.sweepTrash()
	views, legacy, err := vs.List(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	recent := 0
	for _, v := range views {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if slices.Contains(opts.Keep, v.Name) || v.InUse {
			continue
		}
		if recent < opts.KeepRecent {
			recent++
			continue
		}
		if err := vs.discard(v.Name); err != nil {
			return removed, err
		}
		removed = append(removed, v.Name)
	}
	if opts.Legacy {
		for _, name := range legacy {
			if err := os.RemoveAll(filepath.Join(vs.dir, name)); err != nil {
				return removed, fmt.Errorf("dependency cache: %w", err)
			}
			removed = append(removed, name)
		}
	}
	return removed, nil
}

// discard moves a view aside (atomically: a half-removed view is never
// found under its name) and removes it. The caller holds the lock
// exclusively.
func (vs *Views) discard(name string) error {
	trash, err := os.MkdirTemp(vs.dir, trashPrefix)
	if err != nil {
		return fmt.Errorf("dependency cache: %w", err)
	}
	if err := os.Rename(filepath.Join(vs.dir, name), filepath.Join(trash, name)); err != nil {
		return fmt.Errorf("dependency cache: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("dependency cache: %w", err)
	}
	return nil
}

// sweepTrash removes what an interrupted discard left. The caller holds the
// lock exclusively.
func (vs *Views) sweepTrash() {
	ents, _ := os.ReadDir(vs.dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), trashPrefix) {
			_ = os.RemoveAll(filepath.Join(vs.dir, e.Name()))
		}
	}
}

// lock opens and locks <dir>/.lock.
func (vs *Views) lock(ctx context.Context, how int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(vs.dir, viewsLock), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrViewsLock, err)
	}
	if err := flock.Lock(ctx, f, how); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", ErrViewsLock, err)
	}
	return f, nil
}

// isHeld reports whether a process holds the view at dir open.
func isHeld(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, viewHold))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	got, err := flock.Try(f, syscall.LOCK_EX)
	return !got && err == nil, err
}

// Unmark forgets that p installed into the view (before its files are
// replaced). A nil view is a no-op.
func (v *View) Unmark(p Package) error {
	if v == nil {
		return nil
	}
	if err := os.Remove(v.marker(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dependency cache view: %w", err)
	}
	return nil
}

// PyPackagesIn is the pypi: packages directory of the view at dir (View.PyPackages).
func PyPackagesIn(dir string) string { return filepath.Join(dir, viewPyDir) }
