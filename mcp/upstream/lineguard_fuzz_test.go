package upstream

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// chunkReader returns data in reads whose sizes come from sizes (cycled),
// so the fuzzer also chooses where reads split lines.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)]) + 1
		r.i++
	}
	n = min(n, len(r.data), len(p))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// guardModel is what lineGuard must write for in, whatever the reads: every
// line of at most max bytes unchanged and in order; a longer one replaced by
// one JSON-RPC error naming its id, or by nothing when it has none.
func guardModel(in []byte, limit int, prefix string) []byte {
	var out []byte
	lines := bytes.Split(in, []byte("\n"))
	for i, l := range lines {
		last := i == len(lines)-1
		if last && len(l) == 0 {
			break
		}
		if len(l) <= limit {
			out = append(out, l...)
			if !last {
				out = append(out, '\n')
			}
			continue
		}
		id := droppedID(l[:min(len(l), edge)], l[max(0, len(l)-edge):])
		if id == nil {
			continue
		}
		msg, err := json.Marshal(map[string]any{
			"jsonrpc": "2.0", "id": id,
			"error": map[string]any{"code": -32000, "message": tooLarge(limit)},
		})
		if err != nil {
			continue
		}
		out = append(append(append(out, prefix...), msg...), '\n')
	}
	return out
}

// FuzzLineGuard: an upstream's stdout is hostile. Whatever the bytes and
// however the reads split them, the guard passes short lines unchanged,
// never passes a line over the limit, answers a dropped reply with one
// valid JSON-RPC error carrying the reply's own id, and buffers at most
// the limit.
func FuzzLineGuard(f *testing.F) {
	big := bytes.Repeat([]byte("x"), 90)
	seeds := []struct {
		in    string
		max   uint8
		sizes string
	}{
		{"{\"a\":1}\n{\"b\":2}\n", 40, ""},
		{"{\"a\":1}", 40, "\x00"},
		{`{"result":{"text":"` + string(big) + `","id":"inner"},"jsonrpc":"2.0","id":7}` + "\n{\"ok\":1}\n", 60, "\x03\x40"},
		{`{"jsonrpc":"2.0","id":"r-1","result":{"text":"` + string(big) + `"}}` + "\n", 60, ""},
		{`{"method":"notifications/message","params":{"data":"` + string(big) + `"}}` + "\n{\"ok\":1}\n", 60, "\x07"},
		// The limit crossed in the reply's last bytes: the id straddles two reads.
		{`{"result":{"id":"inner","t":"` + string(big[:30]) + `"},"jsonrpc":"2.0","id":12345}` + "\n", 86, "\x54"},
		{`{"jsonrpc":"2.0","id":"\q","result":"` + string(big) + `"}` + "\n", 40, ""},
		{"\n\n\n", 0, ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.in), s.max, []byte(s.sizes), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, max8 uint8, sizes []byte, sse bool) {
		max := int(max8)
		prefix := ""
		if sse {
			prefix = "data: "
		}
		g := newLineGuard(&chunkReader{data: in, sizes: sizes}, max)
		g.prefix = prefix
		var got []byte
		buf := make([]byte, 7)
		for {
			n, err := g.Read(buf)
			got = append(got, buf[:n]...)
			if len(g.line) > max || len(g.head) > edge || len(g.tail) > edge {
				t.Fatalf("the guard holds %d line, %d head, %d tail bytes (limit %d, edge %d)", len(g.line), len(g.head), len(g.tail), max, edge)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if want := guardModel(in, max, prefix); !bytes.Equal(got, want) {
			t.Fatalf("in %q (limit %d, reads %v)\ngot  %q\nwant %q", in, max, sizes, got, want)
		}
		inLines := map[string]bool{}
		for _, l := range bytes.Split(in, []byte("\n")) {
			inLines[string(l)] = true
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(got, []byte("\n")), []byte("\n")) {
			if len(got) == 0 || len(l) <= max && inLines[string(l)] {
				continue
			}
			// Not one of the input's lines: a synthesized error.
			var m struct {
				ID    json.RawMessage `json:"id"`
				Error struct {
					Code int `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(bytes.TrimPrefix(l, []byte(prefix)), &m); err != nil || m.Error.Code != -32000 || len(m.ID) == 0 {
				t.Fatalf("output line %q is neither an input line nor a JSON-RPC error (%v)", l, err)
			}
			// encoding/json escapes &, <, > (and U+2028/9): the same JSON string.
			unescaped := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">", `\u2028`, "\u2028", `\u2029`, "\u2029").Replace(string(m.ID))
			if !bytes.Contains(in, m.ID) && !bytes.Contains(in, []byte(unescaped)) {
				t.Fatalf("synthesized id %s is not in the input", m.ID)
			}
		}
	})
}

// FuzzDroppedID: the id found in a dropped reply is a JSON number or string
// taken from it, never anything else.
func FuzzDroppedID(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":"r-1","result":`), []byte(`"x"},"id":7}`))
	f.Add([]byte(`{"id" : -3,`), []byte(`}`))
	f.Add([]byte(`{"id":"a\"b"`), []byte(`"id":"\u00e9"}  `))
	f.Fuzz(func(t *testing.T, head, tail []byte) {
		id := droppedID(head, tail)
		if id == nil {
			return
		}
		if !bytes.Contains(head, id) && !bytes.Contains(tail, id) {
			t.Fatalf("id %s is in neither end", id)
		}
		if c := id[0]; c != '"' && c != '-' && (c < '0' || c > '9') {
			t.Fatalf("id %s is not a number or a string", id)
		}
	})
}
