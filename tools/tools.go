package tools

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/rootfs"
)

// ErrNotInstalled is wrapped by the error for a listed tool that the host does not have.
var ErrNotInstalled = errors.New("tools: not installed")

// need is what a known tool needs besides its binary and libraries.
type need struct {
	// dataArgs, when set, are arguments that make the tool print a data directory it needs on
	// its first output line (git --exec-path).
	dataArgs []string
	// data are host paths copied when present.
	data []string
}

// needs is the table of known tools. Anything not here gets its binary, libraries and the CA
// bundle.
var needs = map[string]need{
	"git": {dataArgs: []string{"--exec-path"}, data: []string{"/usr/share/git-core/templates"}},
}

// caBundles are where distributions keep the system's CA bundle, in order of preference.
var caBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",             // openSUSE
	"/etc/ssl/cert.pem",                  // Alpine, macOS-style
}

// caEnv are the variables that point TLS clients (OpenSSL and GnuTLS users, git, curl) at the
// CA bundle.
var caEnv = []string{"SSL_CERT_FILE", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE"}

// Tool is one resolved tool.
type Tool struct {
	Entry   string         // as the admin listed it
	Name    string         // its name in the sandbox, at config.ToolsDir/Name
	Host    string         // the real executable on the host
	Program rootfs.Program // what the root holds for it
}

// Set is the resolved MCP_CONDUCTOR_TOOLS.
type Set struct {
	Tools []Tool
	// CABundle is the host's CA bundle copied into the root (at the same path), "" for none.
	CABundle string
}

// Options are how Resolve looks at the host; the zero value is the real host.
type Options struct {
	LookPath  func(string) (string, error) // default exec.LookPath (the server's PATH)
	CABundles []string                     // default the distributions' locations
}

// Resolve finds every entry on the host and returns what the root needs for it. An entry that is
// not installed is an error wrapping ErrNotInstalled naming it; all such entries are reported.
func Resolve(ctx context.Context, entries []string, o Options) (*Set, error) {
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.CABundles == nil {
		o.CABundles = caBundles
	}
	s := &Set{}
	if len(entries) == 0 {
		return s, nil
	}
	s.CABundle = firstFile(o.CABundles)
	var errs []error
	for _, e := range entries {
		t, err := resolve(ctx, e, o.LookPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if s.CABundle != "" {
			t.Program.Data = append(t.Program.Data, s.CABundle)
		}
		s.Tools = append(s.Tools, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// resolve finds one tool and its data.
func resolve(ctx context.Context, entry string, lookPath func(string) (string, error)) (Tool, error) {
	name := config.ToolName(entry)
	found := entry
	if !strings.HasPrefix(entry, "/") {
		p, err := lookPath(entry)
		if err != nil {
			return Tool{}, fmt.Errorf("%w: %s lists %q, which is not on the server's PATH (%v); install it or remove it from the list",
				ErrNotInstalled, config.VarTools, entry, err)
		}
		found = p
	}
	real, err := filepath.EvalSymlinks(found)
	if err == nil {
		found, err = filepath.Abs(real)
	}
	if err != nil {
		return Tool{}, fmt.Errorf("%w: %s lists %q: %v", ErrNotInstalled, config.VarTools, entry, err)
	}
	if st, err := os.Stat(found); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return Tool{}, fmt.Errorf("%w: %s lists %q, but %s is not an executable file", ErrNotInstalled, config.VarTools, entry, found)
	}
	t := Tool{Entry: entry, Name: name, Host: found, Program: rootfs.Program{Host: found, Path: path.Join(config.ToolsDir, name)}}
	n := needs[name]
	if len(n.dataArgs) > 0 {
		dir, err := firstLine(ctx, found, n.dataArgs...)
		if err != nil {
			return Tool{}, fmt.Errorf("tools: %s %s: %w", found, strings.Join(n.dataArgs, " "), err)
		}
		if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
			return Tool{}, fmt.Errorf("tools: %s %s printed %q, not a clean absolute directory", found, strings.Join(n.dataArgs, " "), dir)
		}
		t.Program.Data = append(t.Program.Data, dir)
	}
	for _, d := range n.data {
		if _, err := os.Stat(d); err == nil {
			t.Program.Data = append(t.Program.Data, d)
		}
	}
	return t, nil
}

// HostCABundle is the host's CA bundle (the distributions' usual places), "" without one: what
// the root holds for the tools, and for a runtime (Python's OpenSSL) when no tool brings it.
func HostCABundle() string { return firstFile(caBundles) }

// firstFile returns the first of paths that is a regular file (following symlinks), or "".
func firstFile(paths []string) string {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// firstLine runs the host program with args (at most 10 s, no stdin, the server's environment)
// and returns the first line of its standard output.
func firstLine(ctx context.Context, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	line, _, _ := bufio.NewReader(&out).ReadLine()
	return strings.TrimSpace(string(line)), nil
}

// Programs are the root's programs for the tools.
func (s *Set) Programs() []rootfs.Program {
	if s == nil {
		return nil
	}
	out := make([]rootfs.Program, len(s.Tools))
	for i, t := range s.Tools {
		out[i] = t.Program
	}
	return out
}

// CAVars are the variables that name the CA bundle to the tools (nil without one): the
// sandbox sets them to CABundle, or to a copy with the network door's CA when it stands in for
// secret hosts.
func (s *Set) CAVars() []string {
	if s == nil || s.CABundle == "" || len(s.Tools) == 0 {
		return nil
	}
	return slices.Clone(caEnv)
}

// Names are the tools' names in the sandbox, in the admin's order.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s.Tools))
	for i, t := range s.Tools {
		out[i] = t.Name
	}
	return out
}

// Version runs `<tool> --version` on the host and returns its first line.
func (t Tool) Version(ctx context.Context) (string, error) {
	return firstLine(ctx, t.Host, "--version")
}
