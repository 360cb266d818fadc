package program

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// undef is how the harness reports undefined.
const undef = `"<undefined>"`

// valueCases is the end-to-end table: the code, the result deno computes
// from the prepared module (JSON), and the result kind. err, if set, is text
// the failure must contain instead.
var valueCases = []struct {
	name string
	code string
	want string
	kind ResultKind
	err  string
}{
	// Last expression.
	{"expression", "1 + 1", `2`, ResultLastExpression, ""},
	{"multi-line expression", "[1,\n  2,\n  3]\n  .map((x) => x * 2)", `[2,4,6]`, ResultLastExpression, ""},
	{"top-level await", "const v = await Promise.resolve(5);\nv * 2", `10`, ResultLastExpression, ""},
	{"await expression last", "await new Promise((r) => setTimeout(() => r(\"t\"), 5))", `"t"`, ResultLastExpression, ""},
	{"object in parens", "({ a: 1, b: [2] })", `{"a":1,"b":[2]}`, ResultLastExpression, ""},
	{"block with label is not an object", "{ a: 1 }", undef, ResultNone, ""},
	{"call", "function f() {\n  return 7;\n}\nf()", `7`, ResultLastExpression, ""},
	{"template literal", "const n = 3;\n`n=${n}`", `"n=3"`, ResultLastExpression, ""},
	{"template with braces", "const o = { k: 1 };\n`${JSON.stringify({ x: o.k })} } { ${\"}\"}`", `"{\"x\":1} } { }"`, ResultLastExpression, ""},
	{"as", "const x: unknown = 4;\nx as number", `4`, ResultLastExpression, ""},
	{"satisfies", "({ a: 1 }) satisfies Record<string, number>", `{"a":1}`, ResultLastExpression, ""},
	{"non-null", "const m = new Map([[\"k\", 9]]);\nm.get(\"k\")!", `9`, ResultLastExpression, ""},
	{"angle-bracket assertion", "const u: unknown = \"s\";\n(<string>u).length", `1`, ResultLastExpression, ""},
	{"trailing comments and semicolons", "const a = 2;\na * 3; // done\n/* end */ ;;\n// really", `6`, ResultLastExpression, ""},
	{"comments everywhere", "/** JSDoc for a */\nconst a /* x */ = /* y */ 1; // z\n/* before */ a /* between */ + /* and */ 1 // after", `2`, ResultLastExpression, ""},
	{"strings with statement text", "const s = \"a;b}c return // d\";\ns + '; } return /*'", `"a;b}c return // d; } return /*"`, ResultLastExpression, ""},
	{"regex literal", "const re = /a\\/b[/]c/g;\n\"a/b/c\".replace(re, \"x\")", `"x"`, ResultLastExpression, ""},
	{"sequence expression", "let i = 0;\ni++, i++, i", `2`, ResultLastExpression, ""},
	{"promise result awaited", "Promise.resolve(42)", `42`, ResultLastExpression, ""},
	{"async iife", "(async () => 8)()", `8`, ResultLastExpression, ""},
	{"class and new", "class P {\n  constructor(public n: number) {}\n}\nnew P(3).n", `3`, ResultLastExpression, ""},
	{"ts types interfaces generics enums", "interface Pt { x: number }\nenum Color { Red, Green }\ntype Id<T> = (v: T) => T;\nconst id: Id<number> = (v) => v;\nconst p: Pt = { x: Color.Green };\nid(p.x)", `1`, ResultLastExpression, ""},
	{"generic arrow", "const f = <T,>(x: T): T => x;\nf(\"g\")", `"g"`, ResultLastExpression, ""},
	{"import node builtin", "import { join } from \"node:path\";\njoin(\"a\", \"b\")", `"a/b"`, ResultLastExpression, ""},
	{"dynamic import", "const { sep } = await import(\"node:path\");\nsep", `"/"`, ResultLastExpression, ""},
	{"import type is not loaded", "import type { X } from \"./nonexistent.ts\";\nconst v: X | number = 3;\nv", `3`, ResultLastExpression, ""},
	{"type-position import is not loaded", "let u: import(\"./nonexistent.ts\").U | null = null;\ntype Q = typeof import(\"./gone.ts\");\nu ?? 4", `4`, ResultLastExpression, ""},
	{"expression then type declarations", "const v = 5;\nv + 1\ninterface After {}\ntype T = After;", `6`, ResultLastExpression, ""},
	{"this at top level", "typeof this", `"undefined"`, ResultLastExpression, ""},
	{"semicolon-less", "const a = 1\nconst b = a + 1\nb", `2`, ResultLastExpression, ""},
	{"semicolon-less leading bracket", "const a = [1, 2]\n;[...a, 3].length", `3`, ResultLastExpression, ""},
	{"asi hazard is a call", "const a = 1\n(a)", "", ResultNone, "Cannot access 'a' before initialization"},
	{"crlf", "const a = 1;\r\nconst b = 2;\r\na + b\r\n", `3`, ResultLastExpression, ""},
	{"unicode identifiers and emoji", "const café = \"☕\";\nconst s = \"😀 emoji\";\ncafé + s", `"☕😀 emoji"`, ResultLastExpression, ""},
	{"hashbang", "#!/usr/bin/env -S deno run\n40 + 2", `42`, ResultLastExpression, ""},
	{"export const and last expression", "export const k = 2;\nk * 21", `42`, ResultLastExpression, ""},
	// No result.
	{"declaration last", "const x = 1", undef, ResultNone, ""},
	{"function declaration last", "function f() { return 1 }", undef, ResultNone, ""},
	{"if last", "if (true) { 5 }", undef, ResultNone, ""},
	{"loop last", "for (const x of [1]) { x }", undef, ResultNone, ""},
	{"try last", "try { 1 } finally { 2 }", undef, ResultNone, ""},
	{"empty code", "", undef, ResultNone, ""},
	{"only comments", "// nothing\n/* here */", undef, ResultNone, ""},
	// Own default export.
	{"export default", "export default { own: true }", `{"own":true}`, ResultExportDefault, ""},
	{"export default promise", "export default Promise.resolve(7)", `7`, ResultExportDefault, ""},
	{"export as default", "const v = [1];\nexport { v as default };", `[1]`, ResultExportDefault, ""},
	// Top-level return.
	{"seed example", "const data = [1, 2, 3];\nif (data.length === 0) return \"empty\";\nreturn data.map(x => x * 2);", `[2,4,6]`, ResultReturn, ""},
	{"early return in if", "const x = 1;\nif (x > 0) return \"pos\";\nreturn \"neg\";", `"pos"`, ResultReturn, ""},
	{"return stops the rest", "const out: string[] = [];\nout.push(\"a\");\nif (out.length) return out;\nout.push(\"b\");\nthrow new Error(\"must not run\");", `["a"]`, ResultReturn, ""},
	{"bare return", "return;\nthrow new Error(\"must not run\");", undef, ResultReturn, ""},
	{"return in loop", "for (const n of [1, 2, 3]) {\n  if (n === 2) return n * 10;\n}\nreturn -1;", `20`, ResultReturn, ""},
	{"return in while", "let i = 0;\nwhile (true) {\n  if (++i === 3) return i;\n}", `3`, ResultReturn, ""},
	{"return in try finally", "const log: string[] = [];\ntry {\n  return log;\n} finally {\n  log.push(\"finally\");\n}", `["finally"]`, ResultReturn, ""},
	{"return in catch", "try {\n  throw new Error(\"e\");\n} catch (e) {\n  return (e as Error).message;\n}", `"e"`, ResultReturn, ""},
	{"return in switch", "switch (2) {\n  case 1: return \"one\";\n  case 2: return \"two\";\n}", `"two"`, ResultReturn, ""},
	{"return in nested blocks", "{\n  {\n    return \"deep\";\n  }\n}", `"deep"`, ResultReturn, ""},
	{"return in labeled statement", "outer: for (const a of [1, 2]) {\n  for (const b of [1, 2]) {\n    if (b === 2) continue outer;\n    if (a === 2) return [a, b];\n  }\n}", `[2,1]`, ResultReturn, ""},
	{"labeled block break", "blk: {\n  if (true) break blk;\n  return \"no\";\n}\nreturn \"yes\";", `"yes"`, ResultReturn, ""},
	{"return in for await", "for await (const v of [Promise.resolve(1)]) {\n  return v;\n}", `1`, ResultReturn, ""},
	{"returns inside functions do not count", "function f() { return 1 }\nconst g = () => { return 2 };\nclass C {\n  m() { return 3 }\n  get x() { return 4 }\n  static { }\n}\nconst o = { n() { return 5 } };\nf() + g() + new C().m() + new C().x + o.n()", `15`, ResultLastExpression, ""},
	{"return only in text", "const s = \"return 1;\"; // return 2\n/* return 3 */ const t = `return ${\"}\"}`;\ns + t", `"return 1;return }"`, ResultLastExpression, ""},
	{"returns only in nested functions of a block", "let v = 0;\nif (true) {\n  function f() { return 1 }\n  v = f() + [2].map((x) => { return x })[0];\n}\nv", `3`, ResultLastExpression, ""},
	{"function return and top-level return", "function f() { return 1 }\nreturn f() + 1;", `2`, ResultReturn, ""},
	{"no return runs: last expression", "if (false) return 1;\n2 + 3", `5`, ResultReturn, ""},
	{"no return runs: declaration last", "if (false) return 1;\nconst z = 3;", undef, ResultReturn, ""},
	{"return sequence", "return 1, 2", `2`, ResultReturn, ""},
	{"return object", "return { a: 1 }", `{"a":1}`, ResultReturn, ""},
	{"return awaited", "return await new Promise((r) => setTimeout(() => r(\"late\"), 5));", `"late"`, ResultReturn, ""},
	{"return a promise", "return Promise.resolve(\"p\");", `"p"`, ResultReturn, ""},
	{"var hoisting across return", "if (true) return typeof v;\nvar v = 1;", `"undefined"`, ResultReturn, ""},
	{"function hoisting across return", "const r = helper(2);\nif (r > 0) return r;\nfunction helper(n: number) { return n * 21 }", `42`, ResultReturn, ""},
	{"this with return", "return typeof this;", `"undefined"`, ResultReturn, ""},
	{"arguments with return (as at module level)", "return typeof arguments;", `"undefined"`, ResultReturn, ""},
	{"import.meta with return", "if (!import.meta) return null;\nreturn import.meta.url.startsWith(\"data:\");", `true`, ResultReturn, ""},
	{"ts declarations with return", "interface A { v: number }\ntype B = A[];\nenum E { X = 5 }\nnamespace N { export const k = 2 }\ndeclare const g: number;\nabstract class Base { abstract f(): number }\nfunction over(a: string): string;\nfunction over(a: any) { return a }\nconst list: B = [{ v: E.X }];\nif (list.length) return list[0].v * N.k + over(\"\").length;", `10`, ResultReturn, ""},
	{"imports with return", "import { join } from \"node:path\";\nimport type { T } from \"./nonexistent.ts\";\nif (!join) return null;\nreturn join(\"x\", \"y\");", `"x/y"`, ResultReturn, ""},
	{"import after statements with return", "const x = 1;\nif (!x) return null;\nimport { basename } from \"node:path\";\nreturn basename(\"/x/y.ts\");", `"y.ts"`, ResultReturn, ""},
	{"re-export and export {} with return", "export {};\nconst n = 1;\nexport * from \"node:path\";\nreturn n;", `1`, ResultReturn, ""},
	{"crlf with return", "const a = 1;\r\nif (a) return \"crlf\";\r\n", `"crlf"`, ResultReturn, ""},
	{"hashbang with return", "#!/usr/bin/env -S deno run\nreturn 5", `5`, ResultReturn, ""},
	{"bom with return", "\uFEFFreturn 6", `6`, ResultReturn, ""},
	{"unicode with return", "const ñ = \"😀\";\nreturn ñ + \"é\";", `"😀é"`, ResultReturn, ""},
	{"return then comment without newline", "return 9 // the end", `9`, ResultReturn, ""},
	{"using with return", "const log: string[] = [];\n{\n  using r = { [Symbol.dispose]() { log.push(\"disposed\") } };\n  if (r) return log;\n}", `["disposed"]`, ResultReturn, ""},
	// Refused or unchanged.
	{"syntax error unchanged", "return 1;\nlet y = ;", "", ResultNone, "main.ts:2:9"},
}

