package program

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sitter "github.com/smacker/go-tree-sitter"
)

// imp is an expected import: specifier, position, flags ("d" dynamic, "n"
// non-literal, "t" type-only, "r" require).
type imp struct {
	spec      string
	line, col int
	flags     string
}

func (i imp) String() string { return fmt.Sprintf("%q@%d:%d[%s]", i.spec, i.line, i.col, i.flags) }

func gotImports(p *Program) []imp {
	var out []imp
	for _, i := range p.Imports {
		f := ""
		for _, x := range []struct {
			on bool
			c  string
		}{{i.Dynamic, "d"}, {i.NonLiteral, "n"}, {i.TypeOnly, "t"}, {i.Require, "r"}} {
			if x.on {
				f += x.c
			}
		}
		out = append(out, imp{i.Specifier, i.Line, i.Column, f})
	}
	return out
}

func TestImports(t *testing.T) {
	tests := []struct {
		name string
		code string
		want []imp
	}{
		{"named", `import { z } from "npm:zod@^3";`, []imp{{"npm:zod@^3", 1, 19, ""}}},
		{"default and namespace", "import a from 'jsr:@std/path';\nimport * as b from \"./b.ts\";", []imp{{"jsr:@std/path", 1, 15, ""}, {"./b.ts", 2, 20, ""}}},
		{"side effect", `import "https://example.com/x.ts";`, []imp{{"https://example.com/x.ts", 1, 8, ""}}},
		{"attributes", `import data from "./d.json" with { type: "json" };`, []imp{{"./d.json", 1, 18, ""}}},
		{"export star", `export * from "./a.ts";`, []imp{{"./a.ts", 1, 15, ""}}},
		{"export star as", `export * as ns from "./a.ts";`, []imp{{"./a.ts", 1, 21, ""}}},
		{"export named from", `export { a, b as c } from "npm:x";`, []imp{{"npm:x", 1, 27, ""}}},
		{"import type", `import type { T } from "./t.ts";`, []imp{{"./t.ts", 1, 24, "t"}}},
		{"export type from", `export type { T } from "./t.ts";`, []imp{{"./t.ts", 1, 24, "t"}}},
		{"inline type is not type-only", `import { type T } from "./t.ts";`, []imp{{"./t.ts", 1, 24, ""}}},
		{"default named type", `import type from "./t.ts";`, []imp{{"./t.ts", 1, 18, ""}}},
		{"require", `import fs = require("node:fs");`, []imp{{"node:fs", 1, 21, "r"}}},
		{"dynamic", `const m = await import("npm:a");`, []imp{{"npm:a", 1, 24, "d"}}},
		{"dynamic template", "await import(`npm:b`);", []imp{{"npm:b", 1, 14, "d"}}},
		{"dynamic template with substitution", "const v = 1;\nawait import(`npm:c@${v}`);", []imp{{"", 2, 14, "dn"}}},
		{"dynamic concatenation", `import("npm:" + name);`, []imp{{"", 1, 8, "dn"}}},
		{"dynamic identifier", `const s = "npm:d"; import(s);`, []imp{{"", 1, 27, "dn"}}},
		{"dynamic with options", `import("./x.json", { with: { type: "json" } });`, []imp{{"./x.json", 1, 8, "d"}}},
		{"dynamic no argument", `import();`, []imp{{"", 1, 1, "dn"}}},
		{"dynamic nested", "function f() {\n  return () => import('./lazy.ts');\n}", []imp{{"./lazy.ts", 2, 23, "d"}}},
		{"typeof import", `type M = typeof import("./m.ts");`, []imp{{"./m.ts", 1, 24, "dt"}}},
		{"import type annotation", `let u: import("./u.ts").U;`, []imp{{"./u.ts", 1, 15, "dt"}}},
		{"type argument", `const m = new Map<string, typeof import("./g.ts")>();`, []imp{{"./g.ts", 1, 41, "dt"}}},
		// The grammar reads f<…>() as comparisons here: not marked type-only (safe).
		{"ambiguous type argument", `f<typeof import("./g.ts")>();`, []imp{{"./g.ts", 1, 17, "d"}}},
		{"escapes decoded", `import("npm:\u0065vil"); import '\x2e/a.ts';`, []imp{{"npm:evil", 1, 8, "d"}, {"./a.ts", 1, 33, ""}}},
		{"inside ambient module", "declare module \"m\" {\n  import x from \"npm:y\";\n}", []imp{{"npm:y", 2, 17, ""}}},
		{"crlf", "const a = 1;\r\nimport b from \"./b.ts\";\r\nawait import(\"./c.ts\");", []imp{{"./b.ts", 2, 15, ""}, {"./c.ts", 3, 14, "d"}}},
		{"lone cr", "const a = 1;\rimport(\"./c.ts\");", []imp{{"./c.ts", 2, 8, "d"}}},
		{"utf16 columns", `const s = "é😀"; await import("./e.ts");`, []imp{{"./e.ts", 1, 31, "d"}}},
		{"bom", "\uFEFFimport a from \"./a.ts\";", []imp{{"./a.ts", 1, 15, ""}}},
		{"with top-level return", "import a from \"./a.ts\";\nif (a) return 1;\nimport b from \"./b.ts\";", []imp{{"./a.ts", 1, 15, ""}, {"./b.ts", 3, 15, ""}}},
		// Text that only looks like an import.
		{"in string", `const s = "import x from 'npm:no'; import('npm:no2')";`, nil},
		{"in line comment", "// import('npm:no')\nconst a = 1; // import x from \"npm:no\"", nil},
		{"in block comment", "/* import(\"npm:no\")\n import x from 'npm:no' */", nil},
		{"in jsdoc", "/**\n * @example import(\"npm:no\")\n */\nfunction f() {}", nil},
		{"in template text", "const t = `import(\"npm:no\") ${1} import x from 'npm:no'`;", nil},
		{"in regex", `const r = /import\("npm:no"\)/;`, nil},
		{"import.meta", `console.log(import.meta.url);`, nil},
		{"method named import", `obj.import("npm:no"); const o = { import(x: string) { return x } };`, nil},
		{"in string in template substitution", "`${\"import('npm:no')\"}`;", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(tt.code)
			if err != nil {
				t.Fatal(err)
			}
			got := gotImports(p)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("imports = %v\nwant      %v", got, tt.want)
			}
			checkMapping(t, tt.code, p)
		})
	}
}

