package mcp_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestE2ERunPythonCode: the inspector CLI, as a real client, calls run_python_code over stdio: a
// return value with Python types, globals, top-level await, an exception with its line, an
// import nothing provides refused before the code runs with its line and column, naming the
// allowlist, and a dependency not on it refused. The description says what may be imported.
func TestE2ERunPythonCode(t *testing.T) {
	mcpTools(t)
	bin := conductorBin(t)
	denoBin(t)
	stdio := []string{"-e", "MCP_CONDUCTOR_STATE_DIR=" + t.TempDir(), "-e", "MCP_CONDUCTOR_PYTHON=" + hostPython(t),
		"-e", "MCP_CONDUCTOR_ALLOWED_PACKAGES=pypi:pyyaml==6.0", bin, "serve"}
	list := inspector(t, append(stdio, "--method", "tools/list")...)
	raw, _ := json.Marshal(list)
	for _, want := range []string{`"run_python_code"`, "Imports: the standard library", "the allowed PyPI packages (pyyaml==6.0", `"dependencies":{"description"`} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("tools/list lacks %s: %.3000s", want, raw)
		}
	}
	tests := []struct {
		name    string
		args    []string
		isError bool
		want    []string // in the structured result's JSON, or the error's text
	}{
		{"value with python types", []string{"python_code=import asyncio\nawait asyncio.sleep(0)\nprint('hi')\n(city, {1, 2}, 2**70)", `globals={"city": "Paris"}`}, false,
			[]string{`"returnValue":{"$type":"tuple","values":["Paris",{"$type":"set","values":[1,2]},{"$type":"bigint","value":"1180591620717411303424"}]}`}},
		{"stdout kept apart", []string{"python_code=print('hi')\n1"}, false, []string{`"stdout":"hi\n"`}},
		{"exception with its line", []string{"python_code=x = 1\n\nraise ValueError('boom')"}, true, []string{`"line":3`}},
		{"import refused before the run", []string{"python_code=print('ran')\nimport os, no_such_module_here"}, true,
			[]string{`"type":"dependency"`, `"name":"ModuleNotFoundError"`, `"line":2`, `"column":12`, `"stdout":""`,
				"No module named 'no_such_module_here'", "Allowed PyPI packages: pypi:pyyaml==6.0"}},
		{"dependency not allowed", []string{"python_code=import numpy", `dependencies=["numpy"]`}, true,
			[]string{"pypi:numpy is not on this server's package allowlist", "Allowed PyPI packages: pypi:pyyaml==6.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(stdio, "--method", "tools/call", "--tool-name", "run_python_code")
			for _, a := range tc.args {
				args = append(args, "--tool-arg", a)
			}
			out := inspector(t, args...)
			raw, _ := json.Marshal(out["structuredContent"])
			if out["structuredContent"] == nil {
				raw, _ = json.Marshal(out["content"]) // a refused request: its error's text
			}
			if isErr, _ := out["isError"].(bool); isErr != tc.isError {
				t.Errorf("isError %v, want %v: %s", out["isError"], tc.isError, raw)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(raw), want) {
					t.Errorf("result lacks %s: %s", want, raw)
				}
			}
		})
	}
}
