package program

import (
	"sort"
	"strings"
)

// piece is one run of the module, in module order: either a verbatim copy
// of a range of the user's code, or text this package wrote.
type piece struct {
	mod    int  // byte offset in the module where the piece starts
	user   int  // copied: where the copy starts in the user's code; written: the user offset it stands for
	n      int  // length in bytes
	copied bool // true for a verbatim copy
}

// builder assembles a module from copies of the user's code and written
// text, recording every piece so positions can be mapped back.
type builder struct {
	code   string
	out    strings.Builder
	pieces []piece
}

func newBuilder(code string, extra int) *builder {
	b := &builder{code: code}
	b.out.Grow(len(code) + extra)
	return b
}

// copy appends code[from:to] verbatim.
func (b *builder) copy(from, to int) {
	if to <= from {
		return
	}
	b.pieces = append(b.pieces, piece{mod: b.out.Len(), user: from, n: to - from, copied: true})
	b.out.WriteString(b.code[from:to])
}

// write appends s, which stands for the user's position anchor.
func (b *builder) write(s string, anchor int) {
	if s == "" {
		return
	}
	b.pieces = append(b.pieces, piece{mod: b.out.Len(), user: anchor, n: len(s)})
	b.out.WriteString(s)
}

// edit replaces code[start:end] by text (an insertion when start == end).
type edit struct {
	start, end int
	text       string
}

// apply copies the code with edits applied; edits must not overlap.
func (b *builder) apply(edits []edit) {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	pos := 0
	for _, e := range edits {
		b.copy(pos, e.start)
		b.write(e.text, e.start)
		pos = e.end
	}
	b.copy(pos, len(b.code))
}

// toUser maps a module byte offset to the user's code. written reports that
// the offset lies in text this package wrote; the result is then the user
// offset that text stands for.
func toUser(pieces []piece, modLen, userLen, off int) (user int, written bool) {
	if len(pieces) == 0 {
		return min(off, userLen), false
	}
	off = min(off, modLen)
	i := sort.Search(len(pieces), func(i int) bool { return pieces[i].mod > off }) - 1
	if i < 0 {
		return 0, false
	}
	p := pieces[i]
	if !p.copied {
		return p.user, true
	}
	return p.user + min(off-p.mod, p.n), false
}

// blank returns s with every character except line terminators replaced by
// spaces, one per UTF-16 code unit, so the rest of its last line keeps its
// columns.
func blank(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r':
			sb.WriteRune(r)
		case r >= 0x10000:
			sb.WriteString("  ")
		default:
			sb.WriteByte(' ')
		}
	}
	return sb.String()
}
