package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/program"
	"github.com/conductor-sandbox/conductor/typecheck"
)

// maxListedDiagnostics is how many diagnostics a TypeError's message lists.
const maxListedDiagnostics = 10

// TypeError refuses code that does not type-check: the diagnostics at positions in the
// user's code. Nothing of the code ran.
type TypeError struct {
	Diagnostics []typecheck.Diagnostic
}

func (e *TypeError) Error() string {
	var b strings.Builder
	n := len(e.Diagnostics)
	fmt.Fprintf(&b, "the code does not type-check (%d error", n)
	if n != 1 {
		b.WriteByte('s')
	}
	b.WriteString("; it was not run):")
	for i, d := range e.Diagnostics {
		if i == maxListedDiagnostics {
			fmt.Fprintf(&b, "\n… and %d more", n-i)
			break
		}
		b.WriteString("\n" + d.String())
	}
	return b.String()
}

// typeCheck checks req's program when the server or the request asks for it: a *TypeError
// for diagnostics, an internal error when the checker failed (the code is not run unchecked),
// an invalid request when the server cannot check. Code that does not parse is left to deno,
// which reports the syntax error at its own position.
func (e *Engine) typeCheck(ctx context.Context, req *Request, prog *program.Program) error {
	if !e.o.TypeCheckAll && !req.TypeCheck || prog.ParseFailed {
		return nil
	}
	if e.o.TypeCheck == nil {
		return fmt.Errorf("%w: typecheck was asked for, but this server cannot type-check (TypeScript's compiler is not installed: "+
			"the admin runs `make build`, or sets %s=1 to check every call); run without typecheck", ErrInvalidRequest, config.VarTypeCheck)
	}
	diags, err := e.o.TypeCheck.CheckProgram(ctx, prog, req.Globals)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case err != nil:
		return fmt.Errorf("type-checking failed, so the code was not run (a server problem, not the code's; try again): %w", err)
	case len(diags) > 0:
		return &TypeError{Diagnostics: diags}
	}
	return nil
}
