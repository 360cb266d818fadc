package program

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ResultKind says where the module's default export, the program's result,
// comes from.
type ResultKind int

// Result kinds.
const (
	// ResultNone: the program yields nothing; m.default is undefined. The
	// last statement is a declaration, a control statement (if, for, try,
	// a block …), or the code is empty or did not parse.
	ResultNone ResultKind = iota
	// ResultLastExpression: the value of the last top-level expression
	// statement, awaited.
	ResultLastExpression
	// ResultReturn: the value of the top-level return that ran, awaited; if
	// none ran, the value of the last top-level expression statement (as for
	// ResultLastExpression) or undefined.
	ResultReturn
	// ResultExportDefault: the code's own default export, untouched (it may
	// be a thenable: the caller awaits it).
	ResultExportDefault
)

func (k ResultKind) String() string {
	switch k {
	case ResultNone:
		return "none"
	case ResultLastExpression:
		return "last-expression"
	case ResultReturn:
		return "return"
	case ResultExportDefault:
		return "export-default"
	}
	return fmt.Sprintf("ResultKind(%d)", int(k))
}

// Import is one module specifier the code names.
type Import struct {
	// Specifier is the literal's value with its escapes decoded
	// ("npm:zod@^3", "jsr:@std/path", "./x.ts", "https://…"); for a
	// NonLiteral dynamic import it is "".
	Specifier string
	// Line and Column locate the literal's opening quote (or, for a
	// NonLiteral dynamic import, its argument) in the user's code: 1-based,
	// the column in UTF-16 code units, as deno reports positions.
	Line, Column int
	// Dynamic: import(…). Otherwise a static import or export … from.
	Dynamic bool
	// NonLiteral: a dynamic import whose argument is not a string literal or
	// a template literal without substitutions, so it cannot be checked.
	NonLiteral bool
	// TypeOnly: `import type … from`, `export type … from`, or import(…) in a
	// type position (typeof import("…"), `: import("…").T`). Deno does not
	// load these at run time. `import { type A } from "…"` is not
	// type-only: deno loads that module.
	TypeOnly bool
	// Require: TypeScript's `import x = require("…")`, which deno does not
	// support (it fails with a SyntaxError).
	Require bool

	offset int // byte offset of the specifier in the user's code
	call   int // dynamic: byte offset of the import(…) call
}

// Program is the user's code prepared for the sandbox.
type Program struct {
	// Module is what the sandbox evaluates as an ES module. Its default
	// export is the result (see Result). When the code needs no rewrite it
	// is the code itself, byte for byte.
	Module string
	// Imports lists every module specifier in the code, in source order.
	Imports []Import
	// Result says where m.default comes from.
	Result ResultKind
	// ParseFailed: the TypeScript grammar found a syntax error. Module is
	// then the code unchanged, so deno reports the error at its own exact
	// position, and Imports lists what the error-tolerant parse recovered,
	// which may be incomplete. The grammar may also reject a few constructs
	// deno accepts (e.g. `in`/`out` variance annotations, `export type *`,
	// `import defer`); such code runs unchanged, without a result.
	ParseFailed bool

	code            string
	pieces          []piece    // nil when Module == code
	userIdx, modIdx *lineIndex // set when pieces != nil
}

// MaxCodeBytes bounds the code Prepare accepts. Parsing costs about 0.3 s
// and 50 bytes of memory (mostly the syntax tree, outside the Go heap) per
// byte of code: 16 MiB takes about 5 s and 800 MB.
const MaxCodeBytes = 16 << 20

// Prepare turns the user's code into the module the sandbox evaluates.
// It returns an error (an *Error) only for code that cannot be turned into a
// module: invalid UTF-8, more than MaxCodeBytes, code the parser gives up on
// (ErrTooComplex: the parse is bounded in time), or a top-level return in code
// that also exports bindings or uses an import alias; and the context's error
// if it ends first.
func Prepare(code string) (*Program, error) {
	return PrepareContext(context.Background(), code)
}

// PrepareContext is Prepare with a context that can cancel the parse.
func PrepareContext(ctx context.Context, code string) (*Program, error) {
	if len(code) > MaxCodeBytes {
		return nil, &Error{Line: 1, Column: 1, Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes, at most %d", len(code), MaxCodeBytes)}
	}
	if !utf8.ValidString(code) {
		return nil, invalidUTF8(code)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("program: %w", err)
	}
	a, err := analyze(ctx, code)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("program: %w", err)
	}
	p := &Program{Module: code, code: code, Imports: a.imports, ParseFailed: a.parseFailed}
	userIdx := newLineIndex(code)
	for i := range p.Imports {
		p.Imports[i].Line, p.Imports[i].Column = userIdx.position(p.Imports[i].offset)
	}
	if a.parseFailed {
		return p, nil
	}
	edits, tail, kind, err := plan(a, code, userIdx)
	if err != nil {
		return nil, err
	}
	p.Result = kind
	if len(edits) == 0 && len(tail) == 0 {
		return p, nil
	}
	b := newBuilder(code, 64)
	b.apply(edits)
	for _, t := range tail {
		if t.copied {
			b.copy(t.start, t.end)
		} else {
			b.write(t.text, t.start)
		}
	}
	p.Module = b.out.String()
	p.pieces = b.pieces
	p.userIdx = userIdx
	p.modIdx = newLineIndex(p.Module)
	return p, nil
}

func invalidUTF8(code string) error {
	off := 0
	for off < len(code) {
		r, size := utf8.DecodeRuneInString(code[off:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		off += size
	}
	line, col := newLineIndex(code[:off]).position(off)
	return &Error{Line: line, Column: col, Err: ErrInvalidUTF8, Detail: fmt.Sprintf("byte %d", off)}
}

// MapPosition maps a position in Module (1-based line, 1-based UTF-16
// column, as in deno's "main.ts:LINE:COL") to the same position in the
// user's code. Positions in copied code map exactly; a position inside text
// Prepare added maps to the user position that text stands for (e.g. the
// start of the last expression for "export default await (", the end of the
// code for the closing "})();"). Without a rewrite, and for positions that
// do not exist in Module, it returns its arguments.
func (p *Program) MapPosition(line, col int) (int, int) {
	l, c, _ := p.mapPosition(line, col)
	return l, c
}

// mapPosition is MapPosition that also reports whether the position lies in
// text Prepare wrote.
func (p *Program) mapPosition(line, col int) (int, int, bool) {
	if p.pieces == nil {
		return line, col, false
	}
	off, over, ok := p.modIdx.offset(line, col)
	if !ok {
		return line, col, false
	}
	u, written := toUser(p.pieces, len(p.Module), len(p.code), off)
	l, c := p.userIdx.position(u)
	return l, c + over, written
}
