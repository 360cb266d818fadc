package typegen

import (
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Signature is a one-line call signature of the tool for search results:
// servers.S.tool({ a: number; b?: string }): Promise<…>, with nested object
// types shortened to "object" (get_tool_details has the full declarations).
func Signature(server string, t *mcp.Tool) string {
	args := short(normalize(t.InputSchema), 0)
	if args == "{ }" || args == "object" {
		args = "{}"
	}
	opt := ""
	if !requiresArgs(t.InputSchema) {
		opt = "?"
	}
	res := "unknown"
	if t.OutputSchema != nil {
		res = short(normalize(t.OutputSchema), 0)
	}
	return "servers" + Access(server) + Access(t.Name) + "(args" + opt + ": " + args + "): Promise<" + res + ">"
}

// short is a one-line type: top-level fields only, at most 120 characters
// per part.
func short(v any, depth int) string {
	s, ok := v.(map[string]any)
	if !ok {
		return "unknown"
	}
	props, isObj := s["properties"].(map[string]any)
	if t, _ := s["type"].(string); t == "object" || isObj {
		if depth > 0 || len(props) == 0 {
			return "object"
		}
		req := map[string]bool{}
		if r, ok := s["required"].([]any); ok {
			for _, x := range r {
				if n, ok := x.(string); ok {
					req[n] = true
				}
			}
		}
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { // required first, then by name
			if req[names[i]] != req[names[j]] {
				return req[names[i]]
			}
			return names[i] < names[j]
		})
		var parts []string
		for _, n := range names {
			q := "?"
			if req[n] {
				q = ""
			}
			parts = append(parts, PropName(n)+q+": "+short(props[n], depth+1))
		}
		return "{ " + strings.Join(parts, "; ") + " }"
	}
	if t, _ := s["type"].(string); t == "array" {
		if depth > 2 {
			return "unknown[]"
		}
		item := short(s["items"], depth+1)
		if !isAtomic(item) {
			item = "(" + item + ")"
		}
		return item + "[]"
	}
	full := TS(s)
	if len(full) > 120 || strings.Contains(full, "\n") {
		switch t, _ := s["type"].(string); t {
		case "string", "number", "boolean", "null":
			return t
		case "integer":
			return "number"
		}
		if _, ok := s["enum"]; ok {
			return "string"
		}
		return "unknown"
	}
	return full
}
