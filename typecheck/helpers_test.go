package typecheck_test

import (
	"strconv"
	"testing"

	"github.com/conductor-sandbox/conductor/program"
	"github.com/conductor-sandbox/conductor/sandbox"
)

func init() { sandbox.MaybeInit() }

func itoa(i int) string { return strconv.Itoa(i) }

func mustPrepare(tb testing.TB, code string) *program.Program {
	tb.Helper()
	p, err := program.Prepare(code)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
