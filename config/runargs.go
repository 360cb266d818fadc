package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// valueKind says what values a permission flag takes.
type valueKind int

const (
	kindNone valueKind = iota // bare only: allow-all
	kindPath                  // absolute, clean file system paths
	kindHost                  // host, host:port, IPv4[:port], [IPv6][:port]
	kindEnv                   // environment variable names, optional trailing *
	kindSys                   // deno's system-information API names
	kindRun                   // program names or absolute program paths
)

// permFlags is the allowlist: every deno 2.9 permission flag that
// MCP_CONDUCTOR_RUN_ARGS may use, by long name without dashes. All but
// allow-all may be given bare (grant or deny everything of that kind) or
// with a list of values. TestDenoKnowsAcceptedFlags checks each name against
// `deno run --help`.
var permFlags = map[string]valueKind{
	"allow-all":   kindNone,
	"allow-read":  kindPath,
	"allow-write": kindPath,
	"allow-net":   kindHost,
	"allow-env":   kindEnv,
	"allow-sys":   kindSys,
	"allow-run":   kindRun,
	"allow-ffi":   kindPath,
	"deny-read":   kindPath,
	"deny-write":  kindPath,
	"deny-net":    kindHost,
	"deny-env":    kindEnv,
	"deny-sys":    kindSys,
	"deny-run":    kindRun,
	"deny-ffi":    kindPath,
	"deny-import": kindHost,
}

// permOrder lists permFlags in documentation order.
var permOrder = []string{
	"allow-all", "allow-read", "allow-write", "allow-net", "allow-env",
	"allow-sys", "allow-run", "allow-ffi",
	"deny-read", "deny-write", "deny-net", "deny-env", "deny-sys",
	"deny-run", "deny-ffi", "deny-import",
}

// sysNames are the API names deno 2.9 accepts in --allow-sys/--deny-sys
// (it refuses to start on any other). TestDenoAcceptsOutput runs them.
var sysNames = []string{
	"hostname", "osRelease", "osUptime", "loadavg", "networkInterfaces",
	"systemMemoryInfo", "uid", "gid", "username", "cpus", "homedir",
	"statfs", "getPriority", "setPriority", "userInfo", "getegid",
}

// shortForms are deno's one-letter permission flags. They are not accepted
// (a bare letter after a list flag is a value, e.g. an environment variable
// named "A"); as a flag they earn a pointer to the long name.
var shortForms = map[string]string{
	"A": "allow-all", "R": "allow-read", "W": "allow-write", "N": "allow-net",
	"E": "allow-env", "S": "allow-sys", "I": "allow-import", "P": "permission-set",
}

// refusedFlags are real deno flags that MCP_CONDUCTOR_RUN_ARGS refuses,
// with the reason given to the admin.
var refusedFlags = map[string]string{
	"allow-import":   "remote imports are disabled: conductor runs deno with --no-remote and code may import only the packages in the admin's package allowlist",
	"permission-set": "it loads permissions from a deno config file, which conductor does not use",
	"allow-scripts":  "it runs npm lifecycle scripts and is not a permission flag",
	"ignore-read":    "only allow-* and deny-* permission flags are supported",
	"ignore-env":     "only allow-* and deny-* permission flags are supported",
	"no-prompt":      "conductor sets deno's runtime options itself",
}

// runtimeOptions are the other options of `deno run` (2.9). They are never
// accepted; knowing them only makes the message clearer and stops a bare
// "config" or "v8-flags" from being read as a list value.
var runtimeOptions = []string{
	"cached-only", "cert", "check", "conditions", "config", "coverage",
	"env-file", "ext", "frozen-lockfile", "help", "hmr", "import-map",
	"inspect", "inspect-brk", "inspect-publish-uid", "inspect-wait",
	"location", "lock", "log-level", "min-dep-age", "no-check",
	"no-clear-screen", "no-code-cache", "no-config", "no-lock", "no-npm",
	"no-remote", "node-modules-dir", "node-modules-linker", "preload",
	"quiet", "reload", "require", "seed", "unsafely-ignore-certificate-errors",
	"unstable", "use-env-proxy", "v8-flags", "vendor", "watch",
	"watch-exclude",
}

