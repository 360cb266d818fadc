package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// codeModeServer is `conductor serve` with server-everything, server-memory
// and server-filesystem (on fsDir) as stdio upstreams.
func codeModeServer(t *testing.T) (s *factoryServer, fsDir string) {
	t.Helper()
	ft := needFactoryTools(t)
	fsPkg := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(ft.everything))), "server-filesystem", "dist", "index.js")
	if _, err := os.Stat(fsPkg); err != nil {
		factoryMissing(t, fmt.Sprintf("@modelcontextprotocol/server-filesystem not found at %s (run `make mcp-tools` or set CONDUCTOR_MCP_TOOLS): %v", fsPkg, err))
	}
	fsDir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s = startFactoryServer(t, map[string]any{
		"everything": map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"}},
		"memory":     map[string]any{"command": ft.node, "args": []string{ft.memory}, "env": map[string]string{"MEMORY_FILE_PATH": filepath.Join(t.TempDir(), "memory.json")}},
		"filesystem": map[string]any{"command": ft.node, "args": []string{fsPkg, fsDir}},
	}, nil)
	return s, fsDir
}

type searchOut struct {
	Results []struct {
		Server, Tool, Signature, Description string
		Score                                float64
	}
	Unavailable []struct{ Server, Error string }
}

type detailsOut struct {
	Server       string
	Tools        []json.RawMessage
	Declarations string
}

