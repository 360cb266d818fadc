package egress

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Secret is one secret of the admin's: code sees Name as an environment
// variable holding an opaque placeholder; the door puts Value in its place
// only in requests to Hosts, over TLS it terminates.
type Secret struct {
	Name  string   // environment variable name the code reads
	Value string   // the real value; never enters a sandbox
	Hosts []string // DNS names the value may be sent to (lower case, no port)
}

// Secret limits.
const (
	MaxSecrets        = 32
	MinSecretLen      = 8
	MaxSecretLen      = 8 << 10
	maxSecretHosts    = 16
	placeholderPrefix = "conductor-secret-"
)

// ErrSecret is wrapped by every refusal of a secret's configuration.
var ErrSecret = errors.New("invalid secret")

var secretNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// reservedEnv and reservedEnvPrefix are the sandbox's own environment
// (and the runtimes'): a secret may not shadow it.
var (
	reservedEnv       = []string{"PATH", "HOME", "TMPDIR", "NO_COLOR", "GOPATH", "GOROOT", "GOFLAGS", "GOCACHE", "GOPROXY"}
	reservedEnvPrefix = []string{"LD_", "DENO_", "NPM_CONFIG_", "NODE_", "SSL_", "PYTHON", "CONDUCTOR", "MCP_CONDUCTOR_"}
)

// secret is a Secret with its placeholder.
type secret struct {
	Secret
	placeholder string
}

// Secrets are the server's secrets, with the placeholders code sees and the
// certificate authority only sandboxes trust. One per server: placeholders
// and the authority are made once, at start, and live only in memory (the
// authority's certificate, not its key, is written for sandboxes to trust).
type Secrets struct {
	list []*secret
	ca   *ca
}

// NewSecrets checks the admin's secrets and makes their placeholders and
// the certificate authority.
func NewSecrets(list []Secret) (*Secrets, error) {
	if len(list) == 0 {
		return nil, nil
	}
	if len(list) > MaxSecrets {
		return nil, fmt.Errorf("%w: %d secrets, at most %d", ErrSecret, len(list), MaxSecrets)
	}
	s := &Secrets{}
	seen := map[string]bool{}
	for _, in := range list {
		if err := checkSecret(in); err != nil {
			return nil, err
		}
		if seen[in.Name] {
			return nil, fmt.Errorf("%w: %s is given twice", ErrSecret, in.Name)
		}
		seen[in.Name] = true
		var r [12]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, fmt.Errorf("egress: placeholder: %w", err)
		}
		e := &secret{Secret: in, placeholder: placeholderPrefix + in.Name + "-" + hex.EncodeToString(r[:])}
		e.Hosts = slices.Clone(in.Hosts)
		s.list = append(s.list, e)
	}
	for _, a := range s.list {
		for _, b := range s.list {
			if a != b && strings.Contains(a.Value, b.Value) {
				return nil, fmt.Errorf("%w: the value of %s contains the value of %s; give distinct values", ErrSecret, a.Name, b.Name)
			}
		}
	}
	ca, err := newCA()
	if err != nil {
		return nil, err
	}
	s.ca = ca
	return s, nil
}

