package typegen

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// maxDepth bounds how deep a schema is followed (nesting and $refs); deeper
// parts are unknown.
const maxDepth = 12

// maxUnion bounds the members of an enum or union; a longer one is its
// members' base type (string, number) or unknown.
const maxUnion = 64

// normalize turns a schema of any Go shape (map[string]any, json.RawMessage,
// *jsonschema.Schema) into decoded JSON values.
func normalize(schema any) any {
	switch s := schema.(type) {
	case nil:
		return nil
	case map[string]any, bool:
		return s
	case json.RawMessage:
		var v any
		if json.Unmarshal(s, &v) != nil {
			return nil
		}
		return v
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v
}

// TS returns a TypeScript type expression for the JSON schema. It never
// fails: what it cannot express is unknown.
func TS(schema any) string { return tsAt(schema, "") }

// tsAt is TS for a type that starts on a line indented by indent.
func tsAt(schema any, indent string) string {
	s := normalize(schema)
	g := &tsGen{root: s, refs: map[string]bool{}}
	return g.typeOf(s, 0, indent)
}

type tsGen struct {
	root any
	refs map[string]bool // $refs being expanded (cycles)
}

// typeOf maps schema s; indent is the indentation of the line s starts on.
func (g *tsGen) typeOf(v any, depth int, indent string) string {
	if depth > maxDepth {
		return "unknown"
	}
	switch s := v.(type) {
	case bool:
		if s {
			return "unknown"
		}
		return "never"
	case map[string]any:
		return g.object(s, depth, indent)
	}
	return "unknown"
}

func (g *tsGen) object(s map[string]any, depth int, indent string) string {
	if ref, ok := s["$ref"].(string); ok {
		target, ok := resolve(g.root, ref)
		if !ok || g.refs[ref] {
			return "unknown"
		}
		g.refs[ref] = true
		t := g.typeOf(target, depth+1, indent)
		delete(g.refs, ref)
		return t
	}
	if c, ok := s["const"]; ok {
		if lit, ok := literal(c); ok {
			return lit
		}
		return "unknown"
	}
	if e, ok := s["enum"].([]any); ok {
		return enumType(e)
	}
	for _, key := range []string{"oneOf", "anyOf"} {
		if alts, ok := s[key].([]any); ok && len(alts) > 0 {
			if len(alts) > maxUnion {
				return "unknown"
			}
			var parts []string
			for _, a := range alts {
				parts = append(parts, g.typeOf(merged(s, key, a), depth+1, indent))
			}
			return union(parts)
		}
	}
	if all, ok := s["allOf"].([]any); ok && len(all) > 0 && len(all) <= maxUnion {
		parts := []string{}
		rest := without(s, "allOf")
		if hasShape(rest) {
			parts = append(parts, g.typeOf(rest, depth+1, indent))
		}
		for _, a := range all {
			parts = append(parts, g.typeOf(a, depth+1, indent))
		}
		return intersection(parts)
	}
	switch t := s["type"].(type) {
	case string:
		return g.ofType(t, s, depth, indent)
	case []any:
		if len(t) == 0 || len(t) > 8 {
			return "unknown"
		}
		var parts []string
		for _, x := range t {
			name, ok := x.(string)
			if !ok {
				return "unknown"
			}
			parts = append(parts, g.ofType(name, s, depth, indent))
		}
		return union(parts)
	}
	if _, ok := s["properties"].(map[string]any); ok {
		return g.ofType("object", s, depth, indent)
	}
	if _, ok := s["items"]; ok {
		return g.ofType("array", s, depth, indent)
	}
	return "unknown"
}

func (g *tsGen) ofType(t string, s map[string]any, depth int, indent string) string {
	switch t {
	case "string":
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "null":
		return "null"
	case "array":
		items, ok := s["items"]
		if _, tuple := items.([]any); !ok || tuple {
			return "unknown[]" // no items, or a tuple (draft 4-7 items array, prefixItems): any array
		}
		return "Array<" + g.typeOf(items, depth+1, indent) + ">"
	case "object":
		return g.props(s, depth, indent)
	}
	return "unknown"
}

// props is an object type literal.
func (g *tsGen) props(s map[string]any, depth int, indent string) string {
	props, _ := s["properties"].(map[string]any)
	req := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, x := range r {
			if name, ok := x.(string); ok {
				req[name] = true
			}
		}
	}
	var extra string // the index signature's value type, "" = none
	switch ap := s["additionalProperties"].(type) {
	case bool:
		if ap {
			extra = "unknown"
		}
	case map[string]any:
		extra = g.typeOf(ap, depth+1, indent+"  ")
	}
	if _, ok := s["patternProperties"].(map[string]any); ok && extra == "" && len(props) == 0 {
		extra = "unknown"
	}
	if len(props) == 0 {
		switch extra {
		case "":
			if _, ok := s["additionalProperties"]; ok {
				return "Record<string, never>"
			}
			return "{ [key: string]: unknown }"
		default:
			return "{ [key: string]: " + extra + " }"
		}
	}
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	in := indent + "  "
	b.WriteString("{\n")
	for _, n := range names {
		p := props[n]
		if pm, ok := p.(map[string]any); ok {
			if d, ok := pm["description"].(string); ok && d != "" {
				b.WriteString(JSDoc(in, d))
			}
		}
		b.WriteString(in)
		b.WriteString(PropName(n))
		if !req[n] {
			b.WriteString("?")
		}
		b.WriteString(": ")
		b.WriteString(g.typeOf(p, depth+1, in))
		b.WriteString(";\n")
	}
	if extra != "" {
		// Declared properties must fit the index signature; unknown always does.
		fmt.Fprintf(&b, "%s[key: string]: unknown;\n", in)
	}
	b.WriteString(indent)
	b.WriteString("}")
	return b.String()
}

