package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/engine"
)

// PythonToolName is the tool users of mcp-run-python know: Python code whose last expression is
// the result.
const PythonToolName = "run_python_code"

// PythonInput is run_python_code's input.
type PythonInput struct {
	PythonCode string          `json:"python_code" jsonschema:"Python 3 code, run as a module: top-level await works; the value of the last expression statement is returnValue."`
	Timeout    int64           `json:"timeout,omitempty" jsonschema:"Timeout in milliseconds."`
	Globals    json.RawMessage `json:"globals,omitempty" jsonschema:"A JSON object; each key becomes a read-only name in the code (JSON objects arrive as dicts, arrays as lists)."`
	// Dependencies mirrors run_deno_code's: checked, never installed by a call.
	Dependencies []string `json:"dependencies,omitempty" jsonschema:"PyPI distribution names the code needs (e.g. pyyaml); each must be one of the server's allowed packages, which the admin has installed. Omit the version to get the one the server pins."`
}

func pythonSchemas() (in, out *jsonschema.Schema, err error) {
	opts := &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		reflect.TypeFor[json.RawMessage](): anyJSON(),
	}}
	if in, err = jsonschema.For[PythonInput](opts); err != nil {
		return nil, nil, err
	}
	// A plain type, as run_deno_code's (clients build arguments from the schema's single type).
	in.Properties["globals"] = &jsonschema.Schema{Type: "object", Description: in.Properties["globals"].Description}
	in.Properties["dependencies"] = &jsonschema.Schema{
		Type: "array", Items: &jsonschema.Schema{Type: "string"},
		Description: in.Properties["dependencies"].Description,
	}
	if _, out, err = schemas(); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

// pythonHandler runs one run_python_code call.
func (s *Server) pythonHandler(ctx context.Context, req *sdk.CallToolRequest, in PythonInput) (*sdk.CallToolResult, RunOutput, error) {
	sub := submitted{language: "python", code: in.PythonCode}
	if in.Timeout < 0 {
		return s.refuse(ctx, req, summary, sub, fmt.Errorf("%w: timeout %d ms: must be positive; allowed: 1 to %d ms", engine.ErrInvalidRequest, in.Timeout, s.opt().MaxTimeout.Milliseconds()))
	}
	return s.call(ctx, req, summary, sub, func(ctx context.Context, observe func(string, []byte)) (*engine.Result, error) {
		return s.opt().Engine.ExecutePython(ctx, engine.PythonRequest{
			Code: in.PythonCode, Globals: in.Globals, Dependencies: in.Dependencies,
			Timeout: time.Duration(in.Timeout) * time.Millisecond, OnOutput: observe,
		})
	})
}

// pythonDescription tells the model what run_python_code does here.
func (s *Server) pythonDescription() string {
	var b strings.Builder
	b.WriteString("Run Python 3 code in a fresh hardened sandbox that is destroyed afterwards (nothing persists between calls). " +
		"Returns stdout, stderr, the value of the last expression statement as returnValue (JSON; other Python values are " +
		"tagged with $type: tuple, set, bytes, bigint, datetime, decimal, dataclass, exception, object with its class, circular), " +
		"and a structured error with the line and column in your code. Top-level await works. ")
	b.WriteString(s.opt().Engine.PythonImports() + " ")
	b.WriteString(s.outputsDescription(helpersPython))
	if s.opt().Network != "" {
		fmt.Fprintf(&b, "Network (enforced by the server below Python): %s. ", s.opt().Network)
	} else {
		b.WriteString("No network. ")
	}
	if names := s.upstreamNames(); names != "" {
		fmt.Fprintf(&b, "The global `mcpFactory` reaches these MCP servers: %s. "+
			"`await mcpFactory.load(name).call_tool(tool, args)` returns the tool's structured content, else its parsed JSON text "+
			"(dicts and lists), else the text; an upstream error raises McpError; also list_tools(), list_resources(), "+
			"read_resource(uri), list_prompts(), get_prompt(name, args), and mcpFactory.list_servers() (camelCase aliases too). "+
			"Calls run in parallel with asyncio.gather; process results in code and return only a summary. ", names)
	}
	fmt.Fprintf(&b, "Default timeout %d ms, maximum %d ms.", s.opt().DefaultTimeout.Milliseconds(), s.opt().MaxTimeout.Milliseconds())
	return b.String()
}

// addPythonTool registers run_python_code.
func (s *Server) addPythonTool() error {
	in, out, err := pythonSchemas()
	if err != nil {
		return fmt.Errorf("mcp: run_python_code schemas: %w", err)
	}
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:         PythonToolName,
		Title:        "Run Python code in a sandbox",
		Description:  s.pythonDescription(),
		InputSchema:  in,
		OutputSchema: out,
		Annotations: &sdk.ToolAnnotations{
			DestructiveHint: boolPtr(false),
			OpenWorldHint:   boolPtr(false),
		},
	}, s.pythonHandler)
	return nil
}
