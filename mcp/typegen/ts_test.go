package typegen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

func TestTS(t *testing.T) {
	cases := []struct {
		name, schema, want string
	}{
		{"string", `{"type":"string"}`, "string"},
		{"integer", `{"type":"integer"}`, "number"},
		{"nullable", `{"type":["string","null"]}`, "string | null"},
		{"enum", `{"type":"string","enum":["a","b c"]}`, `"a" | "b c"`},
		{"const", `{"const":-1.5}`, "-1.5"},
		{"enum of objects", `{"enum":[{"a":1}]}`, "unknown"},
		{"empty enum", `{"enum":[]}`, "never"},
		{"array", `{"type":"array","items":{"type":"number"}}`, "Array<number>"},
		{"array of union", `{"type":"array","items":{"type":["number","boolean"]}}`, "Array<number | boolean>"},
		{"tuple", `{"type":"array","items":[{"type":"number"}]}`, "unknown[]"},
		{"object", `{"type":"object","properties":{"a":{"type":"string"},"b-c":{"type":"number"}},"required":["a"]}`,
			"{\n  a: string;\n  \"b-c\"?: number;\n}"},
		{"record", `{"type":"object","additionalProperties":{"type":"number"}}`, "{ [key: string]: number }"},
		{"closed empty", `{"type":"object","additionalProperties":false}`, "Record<string, never>"},
		{"open object", `{"type":"object"}`, "{ [key: string]: unknown }"},
		{"props and extra", `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":true}`,
			"{\n  a?: string;\n  [key: string]: unknown;\n}"},
		{"oneOf", `{"oneOf":[{"type":"string"},{"type":"array","items":{"type":"string"}}]}`, "string | Array<string>"},
		{"anyOf nested union", `{"anyOf":[{"type":["string","null"]},{"type":"number"}]}`, "(string | null) | number"},
		{"allOf", `{"allOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},{"type":"object","properties":{"b":{"type":"number"}}}]}`,
			"{\n  a: string;\n} & {\n  b?: number;\n}"},
		{"$defs", `{"type":"object","properties":{"p":{"$ref":"#/$defs/P"}},"required":["p"],"$defs":{"P":{"type":"string","enum":["x"]}}}`,
			"{\n  p: \"x\";\n}"},
		{"cycle", `{"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}},"$ref":"#/$defs/N"}`,
			"{\n  next?: unknown;\n}"},
		{"self", `{"type":"object","properties":{"me":{"$ref":"#"}}}`, "{\n  me?: {\n    me?: unknown;\n  };\n}"},
		{"remote ref", `{"$ref":"https://example.com/s.json"}`, "unknown"},
		{"false", `false`, "never"},
		{"true", `true`, "unknown"},
		{"not a schema", `[1,2]`, "unknown"},
		{"unknown type", `{"type":"date"}`, "unknown"},
		{"description", `{"type":"object","properties":{"a":{"type":"string","description":"ends */ here\nsecond"}}}`,
			"{\n  /**\n   * ends *\\/ here\n   * second\n   */\n  a?: string;\n}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s any
			if err := json.Unmarshal([]byte(c.schema), &s); err != nil {
				t.Fatal(err)
			}
			if got := TS(s); got != c.want {
				t.Errorf("TS(%s)\n got %q\nwant %q", c.schema, got, c.want)
			}
		})
	}
}

// tricky is a tool list with every awkward name and schema shape.
func tricky(t testing.TB) []*mcp.Tool {
	raw := `[
	 {"name":"get-sum","description":"Adds two numbers.","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]},
	  "outputSchema":{"type":"object","properties":{"result":{"type":"number"}},"required":["result"]}},
	 {"name":"delete","description":"A reserved word. Ends */ early? /* no","inputSchema":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}},
	 {"name":"get_sum","inputSchema":{"type":"object"}},
	 {"name":"1st tool ☃","inputSchema":{"type":"object","properties":{"mode":{"enum":["a","b",3,null,true]}}}},
	 {"name":"nested","inputSchema":{"type":"object","properties":{"opts":{"type":"object","properties":{"deep":{"type":"array","items":{"$ref":"#/$defs/D"}}},"additionalProperties":{"type":"string"}}},
	   "$defs":{"D":{"anyOf":[{"type":"string"},{"type":"object","properties":{"k":{"type":"integer"}},"required":["k"]}]}}}},
	 {"name":"constructor","inputSchema":{"type":"object","properties":{"__proto__":{"type":"string"},"\"q\"":{"type":"string"}}}}
	]`
	var tools []*mcp.Tool
	if err := json.Unmarshal([]byte(raw), &tools); err != nil {
		t.Fatal(err)
	}
	return tools
}

