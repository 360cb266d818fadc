package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// installTimeout bounds the install of one package.
const installTimeout = 5 * time.Minute

// npmRegistry returns the npm registry deno installs from and runs against:
// NPM_CONFIG_REGISTRY when set, else what npm on this host is configured
// with. The two steps must agree: deno keys its cache by the registry host.
func npmRegistry(ctx context.Context) (*url.URL, error) {
	raw := os.Getenv("NPM_CONFIG_REGISTRY")
	if raw == "" {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "npm", "config", "get", "registry").Output()
		if err != nil {
			return nil, fmt.Errorf("cannot tell which npm registry to install from: set NPM_CONFIG_REGISTRY, or install npm (`npm config get registry` failed: %v)", err)
		}
		raw = strings.TrimSpace(string(out))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("npm registry %q: want an http(s) URL", raw)
	}
	return u, nil
}

// packageSources are where allow's packages come from: the npm registry
// when it has npm: or jsr: packages, the pip index when it has pypi: ones
// (nil otherwise).
func packageSources(ctx context.Context, allow *deps.Allowlist) (reg, index *url.URL, err error) {
	if allow.Len() > len(allow.PythonPackages()) {
		if reg, err = npmRegistry(ctx); err != nil {
			return nil, nil, err
		}
	}
	if len(allow.PythonPackages()) > 0 {
		if index, err = pipIndex(); err != nil {
			return nil, nil, err
		}
	}
	return reg, index, nil
}

// registryRule is the one destination an install sandbox of npm: packages
// may reach: the registry's host and port.
func registryRule(u *url.URL) (egress.Rule, error) {
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return egress.Rule{}, fmt.Errorf("registry %s: port %q: %w", u.Redacted(), p, err)
		}
		port = n
	}
	return egress.Rule{Host: strings.ToLower(u.Hostname()), Port: port}, nil
}

// depResult is how installing one package went.
type depResult struct {
	Package  string  `json:"package"`
	OK       bool    `json:"ok"`
	Cached   bool    `json:"cached"` // already installed before
	Error    string  `json:"error,omitempty"`
	Duration float64 `json:"durationMs"`
	// Network is the install sandbox's door's decisions (nil when cached).
	Network []egress.Record `json:"network,omitempty"`
}

