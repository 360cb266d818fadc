package typegen

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// lexCheck checks what a type checker would first trip on: every string
// literal is a valid JSON (so TypeScript) string on one line, every comment
// is closed, and brackets balance outside both.
func lexCheck(t string) error {
	var stack []byte
	pairs := map[byte]byte{')': '(', ']': '[', '}': '{', '>': '<'}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '"':
			j := i + 1
			for ; j < len(t) && t[j] != '"'; j++ {
				if t[j] == '\\' {
					j++
				}
				if j < len(t) && (t[j] == '\n' || t[j] == '\r') {
					return fmt.Errorf("newline in a string literal at %d", j)
				}
			}
			if j >= len(t) {
				return fmt.Errorf("unterminated string at %d", i)
			}
			var s string
			if err := json.Unmarshal([]byte(t[i:j+1]), &s); err != nil {
				return fmt.Errorf("bad string literal %s: %v", t[i:j+1], err)
			}
			i = j
		case c == '/' && i+1 < len(t) && t[i+1] == '*':
			end := strings.Index(t[i+2:], "*/")
			if end < 0 {
				return fmt.Errorf("unterminated comment at %d", i)
			}
			i += end + 3
		case c == '/' && i+1 < len(t) && t[i+1] == '/':
			end := strings.IndexByte(t[i:], '\n')
			if end < 0 {
				return nil
			}
			i += end
		case c == '(' || c == '[' || c == '{' || c == '<':
			stack = append(stack, c)
		case c == ')' || c == ']' || c == '}' || c == '>':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("unbalanced %q at %d", c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack)
	}
	return nil
}

// FuzzTS: any JSON schema maps to a type with the lexical shape of a valid
// one (TestDenoCheck runs the type checker over the awkward cases).
func FuzzTS(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","properties":{"a":{"type":"string","description":"x */ y"}},"required":["a"]}`,
		`{"oneOf":[{"type":"string"},{"$ref":"#"}]}`,
		`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`,
		`{"enum":["\u2028","*/",1e300,-0,null]}`,
		`{"type":["array","object"],"items":{"allOf":[{"type":"number"}]},"additionalProperties":{"enum":[1]}}`,
		`{"properties":{"\"}{":{"const":"<>"}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		got := TS(v)
		if got == "" {
			t.Fatalf("empty type for %s", s)
		}
		if err := lexCheck(got); err != nil {
			t.Fatalf("TS(%s) = %s: %v", s, got, err)
		}
	})
}

// FuzzServer: any tool name, server name and description give declarations
// of a valid lexical shape.
func FuzzServer(f *testing.F) {
	f.Add("my-server", "get-sum", "Adds */ numbers\r\n/* more", `{"type":"object","properties":{"a":{"type":"number"}}}`)
	f.Add("delete", "constructor", "", `{}`)
	f.Add("x", "\u2028\"", "*", `{"required":["a"]}`)
	f.Add("a*/b", "tool */ x", "*/", `{"type":"object","properties":{"*/":{"type":"string"}}}`)
	f.Fuzz(func(t *testing.T, server, tool, desc, schema string) {
		var in any
		if json.Unmarshal([]byte(schema), &in) != nil {
			in = nil
		}
		tools := []*mcp.Tool{{Name: tool, Description: desc, InputSchema: in, OutputSchema: in}}
		d, err := Server(server, tools, []string{tool})
		if err != nil {
			t.Fatal(err)
		}
		if err := lexCheck(d); err != nil {
			t.Fatalf("Server(%q, %q, %q): %v\n%s", server, tool, desc, err, d)
		}
		if sig := Signature(server, tools[0]); strings.ContainsAny(sig, "\n\r") {
			t.Fatalf("Signature is not one line: %q", sig)
		}
		if !IsIdent(Namespace(server)) {
			t.Fatalf("Namespace(%q) = %q is not an identifier", server, Namespace(server))
		}
	})
}
