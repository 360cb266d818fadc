package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/conductor-sandbox/conductor/identity"
)

// VarConfig names the config file (JSON, or TOML when its name ends in .toml) holding the
// same settings as the MCP_CONDUCTOR_* variables; the environment overrides it.
const VarConfig = Prefix + "CONFIG"

// The file keys that are not settings.
const (
	// KeyIdentities is the identities (package identity parses them); Settings.Identities.
	KeyIdentities = "identities"
	keyConfig     = "config"
)

// maxFileSize bounds the config file conductor reads.
const maxFileSize = 1 << 20

// Where a setting's value came from (Sources).
const (
	SourceDefault = "default"
	SourceEnv     = "environment"
	SourceFile    = "file"
)

// ErrFile is wrapped by every *FileError, so errors.Is(err, ErrFile) tells a broken config file.
var ErrFile = errors.New("invalid config file")

// FileError reports what is wrong with the config file: where (line and column when known), which
// key, and what.
type FileError struct {
	Path      string // the file
	Line, Col int    // 1-based; 0 when unknown
	Key       string // the key concerned, "" when none
	Err       error
}

// Error renders it on one line, e.g.
//
//	MCP_CONDUCTOR_CONFIG /etc/conductor/conductor.json:3:3: key "pool_sise": not a setting; did you mean pool_size?
func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(VarConfig + " " + e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString("key " + strconv.Quote(e.Key) + ": ")
	}
	b.WriteString(oneLine(e.Err))
	return b.String()
}

// Unwrap returns Err.
func (e *FileError) Unwrap() error { return e.Err }

// Is makes every *FileError match ErrFile.
func (e *FileError) Is(target error) bool { return target == ErrFile }

// FileKey is the config file's key for the variable name: without Prefix, lower-case.
func FileKey(name string) string { return strings.ToLower(strings.TrimPrefix(name, Prefix)) }

// fileRow is the table row a file key names, or nil.
func fileRow(key string) *setting {
	for i := range table {
		if FileKey(table[i].Name) == key {
			return &table[i]
		}
	}
	return nil
}

// outKey is where DecodeFile puts key's value: the variable's name, or KeyIdentities.
func outKey(key string) string {
	if key == KeyIdentities {
		return KeyIdentities
	}
	return fileRow(key).Name
}

// suggestKey is the known key closest to key ("" when none is close), as Suggest.
func suggestKey(key string) string {
	if s := Suggest(Prefix + strings.ToUpper(key)); s != "" {
		return FileKey(s)
	}
	return ""
}

// DecodeFile decodes a config file's bytes (TOML when name ends in .toml, else JSON) into the
// values of the variables it sets, keyed by variable name, written as their environment
// variables would be: strings as they are, numbers as written, booleans true/false, arrays of
// strings joined with commas (; for NET_SECRETS). It checks only the file's shape: unknown,
// reserved or repeated keys, wrong types, bad syntax; the values are the table's to validate.
func DecodeFile(name string, data []byte) (map[string]string, error) {
	if strings.HasSuffix(name, ".toml") {
		return decodeTOML(name, data)
	}
	return decodeJSON(name, data)
}

// fileValue turns one decoded value into the variable's text, or says why it cannot.
func fileValue(key string, v any) (string, error) {
	row := fileRow(key)
	switch key {
	case KeyIdentities:
		raw, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("cannot read it: %w", err)
		}
		set, err := identity.Parse(raw)
		if err != nil {
			return "", err
		}
		return string(set.JSON()), nil
	case keyConfig:
		return "", fmt.Errorf("not allowed in the file: %s names the file itself", VarConfig)
	}
	if row == nil {
		msg := "not a setting"
		if s := suggestKey(key); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return "", errors.New(msg + " (keys are the MCP_CONDUCTOR_* variables' names without the prefix, lower-case)")
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case []any:
		if !row.list {
			return "", errors.New("an array, but this setting is one value: write a string, number or boolean")
		}
		sep := ","
		if row.Name == VarNetSecrets {
			sep = ";"
		}
		items := make([]string, len(x))
		for i, it := range x {
			s, ok := it.(string)
			if !ok {
				return "", fmt.Errorf("item %d is %s, not a string", i+1, typeName(it))
			}
			items[i] = s
		}
		return strings.Join(items, sep), nil
	}
	allowed := "a string, number or boolean"
	if row.list {
		allowed += ", or an array of strings"
	}
	return "", fmt.Errorf("%s, not %s", typeName(v), allowed)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, int64, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// decodeJSON walks the top-level object token by token, so a repeated key is seen (encoding/json