// denoVersion is the first line of `deno --version`, e.g. "deno 2.9.6
// (stable, release, x86_64-unknown-linux-gnu)": part of a view's name, since
// deno's cache layout may change between versions.
func denoVersion(ctx context.Context, deno string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, deno, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", deno, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}

// viewKey names the view of the dependency cache for allow: the npm
// registry and deno's version, and for pypi: packages the Python
// interpreter (py, nil when none is offered) and the index.
func viewKey(ctx context.Context, l layout, allow *deps.Allowlist, reg, index *url.URL, py *runtimes.Runtime) (deps.ViewKey, error) {
	dv, err := denoVersion(ctx, l.deno)
	if err != nil {
		return deps.ViewKey{}, fmt.Errorf("dependency cache: %w", err)
	}
	k := deps.ViewKey{Allowlist: allow, Registry: registryString(reg), Deno: dv, PyIndex: registryString(index)}
	if py != nil {
		k.Python = py.Version + " " + py.Programs[0].Host
	}
	return k, nil
}

// openView opens and holds this allowlist's view of the dependency cache:
// the only cache a sandbox of this process mounts. With create false a
// missing view is not created: the result is nil (nothing to mount).
func openView(ctx context.Context, l layout, allow *deps.Allowlist, reg, index *url.URL, py *runtimes.Runtime, create bool) (*deps.View, error) {
	k, err := viewKey(ctx, l, allow, reg, index, py)
	if err != nil {
		return nil, err
	}
	views := deps.NewViews(l.deps)
	if create {
		return views.Open(ctx, k)
	}
	v, err := views.OpenExisting(ctx, k)
	if errors.Is(err, deps.ErrNoView) {
		return nil, nil
	}
	return v, err
}

// pruneViews removes the views no process uses, keeping the current one and
// the most recently used other one (so switching the allowlist back and forth
// does not download again). Failures are logged: the current view is usable.
func pruneViews(ctx context.Context, a *app, log *slog.Logger) {
	removed, err := deps.NewViews(a.layout.deps).Prune(ctx, deps.PruneOptions{Keep: []string{a.view.Name}, KeepRecent: 1})
	if err != nil {
		log.Warn("removing unused dependency cache views failed", "dir", a.layout.deps, "err", err)
	}
	if len(removed) > 0 {
		log.Info("removed unused dependency cache views", "dir", a.layout.deps, "views", removed)
	}
}

// installPackages fetches every allowlisted package into this allowlist's
// view of the dependency cache, in sandboxes that can write only the view
// and reach only the registry or index, and run no user code: each npm:
// package with deno cache in its own, the pypi: packages with pip in one
// (one resolver run, so their dependencies agree). Failures are per package
// (for pypi: packages, per install).
func installPackages(ctx context.Context, a *app, force bool, log *slog.Logger) []depResult {
	var results []depResult
	for _, p := range a.allow.Packages() {
		if p.Registry == deps.PyPI {
			continue
		}
		r := depResult{Package: p.Specifier()}
		t0 := time.Now()
		switch {
		case p.Registry != deps.NPM:
			r.Error = "only npm: packages can be installed on this server (the JSR registry is not reachable)"
		case a.view.Installed(p) && !force:
			r.OK, r.Cached = true, true
		default:
			r.Network, r.OK, r.Error = installDeno(ctx, a, p)
			if r.OK {
				if e := a.view.MarkInstalled(p); e != nil {
					log.Warn("package installed, but not recorded: the next start installs it again", "package", r.Package, "err", e)
				}
			}
		}
		r.Duration = float64(time.Since(t0).Microseconds()) / 1000
		results = append(results, r)
	}
	results = append(results, installPython(ctx, a, force, log)...)
	for _, r := range results {
		if r.OK {
			log.Info("package ready", "package", r.Package, "cached", r.Cached, "view", a.view.Name, "ms", r.Duration, "network", networkSummary(r.Network))
		} else {
			log.Warn("package NOT installed; code importing it will fail", "package", r.Package, "view", a.view.Name, "err", r.Error, "network", networkSummary(r.Network))
		}
	}
	return results
}

// installDeno runs `deno cache` for one npm: package in an install sandbox
// that writes only the view's DENO_DIR and reaches only the registry.
func installDeno(ctx context.Context, a *app, p deps.Package) ([]egress.Record, bool, string) {
	rule, err := registryRule(a.registry)
	if err != nil {
		return nil, false, err.Error()
	}
	prog := ".install-" + randomName() + ".ts"
	spec := sandbox.StartOptions{
		Command:  append([]string{a.root.DenoPath}, deps.CacheArgs(path.Join(a.root.DenoDir, prog))...),
		Writable: &sandbox.Mount{Host: a.view.Cache, Path: a.root.DenoDir},
		Files:    map[string][]byte{prog: []byte(deps.InstallProgram(p))},
		Network:  &egress.Policy{Allow: []egress.Rule{rule}},
		Isolated: true,
	}
	if ca := hostCACerts(); ca != nil {
		spec.Files[prog+".ca.pem"] = ca
		spec.Env = []string{"DENO_CERT=" + path.Join(a.root.DenoDir, prog+".ca.pem")}
	}
	res, err := runInstall(ctx, a, spec)
	if err != nil {
		return nil, false, err.Error()
	}
	return res.Network, res.Status == sandbox.StatusSuccess, installFailure(res, nil)
}

// randomName is 64 random bits in hex: names of an install's files, so two
// processes installing into the same view never share one.
func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// runInstall runs one install sandbox to its end.
func runInstall(ctx context.Context, a *app, spec sandbox.StartOptions) (*sandbox.Result, error) {
	sb, err := a.runner.StartWith(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	return sb.Run(ctx, sandbox.Job{Timeout: installTimeout}), nil
}

// networkSummary is an install's door decisions for the log: each
// destination once, "allowed" or "refused", e.g. "pypi.org:443 allowed,
// evil.test refused".
func networkSummary(recs []egress.Record) string {
	var out []string
	for _, r := range recs {
		s := destination(r) + " refused"
		if r.Allowed {
			s = destination(r) + " allowed"
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

// destination is a record's host:port, or its host for a DNS lookup.
func destination(r egress.Record) string {
	if r.Port == 0 {
		return r.Host
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// installFailure is why an install failed ("" when it succeeded): the end
// of its stderr, then what the door refused (an install may reach only its
// registry; explain names what it may reach and what to do).
func installFailure(res *sandbox.Result, explain func(refused []string) string) string {
	if res.Status == sandbox.StatusSuccess {
		return ""
	}
	msg := strings.TrimSpace(lastLines(res.Stderr, 4))
	if msg == "" && res.Error != nil {
		msg = res.Error.Message
	}
	var refused []string
	for _, r := range res.Network {
		if dest := destination(r); !r.Allowed && !slices.Contains(refused, dest) {
			refused = append(refused, dest)
		}
	}
	if len(refused) > 0 && explain != nil {
		msg = explain(refused) + "\n" + msg
	}
	return msg
}

// hostCACerts is the host's trust bundle, handed to deno in install
// sandboxes so a registry reached through a TLS-intercepting proxy (a
// corporate CA) verifies: SSL_CERT_FILE, else Debian's bundle. nil = none.
func hostCACerts() []byte {
	for _, f := range []string{os.Getenv("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"} {
		if f == "" {
			continue
		}
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			return b
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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
	reg, index, err := packageSources(ctx, cv.allow)
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
	k, err := viewKey(ctx, cv.layout, cv.allow, reg, index, py)
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
