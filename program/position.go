package program

import (
	"sort"
	"unicode/utf8"
)

// bom is the UTF-8 byte order mark. Deno drops one at the very start of a
// module, so it occupies no column on line 1.
const bom = "\uFEFF"

// lineIndex converts between byte offsets and the positions deno reports:
// 1-based lines and 1-based columns counted in UTF-16 code units (V8's unit,
// which deno's stack traces and runtime errors keep after source mapping).
//
// Lines end at "\n", "\r\n" or a lone "\r", as in deno's reports. U+2028 and
// U+2029 do not end a line here: deno's positions do not treat them as line
// breaks (and are unreliable after them; see the package documentation).
type lineIndex struct {
	text   string
	starts []int // byte offset of each line's first byte
	skip   int   // bytes at the start of line 1 that occupy no column (a BOM)
}

func newLineIndex(text string) *lineIndex {
	li := &lineIndex{text: text, starts: make([]int, 1, 1+len(text)/32)}
	if len(text) >= len(bom) && text[:len(bom)] == bom {
		li.skip = len(bom)
	}
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\n':
			li.starts = append(li.starts, i+1)
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			li.starts = append(li.starts, i+1)
		}
	}
	return li
}

// lines is the number of lines (at least 1).
func (li *lineIndex) lines() int { return len(li.starts) }

// lineBounds returns the byte range of line (1-based) without its terminator.
func (li *lineIndex) lineBounds(line int) (start, end int) {
	start = li.starts[line-1]
	if line == 1 {
		start += li.skip
	}
	if line < len(li.starts) {
		end = li.starts[line]
		// Drop the terminator: "\n", "\r" or "\r\n".
		if end > start && li.text[end-1] == '\n' {
			end--
		}
		if end > start && li.text[end-1] == '\r' {
			end--
		}
	} else {
		end = len(li.text)
	}
	return start, end
}

// position converts a byte offset (clamped to the text) to a 1-based line
// and UTF-16 column. An offset inside a multi-byte character counts that
// character as not yet reached.
func (li *lineIndex) position(off int) (line, col int) {
	off = max(0, min(off, len(li.text)))
	line = sort.Search(len(li.starts), func(i int) bool { return li.starts[i] > off })
	start, end := li.lineBounds(line)
	if off < start { // inside the BOM
		return line, 1
	}
	off = min(off, end) // an offset in the terminator stays on its line
	return line, 1 + utf16Len(li.text[start:off])
}

// offset converts a 1-based line and UTF-16 column to a byte offset. ok is
// false if the line does not exist or col < 1. A column past the end of the
// line yields the line's end and the number of columns left over.
func (li *lineIndex) offset(line, col int) (off, over int, ok bool) {
	if line < 1 || line > len(li.starts) || col < 1 {
		return 0, 0, false
	}
	start, end := li.lineBounds(line)
	units := col - 1
	i := start
	for i < end && units > 0 {
		r, size := utf8.DecodeRuneInString(li.text[i:end])
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if w > units { // the column points at the second half of a surrogate pair
			break
		}
		units -= w
		i += size
	}
	return i, units, true
}

// utf16Len is the length of s in UTF-16 code units; invalid bytes count one each.
func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n
}
