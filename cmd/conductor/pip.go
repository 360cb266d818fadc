package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// defaultPipIndex is pip's own default index, PyPI.
const defaultPipIndex = "https://pypi.org/simple/"

// pypiFilesHost is where PyPI's pages link the files: reachable with pypi.org only.
const pypiFilesHost = "files.pythonhosted.org"

// pipTmp is pip's temporary directory in the install sandbox: inside the target, so pip's
// final moves are renames and a large wheel is not bounded by /tmp's size; removed after.
const pipTmp = ".pip-tmp"

// pipIndex is the index pypi: packages are installed from: PIP_INDEX_URL in conductor's
// environment (the variable pip itself reads), else PyPI. https, or plain http to a loopback
// address (pip's own secure origins): anywhere else the network could change the packages.
func pipIndex() (*url.URL, error) {
	raw := os.Getenv("PIP_INDEX_URL")
	if raw == "" {
		raw = defaultPipIndex
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("PIP_INDEX_URL %q: want an http(s) URL of a PEP 503 simple index, e.g. %s", raw, defaultPipIndex)
	case u.User != nil:
		return nil, fmt.Errorf("PIP_INDEX_URL %s: credentials in the URL are not supported (the index must serve anonymously)", u.Redacted())
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("PIP_INDEX_URL %s: plain http only to a loopback address; use https", u.Redacted())
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// indexRules are the destinations the pip install sandbox may reach: the index's host and
// port, and with pypi.org its files host.
func indexRules(u *url.URL) ([]egress.Rule, error) {
	r, err := registryRule(u)
	if err != nil {
		return nil, err
	}
	rules := []egress.Rule{r}
	if strings.EqualFold(r.Host, "localhost") {
		rules = append(rules, egress.Rule{Host: "127.0.0.1", Port: r.Port}) // the sandbox's /etc/hosts
	}
	if r.Host == "pypi.org" {
		rules = append(rules, egress.Rule{Host: pypiFilesHost, Port: 443})
	}
	return rules, nil
}

// pythonRuntime is execute_code's Python row, nil when none is offered.
func pythonRuntime(rs *runtimes.Set) *runtimes.Runtime {
	if rs == nil {
		return nil
	}
	rt, _, ok := rs.Language("python")
	if !ok {
		return nil
	}
	return rt
}

// pyMounts are the run sandboxes' read-only mounts of the view's pypi: packages at
// config.PyPackagesDir: exec, so compiled extension modules load.
func pyMounts(v *deps.View) []sandbox.Mount {
	if v == nil {
		return nil
	}
	if st, err := os.Stat(v.PyPackages); err != nil || !st.IsDir() {
		return nil
	}
	return []sandbox.Mount{{Host: v.PyPackages, Path: config.PyPackagesDir, Exec: true}}
}

// installPython installs the allowlist's pypi: packages, all in one pip run in an install
// sandbox, unless every one is installed already (and not force). The view's pypi directory is
// emptied first, so what it holds is exactly one pip run's result.
func installPython(ctx context.Context, a *app, force bool, log *slog.Logger) []depResult {
	pkgs := a.allow.PythonPackages()
	if len(pkgs) == 0 {
		return nil
	}
	t0 := time.Now()
	cached := !force
	for _, p := range pkgs {
		cached = cached && a.view.Installed(p)
	}
	var (
		network []egress.Record
		failed  string
	)
	if !cached {
		network, failed = pipInstall(ctx, a, pkgs)
	}
	ms := float64(time.Since(t0).Microseconds()) / 1000
	results := make([]depResult, len(pkgs))
	for i, p := range pkgs {
		results[i] = depResult{Package: p.Specifier(), OK: failed == "", Cached: cached, Error: failed, Duration: ms, Network: network}
		if failed == "" && !cached {
			if err := a.view.MarkInstalled(p); err != nil {
				log.Warn("package installed, but not recorded: the next start installs it again", "package", p.Specifier(), "err", err)
			}
		}
	}
	return results
}

// pipInstall runs pip for pkgs in an install sandbox that writes only the view's pypi directory
// (at config.PyPackagesDir) and reaches only the index. It returns the door's decisions and why
// it failed ("" when it did not).
func pipInstall(ctx context.Context, a *app, pkgs []deps.Package) ([]egress.Record, string) {
	py := pythonRuntime(a.runtimes)
	switch {
	case py == nil:
		return nil, "no Python on this server (" + config.VarPython + " is off, or there is no python3 on PATH): pypi: packages are for run_python_code and execute_code's Python"
	case py.Pip == nil:
		return nil, fmt.Sprintf("the Python interpreter %s (%s) has no pip: install pip for it (Debian: apt-get install python3-pip) or name another in %s", py.Programs[0].Host, py.Version, config.VarPython)
	}
	index, err := pipIndex()
	if err != nil {
		return nil, err.Error()
	}
	rules, err := indexRules(index)
	if err != nil {
		return nil, err.Error()
	}
	dir := a.view.PyPackages
	for _, p := range pkgs {
		if err := a.view.Unmark(p); err != nil {
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
	spec := sandbox.StartOptions{
		Writable: &sandbox.Mount{Host: dir, Path: config.PyPackagesDir},
		Env:      []string{"TMPDIR=" + path.Join(config.PyPackagesDir, pipTmp)},
		Network:  &egress.Policy{Allow: rules},
		Isolated: true,
	}
	cert := ""
	if ca := hostCACerts(); ca != nil {
		name := ".install-" + randomName() + ".ca.pem"
		spec.Files = map[string][]byte{name: ca}
		cert = path.Join(config.PyPackagesDir, name)
	}
	spec.Command = append(append([]string{}, py.Pip...), deps.PipInstallArgs(config.PyPackagesDir, index.String(), cert, pkgs)...)
	res, err := runInstall(ctx, a, spec)
	if err != nil {
		return nil, err.Error()
	}
	msg := installFailure(res, func(refused []string) string {
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
