package mcp

import (
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/sandbox"
)

// TestSummary: the text a client reads has the error's name and the innermost frame of the user's
// code, the file holding a cut stream, how long the call waited, and says a refusal did not run.
func TestSummary(t *testing.T) {
	code := 1
	tests := []struct {
		name string
		res  sandbox.Result
		want []string
		not  []string
	}{
		{"V8 error", sandbox.Result{Status: sandbox.StatusError, ExitCode: &code, DurationMs: 12, Error: &sandbox.ErrorInfo{
			Type: "runtime", Name: "TypeError", Message: "x is not a function", Line: 2, Column: 3,
			Stack: "TypeError: x is not a function\n    at g (main.ts:2:3)\n    at main.ts:5:1"}},
			[]string{"status: error (runtime) in 12 ms\n", "error at line 2, column 3: TypeError: x is not a function\n    at g (main.ts:2:3)\n"}, []string{"main.ts:5:1"}},
		{"name already in the message", sandbox.Result{Status: sandbox.StatusError, Error: &sandbox.ErrorInfo{Type: "syntax", Name: "SyntaxError", Message: "SyntaxError: bad", Line: 1, Column: 1}},
			[]string{"error at line 1, column 1: SyntaxError: bad\n"}, []string{"SyntaxError: SyntaxError"}},
		{"Python traceback", sandbox.Result{Status: sandbox.StatusError, ExitCode: &code, Error: &sandbox.ErrorInfo{
			Type: "runtime", Name: "ZeroDivisionError", Message: "division by zero", Line: 2, Column: 12,
			Stack: "Traceback (most recent call last):\n  File \"main.py\", line 4, in <module>\n    f()\n  File \"main.py\", line 2, in f\n    return 1 / 0\nZeroDivisionError: division by zero"}},
			[]string{"ZeroDivisionError: division by zero\n    File \"main.py\", line 2, in f\n"}, []string{"line 4, in <module>"}},
		{"cut stdout", sandbox.Result{Status: sandbox.StatusSuccess, ExitCode: new(int), Stdout: "abc", StdoutTruncated: true, StdoutBytes: 10, StdoutFile: "/ws/.conductor/output/x.stdout.txt"},
			[]string{"(stdout truncated: 3 of 10 bytes shown; the full stdout is in /ws/.conductor/output/x.stdout.txt)\n"}, nil},
		{"cut without a file", sandbox.Result{Status: sandbox.StatusSuccess, ExitCode: new(int), Stderr: "abc", StderrTruncated: true, StderrBytes: 10},
			[]string{"(stderr truncated: 3 of 10 bytes shown)\n"}, []string{"the full"}},
		{"queued", sandbox.Result{Status: sandbox.StatusSuccess, ExitCode: new(int), DurationMs: 40, QueuedMs: 900},
			[]string{"status: success in 40 ms, after 900 ms waiting for a free slot\n"}, nil},
		{"refused", sandbox.Result{Status: sandbox.StatusError, Error: &sandbox.ErrorInfo{Type: "dependency", Message: "dependency not allowed: npm:x"}},
			[]string{"status: error (dependency), refused before it ran\nerror: dependency not allowed: npm:x\n"}, []string{" ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(&tc.res)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary %q does not contain %q", got, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("summary %q contains %q", got, w)
				}
			}
		})
	}
}
