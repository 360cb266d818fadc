package install

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/egress"
)

// DefaultPipIndex is pip's own default index, PyPI.
const DefaultPipIndex = "https://pypi.org/simple/"

// pypiFilesHost is where PyPI's pages link the files: reachable with pypi.org only.
const pypiFilesHost = "files.pythonhosted.org"

// NPMRegistry returns the npm registry deno installs from and runs against:
// NPM_CONFIG_REGISTRY when set, else what npm on this host is configured
// with. The two steps must agree: deno keys its cache by the registry host.
func NPMRegistry(ctx context.Context) (*url.URL, error) {
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

// PipIndex is the index pypi: packages are installed from: PIP_INDEX_URL in conductor's
// environment (the variable pip itself reads), else PyPI. https, or plain http to a loopback
// address (pip's own secure origins): anywhere else the network could change the packages.
func PipIndex() (*url.URL, error) {
	raw := os.Getenv("PIP_INDEX_URL")
	if raw == "" {
		raw = DefaultPipIndex
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("PIP_INDEX_URL %q: want an http(s) URL of a PEP 503 simple index, e.g. %s", raw, DefaultPipIndex)
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

// Sources are where allow's packages come from: the npm registry when it
// has npm: or jsr: packages, the pip index when it has pypi: ones (nil
// otherwise).
func Sources(ctx context.Context, allow *deps.Allowlist) (reg, index *url.URL, err error) {
	if allow.Len() > len(allow.PythonPackages()) {
		if reg, err = NPMRegistry(ctx); err != nil {
			return nil, nil, err
		}
	}
	if len(allow.PythonPackages()) > 0 {
		if index, err = PipIndex(); err != nil {
			return nil, nil, err
		}
	}
	return reg, index, nil
}

// RegistryRule is the one destination an install sandbox of npm: packages
// may reach: the registry's host and port.
func RegistryRule(u *url.URL) (egress.Rule, error) {
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

// IndexRules are the destinations the pip install sandbox may reach: the index's host and
// port, and with pypi.org its files host.
func IndexRules(u *url.URL) ([]egress.Rule, error) {
	r, err := RegistryRule(u)
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

// URLString is u's string, "" for nil.
func URLString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}
