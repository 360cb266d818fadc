package playbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
)

// Limits of a playbook.
const (
	MaxBytes       = 256 << 10 // one playbook file
	MaxDescription = 1024      // bytes of its description
	Ext            = ".ts"     // a playbook file's extension
	openLine       = "/* ---"
	closeLine      = "--- */"
)

// nameRE is what a playbook's name may be.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// NameRule says what a name may be, for error messages.
const NameRule = "a lowercase letter or digit, then up to 63 lowercase letters, digits, '_' or '-'"

// CheckName refuses a name that is not a playbook name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: allowed: %s", ErrInvalid, name, NameRule)
	}
	return nil
}

// Meta is a playbook's front-matter.
type Meta struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Inputs      json.RawMessage `json:"inputs,omitempty"` // a JSON Schema object; nil when none
}

// Playbook is one parsed playbook file.
type Playbook struct {
	Meta
	// Code is the file after its front-matter; Source the whole file (the module that runs);
	// CodeLine the line of Source where Code begins.
	Code     string
	Source   string
	CodeLine int

	inputs *jsonschema.Resolved // nil when there is no inputs schema
}

// Parse reads a playbook from a file's text; file is its name (NAME.ts), which the front-matter's
// name must match. Errors wrap ErrInvalid and name the file and the field.
func Parse(file, text string) (*Playbook, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, file, fmt.Sprintf(format, a...))
	}
	if len(text) > MaxBytes {
		return nil, bad("%d bytes; the limit is %d", len(text), MaxBytes)
	}
	if !utf8.ValidString(text) {
		return nil, bad("not valid UTF-8 text")
	}
	first, rest, ok := cutLine(text)
	if !ok || first != openLine {
		return nil, bad("the first line must be %q, opening the front-matter (a JSON object with name, description and inputs, closed by a line %q)", openLine, closeLine)
	}
	var body strings.Builder
	line := 1
	closed := false
	for rest != "" {
		var l string
		l, rest, _ = cutLine(rest)
		line++
		if l == closeLine {
			closed = true
			break
		}
		body.WriteString(l)
		body.WriteByte('\n')
	}
	if !closed {
		return nil, bad("the front-matter has no closing line %q", closeLine)
	}
	m, err := parseMeta(body.String())
	if err != nil {
		return nil, bad("front-matter: %v", err)
	}
	if want := strings.TrimSuffix(file, Ext); file != "" && m.Name != want {
		return nil, bad("front-matter: name %q differs from the file's name %q", m.Name, want)
	}
	p := &Playbook{Meta: m, Code: rest, Source: text, CodeLine: line + 1}
	if p.inputs, err = resolveInputs(m.Inputs); err != nil {
		return nil, bad("front-matter: inputs: %v", err)
	}
	return p, nil
}

// cutLine splits s after its first line ("\n" or "\r\n" ends it); ok is false when s has no
// line break.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, "", false
	}
	return strings.TrimSuffix(s[:i], "\r"), s[i+1:], true
}

// parseMeta decodes the front-matter's one JSON object: known keys only, each once, nothing after it.
func parseMeta(body string) (Meta, error) {
	var m Meta
	if strings.Contains(body, "*/") {
		return m, errors.New(`"*/" would end the comment early; write it "*\/" inside a JSON string`)
	}
	var raw map[string]json.RawMessage
	if err := checkKeys(body); err != nil {
		return m, err
	}
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return m, fmt.Errorf("not a JSON object: %v", err)
	}
	if raw == nil {
		return m, errors.New("not a JSON object: null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, errors.New("text after the JSON object")
	}
	for k := range raw {
		switch k {
		case "name", "description", "inputs":
		default:
			return m, fmt.Errorf("unknown key %q; allowed: name, description, inputs", k)
		}
	}
	str := func(key string, max int) (string, error) {
		v, ok := raw[key]
		if !ok {
			return "", fmt.Errorf("%s is missing", key)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%s must be a string", key)
		}
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("%s is empty", key)
		}
		if len(s) > max {
			return "", fmt.Errorf("%s is %d bytes; at most %d", key, len(s), max)
		}
		return s, nil
	}
	var err error
	if m.Name, err = str("name", 64); err != nil {
		return m, err
	}
	if err := CheckName(m.Name); err != nil {
		return m, fmt.Errorf("name %q: allowed: %s", m.Name, NameRule)
	}
	if m.Description, err = str("description", MaxDescription); err != nil {
		return m, err
	}
	if in, ok := raw["inputs"]; ok && string(in) != "null" {
		var c bytes.Buffer
		if err := json.Compact(&c, in); err != nil {
			return m, fmt.Errorf("inputs: %v", err)
		}
		m.Inputs = c.Bytes()
	}
	return m, nil
}

// checkKeys refuses a top-level key given twice (encoding/json would keep the last silently).
func checkKeys(body string) error {
	dec := json.NewDecoder(strings.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not a JSON object: %v", err)
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("key %q appears twice", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("%s: %v", k, err)
		}
	}
	return nil
}

// resolveInputs checks an inputs schema: a JSON Schema object whose type, when given, is "object".
func resolveInputs(in json.RawMessage) (*jsonschema.Resolved, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if in[0] != '{' {
		return nil, errors.New("must be a JSON Schema object")
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(in, &s); err != nil {
		return nil, fmt.Errorf("not a JSON Schema: %v", err)
	}
	if s.Type != "" && s.Type != "object" || len(s.Types) > 0 {
		return nil, errors.New(`type must be "object" (the arguments are one object)`)
	}
	r, err := s.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("not a usable JSON Schema: %v", err)
	}
	return r, nil
}

// Format is the file text of a playbook: its front-matter, then its code.
func Format(m Meta, code string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // readable; U+2028 and U+2029 are still escaped
	if err := enc.Encode(struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Inputs      json.RawMessage `json:"inputs,omitempty"`
	}{m.Name, m.Description, m.Inputs}); err != nil {
		return "", fmt.Errorf("%w: front-matter: %v", ErrInvalid, err)
	}
	// "*/" can only be inside a JSON string, where "\/" is the same "/".
	fm := strings.ReplaceAll(strings.TrimSuffix(b.String(), "\n"), "*/", `*\/`)
	return openLine + "\n" + fm + "\n" + closeLine + "\n" + code, nil
}

// ValidateArgs checks args (a JSON object, or empty for none) against the playbook's inputs and
// returns them with the schema's defaults applied. Errors wrap ErrArgs and name the field.
func (p *Playbook) ValidateArgs(args json.RawMessage) (map[string]any, error) {
	v := map[string]any{}
	if len(bytes.TrimSpace(args)) > 0 && string(bytes.TrimSpace(args)) != "null" {
		if err := json.Unmarshal(args, &v); err != nil || v == nil {
			return nil, fmt.Errorf("%w: playbook %q: args must be an object", ErrArgs, p.Name)
		}
	}
	if p.inputs == nil {
		return v, nil
	}
	if err := p.inputs.ApplyDefaults(&v); err != nil {
		return nil, fmt.Errorf("%w: playbook %q: %v", ErrArgs, p.Name, err)
	}
	if err := p.inputs.Validate(v); err != nil {
		return nil, fmt.Errorf("%w: playbook %q: %v; its inputs schema: %s", ErrArgs, p.Name, err, p.Inputs)
	}
	return v, nil
}
