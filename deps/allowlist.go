package deps

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Registry is a package registry a specifier can name.
type Registry string

// The registries. Only npm is reachable from conductor's build machines;
// jsr entries are accepted but can be installed only where the JSR registry
// is reachable.
const (
	NPM Registry = "npm"
	JSR Registry = "jsr"
)

func (r Registry) String() string { return string(r) }

// Package is one entry of the admin's allowlist.
type Package struct {
	Registry Registry
	// Name: npm "zod" or "@scope/name"; jsr always "@scope/name"; pypi the normalised
	// distribution name (NormalizePyName).
	Name string
	// Version is the admin's version or range as written; never empty. pypi: with its
	// operator, "==6.0.1" or "~=1.4".
	Version string
}

// Specifier returns the package's specifier: deno's for npm and jsr ("npm:zod@^3"), the
// allowlist's spelling for pypi ("pypi:pyyaml==6.0.1").
func (p Package) Specifier() string {
	if p.Registry == PyPI {
		return string(p.Registry) + ":" + p.Name + p.Version
	}
	return string(p.Registry) + ":" + p.Name + "@" + p.Version
}

// String is Specifier.
func (p Package) String() string { return p.Specifier() }

// Allowlist is the parsed admin allowlist. It is immutable after
// ParseAllowlist and safe for concurrent use. A nil *Allowlist is the
// empty allowlist.
type Allowlist struct {
	all    []Package      // every entry, in the admin's order
	pkgs   []Package      // the npm: and jsr: entries: what deno code may import
	byName map[string]int // "npm:zod" -> index in pkgs
	bare   map[string]int // "zod" -> index in pkgs
	py     []Package      // the pypi: entries: what Python code may import
}

// AllowlistGrammar describes the allowlist's syntax, for error messages.
const AllowlistGrammar = "comma-separated entries without spaces, each npm:NAME@VERSION, jsr:@SCOPE/NAME@VERSION or pypi:NAME==VERSION, e.g. npm:zod@^3,jsr:@std/path@^1,pypi:pyyaml==6.0.1; VERSION is " + VersionGrammar + "; a pypi: VERSION is a release such as 6.0.1 after == (exact) or ~= (compatible)"

// ParseError is a bad allowlist entry.
type ParseError struct {
	Index  int    // 1-based position of the entry
	Count  int    // number of entries in the allowlist
	Entry  string // the entry as written
	Reason string // what is wrong with it
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("package allowlist entry %d of %d (%s): %s (the allowlist is %s)",
		e.Index, e.Count, quote(e.Entry), e.Reason, AllowlistGrammar)
}

// ParseAllowlist parses the admin's allowlist (see the package
// documentation for the grammar). The empty string is the empty allowlist.
// The first bad entry is reported as a *ParseError.
func ParseAllowlist(s string) (*Allowlist, error) {
	a := &Allowlist{byName: map[string]int{}, bare: map[string]int{}}
	if s == "" {
		return a, nil
	}
	entries := strings.Split(s, ",")
	for i, e := range entries {
		fail := func(format string, args ...any) error {
			return &ParseError{Index: i + 1, Count: len(entries), Entry: e, Reason: fmt.Sprintf(format, args...)}
		}
		p, reason := parseEntry(e)
		if reason != "" {
			return nil, fail("%s", reason)
		}
		if p.Registry == PyPI {
			for j, q := range a.all {
				if q.Registry == PyPI && q.Name == p.Name {
					return nil, fail("lists pypi:%s again (entry %d is %s; names are compared normalised, PyYAML = pyyaml); list each package once", p.Name, j+1, q.Specifier())
				}
			}
			a.py = append(a.py, p)
			a.all = append(a.all, p)
			continue
		}
		key := string(p.Registry) + ":" + p.Name
		if j, dup := a.byName[key]; dup {
			return nil, fail("lists %s again (entry %d is %s); list each package once", key, j+1, a.pkgs[j].Specifier())
		}
		if j, dup := a.bare[p.Name]; dup {
			return nil, fail("%s and entry %d, %s, share the name %s, so the bare import %q would be ambiguous; keep one",
				p.Specifier(), j+1, a.pkgs[j].Specifier(), p.Name, p.Name)
		}
		a.byName[key] = len(a.pkgs)
		a.bare[p.Name] = len(a.pkgs)
		a.pkgs = append(a.pkgs, p)
		a.all = append(a.all, p)
	}
	return a, nil
}