func TestResultKinds(t *testing.T) {
	tests := []struct {
		name string
		code string
		want ResultKind
	}{
		{"empty", "", ResultNone},
		{"whitespace", " \n\t\n", ResultNone},
		{"only comments", "// a\n/* b */\n/** c */", ResultNone},
		{"expression", "1 + 1", ResultLastExpression},
		{"expression with semicolons and comments", "x; // c\n/* d */ ;;", ResultLastExpression},
		{"object in parens", "({ a: 1 })", ResultLastExpression},
		{"block with label", "{ a: 1 }", ResultNone},
		{"empty block", "{}", ResultNone},
		{"block then member", "{ a: 1 }.a", ResultNone},
		{"function expression statement", "function () {}()", ResultNone},
		{"let bracket", "let\n[a] = [1]", ResultNone},
		{"async arrow", "async () => 1", ResultLastExpression},
		{"namespace", "namespace N { export const a = 1 }", ResultNone},
		{"module", "module M { }", ResultNone},
		{"declaration", "const x = 1", ResultNone},
		{"function declaration", "function f() {}", ResultNone},
		{"class declaration", "class A {}", ResultNone},
		{"if", "if (x) { 1 }", ResultNone},
		{"loop", "for (;;) { break }", ResultNone},
		{"try", "try { 1 } catch {}", ResultNone},
		{"expression then interface", "x * 2\ninterface I {}\ntype T = 1;", ResultLastExpression},
		{"expression then import", "x * 2\nimport a from './a.ts';", ResultLastExpression},
		{"return", "return 1", ResultReturn},
		{"return nested", "if (a) { for (;;) { switch (b) { case 1: try { return 1 } finally {} } } }", ResultReturn},
		{"return in label", "l: { return 1 }", ResultReturn},
		{"return only in function", "function f() { return 1 }\nf()", ResultLastExpression},
		{"return only in text", "const s = \"return 1\"; // return 2\n/* return 3 */ const t = `return ${\"}\"}`;\nconst r = /return/;\ns", ResultLastExpression},
		{"return only in function in block", "if (x) {\n  function f() { return 1 }\n  const g = function () { return 2 };\n}", ResultNone},
		{"return in arrow in top-level loop", "for (const x of xs) { xs.map((v) => { return v }) }", ResultNone},
		{"return in class in top-level block", "{ class A { m() { return 1 } static { } } }", ResultNone},
		{"return only in arrow", "const f = () => { return 1 };", ResultNone},
		{"return only in method", "class A { m() { return 1 } get g() { return 2 } static { } }", ResultNone},
		{"return only in object method", "const o = { m() { return 1 }, get g() { return 2 } };", ResultNone},
		{"return only in generator", "function* g() { return 1 }", ResultNone},
		{"return only in namespace function", "namespace N { function f() { return 1 } }", ResultNone},
		{"export default", "export default 1", ResultExportDefault},
		{"export as default", "const v = 1;\nexport { v as default };\nv", ResultExportDefault},
		{"re-export default", "export { default } from './x.ts';", ResultExportDefault},
		{"export default interface", "export default interface I {}\n1", ResultLastExpression},
		{"export const and expression", "export const a = 1;\na + 1", ResultLastExpression},
		{"syntax error", "let y = ;", ResultNone},
		{"missing token", "const x = (1", ResultNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(tt.code)
			if err != nil {
				t.Fatal(err)
			}
			if p.Result != tt.want {
				t.Errorf("Result = %v, want %v\nmodule:\n%s", p.Result, tt.want, p.Module)
			}
			checkMapping(t, tt.code, p)
		})
	}
}

