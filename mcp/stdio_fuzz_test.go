package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// FuzzFilterLines: conductor's own stdin is hostile (any client). Every
// non-blank line is either handed to the SDK unchanged — and then it is
// JSON, and an object is a JSON-RPC 2.0 message — or answered with one
// JSON-RPC error whose id is the line's own (or null); order is kept.
func FuzzFilterLines(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"ping\"}\nnot json\n\n  \n[1,2]\n",
		`{"jsonrpc":"1.0","id":7,"method":"x"}`,
		`{"jsonrpc":"2.0","id":{"x":1}}`,
		`{"jsonrpc":"2.0","id":true,"result":{}}`,
		"\"str\"\n42\r\n{\"jsonrpc\":\"2.0\",\"method\":\"n\"}\r\n",
		`{"jsonrpc":"2.0","id":1,"id":"two","method":"m"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var pass, out bytes.Buffer
		if err := filterLines(bytes.NewReader(in), &pass, &out, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		var lines [][]byte
		sc := bufio.NewScanner(bytes.NewReader(in))
		sc.Buffer(nil, len(in)+1)
		for sc.Scan() {
			if l := sc.Bytes(); len(bytes.TrimSpace(l)) > 0 {
				lines = append(lines, bytes.Clone(l))
			}
		}
		passed := bytes.Split(bytes.TrimSuffix(pass.Bytes(), []byte("\n")), []byte("\n"))
		if pass.Len() == 0 {
			passed = nil
		}
		replies := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
		if out.Len() == 0 {
			replies = nil
		}
		if len(passed)+len(replies) != len(lines) {
			t.Fatalf("%d lines: %d passed, %d answered", len(lines), len(passed), len(replies))
		}
		i, r := 0, 0
		for _, l := range lines {
			if i < len(passed) && bytes.Equal(bytes.TrimSuffix(passed[i], []byte("\r")), l) { // a last line keeps its \r
				i++
				trimmed := bytes.TrimSpace(l)
				if !json.Valid(trimmed) {
					t.Fatalf("passed %q, not JSON", l)
				}
				if trimmed[0] == '{' {
					var m struct {
						JSONRPC string `json:"jsonrpc"`
					}
					if json.Unmarshal(trimmed, &m) != nil || m.JSONRPC != "2.0" {
						t.Fatalf("passed %q, not JSON-RPC 2.0", l)
					}
				}
				continue
			}
			if r >= len(replies) {
				t.Fatalf("line %q neither passed in order nor answered", l)
			}
			var e rpcError
			if err := json.Unmarshal(replies[r], &e); err != nil || e.JSONRPC != "2.0" ||
				(e.Error.Code != codeParseError && e.Error.Code != codeInvalidRequest) || !strings.Contains(e.Error.Message, ":") {
				t.Fatalf("reply %q to %q (%v)", replies[r], l, err)
			}
			if string(e.ID) != "null" && !bytes.Contains(l, e.ID) {
				t.Fatalf("reply to %q has id %s", l, e.ID)
			}
			r++
		}
	})
}
