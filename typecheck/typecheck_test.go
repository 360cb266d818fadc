package typecheck_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/typecheck"
)

// demoDecls is a small stand-in for the upstreams' declarations (package typegen's).
const demoDecls = `declare const servers: {
  demo: {
    /** Adds two numbers. */
    add(args: { a: number; b: number }): Promise<{ sum: number }>;
    echo(args: { message: string; upper?: boolean }): Promise<string>;
  };
  "my-files": { read_file(args: { path: string }): Promise<string> };
};
`

// Dir is the checkout's TypeScript directory (make build), or the test is Unavailable.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(testenv.RepoRoot(), ".build", "typescript")
	if err := typecheck.CheckDir(dir); err != nil {
		testenv.Unavailable(tb, "%v", err)
	}
	return dir
}

// NewChecker returns a checker in a real sandbox, closed at cleanup.
func NewChecker(tb testing.TB, mutate func(*typecheck.Options)) *typecheck.Checker {
	tb.Helper()
	dir := Dir(tb)
	r := sandboxtest.RunnerWithRoot(tb, func(o *rootfs.Options) {
		o.MountPoints = append(o.MountPoints, config.TypeScriptDir)
	}, func(o *sandbox.Options) { *o = typecheck.RunnerOptions(*o, dir) })
	o := typecheck.Options{Runner: r, MCPFactory: true, StartTimeout: testenv.Scale(2 * time.Minute), Timeout: testenv.Scale(time.Minute)}
	if mutate != nil {
		mutate(&o)
	}
	c := typecheck.New(o)
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestCheck(t *testing.T) {
	c := NewChecker(t, nil)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	type diag struct {
		line, col, code int
		has             string
	}
	for _, tc := range []struct {
		name, code string
		want       []diag
	}{
		{"correct, last expression", "const r = await servers.demo.add({ a: 1, b: 2 });\nr.sum + 1", nil},
		{"correct, top-level return", "const r = await servers.demo.add({ a: 1, b: 2 });\nif (r.sum > 2) return r.sum;\nreturn 0;", nil},
		{"wrong argument type", "const x = 1;\nconst r = await servers.demo.add({ a: 1, b: \"2\" });\nreturn r.sum;",
			[]diag{{2, 42, 2322, "Type 'string' is not assignable to type 'number'"}}},
		{"wrong argument type in the last expression", "await servers.demo.add({ a: true, b: 2 })",
			[]diag{{1, 26, 2322, "Type 'boolean' is not assignable to type 'number'"}}},
		{"misspelled tool", "return await servers.demo.ad({ a: 1, b: 2 });",
			[]diag{{1, 27, 2339, "Property 'ad' does not exist"}}},
		{"misspelled server", "const r = await servers.dmeo.add({ a: 1, b: 2 });",
			[]diag{{1, 25, 2339, "Property 'dmeo' does not exist"}}},
		{"missing required field", "\n\tconst r = await servers.demo.add({ a: 1 });\n\treturn r;",
			[]diag{{2, 35, 2345, "Property 'b' is missing"}}},
		{"misspelled result property", "const r = await servers.demo.add({ a: 1, b: 2 });\nr.summ",
			[]diag{{2, 3, 2551, "Property 'summ' does not exist"}}},
		{"a tool name that is not an identifier", "return await servers[\"my-files\"].read_file({ path: 1 });",
			[]diag{{1, 46, 2322, "not assignable to type 'string'"}}},
		{"after an astral character (UTF-16 columns)", "const s = \"😀\"; const n: number = s;",
			[]diag{{1, 23, 2322, "Type 'string' is not assignable to type 'number'"}}},
		{"two errors", "let a: string = 1;\nlet b: number = \"x\";",
			[]diag{{1, 5, 2322, ""}, {2, 5, 2322, ""}}},
		{"deno's APIs and web APIs", "const t = await Deno.readTextFile(\"/etc/hostname\");\nconst r = await fetch(\"http://127.0.0.1:1/\");\nreturn [t.length, r.status, new URL(\"http://a\").host, crypto.randomUUID()];", nil},
		{"deno's APIs misused", "await Deno.readTextFile(42);",
			[]diag{{1, 25, 2345, "not assignable to parameter of type 'string | URL'"}}},
		{"npm:, jsr: and node: imports are any", "import { z } from \"npm:zod@3\";\nimport * as path from \"node:path\";\nimport { assert } from \"jsr:@std/assert\";\nreturn [z.string(), path.join(\"a\"), assert];", nil},
		{"packages imported by bare name are any", "import { z } from \"zod\";\nimport def from \"@scope/pkg/sub\";\nreturn [z.string(), def()];", nil},
		{"a relative import is an error", "import { x } from \"./x.ts\";\nx", []diag{{1, 19, 2307, "Cannot find module './x.ts'"}}},
		{"mcpFactory", "const s = mcpFactory.load(\"demo\");\nconst v = await s.callTool(\"add\", { a: 1, b: 2 });\nreturn [v.sum, (await mcpFactory.listServers()).join()];", nil},
		{"mcpFactory misused", "mcpFactory.load(\"demo\").callTol(\"add\");",
			[]diag{{1, 25, 2551, "Did you mean 'callTool'"}}},
		{"playbooks are not declared without them", "await playbooks.run(\"x\")",
			[]diag{{1, 7, 2304, "Cannot find name 'playbooks'"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Check(ctx, tc.code, demoDecls)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d diagnostics, want %d: %v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Line != w.line || g.Column != w.col || g.Code != w.code || !strings.Contains(g.Message, w.has) {
					t.Errorf("diagnostic %d = %s; want %d:%d: TS%d containing %q", i, g, w.line, w.col, w.code, w.has)
				}
			}
		})
	}
}

// TestCheckGlobals: playbooks are declared only when the server has them, mcpFactory only
// with upstreams; broken declarations are the checker's failure, not the user's type error.
func TestCheckGlobals(t *testing.T) {
	c := NewChecker(t, func(o *typecheck.Options) {
		o.MCPFactory, o.Playbooks = false, true
		o.Declarations = func(context.Context) (string, error) { return "declare const servers: {", nil }
	})
	ctx := context.Background()
	for _, tc := range []struct {
		name, code string
		wantCode   int // 0: none
	}{
		{"playbooks", "const r = await playbooks.run(\"sum\", { xs: [1, 2] });\nconst l = await playbooks.list();\nreturn [r, l[0].name];", 0},
		{"playbooks misused", "await playbooks.run(42)", 2345},
		{"no mcpFactory without upstreams", "mcpFactory.load(\"x\")", 2304},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Check(ctx, tc.code, "")
			if err != nil {
				t.Fatal(err)
			}
			if (tc.wantCode == 0) != (len(got) == 0) || (len(got) > 0 && got[0].Code != tc.wantCode) {
				t.Fatalf("got %v, want code %d", got, tc.wantCode)
			}
		})
	}
	prog := mustPrepare(t, "1")
	if _, err := c.CheckProgram(ctx, prog, nil); !errors.Is(err, typecheck.ErrChecker) || !strings.Contains(err.Error(), "declarations do not parse") {
		t.Fatalf("broken declarations: err = %v, want ErrChecker naming them", err)
	}
	// The checker survives that: the next check works.
	if got, err := c.Check(ctx, "const n: number = 1; n", ""); err != nil || len(got) != 0 {
		t.Fatalf("after broken declarations: %v %v", got, err)
	}
}

// TestCheckerRestarts: the checker is replaced after MaxChecks checks and after it dies, and
// a check it cannot answer fails with ErrChecker instead of passing.
func TestCheckerRestarts(t *testing.T) {
	c := NewChecker(t, func(o *typecheck.Options) { o.MaxChecks = 2 })
	ctx := context.Background()
	for i := range 5 {
		got, err := c.Check(ctx, "const n: number = \"x\";", "")
		if err != nil || len(got) != 1 {
			t.Fatalf("check %d: %v %v", i, got, err)
		}
	}
	// A check that overruns the timeout: a type that takes the compiler long to check.
	slow := NewChecker(t, func(o *typecheck.Options) { o.Timeout = 50 * time.Millisecond })
	if err := slow.Start(ctx); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("type T0 = [0];\n", 1)
	for i := 1; i < 4000; i++ {
		big += "type T" + itoa(i) + " = [T" + itoa(i-1) + ", T" + itoa(i-1) + "] | string;\n"
	}
	big += "const x: T3999 = 1;"
	if _, err := slow.Check(ctx, big, ""); !errors.Is(err, typecheck.ErrChecker) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("overrun: err = %v, want ErrChecker", err)
	}
}