func TestModule(t *testing.T) {
	tests := []struct {
		name, code, want string
	}{
		{"last expression", "const a = 1;\na + 1; // sum\n", "const a = 1;\nexport default await (a + 1); // sum\n"},
		{"sequence", "a, b", "export default await (a, b)"},
		{"unchanged declaration", "const a = 1;", "const a = 1;"},
		{"unchanged syntax error", "return 1;\nlet y = ;", "return 1;\nlet y = ;"},
		{"return", "const d = [1];\nif (!d.length) return 0;\nd.map(x => x)\n",
			"export default await (async () => {const d = [1];\nif (!d.length) return 0;\nreturn (d.map(x => x))\n\n})();"},
		{"return with leading imports and hashbang", "#!/usr/bin/env -S deno run\nimport a from \"./a.ts\";\n// note\nreturn a;",
			"#!/usr/bin/env -S deno run\nimport a from \"./a.ts\";\n// note\nexport default await (async () => {return a;\n})();"},
		{"return with later import moved", "return b;\nimport b from \"./b.ts\"; export {};\n",
			"export default await (async () => {return b;\n" + strings.Repeat(" ", 34) + "\n\n})();\nimport b from \"./b.ts\";\nexport {};"},
		{"blank keeps utf16 width", "return 1;\nimport { é as e } from \"./😀.ts\"; e",
			"export default await (async () => {return 1;\n                                  return (e)\n})();\nimport { é as e } from \"./😀.ts\";"},
		{"return then expression ends in comment", "if (x) return 1\nx // end", "export default await (async () => {if (x) return 1\nreturn (x) // end\n})();"},
		{"export default untouched", "export default 1;\n2", "export default 1;\n2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(tt.code)
			if err != nil {
				t.Fatal(err)
			}
			if p.Module != tt.want {
				t.Errorf("module:\n%q\nwant:\n%q", p.Module, tt.want)
			}
			checkMapping(t, tt.code, p)
		})
	}
}

