package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/conductor-sandbox/conductor/config"
)

// Transport names, as used in ServerConfig.Transport and Status.Transport.
const (
	TransportStdio          = "stdio"
	TransportStreamableHTTP = "streamable-http"
	TransportSSE            = "sse"
)

// maxConfigSize bounds the config file; a real one is a few KiB.
const maxConfigSize = 4 << 20

// Config is the parsed upstream configuration.
type Config struct {
	// Path is the file the config was read from ("" when no file was found at
	// the default path).
	Path string
	// Servers, sorted by name; disabled ones included.
	Servers []ServerConfig
}

// ServerConfig is one entry of "mcpServers", with ${VAR}s expanded.
type ServerConfig struct {
	Name      string
	Transport string // TransportStdio, TransportStreamableHTTP or TransportSSE
	Disabled  bool

	// stdio
	Command string
	Args    []string
	Env     map[string]string
	Cwd     string

	// streamable-http and sse
	URL     string
	Headers map[string]string

	// AllowedTools is nil when every tool may be listed and called; otherwise
	// only the named tools may (an empty, non-nil list allows none).
	AllowedTools []string
	// AllowedResources and AllowedPrompts are patterns ('*' matches any run
	// of characters) over resource URIs and prompt names. nil means the
	// field is absent: everything is allowed when AllowedTools is nil too,
	// nothing when AllowedTools is set. An empty, non-nil list allows none.
	AllowedResources []string
	AllowedPrompts   []string

	// RequireApproval ("requireApproval": true) makes every tool call of
	// sandboxed code on this server wait for the user's approval, asked
	// through MCP elicitation; ApprovalTools ("requireApproval": ["tool", …])
	// does it for the named tools only. Both unset: no approval.
	RequireApproval bool
	ApprovalTools   []string

	// secrets are the values substituted for ${VAR}s; they are replaced by
	// "[redacted]" in every error message and log line about this server.
	secrets []string
}

// ConfigError is a problem with the config file. Server and Field are empty
// when the problem is not about one server or one field.
type ConfigError struct {
	File   string
	Server string
	Field  string
	Msg    string
	Err    error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mcp config %s", e.File)
	if e.Server != "" {
		fmt.Fprintf(&b, ": server %q", e.Server)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads and checks the "mcpServers" file at path. A missing file is
// an empty config unless explicit (the path was set by the admin). lookupEnv
// resolves ${VAR}s; nil means os.LookupEnv.
func LoadConfig(path string, explicit bool, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return &Config{}, nil
		}
		msg := fmt.Sprintf("cannot read it: %v", unwrapPathError(err))
		if explicit {
			msg += " (the path comes from " + config.VarMCPConfig + ")"
		}
		return nil, &ConfigError{File: path, Msg: msg, Err: err}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, &ConfigError{File: path, Msg: "is a directory, not a JSON file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, &ConfigError{File: path, Msg: fmt.Sprintf("cannot read it: %v", err), Err: err}
	}
	if len(data) > maxConfigSize {
		return nil, &ConfigError{File: path, Msg: fmt.Sprintf("is larger than %d bytes", maxConfigSize)}
	}
	cfg, err := ParseConfig(path, data, lookupEnv)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ParseConfig parses the contents of a config file; file names it in errors.
func ParseConfig(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	p := &parser{file: file, lookup: lookupEnv}
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, &ConfigError{File: file, Msg: fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, se), Err: err}
		}
		return nil, &ConfigError{File: file, Msg: fmt.Sprintf("invalid JSON: %v", err), Err: err}
	}
	top, err := p.object(data, "", "")
	if err != nil {
		return nil, err
	}
	cfg := &Config{Path: file}
	for _, kv := range top {
		if kv.key != "mcpServers" {
			return nil, p.errf("", kv.key, "unknown top-level field (the file has one field, \"mcpServers\")")
		}
	}
	rawServers, ok := lookupKey(top, "mcpServers")
	if !ok {
		return cfg, nil
	}
	servers, err := p.object(rawServers, "", "mcpServers")
	if err != nil {
		return nil, err
	}
	for _, kv := range servers {
		sc, err := p.server(kv.key, kv.value)
		if err != nil {
			return nil, err
		}
		cfg.Servers = append(cfg.Servers, *sc)
	}
	slices.SortFunc(cfg.Servers, func(a, b ServerConfig) int { return strings.Compare(a.Name, b.Name) })
	return cfg, nil
}

func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}

type keyValue struct {
	key   string
	value json.RawMessage
}

func lookupKey(kvs []keyValue, key string) (json.RawMessage, bool) {
	for _, kv := range kvs {
		if kv.key == key {
			return kv.value, true
		}
	}
	return nil, false
}