// flagPrefixes mark a token as a flag even when it is not a known one, so
// that e.g. "unstable-ffi" is refused instead of taken as a list value.
var flagPrefixes = []string{"allow-", "deny-", "ignore-", "unstable-", "no-", "-"}

// tokenByte reports whether c may appear in a RUN_ARGS token at all. Each
// value kind is stricter still; this is the outer fence that keeps spaces,
// quotes, shell metacharacters, control bytes and non-ASCII out.
func tokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_./:@+=*[]", c) >= 0
}

// pathByte is the character set of file system paths in RUN_ARGS and of the
// path-valued variables.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_./+@", c) >= 0
}

// runArgs is the parsed form of MCP_CONDUCTOR_RUN_ARGS.
type runArgs struct {
	args     []string // "--name" or "--name=v1,v2"
	allowAll bool
	network  bool
	netHosts []string // nil: all hosts (when network) or none
	netDeny  []string // deny-net values (a list; a bare deny-net turns network off)
	runAny   bool     // bare allow-run or allow-all: code may run any program the root holds
	run      []string // the allow-run list
}

// ParseRunArgs parses the MCP_CONDUCTOR_RUN_ARGS grammar (see the package
// documentation) into deno arguments with leading dashes, such as
// ["--allow-read=/data", "--allow-net=api.example.com:443"]. The empty
// string gives nil: no permissions. On error it returns nil and every
// problem found, joined with errors.Join.
func ParseRunArgs(s string) ([]string, error) {
	r, err := parseRunArgs(s)
	return r.args, err
}

// pendingFlag is a flag being read, with the values seen so far.
type pendingFlag struct {
	item    int    // index of the item that started it
	tok     string // that item
	name    string
	kind    valueKind
	bare    bool // given without "=": takes no continuation values
	refused bool // already reported; swallow its continuation tokens
	values  []string
}

