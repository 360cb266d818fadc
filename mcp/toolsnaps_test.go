package mcp_test

// Tool schema snapshots (issue 15): every tool `conductor serve` offers, with every tool turned
// on, listed by a real go-sdk client over stdio and compared with the committed JSON file of
// each under testdata/toolsnaps/, so a change to any tool's name, title, description, input or
// output schema or annotations is a diff a reviewer sees. UPDATE_TOOLSNAPS=1 rewrites the files
// (and removes those of tools that are gone).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// toolsnapDir holds one <tool>.json per tool.
const toolsnapDir = "testdata/toolsnaps"

// updateToolsnapsVar rewrites the snapshots instead of comparing them.
const updateToolsnapsVar = "UPDATE_TOOLSNAPS"

// hostDependent are the parts of descriptions that say what this host has, with what stands
// for them in a snapshot: the Python interpreter's own packages (its site-packages differ from
// host to host).
var hostDependent = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`; the interpreter's packages \([^)]*\)`), ""},
}

// toolSnapshot is a tool's JSON as the client received it, in a stable form: the fields a
// snapshot covers, keys sorted (maps marshal sorted), two-space indented, host-dependent text
// normalised.
func toolSnapshot(raw []byte) ([]byte, error) {
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, err
	}
	snap := map[string]any{}
	for _, k := range []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"} {
		if v, ok := all[k]; ok {
			snap[k] = v
		}
	}
	if d, ok := snap["description"].(string); ok {
		for _, h := range hostDependent {
			d = h.re.ReplaceAllString(d, h.with)
		}
		snap["description"] = d
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(snap); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// lineDiff is a line diff of want and got ("-" only in want, "+" only in got), from their
// longest common subsequence of lines; unchanged lines are left out.
func lineDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var d strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&d, "- %s\n", a[i])
			i++
		default:
			fmt.Fprintf(&d, "+ %s\n", b[j])
			j++
		}
	}
	return d.String()
}

// TestLineDiff: the diff a snapshot mismatch prints.
func TestLineDiff(t *testing.T) {
	for _, tc := range []struct{ name, want, got, diff string }{
		{"same", "a\nb\n", "a\nb\n", ""},
		{"changed line", "a\nb\nc", "a\nB\nc", "- b\n+ B\n"},
		{"added", "a\nc", "a\nb\nc", "+ b\n"},
		{"removed", "a\nb\nc", "a\nc", "- b\n"},
		{"from nothing", "", "a", "- \n+ a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := lineDiff(tc.want, tc.got); d != tc.diff {
				t.Errorf("lineDiff(%q, %q) = %q, want %q", tc.want, tc.got, d, tc.diff)
			}
		})
	}
}

// TestToolSnapshotStable: the normal form sorts keys, keeps only the snapshot's fields and
// takes the host's Python packages out of a description.
func TestToolSnapshotStable(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"keys sorted, other fields dropped",
			`{"title":"T","name":"n","_meta":{"x":1},"inputSchema":{"type":"object","properties":{"b":{},"a":{}}}}`,
			"{\n  \"inputSchema\": {\n    \"properties\": {\n      \"a\": {},\n      \"b\": {}\n    },\n    \"type\": \"object\"\n  },\n  \"name\": \"n\",\n  \"title\": \"T\"\n}\n"},
		{"host's python packages",
			`{"name":"p","description":"Imports: the standard library; the interpreter's packages (numpy, yaml and 3 more). Any <other>."}`,
			"{\n  \"description\": \"Imports: the standard library. Any <other>.\",\n  \"name\": \"p\"\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := toolSnapshot([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("toolSnapshot = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestToolSnapshots: conductor serve with every tool on — upstreams (server-memory), Python
// (run_python_code, execute_code) and Go (named, not found on PATH), snippets, playbooks (writable) and type-checking of every
// call — lists tools whose snapshots match testdata/toolsnaps/ one for one.
func TestToolSnapshots(t *testing.T) {
	ft := needFactoryTools(t)
	snippets := t.TempDir()
	if err := os.WriteFile(filepath.Join(snippets, "hello.py"), []byte("print('hi')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startFactoryServer(t, map[string]any{
		"memory": map[string]any{"command": ft.node, "args": []string{ft.memory},
			"env": map[string]string{"MEMORY_FILE_PATH": filepath.Join(t.TempDir(), "memory.json")}},
	}, nil,
		"MCP_CONDUCTOR_PYTHON="+hostPython(t), "MCP_CONDUCTOR_GO="+hostGoroot(t),
		"MCP_CONDUCTOR_SNIPPETS="+snippets,
		"MCP_CONDUCTOR_PLAYBOOKS="+t.TempDir(), "MCP_CONDUCTOR_PLAYBOOKS_WRITABLE=1",
		"MCP_CONDUCTOR_TYPECHECK=1",
		"MCP_CONDUCTOR_POOL_SIZE=0")

	got := map[string][]byte{}
	for tool, err := range s.cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		raw, err := json.Marshal(tool)
		if err != nil {
			t.Fatal(err)
		}
		if got[tool.Name], err = toolSnapshot(raw); err != nil {
			t.Fatalf("%s: %v", tool.Name, err)
		}
	}
	// Every kind of tool is on: a server that lost one fails here, not with a quietly smaller set.
	for _, name := range []string{"run_deno_code", "run_python_code", "execute_code", "list_mcp_servers", "search_tools",
		"get_tool_details", "list_playbooks", "get_playbook", "save_playbook"} {
		if got[name] == nil {
			t.Errorf("tools/list has no %s: the snapshot server should offer every tool", name)
		}
	}

	files, err := filepath.Glob(filepath.Join(toolsnapDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(updateToolsnapsVar) == "1" {
		if err := os.MkdirAll(toolsnapDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if got[strings.TrimSuffix(filepath.Base(f), ".json")] == nil {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				t.Logf("removed %s (no such tool)", f)
			}
		}
		for name, b := range got {
			if err := os.WriteFile(filepath.Join(toolsnapDir, name+".json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("wrote %d snapshots to %s", len(got), toolsnapDir)
		return
	}

	const how = "if the change is intended, run the test with " + updateToolsnapsVar + "=1 and commit testdata/toolsnaps/ (make build first)"
	names := make([]string, 0, len(got))
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		want, err := os.ReadFile(filepath.Join(toolsnapDir, name+".json"))
		if err != nil {
			t.Errorf("tool %s has no snapshot (%v); %s", name, err, how)
			continue
		}
		if !bytes.Equal(want, got[name]) {
			t.Errorf("tool %s differs from %s/%s.json (- snapshot, + served):\n%s%s", name, toolsnapDir, name,
				lineDiff(string(want), string(got[name])), how)
		}
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); got[name] == nil {
			t.Errorf("%s is the snapshot of a tool the server no longer offers; %s", f, how)
		}
	}
}
