package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/install"
	"github.com/conductor-sandbox/conductor/runtimes"
)

// installOptions are the app's install: its runner, root, view, allowlist and sources.
func (a *app) installOptions(log *slog.Logger) install.Options {
	return install.Options{
		Sandboxes: a.runner,
		DenoPath:  a.root.DenoPath,
		DenoDir:   a.root.DenoDir,
		View:      a.view,
		Allow:     a.allow,
		Registry:  a.registry,
		Index:     a.index,
		Python:    pythonRuntime(a.runtimes),
		Logger:    log,
	}
}

// installPackages fetches every allowlisted package into the app's view (install.Packages).
func installPackages(ctx context.Context, a *app, force bool, log *slog.Logger) []install.Result {
	return install.Packages(ctx, a.installOptions(log), force)
}

// pruneViews removes the views no process uses but the app's and the most recent other one.
func pruneViews(ctx context.Context, a *app, log *slog.Logger) {
	install.PruneViews(ctx, a.layout.deps, a.view, log)
}

const depsUsage = `usage: conductor deps install [--force]   fetch the allowed packages into this allowlist's view of the cache
       conductor deps list [--json]       each allowed package: installed or not, and the version it resolved to
       conductor deps status              the view in use, its packages, the other views
       conductor deps prune               remove every view no server uses, except the current one, and the old shared cache`

// cmdDeps is `conductor deps install|status|prune`.
func cmdDeps(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) >= 1 && args[0] == "install" && (len(args) == 1 || len(args) == 2 && args[1] == "--force"):
		return cmdDepsInstall(ctx, len(args) == 2, stdout, stderr)
	case len(args) >= 1 && args[0] == "list" && (len(args) == 1 || len(args) == 2 && args[1] == "--json"):
		return cmdDepsList(ctx, len(args) == 2, stdout, stderr)
	case len(args) == 1 && args[0] == "status":
		return cmdDepsStatus(ctx, stdout, stderr)
	case len(args) == 1 && args[0] == "prune":
		return cmdDepsPrune(ctx, stdout, stderr)
	}
	fmt.Fprintln(stderr, depsUsage)
	return 2
}

func cmdDepsInstall(ctx context.Context, force bool, stdout, stderr io.Writer) int {
	log := newLogger(slog.LevelInfo)
	a, err := newAppWith(ctx, log, appOptions{installs: true})
	if err != nil {
		fmt.Fprintln(stderr, "conductor deps:", err)
		return 1
	}
	defer a.Close()
	if a.allow.Len() == 0 {
		fmt.Fprintln(stdout, "MCP_CONDUCTOR_ALLOWED_PACKAGES is empty: nothing to install (sandboxes mount no dependency cache)")
		return 0
	}
	fmt.Fprintf(stdout, "view %s at %s\n", a.view.Name, a.view.Cache)
	failed := 0
	for _, r := range installPackages(ctx, a, force, log) {
		state := "installed"
		switch {
		case !r.OK:
			state, failed = "FAILED: "+r.Error, failed+1
		case r.Cached:
			state = "already installed"
		}
		fmt.Fprintf(stdout, "%-40s %s\n", r.Package, state)
	}
	pruneViews(ctx, a, log)
	if failed > 0 {
		return 1
	}
	return 0
}

// currentView is the view the current settings name, without opening or
// creating it; key is nil for the empty allowlist (no view).
type currentView struct {
	layout layout
	allow  *deps.Allowlist
	key    *deps.ViewKey
}

func loadCurrentView(ctx context.Context) (currentView, error) {
	var cv currentView
	s, err := config.Load(os.LookupEnv)
	if err != nil {
		return cv, err
	}
	cv.layout = resolveLayout(s)
	if cv.allow, err = deps.ParseAllowlist(s.AllowedPackages); err != nil {
		return cv, fmt.Errorf("%s: %w", config.VarAllowedPackages, err)
	}
	if cv.allow.Len() == 0 {
		return cv, nil
	}
	reg, index, err := install.Sources(ctx, cv.allow)
	if err != nil {
		return cv, err
	}
	var py *runtimes.Runtime
	if len(cv.allow.PythonPackages()) > 0 {
		rs, err := runtimes.Resolve(ctx, runtimes.Options{Python: s.Python, Go: config.GoOff})
		if err != nil {
			return cv, err
		}
		py = pythonRuntime(rs)
	}
	k, err := install.ViewKey(ctx, cv.layout.deno, cv.allow, reg, index, py)
	if err != nil {
		return cv, err
	}
	cv.key = &k
	return cv, nil
}

