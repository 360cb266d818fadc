package program

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzPrepare checks that Prepare never panics, that its errors are *Error,
// that the position bookkeeping is exact (see checkMapping), and that a
// rewrite of code the grammar accepts is itself accepted, with a default
// export and no top-level return left.
func FuzzPrepare(f *testing.F) {
	for _, c := range loadValueCases(f) {
		f.Add(c.Code)
	}
	for _, c := range errorCases {
		f.Add(c.code)
	}
	for _, s := range []string{
		"return 1", "{ a: 1 }", "x\x00y", "\uFEFFreturn 1", "#!x\nreturn 1", "a\u2028b",
		"return b;\nimport b from \"./b.ts\"; export {};\n", "import(`a${b}`)", "\xff",
		"if (x) return\nfoo()", "return 1 // c", "return 1\r", "\r\r\n\rreturn 1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		p, err := Prepare(code)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if errors.Is(err, ErrInvalidUTF8) == utf8.ValidString(code) {
				t.Fatalf("ErrInvalidUTF8 = %v for valid = %v", errors.Is(err, ErrInvalidUTF8), utf8.ValidString(code))
			}
			return
		}
		if p.ParseFailed && p.Module != code {
			t.Fatalf("code that did not parse was rewritten")
		}
		checkMapping(t, code, p)
		_ = p.MapText("at main.ts:1:1 (main.ts:99999999999999999999:1) main.ts:2\n    at main.ts:3:0\n")
		if p.pieces == nil {
			return
		}
		q, err := Prepare(p.Module)
		if err != nil {
			t.Fatalf("Prepare(module): %v\nmodule:\n%s", err, p.Module)
		}
		if q.ParseFailed || q.Result != ResultExportDefault {
			t.Fatalf("the module does not parse as a module with a default export (parseFailed %v, result %v):\n%s", q.ParseFailed, q.Result, p.Module)
		}
	})
}