func checkSecret(in Secret) error {
	if !secretNameRE.MatchString(in.Name) {
		return fmt.Errorf("%w: name %q: an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters)", ErrSecret, in.Name)
	}
	up := strings.ToUpper(in.Name)
	if slices.Contains(reservedEnv, up) || slices.ContainsFunc(reservedEnvPrefix, func(p string) bool { return strings.HasPrefix(up, p) }) {
		return fmt.Errorf("%w: name %s: the sandbox's own variables are reserved (%s, and names starting %s)", ErrSecret, in.Name,
			strings.Join(reservedEnv, ", "), strings.Join(reservedEnvPrefix, ", "))
	}
	switch {
	case len(in.Value) < MinSecretLen:
		return fmt.Errorf("%w: %s: the value has %d bytes, at least %d (a shorter value would be replaced wherever it appears in the host's responses)", ErrSecret, in.Name, len(in.Value), MinSecretLen)
	case len(in.Value) > MaxSecretLen:
		return fmt.Errorf("%w: %s: the value has %d bytes, at most %d", ErrSecret, in.Name, len(in.Value), MaxSecretLen)
	case strings.ContainsAny(in.Value, "\r\n\x00"):
		return fmt.Errorf("%w: %s: the value contains CR, LF or NUL, which cannot go in a header", ErrSecret, in.Name)
	case strings.Contains(in.Value, placeholderPrefix):
		return fmt.Errorf("%w: %s: the value contains %q", ErrSecret, in.Name, placeholderPrefix)
	case len(in.Hosts) == 0:
		return fmt.Errorf("%w: %s: no host to send it to", ErrSecret, in.Name)
	case len(in.Hosts) > maxSecretHosts:
		return fmt.Errorf("%w: %s: %d hosts, at most %d", ErrSecret, in.Name, len(in.Hosts), maxSecretHosts)
	}
	for _, h := range in.Hosts {
		n, kind := normalizeHost(h)
		if kind != hostName || n != h {
			return fmt.Errorf("%w: %s: host %q: a lower-case DNS name without port (secrets are sent only to names, over TLS the door verifies)", ErrSecret, in.Name, h)
		}
	}
	return nil
}

// CheckPolicy refuses secrets whose hosts the policy never lets code reach:
// the admin asked for something that could not work.
func (s *Secrets) CheckPolicy(p Policy) error {
	if s == nil {
		return nil
	}
	pol, err := compilePolicy(p)
	if err != nil {
		return err
	}
	for _, e := range s.list {
		for _, h := range e.Hosts {
			if !pol.lookupAllowed(h) {
				return fmt.Errorf("%w: %s may be sent to %s, which allow-net does not let code reach", ErrSecret, e.Name, h)
			}
		}
	}
	return nil
}

// Env is what code sees: NAME=placeholder for each secret.
func (s *Secrets) Env() []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s.list))
	for i, e := range s.list {
		out[i] = e.Name + "=" + e.placeholder
	}
	return out
}

// Names are the secrets' environment variable names, in order.
func (s *Secrets) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s.list))
	for i, e := range s.list {
		out[i] = e.Name
	}
	return out
}

// Placeholder is the value code sees for name ("" if there is no such secret).
func (s *Secrets) Placeholder(name string) string {
	if s != nil {
		for _, e := range s.list {
			if e.Name == name {
				return e.placeholder
			}
		}
	}
	return ""
}

// CACertPEM is the certificate of the authority that signs the door's
// certificates for secret hosts; sandboxes trust it, nothing else does.
func (s *Secrets) CACertPEM() []byte {
	if s == nil {
		return nil
	}
	return s.ca.certPEM
}

// String describes the secrets without their values, for doctor and logs.
func (s *Secrets) String() string {
	if s == nil {
		return "none"
	}
	parts := make([]string, len(s.list))
	for i, e := range s.list {
		parts[i] = e.Name + " → " + strings.Join(e.Hosts, ", ")
	}
	return strings.Join(parts, "; ")
}

// forHost are the secrets that may be sent to host.
func (s *Secrets) forHost(host string) []*secret {
	if s == nil {
		return nil
	}
	var out []*secret
	for _, e := range s.list {
		if slices.Contains(e.Hosts, host) {
			out = append(out, e)
		}
	}
	return out
}

// any reports whether some secret may be sent to host.
func (s *Secrets) any(host string) bool { return len(s.forHost(host)) > 0 }

// placeholdersIn are the names of the secrets whose placeholder b holds.
func (s *Secrets) placeholdersIn(b []byte) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, e := range s.list {
		if bytes.Contains(b, []byte(e.placeholder)) {
			out = append(out, e.Name)
		}
	}
	return out
}

// maxPlaceholder is the longest placeholder's length.
func (s *Secrets) maxPlaceholder() int {
	n := 0
	for _, e := range s.list {
		n = max(n, len(e.placeholder))
	}
	return n
}
