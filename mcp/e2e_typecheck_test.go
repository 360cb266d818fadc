package mcp_test

// Type-checking before run (issue 14) through `conductor serve` and the go-sdk client: with
// MCP_CONDUCTOR_TYPECHECK=1 and server-memory as an upstream, and without the setting (per
// call typecheck: true).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2ETypeCheck: every call is checked; a type error is a "type" error at the user's line
// and column with every diagnostic in the text, and nothing ran: the code's upstream call
// before the error line never reached server-memory, nor did its workspace write land.
// Correct code calling the upstream runs; typecheck: false does not turn the admin's 1 off.
func TestE2ETypeCheck(t *testing.T) {
	ft := needFactoryTools(t)
	memFile := filepath.Join(t.TempDir(), "memory.json")
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	s := startFactoryServer(t, map[string]any{
		"memory": map[string]any{"command": ft.node, "args": []string{ft.memory}, "env": map[string]string{"MEMORY_FILE_PATH": memFile}},
	}, nil, "MCP_CONDUCTOR_TYPECHECK=1", "MCP_CONDUCTOR_WORKSPACE="+ws,
		"MCP_CONDUCTOR_RUN_ARGS=allow-read="+ws+",allow-write="+ws)
	entity := fmt.Sprintf("typecheck-e2e-%d", time.Now().UnixNano())
	create := fmt.Sprintf(`await mcpFactory.load("memory").callTool("create_entities", { entities: [{ name: %q, entityType: "probe", observations: ["x"] }] });`, entity)
	probe := filepath.Join(ws, "probe")
	write := fmt.Sprintf(`Deno.writeTextFileSync(%q, "ran");`, probe)

	for _, tc := range []struct {
		name      string
		args      map[string]any
		line, col int
		mention   []string
	}{
		{"wrong argument type", map[string]any{"deno_code": write + "\n" + create + "\nconst n: number = \"x\";\nn"},
			3, 7, []string{"3:7: TS2322: Type 'string' is not assignable to type 'number'"}},
		{"misspelled method", map[string]any{"deno_code": write + "\n" + create + "\nawait mcpFactory.load(\"memory\").callTol(\"read_graph\");"},
			3, 33, []string{"3:33: TS2551", "Did you mean 'callTool'"}},
		{"missing required argument, typecheck: false", map[string]any{"typecheck": false, "deno_code": write + "\n" + create + "\nconst t = await Deno.readTextFile();\nreturn t;"},
			3, 22, []string{"3:22: TS2554: Expected 1-2 arguments, but got 0"}},
		{"three errors, all listed", map[string]any{"deno_code": write + "\n" + create + "\nlet a: string = 1;\nlet b: number = \"1\";\nconst c: boolean = a + b;"},
			3, 5, []string{"3 errors", "3:5: TS2322", "4:5: TS2322", "5:7: TS2322"}},
		// The typed bindings, checked against the declarations generated from server-memory's tools.
		{"typed call: wrong argument type", map[string]any{"deno_code": write + "\n" + create + "\nawait servers.memory.create_entities({ entities: \"x\" });"},
			3, 40, []string{"3:40: TS2322"}},
		{"typed call: misspelled tool", map[string]any{"deno_code": write + "\n" + create + "\nawait servers.memory.create_entitys({ entities: [] });"},
			3, 22, []string{"3:22: TS2551", "create_entities"}},
		{"typed call: missing required field", map[string]any{"deno_code": write + "\n" + create + "\nawait servers.memory.create_entities({ entities: [{ name: \"a\", entityType: \"b\" }] });"},
			3, 51, []string{"3:51: TS2741", "observations"}},
		{"typed call: unknown server", map[string]any{"deno_code": write + "\n" + create + "\nawait servers.memroy.read_graph({});"},
			3, 15, []string{"3:15: TS2551", "memory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, s.cs, tc.args)
			if !r.res.IsError || r.str("status") != "error" || r.errField("type") != "type" {
				t.Fatalf("want a type error, got %s", r)
			}
			if r.errField("line") != float64(tc.line) || r.errField("column") != float64(tc.col) {
				t.Errorf("error at %v:%v, want %d:%d (%s)", r.errField("line"), r.errField("column"), tc.line, tc.col, r)
			}
			for _, m := range append(tc.mention, "not run") {
				if !strings.Contains(r.text, m) || !strings.Contains(fmt.Sprint(r.errField("message")), m) {
					t.Errorf("text and error.message must mention %q: %s", m, r)
				}
			}
			if _, err := os.Stat(probe); !os.IsNotExist(err) {
				t.Fatalf("the workspace probe exists: the code ran (stat: %v)", err)
			}
		})
	}
	t.Run("nothing reached the upstream; correct code runs", func(t *testing.T) {
		r := s.exec(t, `const mem = mcpFactory.load("memory");
const before = JSON.stringify(await mem.callTool("read_graph", {})).includes(`+fmt.Sprintf("%q", entity)+`);
`+create+`
const g = await servers.memory.read_graph({});
const after: boolean = JSON.stringify(g).includes(`+fmt.Sprintf("%q", entity)+`);
return { before, after };`, nil)
		expectSuccess(t, r)
		if got := fmt.Sprint(r.out["returnValue"]); got != "map[after:true before:false]" {
			t.Fatalf("returnValue = %s; want the entity absent before this run and present after: %s", got, r)
		}
	})
}

// TestE2ETypeCheckOnRequest: without MCP_CONDUCTOR_TYPECHECK a call asks with typecheck: true;
// the tool's schema and description say so; a call that does not ask runs unchecked.
func TestE2ETypeCheckOnRequest(t *testing.T) {
	s := startStdio(t, nil, nil)
	tools, err := s.cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name != toolName {
			continue
		}
		if !strings.Contains(tool.Description, "typecheck: true type-checks the code") {
			t.Errorf("description does not offer typecheck: %s", tool.Description)
		}
		if b, _ := tool.InputSchema.(interface{ MarshalJSON() ([]byte, error) }); b != nil {
			j, _ := b.MarshalJSON()
			if !strings.Contains(string(j), `"typecheck"`) {
				t.Errorf("input schema has no typecheck: %s", j)
			}
		}
	}
	code := "const n: number = \"x\" as unknown as number;\nconst s: string = n;\ns"
	r := run(t, s.cs, map[string]any{"deno_code": code, "typecheck": true})
	if r.errField("type") != "type" || r.errField("line") != float64(2) || r.errField("column") != float64(7) {
		t.Fatalf("typecheck: true: want a type error at 2:7, got %s", r)
	}
	r = run(t, s.cs, map[string]any{"deno_code": code})
	expectSuccess(t, r)
	if r.out["returnValue"] != "x" {
		t.Fatalf("unchecked run returned %v, want \"x\"", r.out["returnValue"])
	}
}