type parser struct {
	file   string
	lookup func(string) (string, bool)
}

func (p *parser) errf(server, field, format string, args ...any) error {
	return &ConfigError{File: p.file, Server: server, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// kind names the JSON type of raw for error messages.
func kind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// object splits a JSON object into its members in file order, rejecting
// duplicate keys (encoding/json would silently keep the last one).
func (p *parser) object(raw json.RawMessage, server, field string) ([]keyValue, error) {
	if k := kind(raw); k != "an object" {
		if server == "" && field == "" {
			return nil, p.errf("", "", "must hold a JSON object ({\"mcpServers\": {…}}), not %s", k)
		}
		return nil, p.errf(server, field, "must be a JSON object, not %s", k)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, p.errf(server, field, "%v", err)
	}
	var out []keyValue
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, p.errf(server, field, "%v", err)
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, p.errf(server, field, "%v", err)
		}
		if seen[key] {
			switch {
			case field == "mcpServers":
				return nil, p.errf(key, "", "is defined twice in mcpServers")
			case field == "":
				return nil, p.errf(server, key, "appears twice")
			default:
				return nil, p.errf(server, field+"."+key, "appears twice")
			}
		}
		seen[key] = true
		out = append(out, keyValue{key, v})
	}
	return out, nil
}

var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

var serverFields = []string{"type", "command", "args", "env", "cwd", "url", "headers", "allowedTools", "allowedResources", "allowedPrompts", "requireApproval", "disabled"}

// Headers the MCP transports set themselves; a config may not override them.
var reservedHeaders = []string{
	"Accept", "Connection", "Content-Length", "Content-Type", "Host", "Last-Event-Id",
	"Mcp-Protocol-Version", "Mcp-Session-Id", "Transfer-Encoding", "Upgrade",
}

