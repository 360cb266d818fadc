package mcp_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The playbooks of the e2e tests: sum has an inputs schema with a default, thrower throws on its
// line 6, column 9, and broken.ts has no front-matter (skipped and logged, never served).
var e2ePlaybooks = map[string]string{
	"sum.ts": `/* ---
{"name": "sum", "description": "Adds a and b.",
 "inputs": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number", "default": 10}}, "required": ["a"]}}
--- */
args.a + args.b
`,
	"thrower.ts": `/* ---
{"name": "thrower", "description": "Throws when asked to."}
--- */
const why: string = args.why ?? "no reason";
if (why !== "") {
  throw new RangeError("thrown because " + why);
}
`,
	"broken.ts": "args.a\n",
}

func writePlaybooks(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range e2ePlaybooks {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// callTool calls a tool and fails the test on a protocol error.
func callTool(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s %v: protocol error %v", name, abbreviate(args), err)
	}
	return toResult(t, res)
}

func playbookNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	r := callTool(t, cs, "list_playbooks", map[string]any{})
	if r.res.IsError {
		t.Fatalf("list_playbooks: %s", r)
	}
	var names []string
	list, _ := r.out["playbooks"].([]any)
	for _, p := range list {
		m, _ := p.(map[string]any)
		names = append(names, m["name"].(string))
	}
	return names
}

