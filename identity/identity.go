// Package identity is the config file's "identities": who may call an HTTP server (each by the
// SHA-256 of a bearer token), with what quotas, parsed and validated here, and looked up by
// token or name.
package identity

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
)

// Stdio is the identity of the stdio transport: it has no token, and may carry quotas.
const Stdio = "stdio"

// MaxIdentities bounds how many identities a config file may name.
const MaxIdentities = 1024

// MaxQuota bounds every quota's value.
const MaxQuota = 1_000_000

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid identities")

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Quotas bound one identity's use; 0 = no limit.
type Quotas struct {
	Concurrent             int `json:"concurrent,omitempty"`
	ExecutionsPerMinute    int `json:"executions_per_minute,omitempty"`
	CPUSecondsPerHour      int `json:"cpu_seconds_per_hour,omitempty"`
	UpstreamCallsPerMinute int `json:"upstream_calls_per_minute,omitempty"`
}

// Identity is one entry of "identities".
type Identity struct {
	Name        string `json:"name"`
	TokenSHA256 string `json:"token_sha256,omitempty"` // lower-case hex; "" only for Stdio
	Quotas      Quotas `json:"quotas,omitzero"`
	// Workspace: nil = the server's default (a workspace of its own when the server has one).
	Workspace *bool `json:"workspace,omitempty"`

	digest [sha256.Size]byte
}

// HasWorkspace says whether the identity's runs get a workspace when the server has one.
func (id *Identity) HasWorkspace() bool { return id.Workspace == nil || *id.Workspace }

// Set is a validated list of identities. The zero Set (and nil) has none.
type Set struct {
	list   []Identity
	byName map[string]int
}

// Hash is the hex SHA-256 of token, as token_sha256 holds it.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Parse reads identities from JSON: an array of objects {name, token_sha256, quotas
// {concurrent, executions_per_minute, cpu_seconds_per_hour, upstream_calls_per_minute},
// workspace}. Unknown keys, bad names, tokens that are not a hex SHA-256, repeated names or
// tokens and negative quotas are errors (all of them, joined), each wrapping ErrInvalid.
func Parse(data []byte) (*Set, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var list []Identity
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("%w: want an array of {\"name\", \"token_sha256\", \"quotas\", \"workspace\"}: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more after the array", ErrInvalid)
	}
	return build(list)
}

func build(list []Identity) (*Set, error) {
	if len(list) > MaxIdentities {
		return nil, fmt.Errorf("%w: %d identities; at most %d", ErrInvalid, len(list), MaxIdentities)
	}
	s := &Set{list: list, byName: make(map[string]int, len(list))}
	tokens := map[[sha256.Size]byte]string{}
	var errs []error
	bad := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: identity %d (%q): %s", ErrInvalid, i+1, list[i].Name, fmt.Sprintf(format, args...)))
	}
	for i := range list {
		id := &list[i]
		if !nameRE.MatchString(id.Name) {
			bad(i, "name must be 1 to 32 of a-z 0-9 _ -")
		} else if j, dup := s.byName[id.Name]; dup {
			bad(i, "name given twice (also identity %d)", j+1)
		} else {
			s.byName[id.Name] = i
		}
		switch {
		case id.Name == Stdio && id.TokenSHA256 != "":
			bad(i, "stdio has no token (its clients are the server's own process's); remove token_sha256")
		case id.Name == Stdio:
		case id.TokenSHA256 == "":
			bad(i, "token_sha256 is missing: the hex SHA-256 of its bearer token (conductor identity hash < token-file)")
		default:
			d, err := hex.DecodeString(id.TokenSHA256)
			if err != nil || len(d) != sha256.Size {
				bad(i, "token_sha256 must be 64 hex digits (a SHA-256, never the token itself)")
				break
			}
			copy(id.digest[:], d)
			id.TokenSHA256 = strings.ToLower(id.TokenSHA256)
			if other, dup := tokens[id.digest]; dup {
				bad(i, "token_sha256 is also %q's: each identity needs its own token", other)
			}
			tokens[id.digest] = id.Name
		}
		for _, q := range []struct {
			key string
			v   int
		}{{"concurrent", id.Quotas.Concurrent}, {"executions_per_minute", id.Quotas.ExecutionsPerMinute},
			{"cpu_seconds_per_hour", id.Quotas.CPUSecondsPerHour}, {"upstream_calls_per_minute", id.Quotas.UpstreamCallsPerMinute}} {
			if q.v < 0 || q.v > MaxQuota {
				bad(i, "quotas.%s is %d; allowed 0 (no limit) to %d", q.key, q.v, MaxQuota)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// JSON is s as Parse reads it (hashes included: never log it).
func (s *Set) JSON() []byte {
	if s == nil {
		return []byte("[]")
	}
	b, _ := json.Marshal(s.list)
	return b
}

// Len is the number of identities.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// All is the identities, in the file's order (copies).
func (s *Set) All() []Identity {
	if s == nil {
		return nil
	}
	return append([]Identity(nil), s.list...)
}

// Lookup is the identity named name.
func (s *Set) Lookup(name string) (Identity, bool) {
	if s == nil {
		return Identity{}, false
	}
	i, ok := s.byName[name]
	if !ok {
		return Identity{}, false
	}
	return s.list[i], true
}

// HasTokens says whether any identity has a token (HTTP clients can authenticate).
func (s *Set) HasTokens() bool {
	if s == nil {
		return false
	}
	for i := range s.list {
		if s.list[i].Name != Stdio {
			return true
		}
	}
	return false
}

// Verify is the name of the identity whose token is token. It compares the token's SHA-256
// with every identity's in constant time, and looks at all of them whatever matched.
func (s *Set) Verify(token string) (string, bool) {
	if s == nil {
		return "", false
	}
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range s.list {
		if s.list[i].Name == Stdio {
			continue
		}
		if subtle.ConstantTimeCompare(d[:], s.list[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return s.list[found].Name, true
}

// Store holds the serving Set; a reload swaps it. Its zero value holds none.
type Store struct{ p atomic.Pointer[Set] }

// NewStore is a Store holding s.
func NewStore(s *Set) *Store {
	st := &Store{}
	st.p.Store(s)
	return st
}

// Load is the Set serving now (nil when none).
func (st *Store) Load() *Set {
	if st == nil {
		return nil
	}
	return st.p.Load()
}

// Swap makes s the Set serving from now on.
func (st *Store) Swap(s *Set) { st.p.Store(s) }
