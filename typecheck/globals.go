package typecheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxTypeDepth bounds how deep a global's JSON value is typed; deeper values are any.
const maxTypeDepth = 6

// RequestGlobals declares a request's globals (run_deno_code's globals: a JSON object whose
// keys become read-only globals) for the checker: `declare const NAME: T;` with T the JSON
// value's type (objects with their keys, arrays of the union of their elements' types).
// null or an empty object declares nothing.
func RequestGlobals(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", nil
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return "", fmt.Errorf("globals: %w", err)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		if !isIdentifier(k) {
			return "", fmt.Errorf("globals: %q is not an identifier", k)
		}
		fmt.Fprintf(&b, "declare const %s: %s;\n", k, jsonType(m[k], 0))
	}
	return b.String(), nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// jsonType is the TypeScript type of a decoded JSON value.
func jsonType(v any, depth int) string {
	if depth >= maxTypeDepth {
		return "any"
	}
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		if len(v) == 0 {
			return "unknown[]"
		}
		var ts []string
		for _, e := range v {
			if t := jsonType(e, depth+1); !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
			if len(ts) > 8 {
				return "any[]"
			}
		}
		if len(ts) == 1 {
			return "(" + ts[0] + ")[]"
		}
		return "(" + strings.Join(ts, " | ") + ")[]"
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		b.WriteString("{ ")
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %s; ", strconv.Quote(k), jsonType(v[k], depth+1))
		}
		b.WriteString("}")
		return b.String()
	}
	return "any"
}