// keeps the last one silently).
func decodeJSON(name string, data []byte) (map[string]string, error) {
	fail := func(off int64, key string, err error) error {
		line, col := lineCol(data, off)
		return &FileError{Path: name, Line: line, Col: col, Key: key, Err: err}
	}
	syntax := func(dec *json.Decoder, err error) error {
		off := dec.InputOffset()
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = se.Offset
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("not valid JSON: unexpected end of the file")
		} else {
			err = fmt.Errorf("not valid JSON: %w", err)
		}
		return fail(off, "", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntax(dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fail(0, "", errors.New("not a JSON object: the file is one object of settings, e.g. {\"pool_size\": 4}"))
	}
	out := map[string]string{}
	seen := map[string]int64{}
	var errs []error
	for dec.More() {
		at := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(dec, err)
		}
		key, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, syntax(dec, err)
		}
		at = keyStart(data, at)
		if first, ok := seen[key]; ok {
			l, c := lineCol(data, first)
			errs = append(errs, fail(at, key, fmt.Errorf("given twice (first at %d:%d)", l, c)))
			continue
		}
		seen[key] = at
		s, err := fileValue(key, v)
		if err != nil {
			errs = append(errs, fail(at, key, err))
			continue
		}
		out[outKey(key)] = s
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail(dec.InputOffset(), "", errors.New("not valid JSON: more after the object"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// keyStart skips the separator and white space the decoder's offset stands before.
func keyStart(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n,{", data[off]) >= 0 {
		off++
	}
	return off
}

// lineCol is the 1-based line and column (in bytes) of offset off in data.
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func decodeTOML(name string, data []byte) (map[string]string, error) {
	var raw map[string]any
	_, err := toml.Decode(string(data), &raw)
	if err != nil {
		fe := &FileError{Path: name, Err: fmt.Errorf("not valid TOML: %w", err)}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			fe.Line, fe.Col = pe.Position.Line, pe.Position.Col
			fe.Err = fmt.Errorf("not valid TOML: %s", pe.Message)
		}
		return nil, fe
	}
	out := map[string]string{}
	var errs []error
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		v := raw[key]
		s, err := fileValue(key, v)
		if err != nil {
			errs = append(errs, &FileError{Path: name, Key: key, Err: err})
			continue
		}
		out[outKey(key)] = s
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ReadFile reads and decodes the config file at path (see DecodeFile); a missing or unreadable
// file, or one over 1 MiB, is a *FileError too.
func ReadFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("cannot read it: %w", err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("cannot read it: %w", err)}
	}
	if len(data) > maxFileSize {
		return nil, &FileError{Path: path, Err: fmt.Errorf("larger than %d bytes", maxFileSize)}
	}
	return DecodeFile(path, data)
}

// Sources says where each set setting's value came from and what it was, by variable name; a
// setting not in it has its default.
type Sources map[string]Source

// Source is one set setting's origin (SourceEnv or SourceFile) and its value as written (secret
// values included: never log Value).
type Source struct{ From, Value string }

// Of is where the variable's value came from: SourceEnv, SourceFile or SourceDefault.
func (s Sources) Of(name string) string {
	if src, ok := s[name]; ok {
		return src.From
	}
	return SourceDefault
}

// Changed names the variables whose values differ between s and next (set, unset, or another
// value), in the table's order.
func (s Sources) Changed(next Sources) []string {
	var out []string
	for _, t := range table {
		a, aok := s[t.Name]
		b, bok := next[t.Name]
		if aok != bok || a.Value != b.Value {
			out = append(out, t.Name)
		}
	}
	if a, b := s[KeyIdentities], next[KeyIdentities]; a != b {
		out = append(out, KeyIdentities)
	}
	return out
}
