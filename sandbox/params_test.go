package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeParams(t *testing.T) {
	type params struct {
		Server string          `json:"server"`
		Args   json.RawMessage `json:"args"`
	}
	for _, tc := range []struct {
		name, raw string
		want      params
		err       string // a substring of the error; "" for none
	}{
		{name: "empty leaves v", raw: "", want: params{Server: "kept"}},
		{name: "fields", raw: `{"server":"a","args":{"x":1}}`, want: params{Server: "a", Args: json.RawMessage(`{"x":1}`)}},
		{name: "trailing space", raw: "{\"server\":\"a\"}\n ", want: params{Server: "a"}},
		{name: "unknown field", raw: `{"server":"a","tool2":"x"}`, err: `callTool: malformed parameters: json: unknown field "tool2"`},
		{name: "second value", raw: `{"server":"a"} {"server":"b"}`, err: "callTool: malformed parameters: more than one JSON value"},
		{name: "trailing garbage", raw: `{"server":"a"}]`, err: "callTool: malformed parameters"},
		{name: "not an object", raw: `["a"]`, err: "callTool: malformed parameters"},
		{name: "wrong type", raw: `{"server":1}`, err: "callTool: malformed parameters"},
		{name: "truncated", raw: `{"server":"a"`, err: "callTool: malformed parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := params{Server: "kept"}
			err := DecodeParams("callTool", json.RawMessage(tc.raw), &got)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case tc.err == "" && (got.Server != tc.want.Server || string(got.Args) != string(tc.want.Args)):
				t.Fatalf("decoded %+v, want %+v", got, tc.want)
			}
		})
	}
}