func parseRunArgs(s string) (runArgs, error) {
	if s == "" {
		return runArgs{}, nil
	}
	type problem struct {
		item int
		err  error
	}
	var (
		problems []problem
		flags    []*pendingFlag
		cur      *pendingFlag
		seen     = map[string]bool{}
	)
	fail := func(i int, tok, format string, a ...any) {
		problems = append(problems, problem{i, fmt.Errorf("item %d %q: %s", i+1, tok, fmt.Sprintf(format, a...))})
	}
	for i, tok := range strings.Split(s, ",") {
		if tok == "" {
			fail(i, tok, "empty item (a leading, trailing or doubled comma); values cannot be empty and cannot contain commas")
			continue
		}
		name, value, hasEq := strings.Cut(tok, "=")
		isFlag := hasEq || looksLikeFlag(tok)
		if c, ok := badByte(tok, tokenByte); ok {
			fail(i, tok, "contains %s; allowed characters are letters, digits and - _ . / : @ + = * [ ]", c)
			if isFlag {
				cur = &pendingFlag{name: name, refused: true}
			}
			continue
		}
		if !isFlag {
			// A continuation: one more value for the previous flag.
			switch {
			case cur == nil:
				if long, ok := shortForms[tok]; ok {
					fail(i, tok, "short flags are not accepted; write %s", long)
				} else {
					fail(i, tok, "not a permission flag, and no flag that takes values comes before it")
				}
			case cur.refused:
				// The flag it belongs to was already reported.
			case cur.kind == kindNone:
				fail(i, tok, "%s takes no values", cur.name)
				cur.refused = true
			case cur.bare:
				fail(i, tok, "%s was given without \"=\" (all %s); to list values write %s=%s", cur.name, kindNoun(cur.kind), cur.name, tok)
				cur.refused = true
			default:
				if v, err := checkValue(cur.kind, tok); err != nil {
					fail(i, tok, "%s value %v", cur.name, err)
				} else {
					cur.values = append(cur.values, v)
				}
			}
			continue
		}

		// A new flag.
		cur = &pendingFlag{item: i, tok: tok, name: name, bare: !hasEq, refused: true}
		kind, ok := permFlags[name]
		switch {
		case ok && seen[name]:
			fail(i, tok, "%s is given twice; put all its values in one list: %s=a,b", name, name)
		case ok && kind == kindNone && hasEq:
			fail(i, tok, "%s takes no value; write %s", name, name)
		case ok && hasEq && value == "":
			fail(i, tok, "empty value; write %s alone to grant all %s, or list values", name, kindNoun(kind))
		case ok:
			seen[name] = true
			cur.kind, cur.refused = kind, false
			if hasEq {
				if v, err := checkValue(kind, value); err != nil {
					fail(i, tok, "%s value %v", name, err)
				} else {
					cur.values = append(cur.values, v)
				}
			}
			flags = append(flags, cur)
		case strings.HasPrefix(name, "-"):
			fail(i, tok, "write flags without leading dashes, e.g. allow-read=/data")
		case refusedFlags[name] != "":
			fail(i, tok, "%s is not accepted: %s", name, refusedFlags[name])
		case shortForms[name] != "":
			fail(i, tok, "short flags are not accepted; write %s", shortForms[name])
		case slices.Contains(runtimeOptions, name) || strings.HasPrefix(name, "unstable-"):
			fail(i, tok, "%s is a deno runtime option, not a permission flag; conductor sets runtime options itself", name)
		default:
			fail(i, tok, "unknown flag %q; allowed flags: %s", name, strings.Join(permOrder, ", "))
		}
	}
	// deno refuses to start with allow-all next to another allow-* flag.
	if slices.ContainsFunc(flags, func(f *pendingFlag) bool { return f.name == "allow-all" }) {
		for _, f := range flags {
			if f.name != "allow-all" && strings.HasPrefix(f.name, "allow-") {
				fail(f.item, f.tok, "allow-all already grants every permission and deno refuses it alongside %s; remove one of them", f.name)
			}
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b problem) int { return a.item - b.item })
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = p.err
		}
		return runArgs{}, errors.Join(errs...)
	}

	var r runArgs
	var allowNet, denyAllNet *pendingFlag
	for _, f := range flags {
		arg := "--" + f.name
		if !f.bare {
			arg += "=" + strings.Join(f.values, ",")
		}
		r.args = append(r.args, arg)
		switch f.name {
		case "allow-all":
			r.allowAll, r.runAny = true, true
		case "allow-net":
			allowNet = f
		case "allow-run":
			r.runAny = r.runAny || f.bare
			r.run = slices.Clone(f.values)
		case "deny-net":
			if f.bare {
				denyAllNet = f
			} else {
				r.netDeny = slices.Clone(f.values)
			}
		}
	}
	// deno applies deny before allow, so a bare deny-net switches the
	// network off even under allow-all.
	r.network = (r.allowAll || allowNet != nil) && denyAllNet == nil
	if r.network && !r.allowAll && !allowNet.bare {
		r.netHosts = slices.Clone(allowNet.values)
	}
	if !r.network {
		r.netDeny = nil
	}
	return r, nil
}

// looksLikeFlag reports whether a token without "=" names a flag rather
// than continuing the previous flag's value list. Case does not matter: host
// values are lowercased, so "allOw-r" continuing allow-net would come back as
// "allow-r", a flag (found by FuzzParseRunArgs).
func looksLikeFlag(tok string) bool {
	tok = strings.ToLower(tok)
	if _, ok := permFlags[tok]; ok {
		return true
	}
	if _, ok := refusedFlags[tok]; ok {
		return true
	}
	if slices.Contains(runtimeOptions, tok) {
		return true
	}
	for _, p := range flagPrefixes {
		if strings.HasPrefix(tok, p) {
			return true
		}
	}
	return false
}

func kindNoun(k valueKind) string {
	switch k {
	case kindPath:
		return "paths"
	case kindHost:
		return "hosts"
	case kindEnv:
		return "variables"
	case kindSys:
		return "APIs"
	case kindRun:
		return "programs"
	}
	return "values"
}

// checkValue validates one list value and returns it in normalized form.
func checkValue(k valueKind, v string) (string, error) {
	switch k {
	case kindPath:
		return v, checkAbsPath(v)
	case kindHost:
		return checkHost(v)
	case kindEnv:
		return v, checkEnvName(v)
	case kindSys:
		if !slices.Contains(sysNames, v) {
			return "", fmt.Errorf("%q is not a deno system API name; allowed: %s", v, strings.Join(sysNames, ", "))
		}
		return v, nil
	case kindRun:
		return v, checkProgram(v)
	}
	return "", errors.New("takes no values")
}

