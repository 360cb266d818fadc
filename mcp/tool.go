package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// ToolName is the one tool agents call.
const ToolName = "run_deno_code"

// RunInput is run_deno_code's input.
type RunInput struct {
	DenoCode     string          `json:"deno_code" jsonschema:"TypeScript or JavaScript to run as an ES module. The value of the last top-level expression statement, or of a top-level return statement, is returned as returnValue. Top-level await works."`
	Timeout      int64           `json:"timeout,omitempty" jsonschema:"Timeout in milliseconds."`
	Globals      json.RawMessage `json:"globals,omitempty" jsonschema:"A JSON object; each key becomes a read-only global variable (usable as name and globalThis.name) before the code runs."`
	Dependencies []string        `json:"dependencies,omitempty" jsonschema:"npm: or jsr: package specifiers the code needs; each must be in the server's allowed packages. Omit the version to get the one the server pins."`
}

// RunOutput is run_deno_code's structured output: the same object
// `conductor exec --json` prints.
type RunOutput = engine.Result

// anyJSON is the schema of a value that may be any JSON. It must not be the
// empty schema: that serialises as `true`, which TypeScript MCP clients
// reject along with the whole tools/list.
func anyJSON() *jsonschema.Schema {
	return &jsonschema.Schema{Description: "any JSON value"}
}

func schemas() (in, out *jsonschema.Schema, err error) {
	opts := &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		reflect.TypeFor[json.RawMessage](): anyJSON(),
	}}
	if in, err = jsonschema.For[RunInput](opts); err != nil {
		return nil, nil, err
	}
	// Plain types, not the inferred ["null", …] unions: clients (the
	// inspector among them) build arguments from the schema's single type.
	in.Properties["globals"] = &jsonschema.Schema{Type: "object", Description: in.Properties["globals"].Description}
	in.Properties["dependencies"] = &jsonschema.Schema{
		Type: "array", Items: &jsonschema.Schema{Type: "string"},
		Description: in.Properties["dependencies"].Description,
	}
	if out, err = jsonschema.For[sandbox.Result](opts); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

// runHandler executes one call.
func (s *Server) runHandler(ctx context.Context, req *sdk.CallToolRequest, in RunInput) (*sdk.CallToolResult, *RunOutput, error) {
	r := engine.Request{
		Code:         in.DenoCode,
		Timeout:      time.Duration(in.Timeout) * time.Millisecond,
		Globals:      in.Globals,
		Dependencies: in.Dependencies,
	}
	if in.Timeout < 0 {
		return nil, nil, fmt.Errorf("timeout %d ms: must be positive; allowed: 1 to %d ms", in.Timeout, s.o.MaxTimeout.Milliseconds())
	}
	return s.call(ctx, req, summary, func(observe func(string, []byte)) (*engine.Result, error) {
		r.OnOutput = observe
		return s.o.Engine.Execute(ctx, r)
	})
}

// call runs one execution for a tool (run reports its output to observe)
// and makes the tool's result: text is what a client that reads only text
// content sees; isError when the run did not succeed.
func (s *Server) call(ctx context.Context, req *sdk.CallToolRequest, text func(*sandbox.Result) string,
	run func(observe func(string, []byte)) (*engine.Result, error)) (*sdk.CallToolResult, *RunOutput, error) {
	observe, stop := s.reportProgress(ctx, req)
	res, err := run(observe)
	stop()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, nil, errors.New("cancelled before the execution started")
		}
		return nil, nil, err
	}
	return &sdk.CallToolResult{
		IsError: res.Status != sandbox.StatusSuccess,
		Content: []sdk.Content{&sdk.TextContent{Text: text(res.Result)}},
	}, res, nil
}

// summary is the text a client that reads only text content sees.
func summary(r *sandbox.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s", r.Status)
	if r.Error != nil {
		fmt.Fprintf(&b, " (%s)", r.Error.Type)
	}
	fmt.Fprintf(&b, " in %.0f ms\n", r.DurationMs)
	if r.Error != nil {
		where := ""
		if r.Error.Line > 0 {
			where = fmt.Sprintf(" at line %d, column %d", r.Error.Line, r.Error.Column)
		}
		fmt.Fprintf(&b, "error%s: %s\n", where, r.Error.Message)
	}
	if len(r.ReturnValue) > 0 && string(r.ReturnValue) != `{"$type":"undefined"}` {
		fmt.Fprintf(&b, "returnValue: %s\n", r.ReturnValue)
		if r.ReturnTruncated {
			b.WriteString("(returnValue truncated)\n")
		}
	}
	section := func(name, text string, truncated bool, total int64) {
		if text == "" {
			return
		}
		fmt.Fprintf(&b, "%s:\n%s", name, text)
		if !strings.HasSuffix(text, "\n") {
			b.WriteByte('\n')
		}
		if truncated {
			fmt.Fprintf(&b, "(%s truncated: %d of %d bytes shown)\n", name, len(text), total)
		}
	}
	if r.PendingStopped {
		fmt.Fprintf(&b, "note: work left pending after the result (timers, unawaited promises) was stopped %s after it; await what must finish\n", sandbox.AfterResultGrace)
	}
	section("stdout", r.Stdout, r.StdoutTruncated, r.StdoutBytes)
	section("stderr", r.Stderr, r.StderrTruncated, r.StderrBytes)
	for _, n := range r.Network {
		if !n.Allowed {
			fmt.Fprintf(&b, "network refused: %s: %s\n", netDest(n.Host, n.Port), n.Reason)
		}
	}
	if len(r.Degraded) > 0 {
		fmt.Fprintf(&b, "DEGRADED: %s\n", strings.Join(r.Degraded, "; "))
	}
	return b.String()
}

// netDest formats a network record's destination ("name" for a lookup).
func netDest(host string, port int) string {
	if port == 0 {
		return "lookup of " + host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
