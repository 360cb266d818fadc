package mcp_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestE2ERunPythonCode: the inspector CLI, as a real client, calls run_python_code over stdio: a
// return value with Python types, globals, top-level await, and an exception with its line.
func TestE2ERunPythonCode(t *testing.T) {
	mcpTools(t)
	bin := conductorBin(t)
	denoBin(t)
	stdio := []string{"-e", "MCP_CONDUCTOR_STATE_DIR=" + t.TempDir(), "-e", "MCP_CONDUCTOR_PYTHON=" + hostPython(t), bin, "serve"}
	list := inspector(t, append(stdio, "--method", "tools/list")...)
	raw, _ := json.Marshal(list)
	if !strings.Contains(string(raw), `"run_python_code"`) {
		t.Fatalf("tools/list has no run_python_code: %.2000s", raw)
	}
	tests := []struct {
		name    string
		args    []string
		isError bool
		want    string // in the structured result's JSON
	}{
		{"value with python types", []string{"python_code=import asyncio\nawait asyncio.sleep(0)\nprint('hi')\n(city, {1, 2}, 2**70)", `globals={"city": "Paris"}`}, false,
			`"returnValue":{"$type":"tuple","values":["Paris",{"$type":"set","values":[1,2]},{"$type":"bigint","value":"1180591620717411303424"}]}`},
		{"stdout kept apart", []string{"python_code=print('hi')\n1"}, false, `"stdout":"hi\n"`},
		{"exception with its line", []string{"python_code=x = 1\n\nraise ValueError('boom')"}, true, `"line":3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(stdio, "--method", "tools/call", "--tool-name", "run_python_code")
			for _, a := range tc.args {
				args = append(args, "--tool-arg", a)
			}
			out := inspector(t, args...)
			raw, _ := json.Marshal(out["structuredContent"])
			if isErr, _ := out["isError"].(bool); isErr != tc.isError || !strings.Contains(string(raw), tc.want) {
				t.Errorf("isError %v, structured %s; want isError %v and %s", out["isError"], raw, tc.isError, tc.want)
			}
		})
	}
}
