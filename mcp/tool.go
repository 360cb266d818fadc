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
	"github.com/conductor-sandbox/conductor/event"
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
	TypeCheck    bool            `json:"typecheck,omitempty" jsonschema:"Type-check the code first (strict TypeScript against deno's, mcpFactory's and the upstream servers' declarations); a type error returns error.type \"type\" with each diagnostic's line and column, and nothing runs. false does not turn off a server that checks every call."`
}

// RunOutput is the output value the tool handlers hand the go-sdk: always nil. The structured
// output, the engine.Result `conductor exec --json` prints, is encoded by call into
// StructuredContent itself: the go-sdk re-encodes an output value through map[string]any, which
// sorts every object's keys, returnValue's among them. The output schema is given explicitly.
type RunOutput interface{ runOutput() }

// anyJSON is the schema of a value that may be any JSON. It must not be the
// empty schema: that serialises as `true`, which TypeScript MCP clients
// reject along with the whole tools/list.
func anyJSON() *jsonschema.Schema {
	return &jsonschema.Schema{Description: "any JSON value"}
}

// outputsSchema is the structured result's outputs: what the run returned as files and images.
func outputsSchema() *jsonschema.Schema {
	str := func(d string) *jsonschema.Schema { return &jsonschema.Schema{Type: "string", Description: d} }
	return &jsonschema.Schema{
		Type:        "array",
		Description: "The files the run returned (its outputs directory, and workspace files it named), in order; each is also in the content: an image, an embedded resource or a resource link.",
		Items: &jsonschema.Schema{
			Type:     "object",
			Required: []string{"name", "bytes"},
			Properties: map[string]*jsonschema.Schema{
				"name":      str("The file's name (its path in the outputs directory, or in the workspace)."),
				"mimeType":  str("Its type, sniffed from the content."),
				"bytes":     {Type: "integer", Description: "Its size."},
				"uri":       str("Where resources/read reads it while it is kept (conductor://outputs/… or conductor://workspace/…); none when only inline."),
				"workspace": {Type: "boolean", Description: "A workspace file, read from the workspace when asked."},
				"skipped":   str("Why it is not returned (over a cap, a link, a special file …); absent when returned."),
			},
		},
	}
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
	out.Properties["outputs"] = outputsSchema()
	return in, out, nil
}

// runHandler executes one call.
func (s *Server) runHandler(ctx context.Context, req *sdk.CallToolRequest, in RunInput) (*sdk.CallToolResult, RunOutput, error) {
	r := engine.Request{
		Code:         in.DenoCode,
		Timeout:      time.Duration(in.Timeout) * time.Millisecond,
		Globals:      in.Globals,
		Dependencies: in.Dependencies,
		TypeCheck:    in.TypeCheck,
	}
	sub := submitted{language: "typescript", code: in.DenoCode}
	if in.Timeout < 0 {
		return s.refuse(ctx, req, summary, sub, fmt.Errorf("%w: timeout %d ms: must be positive; allowed: 1 to %d ms", engine.ErrInvalidRequest, in.Timeout, s.opt().MaxTimeout.Milliseconds()))
	}
	return s.call(ctx, req, summary, sub, func(ctx context.Context, observe func(string, []byte)) (*engine.Result, error) {
		r.OnOutput = observe
		return s.opt().Engine.Execute(ctx, r)
	})
}

// submitted is what a call asked to run, for its event.Execution.
type submitted struct {
	language string
	code     string // the code, or for several files their names and contents
}

