package program

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// valueCase is one row of the end-to-end table in testdata/values.json: the
// code, the result deno computes for it as JSON ("<undefined>" for undefined), the
// result kind, or the error it must fail with. The engine's tests run the same
// table through real sandboxes.
type valueCase struct {
	Name string `json:"name"`
	Code string `json:"code"`
	Want string `json:"want"`
	Kind string `json:"kind"`
	Err  string `json:"err"`
}

// loadValueCases reads the shared table.
func loadValueCases(tb testing.TB) []valueCase {
	tb.Helper()
	b, err := os.ReadFile("testdata/values.json")
	if err != nil {
		tb.Fatal(err)
	}
	var cases []valueCase
	if err := json.Unmarshal(b, &cases); err != nil {
		tb.Fatalf("testdata/values.json: %v", err)
	}
	return cases
}

func TestDenoValues(t *testing.T) {
	valueCases := loadValueCases(t)
	var modules []string
	for _, c := range valueCases {
		p, err := Prepare(c.Code)
		if err != nil {
			t.Fatalf("%s: Prepare: %v", c.Name, err)
		}
		if p.Result.String() != c.Kind {
			t.Errorf("%s: Result = %v, want %v\nmodule:\n%s", c.Name, p.Result, c.Kind, p.Module)
		}
		checkMapping(t, c.Code, p)
		modules = append(modules, p.Module)
	}
	results := runModules(t, modules)
	for i, c := range valueCases {
		r := results[i]
		switch {
		case c.Err != "":
			if r.OK || !strings.Contains(r.Err, c.Err) {
				t.Errorf("%s: got ok=%v v=%s err=%q, want an error containing %q", c.Name, r.OK, r.V, r.Err, c.Err)
			}
		case !r.OK:
			t.Errorf("%s: failed: %s\nmodule:\n%s", c.Name, r.Err, modules[i])
		default:
			var got, want bytes.Buffer
			if err := json.Compact(&want, []byte(c.Want)); err != nil {
				t.Fatalf("%s: bad want: %v", c.Name, err)
			}
			_ = json.Compact(&got, r.V)
			if got.String() != want.String() {
				t.Errorf("%s: value %s, want %s\nmodule:\n%s", c.Name, got.String(), want.String(), modules[i])
			}
		}
	}
	t.Logf("%d end-to-end value cases", len(valueCases))
}

