package deps

import (
	"fmt"
	"strings"
)

// MaxSpecifierLen bounds a specifier (and an allowlist entry) in bytes.
// The longest npm name is 214 bytes; this leaves room for the scheme, a
// version and a subpath.
const MaxSpecifierLen = 512

// maxNameLen is npm's limit on a package name, scope included.
const maxNameLen = 214

// maxVersionLen bounds a version or range.
const maxVersionLen = 64

// specByte reports whether b may appear in a specifier at all: ASCII
// letters, digits and - . _ ~ ^ * / @ :. Every accepted specifier consists
// of these bytes only.
func specByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-._~^*/@:", b) >= 0
}

// injectionByte describes the bytes that are refused wherever they appear,
// before anything else is looked at. It returns "" for other bytes.
func injectionByte(b byte) string {
	switch {
	case b == 0:
		return "a NUL byte"
	case b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f':
		return "whitespace"
	case b < 0x20 || b == 0x7f:
		return "a control byte"
	case b == '\\':
		return "a backslash"
	case b == '%':
		return "percent-encoding (%)"
	case b >= 0x80:
		return "a non-ASCII character"
	}
	return ""
}

// scheme returns the URL scheme of s as written ("" if s has none): ASCII
// letter, then letters, digits, + - ., then a colon.
func scheme(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return s[:i]
		default:
			return ""
		}
	}
	return ""
}

// npmNamePart checks one part of an npm name (the whole unscoped name, or
// the scope or the name of a scoped one).
func npmNamePart(p string) string {
	if p == "" {
		return "is empty"
	}
	if p[0] == '.' || p[0] == '_' {
		return fmt.Sprintf("starts with %q", p[0])
	}
	if p == "node_modules" {
		return "is node_modules, a reserved name"
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		case 'A' <= c && c <= 'Z':
			return "has upper-case letters (npm names are lower-case)"
		default:
			return fmt.Sprintf("contains %q", c)
		}
	}
	return ""
}

// npmName returns why name is not a valid npm package name, or "".
func npmName(name string) string {
	if len(name) > maxNameLen {
		return fmt.Sprintf("is longer than %d bytes", maxNameLen)
	}
	if strings.HasPrefix(name, "@") {
		scope, pkg, ok := strings.Cut(name[1:], "/")
		if !ok {
			return "is a scope without a package (scoped names are @scope/name)"
		}
		if r := npmNamePart(scope); r != "" {
			return "has a scope that " + r
		}
		if r := npmNamePart(pkg); r != "" {
			return "has a name part that " + r
		}
		return ""
	}
	if r := npmNamePart(name); r != "" {
		return r
	}
	if name == "favicon.ico" {
		return "is a reserved name"
	}
	return ""
}

// jsrNamePart checks the scope or the name of a jsr package.
func jsrNamePart(p string) string {
	if p == "" {
		return "is empty"
	}
	if p[0] == '-' {
		return "starts with '-'"
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			return "has upper-case letters (jsr names are lower-case)"
		default:
			return fmt.Sprintf("contains %q (jsr names use a-z, 0-9 and -)", c)
		}
	}
	return ""
}

// jsrName returns why name is not a valid jsr package name, or "".
func jsrName(name string) string {
	if len(name) > maxNameLen {
		return fmt.Sprintf("is longer than %d bytes", maxNameLen)
	}
	if !strings.HasPrefix(name, "@") {
		return "is not scoped (jsr names are always @scope/name)"
	}
	scope, pkg, ok := strings.Cut(name[1:], "/")
	if !ok {
		return "is a scope without a package (jsr names are @scope/name)"
	}
	if r := jsrNamePart(scope); r != "" {
		return "has a scope that " + r
	}
	if r := jsrNamePart(pkg); r != "" {
		return "has a name part that " + r
	}
	return ""
}

// packageName returns why name is not valid in registry r, or "".
func packageName(r Registry, name string) string {
	if r == JSR {
		return jsrName(name)
	}
	return npmName(name)
}