func cmdDepsStatus(ctx context.Context, stdout, stderr io.Writer) int {
	cv, err := loadCurrentView(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "conductor deps:", err)
		return 1
	}
	views := deps.NewViews(cv.layout.deps)
	var b strings.Builder
	fmt.Fprintf(&b, "dependency cache: %s\n", views.Dir())
	current := ""
	if cv.key == nil {
		fmt.Fprintln(&b, "view in use: none (MCP_CONDUCTOR_ALLOWED_PACKAGES is empty: sandboxes mount no dependency cache)")
	} else {
		current = cv.key.Name()
		dir, installed, ok := views.Inspect(*cv.key)
		from := cv.key.Deno
		if cv.key.Registry != "" {
			from = "registry " + cv.key.Registry + "; " + from
		}
		fmt.Fprintf(&b, "view in use: %s at %s (%s)\n", current, dir, from)
		if !ok {
			fmt.Fprintln(&b, "  not created yet: `conductor deps install` (or serve) creates and fills it")
		}
		if cv.key.Python != "" {
			fmt.Fprintf(&b, "  pypi: packages from %s for %s, at %s in sandboxes (read-only)\n", cv.key.PyIndex, cv.key.Python, config.PyPackagesDir)
		}
		dists := deps.InstalledDists(deps.PyPackagesIn(dir))
		writeStates(&b, "  ", views.States(*cv.key))
		if len(cv.allow.PythonPackages()) > 0 && len(installed) > 0 {
			var others []string
			for _, d := range dists {
				if _, err := cv.allow.CheckPython(d.Name); err != nil {
					others = append(others, d.Name+" "+d.Version)
				}
			}
			if len(others) > 0 {
				fmt.Fprintf(&b, "  with their dependencies: %s\n", strings.Join(others, ", "))
			}
		}
	}
	list, legacy, err := views.List(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "conductor deps:", err)
		return 1
	}
	for _, v := range list {
		if v.Name == current {
			continue
		}
		use := ""
		if v.InUse {
			use = " [in use by a running conductor]"
		}
		fmt.Fprintf(&b, "other view: %s (%s; last used %s)%s\n", v.Name, strings.Join(v.Packages, ","), v.LastUsed.UTC().Format(time.RFC3339), use)
	}
	if len(legacy) > 0 {
		fmt.Fprintf(&b, "old shared cache, no longer mounted (`conductor deps prune` removes it): %s\n", strings.Join(legacy, " "))
	}
	io.WriteString(stdout, b.String())
	return 0
}

// writeStates writes one line per allowlist entry: its specifier and what the view holds of it.
func writeStates(w io.Writer, indent string, states []deps.PackageState) {
	for _, st := range states {
		line := st.String()
		if !st.Installed {
			line += " (run `conductor deps install`; serve installs it at start)"
		}
		fmt.Fprintf(w, "%s%-40s %s\n", indent, st.Package.Specifier(), line)
	}
}

// listedPackage is one line of `conductor deps list --json`.
type listedPackage struct {
	Package   string   `json:"package"`
	Installed bool     `json:"installed"`
	Versions  []string `json:"versions,omitempty"`
}

// cmdDepsList is `conductor deps list`: each allowed package, installed or not, with the versions
// the current view holds of it.
func cmdDepsList(ctx context.Context, asJSON bool, stdout, stderr io.Writer) int {
	cv, err := loadCurrentView(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "conductor deps:", err)
		return 1
	}
	var states []deps.PackageState
	if cv.key != nil {
		states = deps.NewViews(cv.layout.deps).States(*cv.key)
	}
	if asJSON {
		out := []listedPackage{}
		for _, st := range states {
			out = append(out, listedPackage{Package: st.Package.Specifier(), Installed: st.Installed, Versions: st.Versions})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	if len(states) == 0 {
		fmt.Fprintln(stdout, config.VarAllowedPackages+" is empty: code may import no packages")
		return 0
	}
	writeStates(stdout, "", states)
	return 0
}

func cmdDepsPrune(ctx context.Context, stdout, stderr io.Writer) int {
	cv, err := loadCurrentView(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "conductor deps:", err)
		return 1
	}
	opts := deps.PruneOptions{Legacy: true}
	if cv.key != nil {
		opts.Keep = []string{cv.key.Name()}
	}
	removed, err := deps.NewViews(cv.layout.deps).Prune(ctx, opts)
	for _, r := range removed {
		fmt.Fprintln(stdout, "removed", filepath.Join(cv.layout.deps, r))
	}
	if err != nil {
		fmt.Fprintln(stderr, "conductor deps:", err)
		return 1
	}
	if len(removed) == 0 {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return 0
}