// checkAbsPath accepts an absolute, clean path made of pathByte characters.
func checkAbsPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q is not an absolute path (it must start with /)", p)
	}
	if c, ok := badByte(p, pathByte); ok {
		return fmt.Errorf("%q contains %s; paths may use letters, digits and - _ . / + @", p, c)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Errorf("%q contains a \"..\" element", p)
	}
	if c := path.Clean(p); c != p {
		return fmt.Errorf("%q is not a clean path (no \".\" elements, \"//\" or trailing /); write %q", p, c)
	}
	return nil
}

// checkEnvName accepts NAME or NAME* (deno's prefix wildcard), where NAME is
// a letter or underscore followed by letters, digits and underscores.
func checkEnvName(v string) error {
	name := strings.TrimSuffix(v, "*")
	ok := name != ""
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && isDigit(c)
	}
	if !ok {
		return fmt.Errorf("%q is not an environment variable name (letters, digits and _, not starting with a digit, optionally ending in * to match a prefix)", v)
	}
	return nil
}

// checkProgram accepts an absolute clean path or a bare program name
// (letters, digits, . _ + -, not starting with - or .).
func checkProgram(v string) error {
	if strings.HasPrefix(v, "/") {
		return checkAbsPath(v)
	}
	ok := v[0] != '-' && v[0] != '.'
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = pathByte(c) && c != '/' && c != '@'
	}
	if !ok {
		return fmt.Errorf("%q is not a program name or absolute path (names use letters, digits and . _ + -, not starting with - or .)", v)
	}
	return nil
}

// checkHost accepts host, host:port, IPv4, IPv4:port, [IPv6] and
// [IPv6]:port, and returns it with host names lower-cased.
func checkHost(v string) (string, error) {
	const want = "; allowed: host, host:port, IPv4, IPv4:port, [IPv6] or [IPv6]:port"
	var host, port string
	var hasPort bool
	if rest, ok := strings.CutPrefix(v, "["); ok {
		ip, after, ok := strings.Cut(rest, "]")
		if !ok {
			return "", fmt.Errorf("%q has no closing ]%s", v, want)
		}
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("%q: %q is not an IPv6 address%s", v, ip, want)
		}
		if after != "" {
			port, hasPort = strings.CutPrefix(after, ":")
			if !hasPort {
				return "", fmt.Errorf("%q has text after ]%s", v, want)
			}
		}
		host = "[" + ip + "]"
	} else {
		if strings.Count(v, ":") > 1 {
			return "", fmt.Errorf("%q: IPv6 addresses must be written in brackets, like [::1]:443", v)
		}
		host, port, hasPort = strings.Cut(v, ":")
		if host == "unix" {
			return "", fmt.Errorf("%q: unix socket permissions are not supported%s", v, want)
		}
		if err := checkHostName(host); err != nil {
			return "", fmt.Errorf("%q: %v%s", v, err, want)
		}
		host = strings.ToLower(host)
	}
	if !hasPort {
		return host, nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '0' {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", v, port)
	}
	return host + ":" + port, nil
}

// checkHostName accepts a DNS name (labels of letters, digits and hyphens,
// no trailing dot) or a dotted-quad IPv4 address. As in URL parsing, a name
// whose last label is numeric must be a valid IPv4 address.
func checkHostName(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if len(h) > 253 {
		return errors.New("host name longer than 253 characters")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-') {
				return fmt.Errorf("%q is not a valid host name", h)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() {
			return fmt.Errorf("%q is not a valid IPv4 address", h)
		}
	}
	return nil
}

// badByte returns a description of the first byte of s that ok refuses.
func badByte(s string, ok func(byte) bool) (string, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ok(c) {
			continue
		}
		switch {
		case c == ' ':
			return "a space", true
		case c == '\n':
			return "a newline", true
		case c == 0:
			return "a NUL byte", true
		case c < 0x20 || c == 0x7f:
			return fmt.Sprintf("control byte 0x%02x", c), true
		case c >= 0x80:
			return fmt.Sprintf("non-ASCII byte 0x%02x", c), true
		}
		return fmt.Sprintf("%q", string(c)), true
	}
	return "", false
}
