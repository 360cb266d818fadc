package program

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// posOf returns the 1-based line and UTF-16 column of the first occurrence
// of marker in code, computed independently of lineIndex ("\n", "\r\n" and
// "\r" end lines; a leading BOM takes no column).
func posOf(t testing.TB, code, marker string) (int, int) {
	t.Helper()
	i := strings.Index(code, marker)
	if i < 0 {
		t.Fatalf("marker %q not in code %q", marker, code)
	}
	return posAt(code, i)
}

func posAt(code string, off int) (int, int) {
	prefix := code[:off]
	line := 1
	lineStart := 0
	for j := 0; j < len(prefix); j++ {
		if prefix[j] == '\n' || (prefix[j] == '\r' && (j+1 >= len(prefix) || prefix[j+1] != '\n')) {
			line++
			lineStart = j + 1
		}
	}
	rest := prefix[lineStart:]
	if line == 1 {
		rest = strings.TrimPrefix(rest, bom)
	}
	return line, 1 + len(utf16.Encode([]rune(rest)))
}

// checkMapping verifies the rewrite's bookkeeping: the pieces tile the
// module, every copied piece is the user's text, every position in copied
// text maps back exactly, positions before the first written text map to
// themselves, and the mapping never goes backwards before the closing
// wrapper.
func checkMapping(t testing.TB, code string, p *Program) {
	t.Helper()
	if p.pieces == nil {
		if p.Module != code {
			t.Fatalf("no pieces but the module differs from the code")
		}
		for _, lc := range [][2]int{{1, 1}, {1, 5}, {2, 3}, {100, 7}} {
			if l, c := p.MapPosition(lc[0], lc[1]); l != lc[0] || c != lc[1] {
				t.Fatalf("unchanged code: MapPosition(%d,%d) = %d,%d", lc[0], lc[1], l, c)
			}
		}
		return
	}
	pos := 0
	firstWritten := len(p.Module)
	for _, pc := range p.pieces {
		if pc.mod != pos {
			t.Fatalf("piece at %d, want %d", pc.mod, pos)
		}
		if pc.copied {
			if p.Module[pc.mod:pc.mod+pc.n] != code[pc.user:pc.user+pc.n] {
				t.Fatalf("copied piece %+v differs from the code", pc)
			}
		} else {
			firstWritten = min(firstWritten, pc.mod)
		}
		pos += pc.n
	}
	if pos != len(p.Module) {
		t.Fatalf("pieces cover %d bytes of %d", pos, len(p.Module))
	}
	skip := 0
	if strings.HasPrefix(code, bom) {
		skip = len(bom)
	}
	// Exact inverse on copied text, at every character start (every
	// step-th on large inputs: each check is linear in the line's length).
	step := 1 + len(p.Module)/4096
	for _, pc := range p.pieces {
		if !pc.copied {
			continue
		}
		for o, k := 0, 0; o < pc.n; k++ {
			mo, uo := pc.mod+o, pc.user+o
			_, size := utf8.DecodeRuneInString(p.Module[mo:])
			o += size
			if k%step != 0 && o < pc.n {
				continue
			}
			if uo < skip || isLF(code, uo) {
				continue // inside the BOM, or the "\n" of a "\r\n"
			}
			ml, mc := posAt(p.Module, mo)
			wl, wc := posAt(code, uo)
			if gl, gc := p.MapPosition(ml, mc); gl != wl || gc != wc {
				t.Fatalf("module %d:%d (offset %d) maps to %d:%d, want %d:%d (user offset %d)", ml, mc, mo, gl, gc, wl, wc, uo)
			}
			if mo < firstWritten && (ml != wl || mc != wc) {
				t.Fatalf("before the first edit, module %d:%d is user %d:%d", ml, mc, wl, wc)
			}
		}
	}
	// Monotonic up to the closing wrapper (hoisted statements re-emitted
	// after it map back to earlier positions).
	end := len(p.Module)
	if i := strings.LastIndex(p.Module, wrapClose); i >= 0 && p.Result == ResultReturn {
		end = i
	}
	prev := -1
	for o := 0; o < end; o++ {
		u, _ := toUser(p.pieces, len(p.Module), len(code), o)
		if u < prev {
			t.Fatalf("mapping goes backwards at module offset %d: %d after %d", o, u, prev)
		}
		prev = u
	}
}

func isLF(s string, i int) bool { return s[i] == '\n' && i > 0 && s[i-1] == '\r' }