// call runs one execution for a tool (run reports its output to observe)
// and makes the tool's result: text is what a client that reads only text
// content sees; isError when the run did not succeed. A request the engine
// refused is a result too (engine.Refusal), with error.type saying why.
// When upstream tools require approval, the run's context says whom to ask
// (approval.go).
func (s *Server) call(ctx context.Context, req *sdk.CallToolRequest, text func(*sandbox.Result) string, sub submitted,
	run func(ctx context.Context, observe func(string, []byte)) (*engine.Result, error)) (*sdk.CallToolResult, RunOutput, error) {
	scope := scopeOf(req)
	ctx = event.WithScope(ctx, scope)
	exec := func(ctx context.Context, progress bool) (*sdk.CallToolResult, error) {
		t0 := time.Now()
		var observe func(string, []byte)
		stop := func() {}
		if progress {
			observe, stop = s.reportProgress(ctx, req)
		}
		var end func(cpu time.Duration)
		if q := s.opt().Quotas; q != nil {
			var qerr error
			if end, qerr = q.Begin(scope.Identity); qerr != nil {
				run = func(context.Context, func(string, []byte)) (*engine.Result, error) {
					return nil, fmt.Errorf("%w: %w", engine.ErrQuota, qerr)
				}
			}
		}
		res, err := run(ctx, observe)
		if end != nil {
			var cpu time.Duration
			if res != nil && res.Result != nil {
				cpu = time.Duration(res.CPUMs * float64(time.Millisecond))
			}
			end(cpu)
		}
		stop()
		refused := err != nil
		if refused {
			if errors.Is(err, context.Canceled) {
				err = fmt.Errorf("cancelled before the execution started: %w", err)
			}
			res = engine.Refusal(err)
		}
		s.report(t0, scope, sub, res, refused)
		out, _, err := s.toolResult(scope.Identity, res, text)
		return out, err
	}
	if s.opt().Upstreams != nil && s.opt().Upstreams.HasApprovals() && req != nil && req.Session != nil {
		switch {
		case canElicit(req) && req.ProtocolVersion() >= protocolMRTR:
			// The run goes on after this call returns its questions: no
			// progress notifications for a request that has ended.
			return s.callApproving(ctx, req, func(ctx context.Context) (*sdk.CallToolResult, error) { return exec(ctx, false) })
		case canElicit(req):
			ctx = withApprover(ctx, directApprover{req.Session})
		}
	}
	res, err := exec(ctx, true)
	return res, nil, err
}

// refuse is the tool result of a request refused before it reached the engine; it is reported
// as an execution like any other.
func (s *Server) refuse(ctx context.Context, req *sdk.CallToolRequest, text func(*sandbox.Result) string, sub submitted, err error) (*sdk.CallToolResult, RunOutput, error) {
	return s.call(ctx, req, text, sub, func(context.Context, func(string, []byte)) (*engine.Result, error) { return nil, err })
}

// scopeOf names who made req and how: the identity its bearer token was verified as
// (TokenInfo.UserID), "http" for the one token of an HTTP server without identities, "stdio"
// on stdio; its MCP session; the tool.
func scopeOf(req *sdk.CallToolRequest) event.Scope {
	sc := event.Scope{Identity: identityOf(nil)}
	if req == nil {
		return sc
	}
	if req.Params != nil {
		sc.Tool = req.Params.Name
	}
	if req.Session != nil {
		sc.Session = req.Session.ID()
	}
	sc.Identity = identityOf(req.Extra)
	return sc
}

// identityOf is the identity of a request with extra ex (see scopeOf).
func identityOf(ex *sdk.RequestExtra) string {
	switch {
	case ex == nil:
	case ex.TokenInfo != nil && ex.TokenInfo.UserID != "":
		return ex.TokenInfo.UserID
	case ex.Header != nil:
		return "http"
	}
	return "stdio"
}

// report sends the event.Execution of one call that started at t0.
func (s *Server) report(t0 time.Time, scope event.Scope, sub submitted, res *engine.Result, refused bool) {
	r := res.Result
	e := event.Execution{
		Time: t0, Scope: scope, Language: sub.language, CodeSHA256: event.Hash(sub.code), CodeBytes: len(sub.code), Code: sub.code,
		Status: string(r.Status), Refused: refused,
		Queued: time.Duration(r.QueuedMs * float64(time.Millisecond)), Start: r.StartWait, Duration: time.Since(t0),
		CPU: time.Duration(r.CPUMs * float64(time.Millisecond)), MemoryPeakBytes: r.MemoryPeakBytes, LimitHit: r.LimitHit,
		Calls: r.Calls,
	}
	if r.Error != nil {
		e.ErrorType = r.Error.Type
	}
	if !refused {
		e.Duration -= e.Queued
	}
	for _, n := range r.Network {
		if n.Allowed {
			e.NetAllowed++
		} else {
			e.NetDenied++
		}
	}
	s.events.Execution(e)
}