// errorCases throw at a known position. The expected position is the first
// occurrence of marker in the code, or, with truth, where deno itself reports
// the error when it runs the code unchanged.
var errorCases = []struct {
	name   string
	code   string
	marker string
	truth  bool
	frames []string // if set: every "main.ts" line of the mapped stack
}{
	{name: "no rewrite", code: "const a = 1;\n\nthrow new Error(\"x\")", marker: "new Error"},
	{name: "after a return rewrite", code: "const a = 1;\nif (a > 5) return a;\nthrow new Error(\"boom\");", marker: "new Error"},
	{name: "line 1 column 1 under the wrapper", code: "undefinedFn();\nreturn 1;", marker: "undefinedFn"},
	{name: "same line as the captured expression", code: "const o: any = {};\no.fn()", truth: true},
	{name: "same line as the captured expression after non-ascii", code: "const s: any = \"é😀\"; s.nope.x", truth: true},
	{name: "inside a multi-line last expression", code: "[1, 2].map((x) => {\n  if (x === 2) throw new Error(\"two\");\n  return x;\n})", truth: true},
	{name: "non-ascii before the error under the wrapper", code: "const s = \"é😀\"; if (!s) return 0; s + missing;", marker: "missing"},
	{name: "with imports before it", code: "import { join } from \"node:path\";\n\nreturn nope(join(\"a\"));", marker: "return nope"}, // V8 reports a failed call in a return at the return
	{name: "after a moved import", code: "if (!globalThis) return 0;\nimport { join } from \"node:path\";\nconst x = join(\"a\", \"b\");\nthrow new Error(x);", marker: "new Error"},
	{name: "returned expression on the error line", code: "const list = [1];\nif (list) return list.map((v) => { throw new TypeError(\"in map \" + v) });", marker: "new TypeError"},
	{name: "crlf with return", code: "const a = 1;\r\nif (!a) return;\r\n\r\nthrow new Error(\"crlf\");", marker: "new Error"},
	{name: "redeclared let under the wrapper (V8 early error)", code: "let a = 1;\nlet a = 2;\nreturn a;", marker: "a = 2"},
	{name: "redeclared after emoji on line 1 under the wrapper", code: "let s = \"😀\"; let s = 2;\nreturn s;", marker: "s = 2"},
	{name: "moved import that cannot load", code: "if (!globalThis) return;\nimport \"./missing.ts\";\nreturn 1;", marker: "\"./missing.ts\""},
	{name: "long code (abbreviated URL)", code: strings.Repeat("// padding padding padding padding\n", 8) + "const v = 1;\nif (!v) return;\nthrow new RangeError(\"long\");", marker: "new RangeError"},
	{
		name:   "stack frames, wrapper frame removed",
		code:   "function f() {\n  throw new Error(\"x\");\n}\nconst r = f();\nreturn r;",
		marker: "new Error",
		frames: []string{"    at f (main.ts:2:9)", "    at main.ts:4:11"},
	},
	{
		name:   "async stack frames, wrapper frame removed",
		code:   "async function f() {\n  await 0;\n  throw new Error(\"x\");\n}\nawait f();\nreturn 1;",
		marker: "new Error",
		frames: []string{"    at f (main.ts:3:9)", "    at async main.ts:5:1"},
	},
	{name: "syntax error, code unchanged", code: "const x = 1;\nlet y = ;", marker: "; ", truth: true},
	{name: "syntax error in long code", code: strings.Repeat("// padding padding padding padding\n", 8) + "return 1;\nlet y = ;", truth: true},
}

func TestDenoErrorPositions(t *testing.T) {
	var modules []string
	progs := make([]*Program, len(errorCases))
	moduleAt := make([]int, len(errorCases))
	truthAt := map[int]int{}
	for i, c := range errorCases {
		p, err := Prepare(c.code)
		if err != nil {
			t.Fatalf("%s: Prepare: %v", c.name, err)
		}
		checkMapping(t, c.code, p)
		progs[i] = p
		moduleAt[i] = len(modules)
		modules = append(modules, p.Module)
		if c.truth {
			truthAt[i] = len(modules)
			modules = append(modules, c.code)
		}
	}
	results := runEach(t, modules)
	for i, c := range errorCases {
		p := progs[i]
		r := results[moduleAt[i]]
		if r.OK {
			t.Errorf("%s: no error (value %s)", c.name, r.V)
			continue
		}
		mapped := p.MapText(r.Err)
		var want string
		if j, ok := truthAt[i]; ok {
			want = firstLocation(results[j].Err)
			if want == "" {
				t.Errorf("%s: deno reported no position running the code itself: %q", c.name, results[j].Err)
				continue
			}
		} else {
			l, col := posOf(t, c.code, c.marker)
			want = fmt.Sprintf("main.ts:%d:%d", l, col)
		}
		if os.Getenv("SHOW") != "" {
			t.Logf("%s:\n%s\n=> %s", c.name, r.Err, mapped)
		}
		if got := firstLocation(mapped); got != want {
			t.Errorf("%s: first position %q, want %q\ndeno said:\n%s\nmapped:\n%s\nmodule:\n%s", c.name, got, want, r.Err, mapped, p.Module)
		}
		if c.frames != nil {
			var frames []string
			for _, l := range strings.Split(mapped, "\n") {
				if strings.Contains(l, "main.ts:") && strings.HasPrefix(strings.TrimSpace(l), "at ") {
					frames = append(frames, l)
				}
			}
			if strings.Join(frames, "\n") != strings.Join(c.frames, "\n") {
				t.Errorf("%s: frames:\n%s\nwant:\n%s\ndeno said:\n%s", c.name, strings.Join(frames, "\n"), strings.Join(c.frames, "\n"), r.Err)
			}
		}
	}
	t.Logf("%d error-position cases", len(errorCases))
}
