package program

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is on an *Error.
var (
	ErrInvalidUTF8           = errors.New("code is not valid UTF-8")
	ErrTooLarge              = errors.New("code too large")
	ErrTooComplex            = errors.New("code too complex to parse")
	ErrReturnWithExport      = errors.New("a top-level return cannot be combined with export (the code is wrapped in a function to run the return)")
	ErrReturnWithImportAlias = errors.New("a top-level return cannot be combined with `import X = …` (the code is wrapped in a function to run the return)")
)

// Error is code Prepare cannot turn into a module, with the position in the
// user's code of what is wrong (1-based line, UTF-16 column).
type Error struct {
	Line, Column int
	Err          error  // one of the sentinels above
	Detail       string // optional, e.g. where the first return is
}

func (e *Error) Error() string {
	s := fmt.Sprintf("main.ts:%d:%d: %v", e.Line, e.Column, e.Err)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func positionText(what string, line, col int) string {
	return fmt.Sprintf("%s main.ts:%d:%d", what, line, col)
}
