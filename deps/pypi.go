package deps

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// PyPI is the Python package index: pypi:NAME==VERSION entries, installed
// with pip from the index the admin configures (PIP_INDEX_URL), used by
// Python code only.
const PyPI Registry = "pypi"

// PyPIGrammar describes a pypi: entry, for error messages.
const PyPIGrammar = "pypi:NAME==VERSION (exact) or pypi:NAME~=VERSION (a compatible release: ~=1.4 is >=1.4,==1.*), " +
	"NAME a distribution name (ASCII letters, digits, - _ ., starting and ending with a letter or digit), " +
	"VERSION a release such as 1.2.3 or 6.0.1rc1 (PEP 440 without epochs or local parts)"

// maxPyNameLen bounds a distribution name (PyPI has no limit; real names are far shorter).
const maxPyNameLen = 128

// NormalizePyName is PEP 503's normalised form of a distribution name:
// lower case, each run of - _ . one -. Names that differ only there
// (PyYAML, pyyaml, py_yaml) name the same distribution.
func NormalizePyName(name string) string {
	var b strings.Builder
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pyName returns why name is not a distribution name, or "".
func pyName(name string) string {
	if name == "" {
		return "is empty"
	}
	if len(name) > maxPyNameLen {
		return fmt.Sprintf("is longer than %d bytes", maxPyNameLen)
	}
	alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Sprintf("contains %q (a name has ASCII letters, digits, - _ . only)", c)
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return "does not start and end with a letter or digit"
	}
	return ""
}

// pyVersionRE is the accepted release version: a PEP 440 public version without epoch, local
// part or wildcards, in its normalised spelling: N(.N)*[{a|b|rc}N][.postN][.devN], numbers
// without leading zeros.
var pyVersionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*((a|b|rc)(0|[1-9][0-9]*))?(\.post(0|[1-9][0-9]*))?(\.dev(0|[1-9][0-9]*))?$`)

// pyVersion returns why v is not an accepted release version, or ""; compatible (~=) needs two
// release numbers at least.
func pyVersion(v string, compatible bool) string {
	switch {
	case v == "":
		return "is empty"
	case len(v) > maxVersionLen:
		return fmt.Sprintf("is longer than %d bytes", maxVersionLen)
	case !pyVersionRE.MatchString(v):
		return "is not a release such as 1.2.3, 2.0rc1 or 1.0.post1 (no leading zeros, epochs, local versions, wildcards or ranges)"
	case compatible && pyVersionRE.FindStringSubmatch(v)[2] == "":
		return "has one release number; ~= needs two or more (~=1.4 means >=1.4,==1.*)"
	}
	return ""
}

// parsePyEntry parses the part of an allowlist entry after "pypi:".
func parsePyEntry(rest string) (p Package, reason string) {
	op := "=="
	i := strings.Index(rest, "==")
	if j := strings.Index(rest, "~="); j >= 0 && (i < 0 || j < i) {
		i, op = j, "~="
	}
	if i < 0 {
		if k := strings.IndexAny(rest, "<>=!@^*"); k >= 0 {
			return p, fmt.Sprintf("has %q; pin a version with == or ~= (one entry per package; a comma separates entries, so ranges such as >=1,<2 are written ~=1.x)", rest[k:])
		}
		return p, fmt.Sprintf("has no version; admins must pin one, e.g. pypi:%s==1.2.3", rest)
	}
	name, ver := rest[:i], rest[i+2:]
	if r := pyName(name); r != "" {
		return p, fmt.Sprintf("has a distribution name %s that %s", quote(name), r)
	}
	if r := pyVersion(ver, op == "~="); r != "" {
		return p, fmt.Sprintf("has a version %s that %s", quote(ver), r)
	}
	return Package{Registry: PyPI, Name: NormalizePyName(name), Version: op + ver}, ""
}

// PythonPackages returns the allowlisted pypi: packages in the admin's order.
func (a *Allowlist) PythonPackages() []Package {
	if a == nil {
		return nil
	}
	return slices.Clone(a.py)
}

// PipRequirement is p as pip reads it on its command line, e.g. "pyyaml==6.0.1".
func (p Package) PipRequirement() string { return p.Name + p.Version }

// PythonAllowed is the sentence Python's refusals end with: what may be imported besides the
// interpreter's own standard library and base environment.
func (a *Allowlist) PythonAllowed() string {
	if len(a.PythonPackages()) == 0 {
		return "No PyPI packages are allowed on this server (the admin allows them with pypi:NAME==VERSION in MCP_CONDUCTOR_ALLOWED_PACKAGES); the standard library and the interpreter's own packages can be imported."
	}
	s := make([]string, len(a.py))
	for i, p := range a.py {
		s[i] = p.Specifier()
	}
	return "Allowed PyPI packages: " + strings.Join(s, ", ") + " (MCP_CONDUCTOR_ALLOWED_PACKAGES, set by the admin); the standard library and the interpreter's own packages can be imported too."
}

// CheckPython checks one entry of run_python_code's dependencies array: a
// distribution name, optionally with the admin's own pin (pyyaml,
// PyYAML, pyyaml==6.0.1). It returns the admin's package or a *CheckError
// (ErrMalformed, ErrNotAllowed or ErrVersionMismatch) naming the allowlist.
func (a *Allowlist) CheckPython(spec string) (Package, error) {
	fail := func(kind error, format string, args ...any) (Package, error) {
		return Package{}, &CheckError{Spec: spec, Err: kind, Reason: fmt.Sprintf(format, args...), Allowed: a.PythonAllowed()}
	}
	if len(spec) > MaxSpecifierLen {
		return fail(ErrMalformed, "is %d bytes long; a dependency has at most %d", len(spec), MaxSpecifierLen)
	}
	for i := 0; i < len(spec); i++ {
		if what := injectionByte(spec[i]); what != "" {
			return fail(ErrMalformed, "contains %s at byte %d", what, i)
		}
	}
	name := strings.TrimPrefix(spec, "pypi:")
	ver := ""
	if i := strings.IndexAny(name, "=~<>!"); i >= 0 {
		name, ver = name[:i], name[i:]
	}
	if r := pyName(name); r != "" {
		return fail(ErrMalformed, "the distribution name %s %s", quote(name), r)
	}
	norm := NormalizePyName(name)
	var p Package
	found := false
	if a != nil {
		for _, q := range a.py {
			if q.Name == norm {
				p, found = q, true
			}
		}
	}
	if !found {
		return fail(ErrNotAllowed, "pypi:%s is not on this server's package allowlist", norm)
	}
	if ver != "" && ver != p.Version {
		return fail(ErrVersionMismatch, "asks for %s; this server pins %s; omit the version", ver, p.Specifier())
	}
	return p, nil
}