func denoCheck(t *testing.T, files map[string]string) (string, error) {
	t.Helper()
	deno := testenv.Deno(t)
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, deno, "check", "--no-config", "main.ts")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DENO_DIR="+filepath.Join(dir, ".deno"), "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDenoCheck: the declarations of two servers with awkward names, put
// together, pass deno check with code using them; code calling them wrongly
// fails at the expected lines.
func TestDenoCheck(t *testing.T) {
	tools := tricky(t)
	names := []string{"my-server", "my_server", "delete", "Array", "Promise", "Record", "Deno", "console", "globalThis", "JSON", "Symbol", "Object", "Error", "Tools"}
	ns := namespaces(names)
	var decl strings.Builder
	for _, s := range names {
		d, err := serverDecl(s, ns[s], tools, nil)
		if err != nil {
			t.Fatal(err)
		}
		decl.WriteString(d)
	}
	// ForTools' partial texts concatenate too.
	part, err := serverDecl("extra", "extra", tools, []string{"get-sum"})
	if err != nil {
		t.Fatal(err)
	}
	decl.WriteString(part)
	const good = `/// <reference path="./servers.d.ts" />
const r = await servers["my-server"]["get-sum"]({ a: 1, b: 2 });
const n: number = r.result;
await servers.my_server.delete({ id: "x" });
await servers.delete.get_sum();
await servers["my-server"]["1st tool ☃"]({ mode: null });
await servers["my-server"].nested({ opts: { deep: ["s", { k: 1 }], other: "x" } });
await servers.extra["get-sum"]({ a: 1, b: 2 });
const p: number = (await servers.Promise["get-sum"]({ a: 1, b: 2 })).result + (await servers.Array["get-sum"]({ a: 1, b: 2 })).result;
const arr: Array<number> = [1, 2];
const rec: Record<string, number> = {};
console.log(JSON.stringify(Object.keys(rec)), arr, p, Deno.pid, Symbol("x"), new Error("e"), globalThis.Promise.resolve(1));
const v: unknown = await servers.my_server.constructor({ __proto__: "p", '"q"': "q" });
export { n, v };
`
	if out, err := denoCheck(t, map[string]string{"servers.d.ts": decl.String(), "main.ts": good}); err != nil {
		t.Fatalf("deno check of the declarations failed: %v\n%s\n--- servers.d.ts ---\n%s", err, out, decl.String())
	}
	bad := []struct{ name, code, want string }{
		{"wrong argument type", `await servers["my-server"]["get-sum"]({ a: "1", b: 2 });`, "TS2322"},
		{"misspelled tool", `await servers["my-server"]["get-summ"]({ a: 1, b: 2 });`, "TS2551"},
		{"missing required field", `await servers["my-server"]["get-sum"]({ a: 1 });`, "TS2345"},
		{"unknown field", `await servers.my_server.delete({ id: "x", idd: 1 });`, "TS2353"},
		{"enum", `await servers["my-server"]["1st tool ☃"]({ mode: "c" });`, "TS2322"},
		{"tool left out of ForTools", `await servers.extra.delete({ id: "x" });`, "TS2339"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			code := "/// <reference path=\"./servers.d.ts\" />\n" + c.code + "\nexport {};\n"
			out, err := denoCheck(t, map[string]string{"servers.d.ts": decl.String(), "main.ts": code})
			if err == nil {
				t.Fatalf("deno check accepted %s", c.code)
			}
			if !strings.Contains(out, c.want) || !regexp.MustCompile(`main\.ts:2:\d+`).MatchString(out) {
				t.Errorf("want %s at main.ts:2, got:\n%s", c.want, out)
			}
		})
	}
}

