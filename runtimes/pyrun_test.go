package runtimes

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"sync"
	"testing"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// prepareDriver runs the runner's prepare (parse, check the read-only globals, compile) on one
// JSON line {"code", "names"} at a time and answers {"exc": the exception's type name or ""}.
const prepareDriver = `
import json, sys
ns = {"__name__": "pyrun", "__file__": "/nonexistent/.conductor/run.py"}
exec(sys.stdin.readline() and json.loads(sys.argv[1]), ns)
for line in sys.stdin:
    req = json.loads(line)
    exc = ""
    try:
        ns["prepare"](req["code"], req["names"])
    except BaseException as e:
        exc = type(e).__name__
    print(json.dumps({"exc": exc}), flush=True)
`

// preparer is one python3 process running prepareDriver.
type preparer struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Scanner
}

func startPreparer(t testing.TB) *preparer {
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Unavailable(t, "no python3 on PATH: %v", err)
	}
	src, _ := json.Marshal(PythonRunner)
	cmd := exec.Command(py, "-E", "-s", "-B", "-c", prepareDriver, string(src))
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("prepare driver: %v: %s", err, stderr.String())
		}
	})
	if _, err := io.WriteString(in, "go\n"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &preparer{in: in, out: sc}
}

// prepare returns the name of the exception prepare raised for code, "" if none.
func (p *preparer) prepare(t testing.TB, code string, names []string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	line, _ := json.Marshal(map[string]any{"code": code, "names": names})
	if _, err := p.in.Write(append(line, '\n')); err != nil {
		t.Fatalf("driver: %v", err)
	}
	if !p.out.Scan() {
		t.Fatalf("driver died on %q: %v", code, p.out.Err())
	}
	var r struct{ Exc string }
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		t.Fatalf("driver answered %q", p.out.Bytes())
	}
	return r.Exc
}

// allowedPrepareErrors are the only ways prepare may refuse code: the model's code does not
// parse or compile (SyntaxError and its subclasses), holds a NUL byte (ValueError), or nests
// deeper than the parser goes (RecursionError, MemoryError).
var allowedPrepareErrors = []string{"", "SyntaxError", "IndentationError", "TabError", "ValueError", "RecursionError", "MemoryError"}

// FuzzPythonPrepare: whatever the model sends, the runner's prepare either compiles it or refuses
// it as a syntax error; it never fails in another way (which would surface as the runner's bug).
func FuzzPythonPrepare(f *testing.F) {
	for _, s := range []string{
		"1 + 1", "x = (", "await f()", "city = 1", "def f():\n    global city\n    city = 2", "import os as city",
		"[x for city in range(3)]", "lambda city: city", "class C:\n    city = 1", "try:\n    pass\nexcept E as city:\n    pass",
		"del city", "for city in []: pass", "with open('f') as city: pass", "(city := 3)", "from m import *",
		"\x00", "\"\"\"", "if True:\nprint(1)", "a\tb", "f'{x!r:>{w}}'", "match x:\n    case {'k': city}: pass",
		"async def f():\n    async with a as city: pass", "@d\ndef city(): pass", "x: int = 1\nx",
	} {
		f.Add(s)
	}
	p := startPreparer(f)
	f.Fuzz(func(t *testing.T, code string) {
		if exc := p.prepare(t, code, []string{"city"}); !slices.Contains(allowedPrepareErrors, exc) {
			t.Fatalf("prepare(%q) raised %s", code, exc)
		}
	})
}

// TestPythonReadOnlyGlobals: the module's own bindings of a given global's name are refused; the
// same name bound in a function, class, lambda or comprehension scope is not the module's.
func TestPythonReadOnlyGlobals(t *testing.T) {
	p := startPreparer(t)
	for code, want := range map[string]string{
		"city = 1":                    "SyntaxError",
		"city += 1":                   "SyntaxError",
		"del city":                    "SyntaxError",
		"for city in []: pass":        "SyntaxError",
		"import os as city":           "SyntaxError",
		"from os import path as city": "SyntaxError",
		"def city(): pass":            "SyntaxError",
		"class city: pass":            "SyntaxError",
		"(city := 3)":                 "SyntaxError",
		"def f():\n    global city\n    city = 1":     "SyntaxError",
		"try:\n    pass\nexcept E as city:\n    pass": "SyntaxError",
		"with open('f') as city: pass":                "SyntaxError",
		"print(city)":                                 "",
		"def f():\n    city = 1":                      "",
		"def f(city): return city":                    "",
		"lambda city: city":                           "",
		"[city for city in range(3)]":                 "",
		"class C:\n    city = 1":                      "",
		"x.city = 1":                                  "",
	} {
		if got := p.prepare(t, code, []string{"city"}); got != want {
			t.Errorf("prepare(%q) with global city: %q, want %q", code, got, want)
		}
	}
}
