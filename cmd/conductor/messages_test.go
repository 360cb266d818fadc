package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestExecUncaughtMcpErrorLine: through `conductor exec`, an upstream error the code does not
// catch is reported at the line and column of the code's callTool.
func TestExecUncaughtMcpErrorLine(t *testing.T) {
	up := sdk.NewServer(&sdk.Implementation{Name: "failing", Version: "1"}, nil)
	sdk.AddTool(up, &sdk.Tool{Name: "fail", Description: "always reports a tool error"},
		func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "deliberate failure"}}}, nil, nil
		})
	srv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, nil))
	t.Cleanup(srv.Close)
	cfg := filepath.Join(t.TempDir(), "mcp.json")
	b, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{"up": map[string]any{"url": srv.URL, "type": "http"}}})
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code := "const u = mcpFactory.load(\"up\");\n\n  await u.callTool(\"fail\");"
	out, errOut, exit := conductor(t, code, []string{"MCP_CONDUCTOR_MCP_CONFIG=" + cfg}, "exec", "--json", "-")
	if exit != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", exit, errOut)
	}
	var res struct {
		Error struct {
			Name, Message string
			Line, Column  int
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if e := res.Error; e.Name != "McpError" || !strings.Contains(e.Message, "deliberate failure") || e.Line != 3 || e.Column != 11 {
		t.Errorf("error %+v: want the McpError at line 3, column 11 (the callTool)", e)
	}
}

// TestExecWorkspace: `conductor exec` runs code in the workspace, and doctor warns (without
// failing the check) when allow-read/allow-write do not cover it.
func TestExecWorkspace(t *testing.T) {
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	ws, _ = filepath.EvalSymlinks(ws)
	env := []string{"MCP_CONDUCTOR_WORKSPACE=" + ws, "MCP_CONDUCTOR_RUN_ARGS=allow-read=" + ws + ",allow-write=" + ws}
	out, errOut, code := conductor(t, "await Deno.writeTextFile('rel.txt', 'here'); Deno.cwd()", env, "exec", "-")
	if code != 0 || out != `"`+ws+`"`+"\n" {
		t.Fatalf("exit %d stdout %q stderr %q; want the workspace as the working directory", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "rel.txt")); err != nil || string(b) != "here" {
		t.Errorf("a relative write did not land in the workspace: %q, %v", b, err)
	}
	if strings.Contains(errOut, "does not grant") {
		t.Errorf("warned though the workspace is granted: %q", errOut)
	}

	_, errOut, _ = conductor(t, "1", []string{"MCP_CONDUCTOR_WORKSPACE=" + ws, "MCP_CONDUCTOR_RUN_ARGS=allow-read=" + ws}, "exec", "-")
	want := "MCP_CONDUCTOR_RUN_ARGS does not grant allow-write=" + ws
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr %q: want the warning %q", errOut, want)
	}
	out, _, _ = conductor(t, "", []string{"MCP_CONDUCTOR_WORKSPACE=" + ws}, "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, c := range rep.Checks {
		if c.Name == "workspace" {
			if !c.OK || !strings.HasPrefix(c.Detail, "WARNING: MCP_CONDUCTOR_WORKSPACE is "+ws+", but MCP_CONDUCTOR_RUN_ARGS does not grant allow-read="+ws+" or allow-write="+ws) {
				t.Errorf("workspace check %+v: want it ok, with the warning first", c)
			}
			return
		}
	}
	t.Errorf("doctor has no workspace check: %s", out)
}