// merged is alternative a of a oneOf/anyOf with the sibling keywords of s
// (e.g. a shared "type": "object" or "properties"), as validators apply both.
func merged(s map[string]any, key string, a any) any {
	rest := without(s, key)
	am, ok := a.(map[string]any)
	if !ok || !hasShape(rest) {
		return a
	}
	out := map[string]any{}
	for k, v := range rest {
		out[k] = v
	}
	for k, v := range am {
		out[k] = v
	}
	return out
}

func without(s map[string]any, key string) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// hasShape reports whether s constrains the type by itself.
func hasShape(s map[string]any) bool {
	for _, k := range []string{"type", "properties", "items", "enum", "const", "$ref"} {
		if _, ok := s[k]; ok {
			return true
		}
	}
	return false
}

// resolve follows a $ref inside the same document: "#" or a JSON pointer
// "#/a/b" (with ~0 ~1 escapes and percent-encoding).
func resolve(root any, ref string) (any, bool) {
	if ref == "#" {
		return root, true
	}
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	cur := root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// literal is the TypeScript literal type of a JSON scalar.
func literal(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return Quote(x), true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "", false
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true // "-1.5", "1e+21": valid literal types
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "null", true
	}
	return "", false
}

func enumType(e []any) string {
	if len(e) == 0 {
		return "never"
	}
	if len(e) > maxUnion {
		base := ""
		for _, x := range e {
			b := "unknown"
			switch x.(type) {
			case string:
				b = "string"
			case float64:
				b = "number"
			}
			if base != "" && base != b {
				return "unknown"
			}
			base = b
		}
		return base
	}
	var parts []string
	for _, x := range e {
		lit, ok := literal(x)
		if !ok {
			return "unknown"
		}
		parts = append(parts, lit)
	}
	return union(parts)
}

// union joins types with |, parenthesizing each, without duplicates.
func union(parts []string) string { return join(parts, " | ", "never") }

func intersection(parts []string) string { return join(parts, " & ", "unknown") }

func join(parts []string, sep, empty string) string {
	seen := map[string]bool{}
	var out []string
	for _, p := range parts {
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	switch len(out) {
	case 0:
		return empty
	case 1:
		return out[0]
	}
	for i, p := range out {
		if !isAtomic(p) {
			out[i] = "(" + p + ")"
		}
	}
	return strings.Join(out, sep)
}

// isAtomic reports whether t needs no parentheses inside a union or an
// intersection: no | or & outside brackets and string literals.
func isAtomic(t string) bool {
	depth, inStr := 0, false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '/' && i+1 < len(t) && t[i+1] == '*':
			end := strings.Index(t[i+2:], "*/")
			if end < 0 {
				return false
			}
			i += end + 3
		case c == '{' || c == '(' || c == '[' || c == '<':
			depth++
		case c == '}' || c == ')' || c == ']' || c == '>':
			depth--
		case depth == 0 && (c == '|' || c == '&'):
			return false
		}
	}
	return true
}

// Quote is s as a TypeScript string literal.
func Quote(s string) string {
	b, _ := json.Marshal(s) // a Go string always marshals; invalid UTF-8 becomes U+FFFD
	return string(b)
}

// IsIdent reports whether s can be written as a bare property name or
// namespace member (ASCII letters, digits, _ and $, not starting with a digit).
func IsIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r == '$' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// PropName is name as an object type's property key.
func PropName(name string) string {
	if IsIdent(name) {
		return name
	}
	return Quote(name)
}

// Access is the member access of name after an expression: .name or ["name"].
func Access(name string) string {
	if IsIdent(name) {
		return "." + name
	}
	return "[" + Quote(name) + "]"
}

// JSDoc is text as a JSDoc comment at indent, "*/" broken up so the comment
// cannot end early.
func JSDoc(indent, text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = strings.ReplaceAll(text, "*/", "*\\/")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' })
	var b strings.Builder
	if len(lines) == 1 {
		fmt.Fprintf(&b, "%s/** %s */\n", indent, strings.TrimSpace(lines[0]))
		return b.String()
	}
	b.WriteString(indent + "/**\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%s * %s\n", indent, strings.TrimRight(l, " \t"))
	}
	b.WriteString(indent + " */\n")
	return b.String()
}
