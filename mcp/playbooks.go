package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/playbook"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// The playbook tools (Options.Playbooks); save_playbook only when the directory is writable.
const (
	ListPlaybooksTool = "list_playbooks"
	GetPlaybookTool   = "get_playbook"
	SavePlaybookTool  = "save_playbook"
	// PlaybookScheme is the scheme of a playbook's MCP resource: playbook://NAME.
	PlaybookScheme = "playbook"
	playbookMIME   = "text/typescript"
)

// PlaybookInfo is one playbook as list_playbooks and get_playbook show it.
type PlaybookInfo struct {
	Name        string         `json:"name" jsonschema:"The playbook's name: run it with await playbooks.run(name, args)."`
	Description string         `json:"description" jsonschema:"What it does."`
	Inputs      map[string]any `json:"inputs,omitempty" jsonschema:"The JSON Schema of its args, when it takes any."`
}

// ListPlaybooksInput is list_playbooks' input (none).
type ListPlaybooksInput struct{}

// ListPlaybooksOutput is list_playbooks' output.
type ListPlaybooksOutput struct {
	Playbooks []PlaybookInfo `json:"playbooks" jsonschema:"Every playbook, by name."`
}

// GetPlaybookInput is get_playbook's input.
type GetPlaybookInput struct {
	Name string `json:"name" jsonschema:"The playbook's name."`
}

// GetPlaybookOutput is get_playbook's output.
type GetPlaybookOutput struct {
	PlaybookInfo
	Code string `json:"code" jsonschema:"Its TypeScript, after the front-matter; args holds its arguments."`
	File string `json:"file" jsonschema:"The whole file: the front-matter comment, then the code (positions in its errors are this file's)."`
}

// SavePlaybookInput is save_playbook's input.
type SavePlaybookInput struct {
	Name        string         `json:"name" jsonschema:"The name: a lowercase letter or digit, then up to 63 lowercase letters, digits, _ or -."`
	Description string         `json:"description" jsonschema:"What it does and what it returns (at most 1024 bytes)."`
	Inputs      map[string]any `json:"inputs,omitempty" jsonschema:"A JSON Schema (type object) of its arguments; playbooks.run checks args against it."`
	Code        string         `json:"code" jsonschema:"TypeScript as for run_deno_code: its last expression (or top-level return) is the result; the constant args holds the arguments."`
	Overwrite   bool           `json:"overwrite,omitempty" jsonschema:"Replace a playbook of the same name (refused without it)."`
}

// SavePlaybookOutput is save_playbook's output.
type SavePlaybookOutput struct {
	Saved string `json:"saved" jsonschema:"The playbook's name."`
	URI   string `json:"uri" jsonschema:"Its MCP resource."`
}

// addPlaybookTools registers the playbook tools and resources.
func (s *Server) addPlaybookTools() {
	d := s.opt().Playbooks
	ro := &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: boolPtr(false)}
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:  ListPlaybooksTool,
		Title: "List playbooks",
		Description: "List the server's playbooks: saved, reusable TypeScript that code run by " + ToolName +
			" calls with `await playbooks.run(name, args)`. Each has a name, a description and the JSON Schema of its args.",
		Annotations: ro,
	}, func(ctx context.Context, _ *sdk.CallToolRequest, _ ListPlaybooksInput) (*sdk.CallToolResult, ListPlaybooksOutput, error) {
		s.syncPlaybookResources()
		out := ListPlaybooksOutput{Playbooks: []PlaybookInfo{}}
		for _, p := range d.List() {
			out.Playbooks = append(out.Playbooks, playbookInfo(p))
		}
		return nil, out, nil
	})
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:        GetPlaybookTool,
		Title:       "Get a playbook",
		Description: "Get one playbook: its front-matter (name, description, inputs), its code and its whole file.",
		Annotations: ro,
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in GetPlaybookInput) (*sdk.CallToolResult, GetPlaybookOutput, error) {
		s.syncPlaybookResources()
		p, err := d.Get(in.Name)
		if err != nil {
			return nil, GetPlaybookOutput{}, err
		}
		return nil, GetPlaybookOutput{PlaybookInfo: playbookInfo(p), Code: p.Code, File: p.Source}, nil
	})
	if d.Writable() {
		sdk.AddTool(s.sdk, &sdk.Tool{
			Name:  SavePlaybookTool,
			Title: "Save a playbook",
			Description: fmt.Sprintf("Save TypeScript as a playbook that later code runs with `await playbooks.run(name, args)`. "+
				"The code is written as for %s (its last expression or top-level return is the result) and reads its arguments from the constant `args`, "+
				"checked against inputs before it runs. The code must parse; at most %d bytes; an existing name is replaced only with overwrite: true.",
				ToolName, playbook.MaxBytes),
			Annotations: &sdk.ToolAnnotations{DestructiveHint: boolPtr(false), OpenWorldHint: boolPtr(false)},
		}, func(ctx context.Context, _ *sdk.CallToolRequest, in SavePlaybookInput) (*sdk.CallToolResult, SavePlaybookOutput, error) {
			m := playbook.Meta{Name: in.Name, Description: in.Description}
			if in.Inputs != nil {
				b, err := json.Marshal(in.Inputs)
				if err != nil {
					return nil, SavePlaybookOutput{}, fmt.Errorf("inputs: %w", err)
				}
				m.Inputs = b
			}
			if _, err := d.Save(ctx, m, in.Code, in.Overwrite); err != nil {
				return nil, SavePlaybookOutput{}, err
			}
			s.syncPlaybookResources()
			return nil, SavePlaybookOutput{Saved: in.Name, URI: playbookURI(in.Name)}, nil
		})
	}
	s.syncPlaybookResources()
	s.sdk.AddReceivingMiddleware(s.playbooksMiddleware)
}