func TestSignature(t *testing.T) {
	tools := tricky(t)
	want := map[string]string{
		"get-sum":    `servers["my-server"]["get-sum"](args: { a: number; b: number }): Promise<{ result: number }>`,
		"delete":     `servers["my-server"].delete(args: { id: string }): Promise<unknown>`,
		"get_sum":    `servers["my-server"].get_sum(args?: {}): Promise<unknown>`,
		"1st tool ☃": `servers["my-server"]["1st tool ☃"](args?: { mode?: "a" | "b" | 3 | null | true }): Promise<unknown>`,
		"nested":     `servers["my-server"].nested(args?: { opts?: object }): Promise<unknown>`,
	}
	for _, tool := range tools {
		w, ok := want[tool.Name]
		if !ok {
			continue
		}
		if got := Signature("my-server", tool); got != w {
			t.Errorf("Signature(%q)\n got %s\nwant %s", tool.Name, got, w)
		}
	}
}

func TestServerUnknownTool(t *testing.T) {
	_, err := Server("s", tricky(t), []string{"get-sum", "nope"})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("err = %v", err)
	}
}

// randomSchema builds a schema from the keywords TS understands and some it
// does not, with hostile names and values.
func randomSchema(r *rand.Rand, depth int) any {
	words := []string{"a", "b-c", "*/", "\"q\"", "__proto__", "constructor", "1x", "ünï", "\u2028", "", "then", "${x}", "</script>", "\\"}
	word := func() string { return words[r.IntN(len(words))] }
	if depth > 4 || r.IntN(8) == 0 {
		switch r.IntN(4) {
		case 0:
			return r.IntN(2) == 0
		case 1:
			return map[string]any{"type": []string{"string", "number", "integer", "boolean", "null", "date"}[r.IntN(6)]}
		case 2:
			return map[string]any{"const": []any{word(), -1.5, 1e300, true, nil}[r.IntN(5)]}
		default:
			return map[string]any{"enum": []any{word(), word(), 3, nil, map[string]any{}}[:1+r.IntN(4)]}
		}
	}
	s := map[string]any{}
	switch r.IntN(7) {
	case 0, 1:
		s["type"] = "object"
		props := map[string]any{}
		var req []any
		for range r.IntN(4) {
			n := word()
			props[n] = randomSchema(r, depth+1)
			if r.IntN(2) == 0 {
				req = append(req, n)
			}
		}
		s["properties"] = props
		s["required"] = req
		switch r.IntN(3) {
		case 0:
			s["additionalProperties"] = randomSchema(r, depth+1)
		case 1:
			s["additionalProperties"] = false
		}
	case 2:
		s["type"] = []any{"array", "null"}[:1+r.IntN(2)]
		s["items"] = randomSchema(r, depth+1)
	case 3:
		s[[]string{"oneOf", "anyOf", "allOf"}[r.IntN(3)]] = []any{randomSchema(r, depth+1), randomSchema(r, depth+1)}
	case 4:
		s["$defs"] = map[string]any{"D": randomSchema(r, depth+1)}
		s["$ref"] = []string{"#/$defs/D", "#", "#/$defs/none", "other.json"}[r.IntN(4)]
	case 5:
		s["type"] = "object"
		s["properties"] = map[string]any{word(): map[string]any{"$ref": "#"}}
	default:
		s["not"] = randomSchema(r, depth+1)
		s["description"] = word()
	}
	if r.IntN(3) == 0 {
		s["description"] = word() + " */ " + word()
	}
	return s
}

// TestDenoCheckRandom: 300 random schemas (fixed seed), each made a type,
// and tools with random names and descriptions, pass deno check together.
func TestDenoCheckRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 2026))
	var b strings.Builder
	var tools []*mcp.Tool
	for i := range 300 {
		s := randomSchema(r, 0)
		fmt.Fprintf(&b, "type T%d = %s;\n", i, TS(s))
		if i%10 == 0 {
			tools = append(tools, &mcp.Tool{Name: fmt.Sprintf("tool %d */ %s", i, []string{"x", "ü", "\"", "-"}[i%4]), Description: "d */ /* " + fmt.Sprint(i), InputSchema: s, OutputSchema: s})
		}
	}
	decl, err := Server("rand-server", tools, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(decl)
	main := "/// <reference path=\"./servers.d.ts\" />\nexport const t: unknown = servers[\"rand-server\"];\n"
	if out, err := denoCheck(t, map[string]string{"servers.d.ts": b.String(), "main.ts": main}); err != nil {
		t.Fatalf("deno check: %v\n%s", err, out)
	}
}