// TestE2EPlaybooks: list_playbooks, get_playbook, save_playbook, the playbook:// resources and
// playbooks.run from run_deno_code, through the go-sdk client against `conductor serve` on stdio.
func TestE2EPlaybooks(t *testing.T) {
	dir := writePlaybooks(t)
	var listChanged atomic.Int32
	s := startStdio(t, &sdk.ClientOptions{
		ResourceListChangedHandler: func(context.Context, *sdk.ResourceListChangedRequest) { listChanged.Add(1) },
	}, nil, "MCP_CONDUCTOR_PLAYBOOKS="+dir, "MCP_CONDUCTOR_PLAYBOOKS_WRITABLE=1")
	cs := s.cs
	ctx := context.Background()

	t.Run("tools and description", func(t *testing.T) {
		tools, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
			if tl.Name == toolName && !strings.Contains(tl.Description, "playbooks.run(name, args)") {
				t.Errorf("run_deno_code's description does not tell the model about playbooks: %s", tl.Description)
			}
		}
		for _, want := range []string{"list_playbooks", "get_playbook", "save_playbook"} {
			if !slices.Contains(names, want) {
				t.Errorf("tools/list %v lacks %s", names, want)
			}
		}
	})

	t.Run("list skips the bad file and logs it", func(t *testing.T) {
		if got := playbookNames(t, cs); !slices.Equal(got, []string{"sum", "thrower"}) {
			t.Errorf("list_playbooks = %v, want [sum thrower]", got)
		}
		if !strings.Contains(s.stderr.String(), "broken.ts") || !strings.Contains(s.stderr.String(), "the first line must be") {
			t.Errorf("the log does not name broken.ts and why it was skipped:\n%s", s.stderr)
		}
	})

	t.Run("get", func(t *testing.T) {
		r := callTool(t, cs, "get_playbook", map[string]any{"name": "sum"})
		if r.res.IsError || r.str("code") != "args.a + args.b\n" || r.str("file") != e2ePlaybooks["sum.ts"] || r.str("description") != "Adds a and b." {
			t.Fatalf("get_playbook sum = %s", r)
		}
		if req, _ := r.out["inputs"].(map[string]any)["required"].([]any); len(req) != 1 || req[0] != "a" {
			t.Errorf("get_playbook sum: inputs = %v", r.out["inputs"])
		}
		r = callTool(t, cs, "get_playbook", map[string]any{"name": "nope"})
		expectRefused(t, r, `"nope"`, "sum, thrower")
	})

	t.Run("resources", func(t *testing.T) {
		res, err := cs.ListResources(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var uris []string
		for _, r := range res.Resources {
			uris = append(uris, r.URI)
			if r.MIMEType != "text/typescript" {
				t.Errorf("%s: mimeType %q", r.URI, r.MIMEType)
			}
		}
		if !slices.Contains(uris, "playbook://sum") || !slices.Contains(uris, "playbook://thrower") || slices.Contains(uris, "playbook://broken") {
			t.Errorf("resources/list = %v", uris)
		}
		rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "playbook://sum"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rr.Contents) != 1 || rr.Contents[0].Text != e2ePlaybooks["sum.ts"] || rr.Contents[0].MIMEType != "text/typescript" {
			t.Errorf("resources/read playbook://sum = %+v", rr.Contents)
		}
		if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "playbook://broken"}); err == nil {
			t.Errorf("resources/read playbook://broken succeeded")
		}
	})

	t.Run("save", func(t *testing.T) {
		before := listChanged.Load()
		save := map[string]any{
			"name": "double", "description": "Doubles n; says */ safely.",
			"inputs": map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "integer"}}, "required": []any{"n"}},
			"code":   "args.n * 2\n",
		}
		if r := callTool(t, cs, "save_playbook", save); r.res.IsError || r.str("uri") != "playbook://double" {
			t.Fatalf("save_playbook: %s", r)
		}
		if got := playbookNames(t, cs); !slices.Equal(got, []string{"double", "sum", "thrower"}) {
			t.Errorf("after the save, list_playbooks = %v", got)
		}
		if !waitFor(5*time.Second, func() bool { return listChanged.Load() > before }) {
			t.Errorf("no notifications/resources/list_changed after the save")
		}
		r := callTool(t, cs, "save_playbook", save)
		expectRefused(t, r, "already exists", "overwrite: true")
		save["code"], save["overwrite"] = "args.n * 3\n", true
		if r := callTool(t, cs, "save_playbook", save); r.res.IsError {
			t.Fatalf("save_playbook with overwrite: %s", r)
		}
		r = run(t, cs, map[string]any{"deno_code": `await playbooks.run("double", { n: 7 })`})
		expectSuccess(t, r)
		if v, _ := r.out["returnValue"].(float64); v != 21 {
			t.Errorf("the overwritten playbook returned %v, want 21", r.out["returnValue"])
		}
		for _, bad := range []struct {
			name string
			args map[string]any
			want []string
		}{
			{"code that does not parse", map[string]any{"name": "bad", "description": "x", "code": "const = ;"}, []string{"does not parse"}},
			{"a bad name", map[string]any{"name": "Bad Name", "description": "x", "code": "1"}, []string{"Bad Name", "allowed"}},
			{"inputs not an object schema", map[string]any{"name": "bad", "description": "x", "code": "1", "inputs": map[string]any{"type": "string"}}, []string{"inputs", `"object"`}},
			{"no description", map[string]any{"name": "bad", "description": "", "code": "1"}, []string{"description"}},
		} {
			t.Run(bad.name, func(t *testing.T) { expectRefused(t, callTool(t, cs, "save_playbook", bad.args), bad.want...) })
		}
		if _, err := os.Stat(filepath.Join(dir, "bad.ts")); err == nil {
			t.Errorf("a refused save wrote bad.ts")
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("a temporary file is left in the directory: %s", e.Name())
			}
		}
	})

	for _, c := range []struct {
		name      string
		code      string
		value     any      // the returnValue, when it succeeds
		errWant   []string // substrings of error.message, when it fails
		errLine   float64  // error.line: the caller's line
		errColumn float64
	}{
		{name: "with arguments", code: `await playbooks.run("sum", { a: 1, b: 2 })`, value: 3.0},
		{name: "a default applied", code: `await playbooks.run("sum", { a: 5 })`, value: 15.0},
		{name: "two in parallel", code: `(await Promise.all([playbooks.run("sum", { a: 1 }), playbooks.run("sum", { a: 2, b: 0 })])).join(",")`, value: "11,2"},
		{name: "list from code", code: `(await playbooks.list()).map((p) => p.name).join(",")`, value: "double,sum,thrower"},
		{name: "caught error", code: "try {\n  await playbooks.run(\"thrower\", { why: \"x\" });\n} catch (e) {\n  return [e.name, e.playbook, e.message];\n}",
			value: []any{"PlaybookError", "thrower", `playbook "thrower" failed at its line 6, column 9: RangeError: thrown because x`}},
		{name: "bad argument names the field", code: "const n = 1;\nawait playbooks.run(\"sum\", { a: \"one\" });",
			errWant: []string{`playbook "sum"`, "/properties/a", `want "number"`}, errLine: 2, errColumn: 17},
		{name: "missing required argument", code: `await playbooks.run("sum", {})`, errWant: []string{`playbook "sum"`, "required", `"a"`}, errLine: 1, errColumn: 17},
		{name: "uncaught error in the playbook", code: "\n\nawait playbooks.run(\"thrower\", { why: \"y\" })",
			errWant: []string{`playbook "thrower" failed at its line 6, column 9`, "RangeError: thrown because y"}, errLine: 3, errColumn: 17},
		{name: "unknown playbook", code: `await playbooks.run("nope")`, errWant: []string{`"nope"`, "double, sum, thrower"}, errLine: 1, errColumn: 17},
	} {
		t.Run("run/"+c.name, func(t *testing.T) {
			r := run(t, cs, map[string]any{"deno_code": c.code})
			if c.errWant == nil {
				expectSuccess(t, r)
				got, _ := json.Marshal(r.out["returnValue"])
				want, _ := json.Marshal(c.value)
				if string(got) != string(want) {
					t.Errorf("returnValue = %s, want %s", got, want)
				}
				return
			}
			if r.str("status") != "error" {
				t.Fatalf("want an error, got %s", r)
			}
			msg, _ := r.errField("message").(string)
			for _, w := range c.errWant {
				if !strings.Contains(msg, w) {
					t.Errorf("error.message %q lacks %q", msg, w)
				}
			}
			if r.errField("name") != "PlaybookError" || r.errField("line") != c.errLine || r.errField("column") != c.errColumn {
				t.Errorf("error name %v at %v:%v, want PlaybookError at the call, %v:%v", r.errField("name"), r.errField("line"), r.errField("column"), c.errLine, c.errColumn)
			}
		})
	}
}