func TestPrepareErrors(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		want      error
		line, col int
	}{
		{"invalid utf-8", "const a = 1;\nconst é = \"\xff\";", ErrInvalidUTF8, 2, 12},
		{"return and export const", "export const a = 1;\nreturn a;", ErrReturnWithExport, 1, 1},
		{"return and export default", "if (x) return 1;\nexport default 2;", ErrReturnWithExport, 2, 1},
		{"return and export local", "const a = 1;\nreturn a;\nexport { a };", ErrReturnWithExport, 3, 1},
		{"return and import alias", "namespace N { export const b = 1 }\nimport B = N.b;\nreturn B;", ErrReturnWithImportAlias, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(tt.code)
			var pe *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if pe.Line != tt.line || pe.Column != tt.col {
				t.Errorf("position %d:%d, want %d:%d (%v)", pe.Line, pe.Column, tt.line, tt.col, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("main.ts:%d:%d", tt.line, tt.col)) {
				t.Errorf("message %q lacks the position", err)
			}
		})
	}
	// Allowed with a top-level return: what can stay at module level.
	for _, code := range []string{
		"export {};\nreturn 1",
		"export * from \"./a.ts\";\nreturn 1",
		"export type { T } from \"./a.ts\";\nexport interface I {}\nexport type U = 1;\nexport declare const d: number;\nreturn 1",
		"import x = require(\"./a\");\nreturn 1",
	} {
		p, err := Prepare(code)
		if err != nil || p.Result != ResultReturn {
			t.Errorf("Prepare(%q) = %v, %v; want a return result", code, p, err)
		}
	}
}

func TestParseFailedKeepsCode(t *testing.T) {
	for _, code := range []string{
		"let y = ;",
		"return 1;\nconst = 2",
		"const x = {",
		"interface I<in out T> { x: T }\nreturn 1", // grammar gap: runs unchanged
		"a\u2028b",
		"x\x00y",
	} {
		p, err := Prepare(code)
		if err != nil {
			t.Fatalf("Prepare(%q): %v", code, err)
		}
		if !p.ParseFailed || p.Module != code || p.Result != ResultNone {
			t.Errorf("Prepare(%q) = parseFailed %v result %v module %q", code, p.ParseFailed, p.Result, p.Module)
		}
		if l, c := p.MapPosition(1, 3); l != 1 || c != 3 {
			t.Errorf("unchanged code maps 1:3 to %d:%d", l, c)
		}
	}
	// Imports are still recovered around an error.
	p, _ := Prepare("import a from \"./a.ts\";\nlet y = ;\nawait import(\"./b.ts\");")
	if got := fmt.Sprint(gotImports(p)); got != `["./a.ts"@1:15[] "./b.ts"@3:14[d]]` {
		t.Errorf("imports around an error: %s", got)
	}
}

