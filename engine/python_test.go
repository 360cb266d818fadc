package engine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/sandbox"
)

// TestPythonReturnValues: run_python_code's value of the last expression statement, through real
// sandboxes: JSON values as they are, every other Python value tagged with $type (the counterpart
// of TestReturnValueTable for TypeScript).
func TestPythonReturnValues(t *testing.T) {
	e := newCodeEngine(t)
	tests := []struct{ name, code, want string }{
		{"int", "1 + 1", `2`},
		{"negative int", "-5", `-5`},
		{"float", "0.5", `0.5`},
		{"str", "'héllo'", `"héllo"`},
		{"empty str", "''", `""`},
		{"True", "True", `true`},
		{"None", "None", `null`},
		{"list", "[1, 'a', None]", `[1,"a",null]`},
		{"nested list", "[[1], [2, [3]]]", `[[1],[2,[3]]]`},
		{"dict", "{'a': 1, 'b': [True]}", `{"a":1,"b":[true]}`},
		{"empty dict", "{}", `{}`},
		{"tuple", "(1, 'x')", `{"$type":"tuple","values":[1,"x"]}`},
		{"empty tuple", "()", `{"$type":"tuple","values":[]}`},
		{"set sorted", "{3, 1, 2}", `{"$type":"set","values":[1,2,3]}`},
		{"frozenset", "frozenset(['b', 'a'])", `{"$type":"frozenset","values":["a","b"]}`},
		{"mixed set unsortable", "len({1, 'a'}) and {1}", `{"$type":"set","values":[1]}`},
		{"bytes", "b'hi'", `{"$type":"bytes","base64":"aGk="}`},
		{"bytearray", "bytearray(b'\\x00\\xff')", `{"$type":"bytearray","base64":"AP8="}`},
		{"nan", "float('nan')", `{"$type":"number","value":"NaN"}`},
		{"inf", "float('inf')", `{"$type":"number","value":"Infinity"}`},
		{"-inf", "-float('inf')", `{"$type":"number","value":"-Infinity"}`},
		{"-0.0", "-0.0", `{"$type":"number","value":"-0"}`},
		{"2**53 is safe", "2**53", `9007199254740992`},
		{"big int", "2**64", `{"$type":"bigint","value":"18446744073709551616"}`},
		{"negative big int", "-(10**30)", `{"$type":"bigint","value":"-1000000000000000000000000000000"}`},
		{"complex", "1+2j", `{"$type":"complex","real":1,"imag":2}`},
		{"decimal", "import decimal\ndecimal.Decimal('1.10')", `{"$type":"decimal","value":"1.10"}`},
		{"fraction", "import fractions\nfractions.Fraction(1, 3)", `{"$type":"fraction","value":"1/3"}`},
		{"date", "import datetime\ndatetime.date(2024, 2, 29)", `{"$type":"date","value":"2024-02-29"}`},
		{"datetime", "import datetime\ndatetime.datetime(2024, 1, 2, 3, 4, 5)", `{"$type":"datetime","value":"2024-01-02T03:04:05"}`},
		{"aware datetime", "import datetime\ndatetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)", `{"$type":"datetime","value":"2024-01-02T00:00:00+00:00"}`},
		{"time", "import datetime\ndatetime.time(12, 30)", `{"$type":"time","value":"12:30:00"}`},
		{"timedelta", "import datetime\ndatetime.timedelta(minutes=1, seconds=1.5)", `{"$type":"timedelta","seconds":61.5}`},
		{"dataclass", "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: str\nP(1, 'a')", `{"$type":"dataclass","class":"P","value":{"x":1,"y":"a"}}`},
		{"nested dataclass", "from dataclasses import dataclass\n@dataclass\nclass A:\n    v: tuple\n@dataclass\nclass B:\n    a: A\nB(A((1,)))", `{"$type":"dataclass","class":"B","value":{"a":{"$type":"dataclass","class":"A","value":{"v":{"$type":"tuple","values":[1]}}}}}`},
		{"namedtuple", "from collections import namedtuple\nPt = namedtuple('Pt', 'x y')\nPt(1, 2)", `{"$type":"namedtuple","class":"Pt","value":{"x":1,"y":2}}`},
		{"enum", "import enum\nclass C(enum.Enum):\n    RED = 1\nC.RED", `{"$type":"enum","class":"C","name":"RED","value":1}`},
		{"object by class", "class Q:\n    def __init__(self):\n        self.v = [1]\nQ()", `{"$type":"object","class":"Q","value":{"v":[1]}}`},
		{"object without __dict__", "class S:\n    __slots__ = ()\n    def __repr__(self):\n        return 'S!'\nS()", `{"$type":"object","class":"S","repr":"S!"}`},
		{"exception", "ValueError('bad')", `{"$type":"exception","name":"ValueError","message":"bad"}`},
		{"caught exception with traceback", "def f():\n    raise KeyError('k')\ntry:\n    f()\nexcept KeyError as e:\n    err = e\nerr", `{"$type":"exception","name":"KeyError","message":"'k'","traceback":"Traceback (most recent call last):\n  File \"main.py\", line 4, in \u003cmodule\u003e\n    f()\n  File \"main.py\", line 2, in f\n    raise KeyError('k')\nKeyError: 'k'\n"}`},
		{"function", "def hello():\n    pass\nhello", `{"$type":"function","name":"hello"}`},
		{"lambda", "lambda: 1", `{"$type":"function","name":"\u003clambda\u003e"}`},
		{"builtin function", "len", `{"$type":"function","name":"len"}`},
		{"class", "int", `{"$type":"class","name":"int"}`},
		{"module", "import math\nmath", `{"$type":"module","name":"math"}`},
		{"range", "range(1, 10, 2)", `{"$type":"range","start":1,"stop":10,"step":2}`},
		{"generator", "(x for x in [1])", `{"$type":"generator","name":"\u003cgenexpr\u003e"}`},
		{"dict with int keys", "{1: 'a'}", `{"$type":"dict","entries":[[1,"a"]]}`},
		{"dict with tuple keys", "{(1, 2): 'b'}", `{"$type":"dict","entries":[[{"$type":"tuple","values":[1,2]},"b"]]}`},
		{"dict with its own $type key", "{'$type': 'x'}", `{"$type":"object","value":{"$type":"x"}}`},
		{"OrderedDict", "from collections import OrderedDict\nOrderedDict(a=1)", `{"$type":"dict","entries":[["a",1]],"class":"OrderedDict"}`},
		{"circular list", "a = [1]\na.append(a)\na", `[1,{"$type":"circular","path":"$"}]`},
		{"circular dict", "d = {}\nd['me'] = d\n[d]", `[{"me":{"$type":"circular","path":"$[0]"}}]`},
		{"shared, not circular", "x = [1]\n[x, x]", `[[1],[1]]`},
		{"no expression: None", "x = 1", `null`},
		{"last statement is not an expression", "x = 1\nif x:\n    y = 2", `null`},
		{"expression then assignment", "1\nz = 2", `null`},
		{"top-level await", "import asyncio\nawait asyncio.sleep(0.01)\n'done'", `"done"`},
		{"await in the last expression", "import asyncio\nasync def f():\n    return 7\nawait f()", `7`},
		{"a coroutine returned is awaited", "async def f():\n    return [1]\nf()", `[1]`},
		{"asyncio.gather", "import asyncio\nasync def sq(n):\n    await asyncio.sleep(0)\n    return n * n\nawait asyncio.gather(*(sq(i) for i in range(4)))", `[0,1,4,9]`},
		{"print does not change the value", "print('x')\n42", `42`},
		{"global", "city", `"Paris"`},
		{"global object is a dict", "cfg['n'] * 2", `6`},
		{"sys.exit(0) gives no value", "import sys\nsys.exit(0)", `null`},
		{"__name__ is __main__", "__name__", `"__main__"`},
		{"unicode string", "'日本' + chr(0x1F600)", `"日本😀"`},
		{"list subclass", "class L(list):\n    pass\nL([1])", `{"$type":"object","class":"L","value":[1]}`},
		{"memoryview", "memoryview(b'ab')", `{"$type":"memoryview","base64":"YWI="}`},
	}
	globals := json.RawMessage(`{"city": "Paris", "cfg": {"n": 3}}`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.ExecutePython(context.Background(), PythonRequest{Code: tc.code, Globals: globals})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != sandbox.StatusSuccess {
				t.Fatalf("status %s, error %+v, stderr %q", res.Status, res.Error, res.Stderr)
			}
			if got := compactJSON(t, res.ReturnValue); got != compactJSON(t, json.RawMessage(tc.want)) {
				t.Errorf("returnValue\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %q: %v", raw, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPythonErrors: syntax errors and uncaught exceptions come back as the result's error, with
// the line and column in the code as written and a traceback of the user's frames only.
func TestPythonErrors(t *testing.T) {
	e := newCodeEngine(t)
	tests := []struct {
		name, code        string
		typ, errName, msg string
		line, column      int
	}{
		{"unclosed paren", "x = (", "syntax", "SyntaxError", "was never closed", 1, 5},
		{"bad indent", "if True:\nprint(1)", "syntax", "IndentationError", "expected an indented block", 2, 1},
		{"invalid syntax on line 3", "a = 1\nb = 2\nc = = 3", "syntax", "SyntaxError", "invalid syntax", 3, 5},
		{"await in a plain function", "def f():\n    await g()", "syntax", "SyntaxError", "outside async function", 2, 5},
		{"return outside function", "x = 1\nreturn x", "syntax", "SyntaxError", "'return' outside function", 2, 1},
		{"read-only global rebound", "y = 1\ncity = 'Rome'", "syntax", "SyntaxError", "read-only global", 2, 1},
		{"read-only global imported over", "import os as city", "syntax", "SyntaxError", "read-only global", 1, 1},
		{"read-only global via global statement", "def f():\n    global city\n    city = 1", "syntax", "SyntaxError", "read-only global", 2, 5},
		{"name error", "x = 1\nprint(y)", "runtime", "NameError", "name 'y' is not defined", 2, 7},
		{"zero division in a function", "def f(n):\n    return 10 / n\nf(0)", "runtime", "ZeroDivisionError", "division by zero", 2, 12},
		{"raise", "\n\nraise ValueError('boom')", "runtime", "ValueError", "boom", 3, 1},
		{"key error", "d = {}\nd['k']", "runtime", "KeyError", "'k'", 2, 1},
		{"attribute error", "x = None\nx.foo", "runtime", "AttributeError", "foo", 2, 1},
		{"after await", "import asyncio\nawait asyncio.sleep(0)\nint('x')", "runtime", "ValueError", "invalid literal", 3, 1},
		{"custom exception", "class MyError(Exception):\n    pass\nraise MyError('mine')", "runtime", "MyError", "mine", 3, 1},
		{"sys.exit(3)", "import sys\nsys.exit(3)", "runtime", "SystemExit", "sys.exit(3)", 0, 0},
		{"recursion", "def f():\n    return f()\nf()", "runtime", "RecursionError", "maximum recursion depth", 2, 12},
	}
	globals := json.RawMessage(`{"city": "Paris"}`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.ExecutePython(context.Background(), PythonRequest{Code: tc.code, Globals: globals})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != sandbox.StatusError || res.Error == nil {
				t.Fatalf("status %s error %+v, want an error", res.Status, res.Error)
			}
			got := res.Error
			if got.Type != tc.typ || got.Name != tc.errName || !strings.Contains(got.Message, tc.msg) || got.Line != tc.line || got.Column != tc.column {
				t.Errorf("error %s %s %q at %d:%d; want %s %s containing %q at %d:%d", got.Type, got.Name, got.Message, got.Line, got.Column, tc.typ, tc.errName, tc.msg, tc.line, tc.column)
			}
			if strings.Contains(got.Stack, ".conductor") || strings.Contains(got.Stack, "run.py") {
				t.Errorf("stack shows the runner's frames:\n%s", got.Stack)
			}
			if res.ExitCode == nil || *res.ExitCode != 1 {
				t.Errorf("exit code %v, want 1", res.ExitCode)
			}
		})
	}
}

// TestPythonRefusals: requests refused before any sandbox, each naming what was wrong.
func TestPythonRefusals(t *testing.T) {
	e := newCodeEngine(t)
	tests := []struct {
		name string
		req  PythonRequest
		want string
	}{
		{"empty code", PythonRequest{}, "python_code is empty"},
		{"globals not an object", PythonRequest{Code: "1", Globals: json.RawMessage(`[1]`)}, "globals must be a JSON object"},
		{"global not an identifier", PythonRequest{Code: "1", Globals: json.RawMessage(`{"a-b": 1}`)}, `global "a-b"`},
		{"dunder global", PythonRequest{Code: "1", Globals: json.RawMessage(`{"__builtins__": 1}`)}, `global "__builtins__"`},
		{"invalid UTF-8", PythonRequest{Code: "\xff"}, "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ExecutePython(context.Background(), tc.req)
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidRequest naming %q", err, tc.want)
			}
		})
	}
}