func (p *parser) server(name string, raw json.RawMessage) (*ServerConfig, error) {
	if !serverNameRE.MatchString(name) {
		return nil, p.errf(name, "", "invalid server name: use 1 to 64 letters, digits, '_' or '-'")
	}
	fields, err := p.object(raw, name, "")
	if err != nil {
		return nil, err
	}
	for _, kv := range fields {
		if !slices.Contains(serverFields, kv.key) {
			return nil, p.errf(name, kv.key, "unknown field (known: %s)", strings.Join(serverFields, ", "))
		}
	}
	get := func(k string) (json.RawMessage, bool) { return lookupKey(fields, k) }
	sc := &ServerConfig{Name: name}

	str := func(field string) (string, bool, error) {
		raw, ok := get(field)
		if !ok {
			return "", false, nil
		}
		var s string
		if kind(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
			return "", false, p.errf(name, field, "must be a string, not %s", kind(raw))
		}
		return s, true, nil
	}
	strList := func(field string) ([]string, bool, error) {
		raw, ok := get(field)
		if !ok {
			return nil, false, nil
		}
		var items []json.RawMessage
		if kind(raw) != "an array" || json.Unmarshal(raw, &items) != nil {
			return nil, false, p.errf(name, field, "must be an array of strings, not %s", kind(raw))
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			var s string
			if kind(it) != "a string" || json.Unmarshal(it, &s) != nil {
				return nil, false, p.errf(name, fmt.Sprintf("%s[%d]", field, i), "must be a string, not %s", kind(it))
			}
			out = append(out, s)
		}
		return out, true, nil
	}
	strMap := func(field string) (map[string]string, []string, error) {
		raw, ok := get(field)
		if !ok {
			return nil, nil, nil
		}
		kvs, err := p.object(raw, name, field)
		if err != nil {
			return nil, nil, err
		}
		out := make(map[string]string, len(kvs))
		var order []string
		for _, kv := range kvs {
			var s string
			if kind(kv.value) != "a string" || json.Unmarshal(kv.value, &s) != nil {
				return nil, nil, p.errf(name, field+"."+kv.key, "must be a string, not %s", kind(kv.value))
			}
			out[kv.key] = s
			order = append(order, kv.key)
		}
		return out, order, nil
	}

	typ, hasType, err := str("type")
	if err != nil {
		return nil, err
	}
	command, hasCommand, err := str("command")
	if err != nil {
		return nil, err
	}
	args, _, err := strList("args")
	if err != nil {
		return nil, err
	}
	env, envOrder, err := strMap("env")
	if err != nil {
		return nil, err
	}
	cwd, hasCwd, err := str("cwd")
	if err != nil {
		return nil, err
	}
	rawURL, hasURL, err := str("url")
	if err != nil {
		return nil, err
	}
	headers, headerOrder, err := strMap("headers")
	if err != nil {
		return nil, err
	}
	allowed, hasAllowed, err := strList("allowedTools")
	if err != nil {
		return nil, err
	}
	if sc.AllowedResources, err = p.patterns(name, "allowedResources", strList); err != nil {
		return nil, err
	}
	if sc.AllowedPrompts, err = p.patterns(name, "allowedPrompts", strList); err != nil {
		return nil, err
	}
	if sc.RequireApproval, sc.ApprovalTools, err = p.requireApproval(name, get); err != nil {
		return nil, err
	}
	if raw, ok := get("disabled"); ok {
		if kind(raw) != "a boolean" {
			return nil, p.errf(name, "disabled", "must be true or false, not %s", kind(raw))
		}
		_ = json.Unmarshal(raw, &sc.Disabled)
	}

	// The transport.
	switch {
	case hasCommand && hasURL:
		return nil, p.errf(name, "command", "both \"command\" (a stdio server) and \"url\" (an HTTP server) are set; keep one")
	case !hasCommand && !hasURL:
		return nil, p.errf(name, "command", "neither \"command\" (a stdio server) nor \"url\" (an HTTP server) is set")
	}
	switch typ {
	case "":
		if hasType {
			return nil, p.errf(name, "type", "is empty (use \"stdio\", \"http\", \"streamable-http\" or \"sse\", or leave it out)")
		}
		if hasCommand {
			sc.Transport = TransportStdio
		} else {
			sc.Transport = TransportStreamableHTTP
		}
	case "stdio":
		sc.Transport = TransportStdio
	case "http", "streamable-http":
		sc.Transport = TransportStreamableHTTP
	case "sse":
		sc.Transport = TransportSSE
	default:
		return nil, p.errf(name, "type", "unknown transport %q (use \"stdio\", \"http\", \"streamable-http\" or \"sse\")", typ)
	}
	if sc.Transport == TransportStdio {
		if !hasCommand {
			return nil, p.errf(name, "type", "is %q but there is no \"command\"", typ)
		}
		for _, f := range []string{"headers"} {
			if _, ok := get(f); ok {
				return nil, p.errf(name, f, "applies to HTTP servers only (this one is stdio)")
			}
		}
	} else {
		if !hasURL {
			return nil, p.errf(name, "type", "is %q but there is no \"url\"", typ)
		}
		for _, f := range []string{"args", "env", "cwd"} {
			if _, ok := get(f); ok {
				return nil, p.errf(name, f, "applies to stdio servers only (this one is %s)", sc.Transport)
			}
		}
	}

	if hasAllowed {
		sc.AllowedTools = allowed
		for i, t := range allowed {
			if t == "" {
				return nil, p.errf(name, fmt.Sprintf("allowedTools[%d]", i), "is empty")
			}
		}
	}

	// A disabled server is checked for shape only: its ${VAR}s are not
	// expanded (a secret it needs may legitimately be absent) and its values
	// not validated.
	if sc.Disabled {
		sc.Command, sc.Args, sc.Env, sc.Cwd, sc.URL, sc.Headers = command, args, env, cwd, rawURL, headers
		return sc, nil
	}

	ex := func(field, s string) (string, error) {
		out, secrets, err := expand(s, p.lookup)
		if err != nil {
			return "", p.errf(name, field, "%v", err)
		}
		sc.secrets = append(sc.secrets, secrets...)
		return out, nil
	}
	if sc.Transport == TransportStdio {
		if sc.Command, err = ex("command", command); err != nil {
			return nil, err
		}
		if sc.Command == "" {
			return nil, p.errf(name, "command", "is empty")
		}
		if strings.ContainsRune(sc.Command, 0) {
			return nil, p.errf(name, "command", "contains a NUL byte")
		}
		for i, a := range args {
			field := fmt.Sprintf("args[%d]", i)
			v, err := ex(field, a)
			if err != nil {
				return nil, err
			}
			if strings.ContainsRune(v, 0) {
				return nil, p.errf(name, field, "contains a NUL byte")
			}
			sc.Args = append(sc.Args, v)
		}
		if env != nil {
			sc.Env = make(map[string]string, len(env))
		}
		for _, k := range envOrder {
			field := "env." + k
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return nil, p.errf(name, field, "is not a valid environment variable name")
			}
			v, err := ex(field, env[k])
			if err != nil {
				return nil, err
			}
			if strings.ContainsRune(v, 0) {
				return nil, p.errf(name, field, "contains a NUL byte")
			}
			sc.Env[k] = v
		}
		if hasCwd {
			if sc.Cwd, err = ex("cwd", cwd); err != nil {
				return nil, err
			}
			if !filepath.IsAbs(sc.Cwd) {
				return nil, p.errf(name, "cwd", "must be an absolute path, not %q", sc.Cwd)
			}
		}
		return sc, nil
	}

	if sc.URL, err = ex("url", rawURL); err != nil {
		return nil, err
	}
	if err := checkURL(sc.URL); err != nil {
		return nil, p.errf(name, "url", "%s", redact(err.Error(), sc.secrets))
	}
	if headers != nil {
		sc.Headers = make(map[string]string, len(headers))
	}
	for _, k := range headerOrder {
		field := "headers." + k
		if !validHeaderName(k) {
			return nil, p.errf(name, field, "is not a valid HTTP header name")
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(k, r) {
				return nil, p.errf(name, field, "is set by the MCP transport itself and cannot be configured")
			}
		}
		v, err := ex(field, headers[k])
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, p.errf(name, field, "contains a line break or NUL byte")
		}
		sc.Headers[k] = v
	}
	return sc, nil
}