func TestDecodeLiteral(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{`"abc"`, "abc", true},
		{`'a\'b'`, "a'b", true},
		{"`t`", "t", true},
		{`"\x41\u0042\u{43}\u{1F600}"`, "ABC😀", true},
		{`"\uD83D\uDE00"`, "😀", true},
		{`"\uD83D"`, "\uFFFD", true},
		{`"\n\t\r\b\f\v\0"`, "\n\t\r\b\f\v\x00", true},
		{"\"a\\\nb\\\r\nc\"", "abc", true},
		{`"\q"`, "q", true},
		{"`a\r\nb`", "a\nb", true},
		{`"\x4"`, "", false},
		{`"\u{110000}"`, "", false},
		{`"abc`, "", false},
		{`abc`, "", false},
	}
	for _, tt := range tests {
		got, ok := decodeLiteral(tt.raw)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeLiteral(%q) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMapPosition(t *testing.T) {
	code := "const s = \"é😀\";\nif (!s) return 0;\ns.length"
	p, err := Prepare(code)
	if err != nil {
		t.Fatal(err)
	}
	// Line 1 starts with the wrapper; line 3 with "return (".
	tests := []struct{ ml, mc, ul, uc int }{
		{1, 1 + len(wrapOpen), 1, 1},            // first character of the code
		{1, 1 + len(wrapOpen) + 14, 1, 15},      // '"' after the emoji (UTF-16 columns)
		{1, 1, 1, 1},                            // inside the wrapper: its anchor
		{2, 9, 2, 9},                            // a line without edits
		{3, 1 + len(returnOpen), 3, 1},          // "s.length"
		{3, 1 + len(returnOpen) + 8, 3, 9},      // just after it: the inserted ")"
		{3, 1 + len(returnOpen) + 9 + 4, 3, 13}, // past the end of the line: columns carried over
		{4, 1, 3, 9},                            // the closing wrapper: end of the code
		{9, 9, 9, 9},                            // no such line: unchanged
		{0, 5, 0, 5},                            // invalid: unchanged
	}
	for _, tt := range tests {
		if l, c := p.MapPosition(tt.ml, tt.mc); l != tt.ul || c != tt.uc {
			t.Errorf("MapPosition(%d, %d) = %d, %d; want %d, %d", tt.ml, tt.mc, l, c, tt.ul, tt.uc)
		}
	}
	checkMapping(t, code, p)
}

func TestMapText(t *testing.T) {
	p, err := Prepare("function f() {\n  throw new Error(\"x\");\n}\nif (1) return f();")
	if err != nil {
		t.Fatal(err)
	}
	last := p.modIdx.lines()
	stack := "Error: x\n    at f (main.ts:2:9)\n    at main.ts:4:15" +
		"\n    at main.ts:" + fmt.Sprint(last) + ":4\n    at async main.ts:1:16\n    at other/main.ts:1:40 and xmain.ts:1:40, main.ts:1"
	want := "Error: x\n    at f (main.ts:2:9)\n    at main.ts:4:15\n    at other/main.ts:1:40 and xmain.ts:1:40, main.ts:1"
	if got := p.MapText(stack); got != want {
		t.Errorf("MapText:\n%s\nwant:\n%s", got, want)
	}
	// Without a rewrite MapText is the identity.
	q, _ := Prepare("const a = 1;")
	if s := "at main.ts:1:40\n    at main.ts:9:9"; q.MapText(s) != s {
		t.Errorf("identity MapText changed %q", s)
	}
}

func TestPrepareLimits(t *testing.T) {
	big := strings.Repeat("const a = [1, 2, 3].map((x) => x * 2);\n", 1<<20/40)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := PrepareContext(ctx, big); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second)) // already past: no sleep
	defer cancel()
	if _, err := PrepareContext(ctx, big); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: err = %v", err)
	}
	_, err := Prepare(strings.Repeat(" ", MaxCodeBytes+1))
	var pe *Error
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) {
		t.Errorf("too large: err = %v", err)
	}
	// The parser's time limit turns into ErrTooComplex.
	g, err := grammar()
	if err != nil {
		t.Fatal(err)
	}
	parser := sitter.NewParser()
	defer parser.Close()
	parser.SetLanguage(g.lang)
	parser.SetOperationLimit(1000) // 1 ms
	if _, err := parser.ParseCtx(context.Background(), nil, []byte(strings.Repeat("@#) ]}=> <T>", 100000))); !errors.Is(err, sitter.ErrOperationLimit) {
		t.Errorf("operation limit: err = %v", err)
	}
}

// TestErrorRecoveryIsLinear: queries never run over error-recovery nodes,
// on which tree-sitter's query cursor is quadratic (this input took 90 s).
func TestErrorRecoveryIsLinear(t *testing.T) {
	n := 100000
	code := strings.Repeat("(", n) + strings.Repeat("{", n) + "import('./x.ts')"
	start := time.Now()
	p, err := Prepare(code)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Prepare took %v", el)
	}
	// The recovery swallows the import(…) into the error here: imports of
	// code that does not parse are best effort.
	if !p.ParseFailed {
		t.Errorf("parsed")
	}
}

// TestConcurrent: Prepare and the Program methods are safe to call from
// many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	codes := []string{
		"import { join } from \"node:path\";\nif (!join) return 1;\nreturn await import(\"./x.ts\");",
		"const a = 1;\na + 1",
		"let y = ;",
		"export default 1",
	}
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for j := range 20 {
				code := codes[(i+j)%len(codes)]
				p, perr := Prepare(code)
				if perr != nil {
					err = perr
					break
				}
				p.MapPosition(2, 3)
				p.MapText("at main.ts:1:40")
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
