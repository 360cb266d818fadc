package mcp

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestApprovalQuestion: the question names the server and the tool, shows
// the arguments as indented JSON, and cuts large ones (on a character
// boundary) with a note; the schema is an empty form.
func TestApprovalQuestion(t *testing.T) {
	big := `{"text": "` + strings.Repeat("é", 3000) + `"}`
	cases := []struct {
		name    string
		args    string
		want    []string
		notWant []string
	}{
		{"object", `{"q":"is:open","n":3}`, []string{`tool "search" on the MCP server "gh"`, "{\n  \"q\": \"is:open\",\n  \"n\": 3\n}"}, []string{"arguments cut"}},
		{"none", ``, []string{"arguments:\n{}\n"}, []string{"arguments cut"}},
		{"null", `null`, []string{"arguments:\n{}\n"}, nil},
		{"large", big, []string{"(arguments cut: the first 4095 of 6016 bytes are shown)"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := approvalQuestion("gh", "search", json.RawMessage(c.args))
			for _, w := range c.want {
				if !strings.Contains(q.Message, w) {
					t.Errorf("message %q lacks %q", q.Message, w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(q.Message, w) {
					t.Errorf("message %q has %q", q.Message, w)
				}
			}
			if !utf8.ValidString(q.Message) || len(q.Message) > maxApprovalArgs+512 {
				t.Errorf("message of %d bytes, valid UTF-8 %v", len(q.Message), utf8.ValidString(q.Message))
			}
			schema, _ := json.Marshal(q.RequestedSchema)
			if q.Mode != "form" || string(schema) != `{"properties":{},"type":"object"}` {
				t.Errorf("mode %q schema %s, want an empty form", q.Mode, schema)
			}
		})
	}
}
