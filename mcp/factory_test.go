package mcp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestToolValue(t *testing.T) {
	text := func(s ...string) []sdk.Content {
		var out []sdk.Content
		for _, x := range s {
			out = append(out, &sdk.TextContent{Text: x})
		}
		return out
	}
	tests := []struct {
		name    string
		res     *sdk.CallToolResult
		want    string // JSON of the value
		wantErr string
	}{
		{"structured content wins", &sdk.CallToolResult{StructuredContent: map[string]any{"n": 1}, Content: text(`{"n":2}`)}, `{"n":1}`, ""},
		{"JSON text is parsed", &sdk.CallToolResult{Content: text(` [1, 2] `)}, `[1,2]`, ""},
		{"plain text stays text", &sdk.CallToolResult{Content: text("Echo: hi")}, `"Echo: hi"`, ""},
		{"text parts are joined", &sdk.CallToolResult{Content: text("a", "b")}, `"ab"`, ""},
		{"no text: the content", &sdk.CallToolResult{Content: []sdk.Content{&sdk.ImageContent{MIMEType: "image/png", Data: []byte{1}}}}, ``, ""},
		{"isError rejects with the message", &sdk.CallToolResult{IsError: true, Content: text("bad input: x")}, ``, "bad input: x"},
		{"isError without text", &sdk.CallToolResult{IsError: true}, ``, "reported an error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := toolValue(tc.res)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if v == nil {
					t.Fatal("nil value")
				}
				return
			}
			b, _ := json.Marshal(v)
			if string(b) != tc.want {
				t.Fatalf("value %s, want %s", b, tc.want)
			}
		})
	}
}

// staticUpstreams is a minimal Upstreams for argument checking.
type staticUpstreams struct{ Upstreams }

func (staticUpstreams) Names() []string { return []string{"a", "b"} }

func TestFactoryRefusesBadParameters(t *testing.T) {
	f := NewFactory(staticUpstreams{}, nil)
	tests := []struct {
		method, params, want string
	}{
		{"callTool", `{"tool":"x"}`, "no server named; load one of: a, b"},
		{"callTool", `{"server":"a"}`, "must be a tool name"},
		{"callTool", `{"server":"a","tool":"x","args":[1]}`, "args must be an object"},
		{"callTool", `{"server":"a","tool":"x","sneaky":1}`, "malformed parameters"},
		{"readResource", `{"server":"a"}`, "uri must be a string"},
		{"getPrompt", `{"server":"a","name":"p","args":{"k":1}}`, "object of strings"},
		{"exec", `{"server":"a"}`, `unknown mcpFactory method "exec"`},
	}
	for _, tc := range tests {
		_, err := f.Call(context.Background(), tc.method, json.RawMessage(tc.params))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: err = %v, want %q", tc.method, tc.params, err, tc.want)
		}
	}
	names, err := f.Call(context.Background(), "listServers", nil)
	if err != nil || len(names.([]string)) != 2 {
		t.Fatalf("listServers = %v, %v", names, err)
	}
}