// resultText is the text content of a tool result: what a client shows the
// model.
func resultText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// denoCheck writes files to a temporary directory and runs `deno check
// main.ts` there with the test's deno.
func denoCheck(t *testing.T, files map[string]string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, denoBin(t), "check", "--no-config", "main.ts")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DENO_DIR="+filepath.Join(dir, ".deno"), "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestE2ECodeMode (issue 14, must show 1): through a go-sdk client against
// `conductor serve` with server-everything, server-memory and
// server-filesystem: search_tools ranks the right tool first for the ten
// queries of toolsearch/testdata/queries.json; get_tool_details'
// declarations pass deno check with code using them (and code calling them
// wrongly fails it); typed code calling three servers runs and returns the
// computed value; the token cost of all schemas against search → describe.
func TestE2ECodeMode(t *testing.T) {
	s, fsDir := codeModeServer(t)

	t.Run("search_tools: ten natural-language queries", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("toolsearch", "testdata", "queries.json"))
		if err != nil {
			t.Fatal(err)
		}
		var queries []struct{ Query, Server, Tool string }
		if err := json.Unmarshal(b, &queries); err != nil {
			t.Fatal(err)
		}
		if len(queries) != 10 {
			t.Fatalf("queries.json has %d queries, want 10", len(queries))
		}
		for _, q := range queries {
			res := s.tool(t, "search_tools", map[string]any{"query": q.Query, "limit": 3})
			var out searchOut
			decodeInto(t, res.StructuredContent, &out)
			if res.IsError || len(out.Results) == 0 || len(out.Unavailable) > 0 {
				t.Errorf("%q: isError %v, %d results, unavailable %v: %s", q.Query, res.IsError, len(out.Results), out.Unavailable, resultText(res))
				continue
			}
			var got []string
			for _, r := range out.Results {
				got = append(got, fmt.Sprintf("%s/%s (%.2f)", r.Server, r.Tool, r.Score))
			}
			top := out.Results[0]
			if top.Server != q.Server || top.Tool != q.Tool {
				t.Errorf("%q: ranked %v, want %s/%s first", q.Query, got, q.Server, q.Tool)
			} else {
				t.Logf("%-62q → %v", q.Query, got)
			}
			if !strings.HasPrefix(top.Signature, "servers.") || !strings.Contains(top.Signature, "): Promise<") {
				t.Errorf("%q: signature %q", q.Query, top.Signature)
			}
		}
	})

	t.Run("search_tools: server filter and limit", func(t *testing.T) {
		res := s.tool(t, "search_tools", map[string]any{"query": "delete entities relations observations", "server": "memory", "limit": 2})
		var out searchOut
		decodeInto(t, res.StructuredContent, &out)
		if len(out.Results) != 2 {
			t.Fatalf("limit 2 gave %d results: %s", len(out.Results), resultText(res))
		}
		for _, r := range out.Results {
			if r.Server != "memory" || !strings.HasPrefix(r.Tool, "delete_") {
				t.Errorf("server memory, delete: got %s/%s", r.Server, r.Tool)
			}
		}
		expectRefused(t, toResult(t, s.tool(t, "search_tools", map[string]any{"query": "  "})), "needs a query")
		res = s.tool(t, "search_tools", map[string]any{"query": "add numbers", "server": "nowhere"})
		decodeInto(t, res.StructuredContent, &out)
		if len(out.Results) != 0 || len(out.Unavailable) != 1 || !strings.Contains(out.Unavailable[0].Error, `unknown MCP server "nowhere"`) {
			t.Errorf("an unknown server: %s", resultText(res))
		}
	})

	details := func(t *testing.T, server string, tools ...string) detailsOut {
		t.Helper()
		args := map[string]any{"server": server}
		if len(tools) > 0 {
			args["tools"] = tools
		}
		res := s.tool(t, "get_tool_details", args)
		if res.IsError {
			t.Fatalf("get_tool_details %s %v: %s", server, tools, resultText(res))
		}
		var out detailsOut
		decodeInto(t, res.StructuredContent, &out)
		return out
	}

	const program = `/// <reference path="./servers.d.ts" />
const sum = await servers.everything["get-sum"]({ a: 19, b: 23 });
const made = await servers.memory.create_entities({ entities: [{ name: "n", entityType: "number", observations: [String(sum)] }] });
const names: string[] = made.entities.map((e) => e.name);
const w = await servers.filesystem.write_file({ path: "/tmp/n.txt", content: "42" });
const r = await servers.filesystem.read_text_file({ path: "/tmp/n.txt", head: 1 });
const text: string = r.content + w.content;
export { names, text };
`
	t.Run("get_tool_details: declarations pass deno check", func(t *testing.T) {
		var decl strings.Builder
		for _, d := range []detailsOut{
			details(t, "everything", "get-sum"),
			details(t, "memory", "create_entities"),
			details(t, "filesystem", "write_file", "read_text_file"),
		} {
			if len(d.Tools) == 0 || !strings.Contains(d.Declarations, "declare namespace McpServers."+d.Server) {
				t.Fatalf("%s: %d tools, declarations:\n%s", d.Server, len(d.Tools), d.Declarations)
			}
			decl.WriteString(d.Declarations)
		}
		if out, err := denoCheck(t, map[string]string{"servers.d.ts": decl.String(), "main.ts": program}); err != nil {
			t.Fatalf("deno check: %v\n%s\n--- servers.d.ts ---\n%s", err, out, decl.String())
		}
		// Every tool of the three servers at once.
		var all strings.Builder
		for _, srv := range []string{"everything", "memory", "filesystem"} {
			all.WriteString(details(t, srv).Declarations)
		}
		if out, err := denoCheck(t, map[string]string{"servers.d.ts": all.String(), "main.ts": program}); err != nil {
			t.Fatalf("deno check with every tool's declarations: %v\n%s", err, out)
		}
		bad := []struct{ name, line, want string }{
			{"wrong argument type", `await servers.filesystem.write_file({ path: 1, content: "x" });`, "TS2322"},
			{"misspelled tool", `await servers.filesystem.write_files({ path: "p", content: "x" });`, "TS2551"},
			{"missing required field", `await servers.everything["get-sum"]({ a: 1 });`, "TS2345"},
			{"wrong result use", `const r = await servers.filesystem.read_text_file({ path: "p" }); const n: number = r.content;`, "TS2322"},
		}
		for _, c := range bad {
			code := "/// <reference path=\"./servers.d.ts\" />\n" + c.line + "\nexport {};\n"
			out, err := denoCheck(t, map[string]string{"servers.d.ts": all.String(), "main.ts": code})
			if err == nil {
				t.Errorf("%s: deno check accepted %s", c.name, c.line)
				continue
			}
			if !strings.Contains(out, c.want) || !regexp.MustCompile(`main\.ts:2:\d+`).MatchString(out) {
				t.Errorf("%s: want %s at main.ts:2, got:\n%s", c.name, c.want, out)
			}
		}
	})

	t.Run("typed code calling three servers", func(t *testing.T) {
		r := s.exec(t, `
const sum = await servers.everything["get-sum"]({ a: 19, b: 23 });
const n = Number(/ is (\d+)\.$/.exec(sum)[1]);
await servers.memory.create_entities({ entities: [{ name: "typed-e2e", entityType: "number", observations: ["sum=" + n] }] });
const path = dir + "/sum.txt";
await servers.filesystem.write_file({ path, content: String(n * 2) });
const [back, graph] = await Promise.all([
  servers.filesystem.read_text_file({ path }),
  servers.memory.open_nodes({ names: ["typed-e2e"] }),
]);
return { n, doubled: Number(back.content), observations: graph.entities[0].observations };`, map[string]any{"dir": fsDir})
		expectSuccess(t, r)
		sameJSON(t, "returnValue", r.out["returnValue"], `{"n": 42, "doubled": 84, "observations": ["sum=42"]}`)
		if b, err := os.ReadFile(filepath.Join(fsDir, "sum.txt")); err != nil || string(b) != "84" {
			t.Errorf("the file server-filesystem wrote: %q, %v", b, err)
		}
		if calls, _ := r.out["mcpCalls"].(float64); calls != 5 {
			t.Errorf("mcpCalls = %v, want 5", r.out["mcpCalls"])
		}
		for _, c := range []struct{ call, want string }{
			{`servers.everything["no-such-tool"]({})`, "no-such-tool"},
			{`servers.nowhere.echo({})`, `unknown MCP server "nowhere"`},
		} {
			r = s.exec(t, `return await `+c.call+`.then(() => "ran", (e) => e.name + ": " + e.message)`, nil)
			expectSuccess(t, r)
			if got, _ := r.out["returnValue"].(string); !strings.HasPrefix(got, "McpError: ") || !strings.Contains(got, c.want) {
				t.Errorf("%s: %q, want an McpError naming %s", c.call, got, c.want)
			} else {
				t.Logf("%s → %s", c.call, got)
			}
		}
	})

	t.Run("tokens: all schemas against search then describe", func(t *testing.T) {
		// All schemas: what tools/list of the three servers gives a client
		// that loads every upstream tool (name, description, schemas).
		var all, decls int
		for _, srv := range []string{"everything", "memory", "filesystem"} {
			d := details(t, srv)
			b, err := json.Marshal(d.Tools)
			if err != nil {
				t.Fatal(err)
			}
			all += len(b)
			decls += len(d.Declarations)
		}
		// Search → describe for a task needing two tools: what the model reads.
		var path int
		for _, call := range []struct {
			tool string
			args map[string]any
		}{
			{"search_tools", map[string]any{"query": "add two numbers"}},
			{"search_tools", map[string]any{"query": "write text to a file"}},
			{"get_tool_details", map[string]any{"server": "everything", "tools": []string{"get-sum"}}},
			{"get_tool_details", map[string]any{"server": "filesystem", "tools": []string{"write_file"}}},
		} {
			res := s.tool(t, call.tool, call.args)
			if res.IsError {
				t.Fatalf("%s: %s", call.tool, resultText(res))
			}
			path += len(resultText(res))
		}
		tok := func(chars int) int { return (chars + 3) / 4 }
		t.Logf("tokens (characters/4): all %d tool schemas of everything+memory+filesystem %d; their full declarations %d; "+
			"search_tools ×2 + get_tool_details ×2 (default limit 5) %d; ratio %.1fx",
			36, tok(all), tok(decls), tok(path), float64(all)/float64(path))
		if path >= all/3 {
			t.Errorf("search → describe read %d characters, all schemas are %d: want under a third", path, all)
		}
	})
}