// parseEntry parses one allowlist entry; reason is "" when it is valid.
func parseEntry(e string) (p Package, reason string) {
	if e == "" {
		return p, "is empty (two commas in a row, or a leading or trailing comma)"
	}
	if len(e) > MaxSpecifierLen {
		return p, fmt.Sprintf("is longer than %d bytes", MaxSpecifierLen)
	}
	for i := 0; i < len(e); i++ {
		if what := injectionByte(e[i]); what != "" {
			return p, fmt.Sprintf("contains %s at byte %d", what, i)
		}
	}
	if rest, ok := strings.CutPrefix(e, "pypi:"); ok {
		return parsePyEntry(rest)
	}
	if sch := scheme(e); sch != "pypi" && strings.EqualFold(sch, "pypi") {
		return p, "has an upper-case scheme; write pypi:"
	}
	for i := 0; i < len(e); i++ {
		if !specByte(e[i]) {
			return p, fmt.Sprintf("contains %q at byte %d", e[i], i)
		}
	}
	sch := scheme(e)
	var reg Registry
	switch sch {
	case "npm":
		reg = NPM
	case "jsr":
		reg = JSR
	case "":
		return p, "has no registry; write npm:" + e + ", jsr:" + e + " or pypi:NAME==VERSION"
	default:
		if l := strings.ToLower(sch); l == "npm" || l == "jsr" || l == "pypi" {
			return p, "has an upper-case scheme; write " + l + ":"
		}
		return p, fmt.Sprintf("uses %s:, but only npm:, jsr: and pypi: packages can be allowed", sch)
	}
	rest := e[len(sch)+1:]
	if strings.HasPrefix(rest, "/") {
		return p, fmt.Sprintf("has a / after %s:; write %s:NAME@VERSION", sch, sch)
	}
	name, ver, hasVer, sub := splitPackage(rest)
	if r := packageName(reg, name); r != "" {
		return p, fmt.Sprintf("has a package name %s that %s", quote(name), r)
	}
	if !hasVer {
		return p, fmt.Sprintf("has no version; admins must pin one, e.g. %s:%s@^1 or %s:%s@1.2.3", sch, name, sch, name)
	}
	if r := version(ver); r != "" {
		return p, fmt.Sprintf("has a version %s that %s; write %s", quote(ver), r, VersionGrammar)
	}
	if sub != "" {
		return p, fmt.Sprintf("has a subpath %s; an entry names a whole package (its subpaths are allowed with it): write %s:%s@%s", quote(sub), sch, name, ver)
	}
	return Package{Registry: reg, Name: name, Version: ver}, ""
}

// Packages returns every allowlisted package (npm, jsr and pypi) in the admin's order.
func (a *Allowlist) Packages() []Package {
	if a == nil {
		return nil
	}
	return slices.Clone(a.all)
}

// Len is the number of allowlisted packages, of every registry.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.all)
}

// denoLen is the number of npm: and jsr: packages: what deno code may import.
func (a *Allowlist) denoLen() int {
	if a == nil {
		return 0
	}
	return len(a.pkgs)
}

// specifiers lists the packages' specifiers, comma-separated.
func (a *Allowlist) specifiers() string {
	s := make([]string, len(a.pkgs))
	for i, p := range a.pkgs {
		s[i] = p.Specifier()
	}
	return strings.Join(s, ", ")
}

// Description is one line for the tool description the model sees, e.g.
//
//	Allowed packages: npm:zod@^3, npm:axios@^1 (import them without a version, e.g. npm:zod or zod; the server fixes the version). node: built-ins are always available.
//
// or, for an empty allowlist,
//
//	No packages are allowed. node: built-ins are always available.
func (a *Allowlist) Description() string {
	if a.denoLen() == 0 {
		return "No packages are allowed. node: built-ins are always available."
	}
	p := a.pkgs[0]
	return fmt.Sprintf("Allowed packages: %s (import them without a version, e.g. %s:%s or %s; the server fixes the version). node: built-ins are always available.",
		a.specifiers(), p.Registry, p.Name, p.Name)
}

// allowed is the sentence every CheckError ends with.
func (a *Allowlist) allowed() string {
	if a.denoLen() == 0 {
		return "No packages are allowed on this server; only node: built-ins can be imported."
	}
	return "Allowed packages: " + a.specifiers() + "; node: built-ins are always available."
}

// quote quotes untrusted text for an error message: ASCII only, escapes
// for everything else, long text cut in the middle.
func quote(s string) string {
	const max = 120
	if len(s) > max {
		return strconv.QuoteToASCII(s[:max/2]) + "...(" + strconv.Itoa(len(s)) + " bytes)..." + strconv.QuoteToASCII(s[len(s)-max/4:])
	}
	return strconv.QuoteToASCII(s)
}
