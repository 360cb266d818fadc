package mcp

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/mcp/toolsearch"
	"github.com/conductor-sandbox/conductor/mcp/typegen"
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
	// Declarations is the TypeScript of these tools' typed bindings
	// (package typegen): servers.<server>.<tool>(args).
	Declarations string `json:"declarations"`
}

// SearchToolsInput is search_tools' input.
type SearchToolsInput struct {
	Query  string `json:"query" jsonschema:"what the tool should do, in words (e.g. 'write a file', 'add numbers')"`
	Server string `json:"server,omitempty" jsonschema:"search only this upstream server"`
	Limit  int    `json:"limit,omitempty" jsonschema:"at most this many results (default 5, at most 50)"`
}

// SearchHit is one search_tools result.
type SearchHit struct {
	Server      string  `json:"server"`
	Tool        string  `json:"tool"`
	Signature   string  `json:"signature" jsonschema:"how to call it from run_deno_code; nested object types are shortened, get_tool_details has them in full"`
	Description string  `json:"description,omitempty" jsonschema:"the first sentence of the tool's description"`
	Score       float64 `json:"score"`
}

// SearchUnavailable is a server search_tools could not list.
type SearchUnavailable struct {
	Server string `json:"server"`
	Error  string `json:"error"`
}

// SearchToolsOutput is search_tools' output.
type SearchToolsOutput struct {
	Results     []SearchHit         `json:"results"`
	Unavailable []SearchUnavailable `json:"unavailable,omitempty"`
}

// Search limits of search_tools.
const (
	defaultSearchLimit = 5
	maxSearchLimit     = 50
)

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
		Name: "get_tool_details",
		Description: "Describe tools of one upstream MCP server: name, description, input and output schema, and `declarations`, " +
			"the TypeScript of their typed bindings (call them in run_deno_code as servers.<server>.<tool>(args)). " +
			"Name the tools you need (search_tools finds them) rather than listing all.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: boolPtr(false)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in ToolDetailsInput) (*sdk.CallToolResult, ToolDetailsOutput, error) {
		tools, err := s.types.Tools(ctx, in.Server)
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
		if out.Declarations, err = s.types.ForTools(ctx, in.Server, in.Tools); err != nil {
			return nil, ToolDetailsOutput{}, err
		}
		return nil, out, nil
	})
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name: "search_tools",
		Description: "Find upstream MCP tools by what they do (ranked by name, parameters and description; offline). " +
			"Returns each tool's server, name, one-line TypeScript signature and first sentence; then get_tool_details gives the full declarations " +
			"of the ones you will call.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: boolPtr(false)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in SearchToolsInput) (*sdk.CallToolResult, SearchToolsOutput, error) {
		if strings.TrimSpace(in.Query) == "" {
			return nil, SearchToolsOutput{}, fmt.Errorf("search_tools needs a query: a few words saying what the tool should do (e.g. \"write a file\")")
		}
		return nil, s.searchTools(ctx, m, in), nil
	})
}

// searchTools ranks the tools of every enabled upstream (or of in.Server)
// for in.Query.
func (s *Server) searchTools(ctx context.Context, m *upstream.Manager, in SearchToolsInput) SearchToolsOutput {
	limit := in.Limit
	if limit <= 0 {
		limit = defaultSearchLimit
	}
	limit = min(limit, maxSearchLimit)
	servers := m.Names()
	if in.Server != "" {
		servers = []string{in.Server}
	}
	out := SearchToolsOutput{Results: []SearchHit{}}
	var docs []toolsearch.Tool
	for _, name := range servers {
		tools, err := s.types.Tools(ctx, name)
		if err != nil {
			out.Unavailable = append(out.Unavailable, SearchUnavailable{Server: name, Error: err.Error()})
			continue
		}
		for _, t := range tools {
			docs = append(docs, toolsearch.Tool{Server: name, Tool: t})
		}
	}
	for _, h := range toolsearch.New(docs).Search(in.Query, limit) {
		out.Results = append(out.Results, SearchHit{
			Server:      h.Server,
			Tool:        h.Tool.Tool.Name,
			Signature:   typegen.Signature(h.Server, h.Tool.Tool),
			Description: firstSentence(h.Tool.Tool.Description),
			Score:       math.Round(h.Score*100) / 100,
		})
	}
	return out
}

// firstSentence is the description up to its first sentence end or line
// break, at most 200 characters.
func firstSentence(d string) string {
	d = strings.TrimSpace(d)
	if i := strings.IndexAny(d, "\n\r"); i >= 0 {
		d = d[:i]
	}
	if i := strings.Index(d, ". "); i >= 0 {
		d = d[:i+1]
	}
	if r := []rune(d); len(r) > 200 {
		d = string(r[:199]) + "…"
	}
	return d
}