func playbookURI(name string) string { return PlaybookScheme + "://" + name }

func playbookInfo(p *playbook.Playbook) PlaybookInfo {
	info := PlaybookInfo{Name: p.Name, Description: p.Description}
	if len(p.Inputs) > 0 {
		_ = json.Unmarshal(p.Inputs, &info.Inputs) // Parse checked it is an object
	}
	return info
}

// syncPlaybookResources makes the server's resources the playbooks' (playbook://NAME, the whole
// file); the go-sdk tells clients the list changed.
func (s *Server) syncPlaybookResources() {
	list := s.opt().Playbooks.List()
	s.playbooksMu.Lock()
	defer s.playbooksMu.Unlock()
	if s.playbookRes == nil {
		s.playbookRes = map[string]string{}
	}
	now := map[string]*playbook.Playbook{}
	for _, p := range list {
		now[p.Name] = p
	}
	var gone []string
	for name, src := range s.playbookRes {
		if p, ok := now[name]; !ok || p.Source != src {
			gone = append(gone, playbookURI(name))
			delete(s.playbookRes, name)
		}
	}
	if len(gone) > 0 {
		s.sdk.RemoveResources(gone...)
	}
	for name, p := range now {
		if _, ok := s.playbookRes[name]; ok {
			continue
		}
		s.playbookRes[name] = p.Source
		uri := playbookURI(name)
		s.sdk.AddResource(&sdk.Resource{
			URI: uri, Name: name, Title: "playbook " + name, MIMEType: playbookMIME,
			Description: p.Description + " (run it with await playbooks.run(" + fmt.Sprintf("%q", name) + ", args) in " + ToolName + ")",
			Size:        int64(len(p.Source)),
		}, func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			cur, err := s.opt().Playbooks.Get(name)
			if err != nil {
				return nil, sdk.ResourceNotFoundError(uri)
			}
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: uri, MIMEType: playbookMIME, Text: cur.Source}}}, nil
		})
	}
}

// playbooksMiddleware re-reads the playbooks before resources are listed or read.
func (s *Server) playbooksMiddleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if method == "resources/list" || method == "resources/read" {
			s.syncPlaybookResources()
		}
		return next(ctx, method, req)
	}
}

// playbooksDescription is what run_deno_code's description says about the playbooks global.
func (s *Server) playbooksDescription() string {
	if s.opt().Playbooks == nil {
		return ""
	}
	return "The global `playbooks` runs the server's saved playbooks (see list_playbooks): `await playbooks.run(name, args)` resolves to the playbook's value " +
		"(args are checked against its inputs schema first; an error in it rejects with a PlaybookError naming it and its line); `await playbooks.list()` lists them. "
}

// Calls routes the host calls of sandboxed code: the playbooks global's to the playbooks, the
// rest (mcpFactory's) to the upstream proxy. Either may be nil.
type Calls struct {
	Factory   *Factory
	Playbooks *playbook.Calls
}

// NewCalls returns the handler of the calls sandboxed code can make: nil when there is nothing
// to call, the factory alone without playbooks.
func NewCalls(f *Factory, pb *playbook.Calls) sandbox.CallHandler {
	switch {
	case f == nil && pb == nil:
		return nil
	case pb == nil:
		return f
	}
	return &Calls{Factory: f, Playbooks: pb}
}

// Serves implements sandbox.Globals.
func (c *Calls) Serves(global string) bool {
	switch global {
	case sandbox.GlobalMCPFactory:
		return c.Factory != nil
	case sandbox.GlobalPlaybooks:
		return c.Playbooks != nil
	}
	return false
}

// errNoPlaybooks answers a playbooks call on a server without them.
var errNoPlaybooks = errors.New("this server has no playbooks (the admin sets " + config.VarPlaybooks + ")")

// Call implements sandbox.CallHandler.
func (c *Calls) Call(ctx context.Context, method string, params json.RawMessage) (any, error) {
	if strings.HasPrefix(method, "playbooks.") {
		if c.Playbooks == nil {
			return nil, errNoPlaybooks
		}
		return c.Playbooks.Call(ctx, method, params)
	}
	if c.Factory == nil {
		return nil, fmt.Errorf("mcpFactory is not available: this server has no upstream MCP servers configured (the admin sets %s)", config.VarMCPConfig)
	}
	return c.Factory.Call(ctx, method, params)
}