// TestE2EPlaybooksSettings: without PLAYBOOKS_WRITABLE save_playbook is not offered and
// playbooks work without upstream servers (no mcpFactory then); a directory that does not exist
// stops serve at start with the reason.
func TestE2EPlaybooksSettings(t *testing.T) {
	dir := writePlaybooks(t)
	t.Run("read-only", func(t *testing.T) {
		s := startStdio(t, nil, nil, "MCP_CONDUCTOR_PLAYBOOKS="+dir)
		tools, err := s.cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tl := range tools.Tools {
			if tl.Name == "save_playbook" {
				t.Errorf("save_playbook is offered without MCP_CONDUCTOR_PLAYBOOKS_WRITABLE")
			}
		}
		r := run(t, s.cs, map[string]any{"deno_code": `[typeof mcpFactory, await playbooks.run("sum", { a: 1, b: 1 })]`})
		expectSuccess(t, r)
		if got, _ := json.Marshal(r.out["returnValue"]); string(got) != `["undefined",2]` {
			t.Errorf("returnValue = %s, want [\"undefined\",2]", got)
		}
	})
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"missing directory", []string{"MCP_CONDUCTOR_PLAYBOOKS=" + filepath.Join(dir, "nope")}, "no such file or directory"},
		{"writable without a directory", []string{"MCP_CONDUCTOR_PLAYBOOKS_WRITABLE=1"}, "MCP_CONDUCTOR_PLAYBOOKS is not set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(conductorBin(t), "serve")
			cmd.Env = serverEnv(t.TempDir(), c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Errorf("serve with %v: err %v, output:\n%s\nwant a refusal mentioning %q", c.env, err, out, c.want)
			}
		})
	}
}

// TestE2EPlaybooksWithUpstreams: a playbook calls an upstream (server-everything's get-sum) through
// mcpFactory and another playbook, and the caller gets the computed value; an upstream error inside
// the playbook carries the playbook's name and its own line and column (its callTool, on the line
// the module rewrites for its value).
func TestE2EPlaybooksWithUpstreams(t *testing.T) {
	ft := needFactoryTools(t)
	dir := writePlaybooks(t)
	for name, text := range map[string]string{
		"upsum.ts": `/* ---
{"name": "upsum", "description": "Adds with the upstream, then with the sum playbook.",
 "inputs": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}}
--- */
const ev = mcpFactory.load("everything");
const r = await ev.callTool("get-sum", { a: args.x, b: 1 });
const viaUpstream = Number(JSON.stringify(r).match(/(\d+)\D*$/)?.[1]); // "The sum of 41 and 1 is 42."
const viaPlaybook = await playbooks.run("sum", { a: viaUpstream });
({ viaUpstream, viaPlaybook })
`,
		"upfail.ts": `/* ---
{"name": "upfail", "description": "Calls a tool that does not exist."}
--- */

await mcpFactory.load("everything").callTool("no-such-tool", {})
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startFactoryServer(t, map[string]any{
		"everything": map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"}},
	}, nil, "MCP_CONDUCTOR_PLAYBOOKS="+dir)

	r := s.exec(t, `await playbooks.run("upsum", { x: 41 })`, nil)
	expectSuccess(t, r)
	if rv, _ := r.out["returnValue"].(map[string]any); rv["viaUpstream"] != 42.0 || rv["viaPlaybook"] != 52.0 {
		t.Errorf("returnValue = %v, want viaUpstream 42 and viaPlaybook 52", r.out["returnValue"])
	}
	r = s.exec(t, "await playbooks.run(\"upfail\")", nil)
	msg, _ := r.errField("message").(string)
	if r.str("status") != "error" || !strings.Contains(msg, `playbook "upfail" failed at its line 5, column 37`) || !strings.Contains(msg, "no-such-tool") {
		t.Errorf("an upstream error in a playbook: %s", r)
	}
}
