package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
)

// maxLineBytes bounds one message on a stdio upstream's stdout.
const maxLineBytes = MaxResponseBytes

// lineGuard passes an upstream's stdout on whole lines of at most max bytes.
// A longer line — a reply too large to hand to any sandbox — is dropped as it
// streams in and replaced by a JSON-RPC error for its request, so that one
// call fails while the shared session (and a stateful upstream's state)
// lives on. Memory stays bounded by max.
type lineGuard struct {
	r      io.Reader
	max    int
	prefix string // put before a synthesized reply ("data: " in an SSE stream)
	line   []byte // the current line, while it is short enough to keep
	out    []byte // complete output not yet read
	drop   bool   // the current line is over max: discarding it
	head   []byte // first bytes of a dropped line (where Go SDKs put the id)
	tail   []byte // last bytes of a dropped line (where TypeScript SDKs put it)
	err    error
}

const edge = 512

func newLineGuard(r io.Reader, max int) *lineGuard { return &lineGuard{r: r, max: max} }

// tooLarge is the message of a dropped reply.
func tooLarge(max int) string {
	return fmt.Sprintf("the upstream's reply is too large: over the %d-byte limit; it was dropped", max)
}

func (g *lineGuard) Read(p []byte) (int, error) {
	for len(g.out) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		chunk := make([]byte, 64<<10)
		n, err := g.r.Read(chunk)
		g.take(chunk[:n])
		if err != nil {
			switch {
			case g.drop:
				g.endLine() // an over-long last line without newline
			case len(g.line) > 0:
				g.out = append(g.out, g.line...) // a last line without newline
				g.line = nil
			}
			g.err = err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// take splits b into lines.
func (g *lineGuard) take(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		g.add(part)
		if i < 0 {
			return
		}
		g.endLine()
		b = b[i+1:]
	}
}

func (g *lineGuard) add(part []byte) {
	if !g.drop && len(g.line)+len(part) > g.max {
		g.drop = true
		g.head = append([]byte(nil), g.line[:min(len(g.line), edge)]...)
		// The kept bytes' end too: the id may straddle this read and the last.
		g.tail = append([]byte(nil), g.line[max(0, len(g.line)-edge):]...)
		g.line = nil
	}
	if !g.drop {
		g.line = append(g.line, part...)
		return
	}
	if len(g.head) < edge {
		g.head = append(g.head, part[:min(len(part), edge-len(g.head))]...)
	}
	g.tail = append(g.tail, part...)
	if len(g.tail) > edge {
		g.tail = append([]byte(nil), g.tail[len(g.tail)-edge:]...)
	}
}

func (g *lineGuard) endLine() {
	if !g.drop {
		g.out = append(append(g.out, g.line...), '\n')
		g.line = g.line[:0]
		return
	}
	g.drop = false
	if id := droppedID(g.head, g.tail); id != nil {
		msg, err := json.Marshal(map[string]any{
			"jsonrpc": "2.0", "id": id,
			"error": map[string]any{"code": -32000, "message": tooLarge(g.max)},
		})
		if err == nil {
			g.out = append(append(append(g.out, g.prefix...), msg...), '\n')
		}
	}
	g.head, g.tail = nil, nil
}

var idField = regexp.MustCompile(`"id"\s*:\s*(-?[0-9]+|"(?:[^"\\]|\\.)*")`)

// droppedID finds the top-level id of a dropped reply: the last id at the
// very end of the line, else the first one at its start. An id that is not
// valid JSON ("\q" in a string) is no id: nothing could be answered with it.
func droppedID(head, tail []byte) json.RawMessage {
	t := bytes.TrimRight(tail, " \t\r")
	if m := idField.FindAllSubmatchIndex(t, -1); len(m) > 0 {
		last := m[len(m)-1]
		if rest := bytes.TrimSpace(t[last[1]:]); bytes.Equal(rest, []byte("}")) {
			if id := t[last[2]:last[3]]; json.Valid(id) {
				return json.RawMessage(id)
			}
			return nil
		}
	}
	if m := idField.FindSubmatch(head); m != nil && json.Valid(m[1]) {
		return json.RawMessage(m[1])
	}
	return nil
}
