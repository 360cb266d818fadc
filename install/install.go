package install

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
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

// Timeout bounds one install sandbox (one npm: package, or one pip run).
const Timeout = 5 * time.Minute

// pipTmp is pip's temporary directory in the install sandbox: inside the target, so pip's
// final moves are renames and a large wheel is not bounded by /tmp's size; removed after.
const pipTmp = ".pip-tmp"

// Starter starts a sandbox; *sandbox.Runner is one.
type Starter interface {
	StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error)
}

// Options are what an install needs: where it runs, what it installs, and from where.
type Options struct {
	Sandboxes Starter // the runner the install sandboxes start in
	// DenoPath and DenoDir are the in-root paths of deno and its DENO_DIR (rootfs.Root's).
	DenoPath, DenoDir string
	View              *deps.View        // the allowlist's view: where the packages go
	Allow             *deps.Allowlist   // what to install
	Registry          *url.URL          // the npm registry (Sources); nil without npm: packages
	Index             *url.URL          // the pip index (Sources); nil = PipIndex
	Python            *runtimes.Runtime // execute_code's Python; nil = none offered
	Logger            *slog.Logger
}

// Result is how installing one package went.
type Result struct {
	Package  string  `json:"package"`
	OK       bool    `json:"ok"`
	Cached   bool    `json:"cached"` // already installed before
	Error    string  `json:"error,omitempty"`
	Duration float64 `json:"durationMs"`
	// Network is the install sandbox's door's decisions (nil when cached).
	Network []egress.Record `json:"network,omitempty"`
}

// Packages fetches every allowlisted package into the view, in sandboxes
// that can write only the view and reach only the registry or index, and
// run no user code: each npm: package with deno cache in its own, the pypi:
// packages with pip in one (one resolver run, so their dependencies agree).
// A package is marked installed in the view when its install succeeded;
// with force every package is installed again. Failures are per package
// (for pypi: packages, per install), each result logged.
func Packages(ctx context.Context, o Options, force bool) []Result {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var results []Result
	for _, p := range o.Allow.Packages() {
		if p.Registry == deps.PyPI {
			continue
		}
		r := Result{Package: p.Specifier()}
		t0 := time.Now()
		switch {
		case p.Registry != deps.NPM:
			r.Error = "only npm: packages can be installed on this server (the JSR registry is not reachable)"
		case o.View.Installed(p) && !force:
			r.OK, r.Cached = true, true
		default:
			r.Network, r.OK, r.Error = installDeno(ctx, o, p)
			if r.OK {
				if e := o.View.MarkInstalled(p); e != nil {
					log.Warn("package installed, but not recorded: the next start installs it again", "package", r.Package, "err", e)
				}
			}
		}
		r.Duration = float64(time.Since(t0).Microseconds()) / 1000
		results = append(results, r)
	}
	results = append(results, installPython(ctx, o, force, log)...)
	for _, r := range results {
		if r.OK {
			log.Info("package ready", "package", r.Package, "cached", r.Cached, "view", o.View.Name, "ms", r.Duration, "network", NetworkSummary(r.Network))
		} else {
			log.Warn("package NOT installed; code importing it will fail", "package", r.Package, "view", o.View.Name, "err", r.Error, "network", NetworkSummary(r.Network))
		}
	}
	return results
}

// installDeno runs `deno cache` for one npm: package in an install sandbox
// that writes only the view's DENO_DIR and reaches only the registry.
func installDeno(ctx context.Context, o Options, p deps.Package) ([]egress.Record, bool, string) {
	if o.Registry == nil {
		return nil, false, "no npm registry to install from (set NPM_CONFIG_REGISTRY, or install npm)"
	}
	rule, err := RegistryRule(o.Registry)
	if err != nil {
		return nil, false, err.Error()
	}
	prog := ".install-" + randomName() + ".ts"
	so := sandbox.StartOptions{
		Command:  append([]string{o.DenoPath}, deps.CacheArgs(path.Join(o.DenoDir, prog))...),
		Writable: &sandbox.Mount{Host: o.View.Cache, Path: o.DenoDir},
		Files:    map[string][]byte{prog: []byte(deps.InstallProgram(p))},
		Network:  &egress.Policy{Allow: []egress.Rule{rule}},
		Isolated: true,
	}
	if ca := hostCACerts(); ca != nil {
		so.Files[prog+".ca.pem"] = ca
		so.Env = []string{"DENO_CERT=" + path.Join(o.DenoDir, prog+".ca.pem")}
	}
	res, err := run(ctx, o.Sandboxes, so)
	if err != nil {
		return nil, false, err.Error()
	}
	return res.Network, res.Status == sandbox.StatusSuccess, failure(res, nil)
}

