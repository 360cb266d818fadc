package mcp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestFilterLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		pass  string // lines handed to the SDK
		codes []int  // error replies, in order
		ids   []string
	}{
		{"valid request passes", `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n", `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n", nil, nil},
		{"garbage gets a parse error, next line passes", "not json\n" + `{"jsonrpc":"2.0","id":2,"method":"ping"}` + "\n",
			`{"jsonrpc":"2.0","id":2,"method":"ping"}` + "\n", []int{codeParseError}, []string{"null"}},
		{"blank lines ignored", "\n  \n", "", nil, nil},
		{"wrong version keeps the id", `{"jsonrpc":"1.0","id":"a","method":"x"}` + "\n", "", []int{codeInvalidRequest}, []string{`"a"`}},
		{"no method", `{"jsonrpc":"2.0","id":3}` + "\n", "", []int{codeInvalidRequest}, []string{"3"}},
		{"scalar", "42\n", "", []int{codeInvalidRequest}, []string{"null"}},
		{"object id is not echoed", `{"jsonrpc":"2.0","id":{"x":1}}` + "\n", "", []int{codeInvalidRequest}, []string{"null"}},
		{"responses pass", `{"jsonrpc":"2.0","id":4,"result":{}}` + "\n", `{"jsonrpc":"2.0","id":4,"result":{}}` + "\n", nil, nil},
		{"last line without newline", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, `{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pass, out bytes.Buffer
			if err := filterLines(strings.NewReader(tc.in), &pass, &out, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			if pass.String() != tc.pass {
				t.Errorf("passed %q, want %q", pass.String(), tc.pass)
			}
			var codes []int
			var ids []string
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if line == "" {
					continue
				}
				var e rpcError
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("reply %q is not JSON-RPC: %v", line, err)
				}
				codes = append(codes, e.Error.Code)
				ids = append(ids, string(e.ID))
			}
			if len(codes) != len(tc.codes) {
				t.Fatalf("replies %v, want codes %v", codes, tc.codes)
			}
			for i := range codes {
				if codes[i] != tc.codes[i] || ids[i] != tc.ids[i] {
					t.Errorf("reply %d: code %d id %s, want %d %s", i, codes[i], ids[i], tc.codes[i], tc.ids[i])
				}
			}
		})
	}
}