// requireApproval reads "requireApproval": true (every tool), false (none,
// as when absent), or an array of tool names (each non-empty, at most 1024
// bytes, no control characters; duplicates are an error, as they are
// likely a typo for another name).
func (p *parser) requireApproval(server string, get func(string) (json.RawMessage, bool)) (all bool, tools []string, err error) {
	raw, ok := get("requireApproval")
	if !ok {
		return false, nil, nil
	}
	switch kind(raw) {
	case "a boolean":
		_ = json.Unmarshal(raw, &all)
		return all, nil, nil
	case "an array":
	default:
		return false, nil, p.errf(server, "requireApproval", "must be true (every tool), false, or an array of tool names, not %s", kind(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return false, nil, p.errf(server, "requireApproval", "%v", err)
	}
	tools = make([]string, 0, len(items))
	for i, it := range items {
		at := fmt.Sprintf("requireApproval[%d]", i)
		var t string
		if kind(it) != "a string" || json.Unmarshal(it, &t) != nil {
			return false, nil, p.errf(server, at, "must be a tool name (a string), not %s", kind(it))
		}
		switch {
		case t == "":
			return false, nil, p.errf(server, at, "is empty (use \"requireApproval\": true for every tool)")
		case len(t) > 1024:
			return false, nil, p.errf(server, at, "is longer than 1024 bytes")
		case strings.IndexFunc(t, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			return false, nil, p.errf(server, at, "contains a control character")
		case slices.Contains(tools, t):
			return false, nil, p.errf(server, at, "names %q twice", t)
		}
		tools = append(tools, t)
	}
	return false, tools, nil
}

// NeedsApproval reports whether a call of tool on this server waits for
// the user's approval (requireApproval).
func (sc *ServerConfig) NeedsApproval(tool string) bool {
	return sc.RequireApproval || slices.Contains(sc.ApprovalTools, tool)
}

// patterns reads an allowlist of patterns (allowedResources,
// allowedPrompts): nil when the field is absent, else every entry checked —
// not empty, no control characters, at most 1024 bytes.
func (p *parser) patterns(server, field string, strList func(string) ([]string, bool, error)) ([]string, error) {
	list, ok, err := strList(field)
	if err != nil || !ok {
		return nil, err
	}
	for i, pat := range list {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case pat == "":
			return nil, p.errf(server, at, "is empty (use \"*\" to allow everything)")
		case len(pat) > 1024:
			return nil, p.errf(server, at, "is longer than 1024 bytes")
		case strings.IndexFunc(pat, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			return nil, p.errf(server, at, "contains a control character")
		}
	}
	return list, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("is not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an http:// or https:// URL, not %q", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("has no host: %q", s)
	}
	if p := u.Port(); p != "" {
		for _, c := range p {
			if c < '0' || c > '9' {
				return fmt.Errorf("has an invalid port: %q", s)
			}
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand substitutes ${NAME} and ${NAME:-default} in s from lookup. "$${"
// is a literal "${"; any other '$' is literal. A NAME that is not set (and
// has no default) is an error. It returns the substituted values of set
// variables, which are treated as secrets.
func expand(s string, lookup func(string) (string, bool)) (string, []string, error) {
	if !strings.Contains(s, "${") {
		return s, nil, nil
	}
	var b strings.Builder
	var secrets []string
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", nil, fmt.Errorf("unterminated ${ in %q (write $${ for a literal ${)", s)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !varNameRE.MatchString(name) {
			return "", nil, fmt.Errorf("${%s} is not a valid variable reference (use ${NAME} or ${NAME:-default})", expr)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && (!ok || v == ""):
			v = def
		case !ok:
			return "", nil, fmt.Errorf("${%s} is not set in conductor's environment", name)
		default:
			if len(v) >= 4 {
				secrets = append(secrets, v)
			}
		}
		b.WriteString(v)
		i += 2 + end + 1
	}
	return b.String(), secrets, nil
}

// redact replaces every secret in s by "[redacted]".
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