// installPython installs the allowlist's pypi: packages, all in one pip run in an install
// sandbox, unless every one is installed already (and not force). The view's pypi directory is
// emptied first, so what it holds is exactly one pip run's result.
func installPython(ctx context.Context, o Options, force bool, log *slog.Logger) []Result {
	pkgs := o.Allow.PythonPackages()
	if len(pkgs) == 0 {
		return nil
	}
	t0 := time.Now()
	cached := !force
	for _, p := range pkgs {
		cached = cached && o.View.Installed(p)
	}
	var (
		network []egress.Record
		failed  string
	)
	if !cached {
		network, failed = pipInstall(ctx, o, pkgs)
	}
	ms := float64(time.Since(t0).Microseconds()) / 1000
	results := make([]Result, len(pkgs))
	for i, p := range pkgs {
		results[i] = Result{Package: p.Specifier(), OK: failed == "", Cached: cached, Error: failed, Duration: ms, Network: network}
		if failed == "" && !cached {
			if err := o.View.MarkInstalled(p); err != nil {
				log.Warn("package installed, but not recorded: the next start installs it again", "package", p.Specifier(), "err", err)
			}
		}
	}
	return results
}

// pipInstall runs pip for pkgs in an install sandbox that writes only the view's pypi directory
// (at config.PyPackagesDir) and reaches only the index. It returns the door's decisions and why
// it failed ("" when it did not).
func pipInstall(ctx context.Context, o Options, pkgs []deps.Package) ([]egress.Record, string) {
	py := o.Python
	switch {
	case py == nil:
		return nil, "no Python on this server (" + config.VarPython + " is off, or there is no python3 on PATH): pypi: packages are for run_python_code and execute_code's Python"
	case py.Pip == nil:
		return nil, fmt.Sprintf("the Python interpreter %s (%s) has no pip: install pip for it (Debian: apt-get install python3-pip) or name another in %s", py.Programs[0].Host, py.Version, config.VarPython)
	}
	index := o.Index
	if index == nil {
		var err error
		if index, err = PipIndex(); err != nil {
			return nil, err.Error()
		}
	}
	rules, err := IndexRules(index)
	if err != nil {
		return nil, err.Error()
	}
	dir := o.View.PyPackages
	for _, p := range pkgs {
		if err := o.View.Unmark(p); err != nil {
			return nil, err.Error()
		}
	}
	if err := emptyDir(dir); err != nil {
		return nil, err.Error()
	}
	defer os.RemoveAll(filepath.Join(dir, pipTmp))
	if err := os.Mkdir(filepath.Join(dir, pipTmp), 0o755); err != nil {
		return nil, fmt.Sprintf("pip's temporary directory: %v", err)
	}
	so := sandbox.StartOptions{
		Writable: &sandbox.Mount{Host: dir, Path: config.PyPackagesDir},
		Env:      []string{"TMPDIR=" + path.Join(config.PyPackagesDir, pipTmp)},
		Network:  &egress.Policy{Allow: rules},
		Isolated: true,
	}
	cert := ""
	if ca := hostCACerts(); ca != nil {
		name := ".install-" + randomName() + ".ca.pem"
		so.Files = map[string][]byte{name: ca}
		cert = path.Join(config.PyPackagesDir, name)
	}
	so.Command = append(append([]string{}, py.Pip...), deps.PipInstallArgs(config.PyPackagesDir, index.String(), cert, pkgs)...)
	res, err := run(ctx, o.Sandboxes, so)
	if err != nil {
		return nil, err.Error()
	}
	msg := failure(res, func(refused []string) string {
		allowed := make([]string, len(rules))
		for i, r := range rules {
			allowed[i] = r.String()
		}
		return fmt.Sprintf("the door refused %s: the install reaches only the index (%s, from PIP_INDEX_URL); the index's pages link files on another host: use an index that serves its files from its own host and port",
			strings.Join(refused, ", "), strings.Join(allowed, ", "))
	})
	if strings.Contains(msg, "No matching distribution found") {
		msg += fmt.Sprintf("\nconductor installs wheels only (--only-binary=:all:, no package's build runs): the index has no wheel of that version for %s on this platform, or the release has only a source distribution", py.Version)
	}
	if msg != "" {
		_ = emptyDir(dir) // what a failed run left is not a package set
	}
	return res.Network, msg
}

// run runs one install sandbox to its end.
func run(ctx context.Context, s Starter, so sandbox.StartOptions) (*sandbox.Result, error) {
	sb, err := s.StartWith(ctx, so)
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	return sb.Run(ctx, sandbox.Job{Timeout: Timeout}), nil
}

// randomName is 64 random bits in hex: names of an install's files, so two
// processes installing into the same view never share one.
func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NetworkSummary is an install's door decisions for the log: each
// destination once, "allowed" or "refused", e.g. "pypi.org:443 allowed,
// evil.test refused".
func NetworkSummary(recs []egress.Record) string {
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

// failure is why an install failed ("" when it succeeded): the end of its
// stderr, then what the door refused (an install may reach only its
// registry; explain names what it may reach and what to do).
func failure(res *sandbox.Result, explain func(refused []string) string) string {
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

// hostCACerts is the host's trust bundle, handed to the installers in install
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

// emptyDir removes everything inside dir, keeping dir.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dependency cache view: %s does not exist", dir)
	}
	if err != nil {
		return fmt.Errorf("dependency cache view: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("dependency cache view: %w", err)
		}
	}
	return nil
}