// toolResult is res as the tool's result: its JSON, keys in the order encoding/json writes them
// (returnValue's in the order the code made them), as structuredContent; text as the first
// content, with a line for each output, then the outputs as content (outputs.go), kept for
// identity.
func (s *Server) toolResult(identity string, res *engine.Result, text func(*sandbox.Result) string) (*sdk.CallToolResult, RunOutput, error) {
	o := s.opt()
	var files []sdk.Content
	body := text(res.Result)
	if len(res.Outputs) > 0 {
		r := *res.Result
		var how []string
		files, r.Outputs, how = outputContent(o.OutputStore, identity, outputLimits{image: o.OutputsInline, total: o.OutputsInlineTotal}, res.Outputs, o.Logger)
		res = &engine.Result{Result: &r}
		body += outputsSummary(r.Outputs, how)
	}
	structured, err := json.Marshal(res)
	if err != nil {
		return nil, nil, fmt.Errorf("mcp: encoding the result: %w", err)
	}
	return &sdk.CallToolResult{
		IsError:           res.Status != sandbox.StatusSuccess,
		Content:           append([]sdk.Content{&sdk.TextContent{Text: body}}, files...),
		StructuredContent: json.RawMessage(structured),
	}, nil, nil
}

// summary is the text a client that reads only text content sees.
func summary(r *sandbox.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s", r.Status)
	if r.Error != nil {
		fmt.Fprintf(&b, " (%s)", r.Error.Type)
	}
	b.WriteString(timing(r) + "\n")
	if e := r.Error; e != nil {
		where := ""
		if e.Line > 0 {
			where = fmt.Sprintf(" at line %d, column %d", e.Line, e.Column)
		}
		msg := e.Message
		if e.Name != "" && !strings.HasPrefix(msg, e.Name+":") {
			msg = e.Name + ": " + msg
		}
		fmt.Fprintf(&b, "error%s: %s\n", where, msg)
		if at := userFrame(e.Stack); at != "" {
			fmt.Fprintf(&b, "    %s\n", at)
		}
	}
	if len(r.ReturnValue) > 0 && string(r.ReturnValue) != sandbox.UndefinedJSON {
		fmt.Fprintf(&b, "returnValue: %s\n", r.ReturnValue)
		if r.ReturnTruncated {
			b.WriteString("(returnValue truncated)\n")
		}
	}
	section := func(name, text string, truncated bool, total int64, file string) {
		if text == "" {
			return
		}
		fmt.Fprintf(&b, "%s:\n%s", name, text)
		if !strings.HasSuffix(text, "\n") {
			b.WriteByte('\n')
		}
		b.WriteString(truncation(name, len(text), total, truncated, file))
	}
	if r.PendingStopped {
		fmt.Fprintf(&b, "note: work left pending after the result (timers, unawaited promises) was stopped %s after it; await what must finish\n", sandbox.AfterResultGrace)
	}
	section("stdout", r.Stdout, r.StdoutTruncated, r.StdoutBytes, r.StdoutFile)
	section("stderr", r.Stderr, r.StderrTruncated, r.StderrBytes, r.StderrFile)
	if r.OutputNote != "" {
		fmt.Fprintf(&b, "note: %s\n", r.OutputNote)
	}
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

// timing is the end of the summary's status line: how long the call took and waited for an
// execution slot, or that it was refused before it ran (engine.Refusal: no time, no exit code).
func timing(r *sandbox.Result) string {
	switch {
	case r.DurationMs == 0 && r.ExitCode == nil && r.Error != nil:
		return ", refused before it ran"
	case r.QueuedMs >= 1:
		return fmt.Sprintf(" in %.0f ms, after %.0f ms waiting for a free slot", r.DurationMs, r.QueuedMs)
	}
	return fmt.Sprintf(" in %.0f ms", r.DurationMs)
}

// truncation is the line saying a stream was cut, and which file holds it in full ("" when it
// was not cut).
func truncation(name string, shown int, total int64, truncated bool, file string) string {
	if !truncated {
		return ""
	}
	where := ""
	if file != "" {
		where = "; the full " + name + " is in " + file
	}
	return fmt.Sprintf("(%s truncated: %d of %d bytes shown%s)\n", name, shown, total, where)
}

// userFrame is the innermost frame of a stack that is in the user's code, "" if none: V8's first
// "at f (main.ts:3:9)", or a Python traceback's last `File "main.py", line 3, in f`.
func userFrame(stack string) string {
	frame := ""
	for _, l := range strings.Split(stack, "\n") {
		switch l = strings.TrimSpace(l); {
		case strings.HasPrefix(l, "at ") && strings.Contains(l, "main.ts:"):
			return l
		case strings.HasPrefix(l, `File "main.py", line `):
			frame = l
		}
	}
	return frame
}

// netDest formats a network record's destination ("name" for a lookup).
func netDest(host string, port int) string {
	if port == 0 {
		return "lookup of " + host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