func TestDenoValues(t *testing.T) {
	var modules []string
	for _, c := range valueCases {
		p, err := Prepare(c.code)
		if err != nil {
			t.Fatalf("%s: Prepare: %v", c.name, err)
		}
		if p.Result != c.kind {
			t.Errorf("%s: Result = %v, want %v\nmodule:\n%s", c.name, p.Result, c.kind, p.Module)
		}
		checkMapping(t, c.code, p)
		modules = append(modules, p.Module)
	}
	results := runModules(t, modules)
	for i, c := range valueCases {
		r := results[i]
		switch {
		case c.err != "":
			if r.OK || !strings.Contains(r.Err, c.err) {
				t.Errorf("%s: got ok=%v v=%s err=%q, want an error containing %q", c.name, r.OK, r.V, r.Err, c.err)
			}
		case !r.OK:
			t.Errorf("%s: failed: %s\nmodule:\n%s", c.name, r.Err, modules[i])
		default:
			var got, want bytes.Buffer
			if err := json.Compact(&want, []byte(c.want)); err != nil {
				t.Fatalf("%s: bad want: %v", c.name, err)
			}
			_ = json.Compact(&got, r.V)
			if got.String() != want.String() {
				t.Errorf("%s: value %s, want %s\nmodule:\n%s", c.name, got.String(), want.String(), modules[i])
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
