package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/egress"
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

// registryRule is the one destination an install sandbox may reach.
func registryRule(u *url.URL) (egress.Rule, error) {
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return egress.Rule{}, fmt.Errorf("npm registry port %q: %w", p, err)
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
}

// installedMarker records a package whose install succeeded, so a restart
// does not start a sandbox per package again.
func installedMarker(cache string, p deps.Package) string {
	sum := sha256.Sum256([]byte(p.Specifier()))
	return filepath.Join(cache, ".installed", hex.EncodeToString(sum[:8]))
}

// installPackages fetches every allowlisted package into the dependency
// cache, each in its own sandbox that can write only the cache and reach only
// the registry, and no user code. Failures are per package.
func installPackages(ctx context.Context, a *app, reg *url.URL, force bool, log *slog.Logger) []depResult {
	rule, err := registryRule(reg)
	var results []depResult
	for _, p := range a.allow.Packages() {
		r := depResult{Package: p.Specifier()}
		t0 := time.Now()
		marker := installedMarker(a.layout.deps, p)
		switch {
		case err != nil:
			r.Error = err.Error()
		case p.Registry != deps.NPM:
			r.Error = "only npm: packages can be installed on this server (the JSR registry is not reachable)"
		default:
			if _, statErr := os.Stat(marker); statErr == nil && !force {
				r.OK, r.Cached = true, true
				break
			}
			if e := installOne(ctx, a, p, rule); e != nil {
				r.Error = e.Error()
				break
			}
			r.OK = true
			if e := os.MkdirAll(filepath.Dir(marker), 0o755); e == nil {
				_ = os.WriteFile(marker, []byte(p.Specifier()+"\n"), 0o644)
			}
		}
		r.Duration = float64(time.Since(t0).Microseconds()) / 1000
		if r.OK {
			log.Info("package ready", "package", r.Package, "cached", r.Cached, "ms", r.Duration)
		} else {
			log.Warn("package NOT installed; code importing it will fail", "package", r.Package, "err", r.Error)
		}
		results = append(results, r)
	}
	return results
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

// installOne runs `deno cache` for one package in an install sandbox.
func installOne(ctx context.Context, a *app, p deps.Package, rule egress.Rule) error {
	sb, err := a.runner.StartWith(ctx, sandbox.StartOptions{Install: &sandbox.InstallSpec{
		Program: deps.InstallProgram(p),
		Allow:   []egress.Rule{rule},
		CACerts: hostCACerts(),
	}})
	if err != nil {
		return err
	}
	defer sb.Close()
	res := sb.Run(ctx, sandbox.Job{Timeout: installTimeout})
	if res.Status == sandbox.StatusSuccess {
		return nil
	}
	msg := strings.TrimSpace(lastLines(res.Stderr, 4))
	if msg == "" && res.Error != nil {
		msg = res.Error.Message
	}
	return errors.New(msg)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cmdDeps is `conductor deps install [--force]`.
func cmdDeps(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || args[0] != "install" || len(args) > 2 || (len(args) == 2 && args[1] != "--force") {
		fmt.Fprintln(stderr, "usage: conductor deps install [--force]")
		return 2
	}
	log := newLogger(slog.LevelInfo)
	a, err := newApp(ctx, log)
	if err != nil {
		fmt.Fprintln(stderr, "conductor deps:", err)
		return 1
	}
	defer a.Close()
	if a.allow.Len() == 0 {
		fmt.Fprintln(stdout, "MCP_CONDUCTOR_ALLOWED_PACKAGES is empty: nothing to install")
		return 0
	}
	failed := 0
	for _, r := range installPackages(ctx, a, a.registry, len(args) == 2, log) {
		state := "installed"
		switch {
		case !r.OK:
			state, failed = "FAILED: "+r.Error, failed+1
		case r.Cached:
			state = "already installed"
		}
		fmt.Fprintf(stdout, "%-40s %s\n", r.Package, state)
	}
	if failed > 0 {
		return 1
	}
	return 0
}
