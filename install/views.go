package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/runtimes"
)

// DenoVersion is the first line of `deno --version`, e.g. "deno 2.9.6
// (stable, release, x86_64-unknown-linux-gnu)": part of a view's name, since
// deno's cache layout may change between versions.
func DenoVersion(ctx context.Context, deno string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, deno, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", deno, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}

// ViewKey names the view of the dependency cache for allow: the npm
// registry and the version of the deno at hostDeno, and for pypi: packages
// the Python interpreter (py, nil when none is offered) and the index.
func ViewKey(ctx context.Context, hostDeno string, allow *deps.Allowlist, reg, index *url.URL, py *runtimes.Runtime) (deps.ViewKey, error) {
	dv, err := DenoVersion(ctx, hostDeno)
	if err != nil {
		return deps.ViewKey{}, fmt.Errorf("dependency cache: %w", err)
	}
	k := deps.ViewKey{Allowlist: allow, Registry: URLString(reg), Deno: dv, PyIndex: URLString(index)}
	if py != nil {
		k.Python = py.Version + " " + py.Programs[0].Host
	}
	return k, nil
}

// OpenView opens and holds this allowlist's view of the dependency cache in
// dir (deps.NewViews): the only cache a sandbox of this process mounts. With
// create false a missing view is not created: the result is nil (nothing to
// mount).
func OpenView(ctx context.Context, dir, hostDeno string, allow *deps.Allowlist, reg, index *url.URL, py *runtimes.Runtime, create bool) (*deps.View, error) {
	k, err := ViewKey(ctx, hostDeno, allow, reg, index, py)
	if err != nil {
		return nil, err
	}
	views := deps.NewViews(dir)
	if create {
		return views.Open(ctx, k)
	}
	v, err := views.OpenExisting(ctx, k)
	if errors.Is(err, deps.ErrNoView) {
		return nil, nil
	}
	return v, err
}

// PruneViews removes the views in dir no process uses, keeping current and
// the most recently used other one (so switching the allowlist back and
// forth does not download again). Failures are logged: the current view is
// usable.
func PruneViews(ctx context.Context, dir string, current *deps.View, log *slog.Logger) {
	removed, err := deps.NewViews(dir).Prune(ctx, deps.PruneOptions{Keep: []string{current.Name}, KeepRecent: 1})
	if err != nil {
		log.Warn("removing unused dependency cache views failed", "dir", dir, "err", err)
	}
	if len(removed) > 0 {
		log.Info("removed unused dependency cache views", "dir", dir, "views", removed)
	}
}
