package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/program"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/typecheck"
)

// demoDecls stand in for the upstreams' declarations (package typegen's).
const demoDecls = `declare const servers: {
  demo: { add(args: { a: number; b: number }): Promise<{ sum: number }> };
};
`

// typeCheckEngines returns an engine that checks the requests that ask and one that checks
// every request, sharing a runner whose sandboxes write to the workspace ws, and a checker
// given demoDecls (or the declarations' error declErr).
func typeCheckEngines(t *testing.T, declErr error) (onRequest, all *Engine, ws string) {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), ".build", "typescript")
	if err := typecheck.CheckDir(dir); err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	top, err := os.MkdirTemp("", "conductor-ws-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o777); err != nil {
		t.Fatal(err)
	}
	ws = top
	runs := sandboxtest.RunnerWithRoot(t, func(o *rootfs.Options) {
		o.MountPoints = []string{ws, config.TypeScriptDir}
	}, func(o *sandbox.Options) {
		o.Workspace = ws
		o.DenoFlags = []string{"--allow-read=" + ws, "--allow-write=" + ws}
	})
	checks := sandboxtest.RunnerWithRoot(t, func(o *rootfs.Options) {
		o.MountPoints = []string{ws, config.TypeScriptDir}
	}, func(o *sandbox.Options) { *o = typecheck.RunnerOptions(*o, dir) })
	c := typecheck.New(typecheck.Options{
		Runner: checks, StartTimeout: testenv.Scale(2 * time.Minute), Timeout: testenv.Scale(time.Minute),
		Declarations: func(context.Context) (string, error) { return demoDecls, declErr },
	})
	t.Cleanup(func() { c.Close() })
	o := Options{Sandboxes: runs, DefaultTimeout: 20 * time.Second, MaxTimeout: 30 * time.Second, TypeCheck: c}
	onRequest = New(o)
	t.Cleanup(onRequest.Shutdown)
	o.TypeCheckAll = true
	all = New(o)
	t.Cleanup(all.Shutdown)
	return onRequest, all, ws
}

