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
