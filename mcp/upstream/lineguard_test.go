package upstream

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineGuard(t *testing.T) {
	big := strings.Repeat("x", 300)
	tests := []struct {
		name, in, want string
	}{
		{"short lines pass", "{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n{\"b\":2}\n"},
		{"last line without newline", "{\"a\":1}", "{\"a\":1}"},
		{"too long, id at the end (TypeScript SDK order)", `{"result":{"text":"` + big + `","id":"inner"},"jsonrpc":"2.0","id":7}` + "\n{\"ok\":1}\n",
			`{"error":{"code":-32000,"message":"the upstream's reply is too large: over the 100-byte limit; it was dropped"},"id":7,"jsonrpc":"2.0"}` + "\n{\"ok\":1}\n"},
		{"too long, id first (Go SDK order)", `{"jsonrpc":"2.0","id":"r-1","result":{"text":"` + big + `"}}` + "\n",
			`{"error":{"code":-32000,"message":"the upstream's reply is too large: over the 100-byte limit; it was dropped"},"id":"r-1","jsonrpc":"2.0"}` + "\n"},
		{"too long at EOF, SSE form", "data: " + `{"jsonrpc":"2.0","id":3,"result":"` + big + `"}`,
			"data: " + `{"error":{"code":-32000,"message":"the upstream's reply is too large: over the 100-byte limit; it was dropped"},"id":3,"jsonrpc":"2.0"}` + "\n"},
		{"too long, no id: dropped", `{"method":"notifications/message","params":{"data":"` + big + `"}}` + "\n{\"ok\":1}\n", "{\"ok\":1}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time too: lines split over reads.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				g := newLineGuard(r, 100)
				if strings.HasPrefix(tc.in, "data: ") {
					g.prefix = "data: "
				}
				got, err := io.ReadAll(g)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Fatalf("got  %s\nwant %s", got, tc.want)
				}
			}
		})
	}
}
