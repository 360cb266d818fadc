package deps

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// viewFormat starts the text a view's name is hashed over; a change to what
// a view holds or how it is laid out bumps it, so old views are not reused.
const viewFormat = "conductor dependency cache view 1"

// ViewNameLen is the length of a view's name: 32 hex digits (128 bits of
// sha256).
const ViewNameLen = 32

// ViewKey is what a view of the dependency cache is for. Equal keys name
// the same view; a change to any part names another.
type ViewKey struct {
	Allowlist *Allowlist
	// Registry is the npm registry URL packages are installed from (deno
	// files packages by the registry's host). A trailing slash is ignored.
	Registry string
	// Deno is the deno version that installs and runs (its cache layout
	// may change between versions), e.g. "deno 2.9.6".
	Deno string
	// Python is the interpreter that installs and runs the pypi: packages
	// (pip compiles their bytecode for it, and a wheel's tags name its
	// version and ABI), e.g. "Python 3.11.7 /usr/bin/python3.11"; PyIndex
	// is the index pip installs from (PIP_INDEX_URL). Both count only when
	// the allowlist has pypi: packages.
	Python, PyIndex string
}

// Canonical is the text a view's name is the hash of: a JSON array of the
// format, the registry, the deno version and the admin's entries sorted
// (JSON, so no field can pose as another), then, when the allowlist has
// pypi: packages, the Python interpreter and the index (so an allowlist of
// npm: packages only keeps the name it had before pypi: entries existed).
// Two allowlists that list the same packages in another order have the
// same canonical text.
func (k ViewKey) Canonical() string {
	specs := make([]string, 0, k.Allowlist.Len())
	for _, p := range k.Allowlist.Packages() {
		specs = append(specs, p.Specifier())
	}
	slices.Sort(specs)
	parts := []any{viewFormat, strings.TrimRight(k.Registry, "/"), k.Deno, specs}
	if len(k.Allowlist.PythonPackages()) > 0 {
		parts = append(parts, k.Python, strings.TrimRight(k.PyIndex, "/"))
	}
	b, _ := json.Marshal(parts) // strings never fail to marshal
	return string(b)
}

// Name is the view's directory name: the first ViewNameLen hex digits of
// the sha256 of Canonical.
func (k ViewKey) Name() string {
	sum := sha256.Sum256([]byte(k.Canonical()))
	return hex.EncodeToString(sum[:])[:ViewNameLen]
}

// IsViewName reports whether s has the form of a view's name.
func IsViewName(s string) bool {
	if len(s) != ViewNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