// numeric reports whether s is a semver number: 0, or digits without a
// leading zero, at most 16 of them.
func numeric(s string) bool {
	if s == "" || len(s) > 16 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func wildcard(s string) bool { return s == "x" || s == "X" || s == "*" }

// VersionGrammar describes the accepted versions, for error messages.
const VersionGrammar = "a version or range such as 1.2.3, ^1, ~1.2 or 1.x ([^|~]MAJOR[.MINOR[.PATCH[-PRERELEASE]]], MINOR and PATCH may be x or *)"

// version returns why v is not an accepted version or range, or "".
func version(v string) string {
	if v == "" {
		return "is empty"
	}
	if len(v) > maxVersionLen {
		return fmt.Sprintf("is longer than %d bytes", maxVersionLen)
	}
	core := strings.TrimLeft(v, "^~")
	if len(v)-len(core) > 1 {
		return "has more than one ^ or ~"
	}
	core, pre, hasPre := strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return "has more than three numbers"
	}
	if !numeric(parts[0]) {
		if wildcard(parts[0]) || parts[0] == "" && len(parts) == 1 {
			return "does not pin a major version"
		}
		return "does not start with a major version number"
	}
	seenWild := false
	for _, p := range parts[1:] {
		switch {
		case wildcard(p):
			seenWild = true
		case numeric(p) && !seenWild:
		case numeric(p):
			return "has a number after a wildcard"
		default:
			return fmt.Sprintf("has %q where a number or x belongs", p)
		}
	}
	if hasPre {
		if len(parts) != 3 || seenWild {
			return "has a prerelease without a full MAJOR.MINOR.PATCH"
		}
		for _, id := range strings.Split(pre, ".") {
			if id == "" {
				return "has an empty prerelease identifier"
			}
			digits := true
			for i := 0; i < len(id); i++ {
				c := id[i]
				switch {
				case '0' <= c && c <= '9':
				case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-':
					digits = false
				default:
					return fmt.Sprintf("has %q in its prerelease", c)
				}
			}
			if digits && len(id) > 1 && id[0] == '0' {
				return "has a prerelease number with a leading zero"
			}
		}
	}
	return ""
}

// subpath returns why sub (empty, or starting with "/") is not an accepted
// subpath, or "".
func subpath(sub string) string {
	if sub == "" {
		return ""
	}
	for _, seg := range strings.Split(sub[1:], "/") {
		if seg == "" {
			return "has an empty path segment (// or a trailing /)"
		}
		if seg[0] == '.' {
			if seg == "." || seg == ".." {
				return fmt.Sprintf("has a %q path segment", seg)
			}
			return "has a path segment starting with '.'"
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
				c == '.', c == '_', c == '~', c == '-':
			default:
				return fmt.Sprintf("has %q in a path segment", c)
			}
		}
	}
	return ""
}

// splitPackage splits PACKAGE[@VERSION][/SUBPATH] (the part after npm: or
// jsr:, or a bare specifier). hasVersion is set when an @ follows the name,
// even if the version after it is empty.
func splitPackage(s string) (name, ver string, hasVersion bool, sub string) {
	i := 0
	if strings.HasPrefix(s, "@") {
		slash := strings.IndexByte(s, '/')
		if slash < 0 {
			return s, "", false, ""
		}
		i = slash + 1
	}
	end := len(s)
	if j := strings.IndexAny(s[i:], "@/"); j >= 0 {
		end = i + j
	}
	name, rest := s[:end], s[end:]
	if strings.HasPrefix(rest, "@") {
		hasVersion = true
		rest = rest[1:]
		k := strings.IndexByte(rest, '/')
		if k < 0 {
			k = len(rest)
		}
		ver, rest = rest[:k], rest[k:]
	}
	return name, ver, hasVersion, rest
}

// hasSegment reports whether s has a path segment equal to seg, counting
// ":" and "/" as separators.
func hasSegment(s, seg string) bool {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ':' }) {
		if f == seg {
			return true
		}
	}
	return false
}