// TestTypeCheck: code that does not type-check is refused as a "type" error at the user's
// line and column and nothing of it runs — each program writes a file in the workspace before
// the line with the error, and the file is not there — while code that type-checks runs.
func TestTypeCheck(t *testing.T) {
	onRequest, all, ws := typeCheckEngines(t, nil)
	ctx := context.Background()
	for i, tc := range []struct {
		name     string
		all      bool // the engine that checks every request
		ask      bool // Request.TypeCheck
		code     string
		globals  string // Request.Globals
		wantLine int    // 0: the code runs
		wantCol  int
		wantMsg  string
	}{
		{"wrong argument type", false, true, "const r = await servers.demo.add({ a: 1, b: \"2\" });\nreturn r.sum;", "", 2, 42, "2:42: TS2322: Type 'string' is not assignable to type 'number'"},
		{"misspelled function", false, true, "const r = await servers.demo.ad({ a: 1, b: 2 });\nr", "", 2, 30, "2:30: TS2339: Property 'ad' does not exist"},
		{"misspelled property of a result", true, false, "const r = await servers.demo.add({ a: 1, b: 2 });\nreturn r.summ;", "", 3, 10, "3:10: TS2551: Property 'summ' does not exist"},
		{"missing required field", true, false, "\tawait servers.demo.add({ a: 1 })", "", 2, 25, "2:25: TS2345"},
		{"a Deno API misused", true, true, "const t: string = await Deno.readTextFile(42);\nt", "", 2, 43, "2:43: TS2345"},
		{"false does not turn the server's checking off", true, false, "let n: number = 1;\nn = \"one\";\nn", "", 3, 1, "3:1: TS2322"},
		{"not asked: the code runs", false, false, "const n: number = \"x\" as any;\nconst s: string = 1 as unknown as string;\nlet m: number = 2; m = \"two\" as never; m", "", 0, 0, ""},
		{"globals are declared with their JSON types", false, true, "const c: string = city.name.toUpperCase();\nreturn c + days.length;", `{"city": {"name": "Oslo"}, "days": [1, 2]}`, 0, 0, ""},
		{"a global misused", true, false, "return city.nmae;", `{"city": {"name": "Oslo"}}`, 2, 13, "2:13: TS2339: Property 'nmae' does not exist"},
		{"type-checks and runs", false, true, "const x: number = 20;\nx + 1", "", 0, 0, ""},
		{"type-checks and runs with every request checked", true, false, "const xs: number[] = [1, 2];\nreturn xs.reduce((a, b) => a + b, 0);", "", 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe := filepath.Join(ws, fmt.Sprintf("probe-%d", i))
			code := fmt.Sprintf("Deno.writeTextFileSync(%q, \"ran\");\n%s", probe, tc.code)
			e := onRequest
			if tc.all {
				e = all
			}
			res, err := e.Execute(ctx, Request{Code: code, TypeCheck: tc.ask, Globals: json.RawMessage(tc.globals)})
			_, statErr := os.Stat(probe)
			if tc.wantLine == 0 {
				if err != nil || res.Status != sandbox.StatusSuccess {
					t.Fatalf("Execute = %+v, %v; want a successful run", res, err)
				}
				if statErr != nil {
					t.Fatalf("the code ran but its probe file is missing: %v", statErr)
				}
				return
			}
			var te *TypeError
			if !errors.As(err, &te) || res != nil {
				t.Fatalf("Execute = %+v, %v; want a *TypeError", res, err)
			}
			if !errors.Is(statErr, os.ErrNotExist) {
				t.Fatalf("the probe file exists: the code ran (stat: %v)", statErr)
			}
			ref := Refusal(err)
			if ref.Error.Type != sandbox.ErrorType || ref.Error.Line != tc.wantLine || ref.Error.Column != tc.wantCol {
				t.Errorf("refusal error = %+v; want type %q at %d:%d", ref.Error, sandbox.ErrorType, tc.wantLine, tc.wantCol)
			}
			if !strings.Contains(ref.Error.Message, tc.wantMsg) || !strings.Contains(ref.Error.Message, "not run") {
				t.Errorf("message %q does not contain %q and say it was not run", ref.Error.Message, tc.wantMsg)
			}
		})
	}
	t.Run("a syntax error is left to deno", func(t *testing.T) {
		res, err := all.Execute(ctx, Request{Code: "const = 1;"})
		if err != nil || res.Error == nil || res.Error.Type != sandbox.ErrorSyntax {
			t.Fatalf("Execute = %+v, %v; want deno's syntax error", res, err)
		}
	})
}

// TestTypeCheckFailure: a checker that cannot check (here: the upstreams' declarations cannot
// be had) refuses the code as an internal error and does not run it; a server without a
// checker refuses what asks for one, saying who can install it.
func TestTypeCheckFailure(t *testing.T) {
	_, all, ws := typeCheckEngines(t, errors.New("upstream demo is down"))
	probe := filepath.Join(ws, "probe")
	res, err := all.Execute(context.Background(), Request{Code: fmt.Sprintf("Deno.writeTextFileSync(%q, \"ran\");\n1", probe)})
	if !errors.Is(err, typecheck.ErrChecker) || res != nil || !strings.Contains(err.Error(), "upstream demo is down") {
		t.Fatalf("Execute = %+v, %v; want ErrChecker with the cause", res, err)
	}
	if ref := Refusal(err); ref.Error.Type != sandbox.ErrorInternal || !strings.Contains(ref.Error.Message, "not run") {
		t.Errorf("refusal = %+v; want an internal error saying the code was not run", ref.Error)
	}
	if _, err := os.Stat(probe); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the probe file exists: the code ran (stat: %v)", err)
	}
	bare := New(Options{DefaultTimeout: time.Second, MaxTimeout: time.Second})
	defer bare.Shutdown()
	prog, _ := program.Prepare("1")
	if err := bare.typeCheck(context.Background(), &Request{TypeCheck: true}, prog); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), config.VarTypeCheck) {
		t.Fatalf("no checker: %v; want an invalid request naming %s", err, config.VarTypeCheck)
	}
}
