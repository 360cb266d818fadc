package mcp

import (
	"context"
	"fmt"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/mcp/upstream"
)

// ServerInfo is one entry of list_mcp_servers.
type ServerInfo struct {
	Name        string `json:"name"`
	Transport   string `json:"transport"`
	Status      string `json:"status"`
	Tools       int    `json:"tools" jsonschema:"tool count from the last listing; -1 if not listed yet"`
	Resources   int    `json:"resources"`
	Prompts     int    `json:"prompts"`
	LastError   string `json:"lastError,omitempty"`
	LastErrorAt string `json:"lastErrorAt,omitempty"`
}

// ListServersOutput is list_mcp_servers' output.
type ListServersOutput struct {
	Servers []ServerInfo `json:"servers"`
}

// ToolDetailsInput is get_tool_details' input.
type ToolDetailsInput struct {
	Server string   `json:"server" jsonschema:"the upstream server's name, as list_mcp_servers gives it"`
	Tools  []string `json:"tools,omitempty" jsonschema:"tool names; omit for every tool the server allows"`
}

// ToolDetail describes one upstream tool.
type ToolDetail struct {
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	InputSchema  any    `json:"inputSchema,omitempty"`
	OutputSchema any    `json:"outputSchema,omitempty"`
}

// ToolDetailsOutput is get_tool_details' output.
type ToolDetailsOutput struct {
	Server string       `json:"server"`
	Tools  []ToolDetail `json:"tools"`
}

// addProxyTools registers list_mcp_servers and get_tool_details.
func (s *Server) addProxyTools(m *upstream.Manager) {
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:        "list_mcp_servers",
		Description: "List the upstream MCP servers code can reach through mcpFactory: name, transport, status, counts of tools/resources/prompts, last error.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: boolPtr(false)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, ListServersOutput, error) {
		var out ListServersOutput
		for _, st := range m.Status(ctx) {
			info := ServerInfo{Name: st.Name, Transport: st.Transport, Status: st.State,
				Tools: st.Tools, Resources: st.Resources, Prompts: st.Prompts, LastError: st.LastError}
			if !st.LastErrorAt.IsZero() {
				info.LastErrorAt = st.LastErrorAt.UTC().Format(time.RFC3339)
			}
			out.Servers = append(out.Servers, info)
		}
		if out.Servers == nil {
			out.Servers = []ServerInfo{}
		}
		return nil, out, nil
	})
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:        "get_tool_details",
		Description: "Describe tools of one upstream MCP server (name, description, input and output schema), to call them from run_deno_code with mcpFactory.load(server).callTool(name, args).",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: boolPtr(false)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in ToolDetailsInput) (*sdk.CallToolResult, ToolDetailsOutput, error) {
		tools, err := m.ListTools(ctx, in.Server)
		if err != nil {
			return nil, ToolDetailsOutput{}, err
		}
		filter := len(in.Tools) > 0
		want := map[string]bool{}
		for _, t := range in.Tools {
			want[t] = true
		}
		found := map[string]bool{}
		out := ToolDetailsOutput{Server: in.Server, Tools: []ToolDetail{}}
		for _, t := range tools {
			if filter && !want[t.Name] {
				continue
			}
			found[t.Name] = true
			out.Tools = append(out.Tools, ToolDetail{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema, OutputSchema: t.OutputSchema})
		}
		for _, name := range in.Tools {
			if !found[name] {
				return nil, ToolDetailsOutput{}, fmt.Errorf("server %q has no tool %q that code may call", in.Server, name)
			}
		}
		return nil, out, nil
	})
}
