package deps

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The kinds of rejection. Every error Check returns is a *CheckError that
// wraps exactly one of these (test with errors.Is).
var (
	// ErrNotAllowed: a well-formed package (or node: name) that this server
	// does not allow.
	ErrNotAllowed = errors.New("package not allowed")
	// ErrVersionMismatch: an allowlisted package asked for with a version
	// other than the admin's.
	ErrVersionMismatch = errors.New("package version differs from the allowlist")
	// ErrMalformed: not a valid specifier under this package's grammar.
	ErrMalformed = errors.New("malformed package specifier")
	// ErrRemote: a URL (http:, https:, file:, data:, blob:, any scheme but
	// npm:, jsr: and node:) or a node_modules path.
	ErrRemote = errors.New("URL and file imports are not allowed")
	// ErrRelative: a relative or absolute path (./x.ts, ../x, /x).
	ErrRelative = errors.New("relative imports are not allowed")
)

// Kind is what an accepted specifier resolved to.
type Kind int

// The kinds of accepted specifiers.
const (
	KindPackage Kind = iota + 1 // an allowlisted npm: or jsr: package
	KindBuiltin                 // a node: built-in; no package is involved
)

func (k Kind) String() string {
	switch k {
	case KindPackage:
		return "package"
	case KindBuiltin:
		return "builtin"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Resolved is an accepted specifier.
type Resolved struct {
	Kind Kind
	// Package is the admin's package (KindPackage); zero for a builtin.
	Package Package
	// Subpath is "" or the subpath asked for, with its leading slash
	// ("/v4" for npm:zod/v4).
	Subpath string
	// Specifier is what deno should load: the admin's package specifier
	// plus the subpath ("npm:zod@^3/v4"), or the builtin ("node:fs"). A
	// caller that rewrites imports in module text writes this.
	Specifier string
}

// CheckError is a rejected specifier.
type CheckError struct {
	Spec    string // the specifier as given (untrusted; Error quotes it)
	Err     error  // ErrNotAllowed, ErrVersionMismatch, ErrMalformed, ErrRemote or ErrRelative
	Reason  string // what is wrong, and how to fix it when there is a fix
	Allowed string // what the server allows
}

func (e *CheckError) Error() string {
	return quote(e.Spec) + ": " + e.Reason + ". " + e.Allowed
}

func (e *CheckError) Unwrap() error { return e.Err }

// remoteSchemes get a reason of their own; every other scheme than npm:,
// jsr: and node: is refused as well.
var remoteSchemes = map[string]string{
	"http":  "a remote URL",
	"https": "a remote URL",
	"file":  "a file URL",
	"data":  "a data: URL",
	"blob":  "a blob: URL",
}

// Check validates one specifier the model asked for — an entry of the
// dependencies array or an import specifier from its code — and returns what
// it resolves to: the admin's package (KindPackage) or a node: built-in
// (KindBuiltin). See the package documentation for the rules. Errors are
// *CheckError values wrapping one of the Err* sentinels.
func (a *Allowlist) Check(spec string) (Resolved, error) {
	fail := func(kind error, format string, args ...any) (Resolved, error) {
		return Resolved{}, &CheckError{Spec: spec, Err: kind, Reason: fmt.Sprintf(format, args...), Allowed: a.allowed()}
	}
	if spec == "" {
		return fail(ErrMalformed, "is empty")
	}
	if len(spec) > MaxSpecifierLen {
		return fail(ErrMalformed, "is %d bytes long; a specifier has at most %d", len(spec), MaxSpecifierLen)
	}
	sch := scheme(spec)
	lower := strings.ToLower(sch)
	if strings.HasPrefix(spec, "//") {
		return fail(ErrRemote, "is a protocol-relative URL; code may import only node: built-ins and allowlisted npm:/jsr: packages")
	}
	switch lower {
	case "", "npm", "jsr", "node":
	default:
		what := remoteSchemes[lower]
		if what == "" {
			if len(lower) > 32 {
				lower = lower[:32] + "..."
			}
			what = "a " + lower + ": URL"
		}
		return fail(ErrRemote, "is %s; code may import only node: built-ins and allowlisted npm:/jsr: packages", what)
	}
	for i := 0; i < len(spec); i++ {
		what := injectionByte(spec[i])
		if what == "" {
			continue
		}
		if spec[i] >= 0x80 {
			r, _ := utf8.DecodeRuneInString(spec[i:])
			if r == utf8.RuneError {
				return fail(ErrMalformed, "contains invalid UTF-8 at byte %d; specifiers are ASCII", i)
			}
			return fail(ErrMalformed, "contains the non-ASCII character %U at byte %d; specifiers are ASCII (look-alike letters are not accepted)", r, i)
		}
		if spec[i] == '%' {
			return fail(ErrMalformed, "contains percent-encoding at byte %d; write the name as plain text", i)
		}
		return fail(ErrMalformed, "contains %s at byte %d", what, i)
	}
	for i := 0; i < len(spec); i++ {
		switch c := spec[i]; {
		case specByte(c):
		case c == '?' || c == '#':
			return fail(ErrMalformed, "contains %q at byte %d; specifiers have no query or fragment", c, i)
		default:
			return fail(ErrMalformed, "contains %q at byte %d; specifiers use only ASCII letters, digits and - . _ ~ ^ * / @ :", c, i)
		}
	}
	if hasSegment(spec, "node_modules") {
		return fail(ErrRemote, "is a node_modules path; import the package by name (npm:NAME or NAME) instead")
	}
	if spec == "." || spec == ".." || strings.HasPrefix(spec, "./") || strings.HasPrefix(spec, "../") || strings.HasPrefix(spec, "/") {
		return fail(ErrRelative, "is a file path; the sandbox has no module files, so code may import only node: built-ins and allowlisted packages by name")
	}
	if sch != lower {
		return fail(ErrMalformed, "has an upper-case scheme; write %s:", lower)
	}
	switch sch {
	case "node":
		name := spec[len("node:"):]
		if !builtins[name] {
			return fail(ErrNotAllowed, "node:%s is not a Node built-in module of deno", name)
		}
		return Resolved{Kind: KindBuiltin, Specifier: spec}, nil
	case "npm":
		return a.checkPackage(spec, NPM, spec[len("npm:"):], fail)
	case "jsr":
		return a.checkPackage(spec, JSR, spec[len("jsr:"):], fail)
	}
	return a.checkBare(spec, fail)
}

type failFunc func(kind error, format string, args ...any) (Resolved, error)

// lookup returns the allowlisted package reg:name.
func (a *Allowlist) lookup(reg Registry, name string) (Package, bool) {
	if a == nil {
		return Package{}, false
	}
	i, ok := a.byName[string(reg)+":"+name]
	if !ok {
		return Package{}, false
	}
	return a.pkgs[i], true
}

// lookupBare returns the allowlisted package with this name in any registry.
func (a *Allowlist) lookupBare(name string) (Package, bool) {
	if a == nil {
		return Package{}, false
	}
	i, ok := a.bare[name]
	if !ok {
		return Package{}, false
	}
	return a.pkgs[i], true
}

// caseHint points at the allowlisted package a mis-cased name stands for.
func (a *Allowlist) caseHint(name string) string {
	if p, ok := a.lookupBare(strings.ToLower(name)); ok {
		return "; the allowlisted package is " + p.Specifier()
	}
	return ""
}

func (a *Allowlist) checkPackage(spec string, reg Registry, rest string, fail failFunc) (Resolved, error) {
	if rest == "" {
		return fail(ErrMalformed, "names no package; write %s:NAME", reg)
	}
	if rest[0] == '/' {
		return fail(ErrMalformed, "has a / after %s:; write %s:NAME (no slashes before the name)", reg, reg)
	}
	name, ver, hasVer, sub := splitPackage(rest)
	if r := packageName(reg, name); r != "" {
		return fail(ErrMalformed, "the package name %q %s%s", name, r, a.caseHint(name))
	}
	p, known := a.lookup(reg, name)
	if hasVer {
		if r := version(ver); r != "" {
			if known {
				return fail(ErrMalformed, "the version %q %s; omit the version: this server pins %s", ver, r, p.Specifier())
			}
			return fail(ErrMalformed, "the version %q %s; write %s", ver, r, VersionGrammar)
		}
	}
	if r := subpath(sub); r != "" {
		return fail(ErrMalformed, "the subpath %q %s", sub, r)
	}
	if !known {
		hint := ""
		if other, ok := a.lookupBare(name); ok {
			hint = "; " + other.Specifier() + " is, from " + string(other.Registry)
		}
		return fail(ErrNotAllowed, "%s:%s is not on this server's package allowlist%s", reg, name, hint)
	}
	if hasVer && ver != p.Version {
		return fail(ErrVersionMismatch, "asks for version %s; this server pins %s; omit the version or use %s", ver, p.Specifier(), p.Version)
	}
	return Resolved{Kind: KindPackage, Package: p, Subpath: sub, Specifier: p.Specifier() + sub}, nil
}

func (a *Allowlist) checkBare(spec string, fail failFunc) (Resolved, error) {
	name, _, hasVer, sub := splitPackage(spec)
	if r := npmName(name); r != "" {
		return fail(ErrMalformed, "the bare package name %q %s%s", name, r, a.caseHint(name))
	}
	p, known := a.lookupBare(name)
	if hasVer {
		if known {
			return fail(ErrMalformed, "bare specifiers carry no version; write %s%s (this server pins %s)", name, sub, p.Specifier())
		}
		return fail(ErrMalformed, "bare specifiers carry no version; write NAME or npm:NAME")
	}
	if r := subpath(sub); r != "" {
		return fail(ErrMalformed, "the subpath %q %s", sub, r)
	}
	if !known {
		if builtins[name+sub] {
			return fail(ErrNotAllowed, "%s is not an allowlisted package; for the Node built-in write node:%s", spec, spec)
		}
		return fail(ErrNotAllowed, "%s is not on this server's package allowlist", name)
	}
	return Resolved{Kind: KindPackage, Package: p, Subpath: sub, Specifier: p.Specifier() + sub}, nil
}
