package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/allowance"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// Upstreams is what the mcpFactory proxy needs of the upstream manager.
type Upstreams interface {
	Names() []string
	ListTools(ctx context.Context, server string) ([]*sdk.Tool, error)
	CallTool(ctx context.Context, server, tool string, args map[string]any) (*sdk.CallToolResult, error)
	ListResources(ctx context.Context, server string) ([]*sdk.Resource, error)
	ReadResource(ctx context.Context, server, uri string) (*sdk.ReadResourceResult, error)
	ListPrompts(ctx context.Context, server string) ([]*sdk.Prompt, error)
	GetPrompt(ctx context.Context, server, name string, args map[string]string) (*sdk.GetPromptResult, error)
	// RequiresApproval reports whether a call of tool on server waits for
	// the user's approval (requireApproval in the upstream config).
	RequiresApproval(server, tool string) bool
}

// Factory answers mcpFactory calls from sandboxed code
// (sandbox.CallHandler). Every argument comes from untrusted code; upstream
// credentials and configuration stay on this side.
type Factory struct {
	up     Upstreams
	log    *slog.Logger
	events event.Sink
	quotas *allowance.Limiter
}

// NewFactory returns the handler for mcpFactory calls.
func NewFactory(up Upstreams, log *slog.Logger) *Factory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Factory{up: up, log: log, events: event.Multi()}
}

// ReportTo sends an event.UpstreamCall for every call to s (the audit log, metrics), naming the
// scope of the execution that made it (event.ScopeOf its context). Set it before serving.
func (f *Factory) ReportTo(s event.Sink) *Factory {
	f.events = event.Multi(s)
	return f
}

// LimitBy admits each upstream call (listServers aside) by the upstream_calls_per_minute quota of
// the identity of the execution that made it (event.ScopeOf its context); a refused call fails
// in the code with the quota's message, and is reported with outcome "refused". Set it before
// serving.
func (f *Factory) LimitBy(l *allowance.Limiter) *Factory {
	f.quotas = l
	return f
}

// factoryParams are a call's parameters, as the bootstrap sends them.
type factoryParams struct {
	Server string          `json:"server"`
	Tool   string          `json:"tool"`
	Args   json.RawMessage `json:"args"`
	URI    string          `json:"uri"`
	Name   string          `json:"name"`
}

// Call implements sandbox.CallHandler.
//
// Every tool call of sandboxed code comes here (callTool: mcpFactory's and
// any binding that sends the same frame). A tool that requires approval is
// called only once the user accepted (approve); the decision is logged and
// in the run's mcpCallDetails.
func (f *Factory) Call(ctx context.Context, method string, raw json.RawMessage) (result any, err error) {
	t0 := time.Now()
	var approval string // the decision, when the call required one
	toolError := false  // the upstream tool reported an error
	var p factoryParams
	if err := sandbox.DecodeParams(method, raw, &p); err != nil {
		return nil, err
	}
	defer func() {
		if errors.Is(err, upstream.ErrCrashed) {
			err = &endExecution{err}
		}
		outcome, msg := "ok", ""
		switch {
		case errors.Is(err, ErrApprovalDeclined), errors.Is(err, ErrApprovalUnavailable), errors.Is(err, allowance.ErrExceeded):
			outcome, msg = "refused", err.Error()
		case toolError:
			outcome, msg = "tool_error", err.Error()
		case err != nil:
			outcome, msg = "error", err.Error()
		}
		took := time.Since(t0)
		sandbox.RecordCall(ctx, sandbox.CallDetail{Method: method, Server: p.Server, Tool: p.Tool,
			Ms: sandbox.Millis(took), Outcome: outcome, Approval: approval, Error: msg})
		f.events.UpstreamCall(event.UpstreamCall{Time: t0, Scope: event.ScopeOf(ctx), Method: method, Server: p.Server,
			Tool: p.Tool, Duration: took, Outcome: outcome, IsError: outcome != "ok", Error: msg})
		f.log.Debug("mcpFactory call", "method", method, "server", p.Server, "tool", p.Tool, "ms", time.Since(t0).Milliseconds(), "outcome", outcome, "error", msg)
	}()
	if q := f.quotas; q != nil && method != "listServers" {
		if err := q.Call(event.ScopeOf(ctx).Identity); err != nil {
			return nil, err
		}
	}
	if method != "listServers" && p.Server == "" {
		return nil, fmt.Errorf("%s: no server named; load one of: %s", method, strings.Join(f.up.Names(), ", "))
	}
	switch method {
	case "listServers":
		return f.up.Names(), nil
	case "listTools":
		tools, err := f.up.ListTools(ctx, p.Server)
		if err != nil {
			return nil, err
		}
		out := make([]map[string]any, 0, len(tools))
		for _, t := range tools {
			m := map[string]any{"name": t.Name, "description": t.Description, "inputSchema": t.InputSchema}
			if t.OutputSchema != nil {
				m["outputSchema"] = t.OutputSchema
			}
			out = append(out, m)
		}
		return out, nil
	case "callTool":
		if p.Tool == "" {
			return nil, errors.New("callTool(name, args): name must be a tool name")
		}
		var args map[string]any
		if len(p.Args) > 0 && string(p.Args) != "null" {
			if err := json.Unmarshal(p.Args, &args); err != nil {
				return nil, fmt.Errorf("callTool(%q, args): args must be an object", p.Tool)
			}
		}
		if f.up.RequiresApproval(p.Server, p.Tool) {
			// The user is shown the arguments as they will be sent, not as
			// code wrote them: a key written twice is sent with its last
			// value, which could hide past the question's cut.
			if approval, err = f.approve(ctx, p.Server, p.Tool, canonicalArgs(args)); err != nil {
				return nil, err
			}
		}
		res, err := f.up.CallTool(ctx, p.Server, p.Tool, args)
		if err != nil {
			return nil, err
		}
		toolError = res.IsError
		return toolValue(res)
	case "listResources":
		return f.up.ListResources(ctx, p.Server)
	case "readResource":
		if p.URI == "" {
			return nil, errors.New("readResource(uri): uri must be a string")
		}
		return f.up.ReadResource(ctx, p.Server, p.URI)
	case "listPrompts":
		return f.up.ListPrompts(ctx, p.Server)
	case "getPrompt":
		if p.Name == "" {
			return nil, errors.New("getPrompt(name, args): name must be a prompt name")
		}
		var args map[string]string
		if len(p.Args) > 0 && string(p.Args) != "null" {
			if err := json.Unmarshal(p.Args, &args); err != nil {
				return nil, fmt.Errorf("getPrompt(%q, args): args must be an object of strings", p.Name)
			}
		}
		return f.up.GetPrompt(ctx, p.Server, p.Name, args)
	}
	return nil, fmt.Errorf("unknown mcpFactory method %q", method)
}

// canonicalArgs is args as the upstream receives them (keys once, sorted;
// numbers as decoded), for the approval question.
func canonicalArgs(args map[string]any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(args); err != nil {
		return json.RawMessage("null")
	}
	return bytes.TrimSpace(b.Bytes())
}

// approve asks the user, through the approver the run's request put in
// ctx, whether the call of tool on server with args may go on. It returns
// the decision and, unless it was accepted, the refusal code sees. The wait
// is bounded by ctx, which ends with the execution (its timeout runs on).
func (f *Factory) approve(ctx context.Context, server, tool string, args json.RawMessage) (string, error) {
	a := approverFrom(ctx)
	var d string
	var cause error
	if a == nil {
		d = ApprovalUnavailable
	} else if d, cause = a.approve(ctx, approvalQuestion(server, tool, args)); cause != nil {
		if ctx.Err() != nil { // the execution ended while the user was asked
			f.log.Info("nested tool call approval", "server", server, "tool", tool, "decision", "abandoned", "reason", "the execution ended")
			return "", fmt.Errorf("the execution ended while the user was asked to approve the call of tool %q on server %q: %w", tool, server, ctx.Err())
		}
		d = ApprovalUnavailable
	}
	log := f.log.With("server", server, "tool", tool, "decision", d)
	if cause != nil {
		log = log.With("error", cause)
	}
	log.Info("nested tool call approval")
	if d == ApprovalAccepted {
		return d, nil
	}
	return d, approvalError(d, server, tool, cause)
}

// endExecution ends the execution whose call was in flight when an upstream
// died: the call may have killed it (a shared server every execution
// uses), and the code must not be able to do it again and again.
type endExecution struct{ err error }

func (e *endExecution) Error() string {
	return e.err.Error() + "; this execution was ended because its call may have brought the server down (the next call, from any execution, restarts it)"
}

func (e *endExecution) Unwrap() []error { return []error{sandbox.ErrEndExecution, e.err} }

// toolValue is what callTool resolves to: the structured content when there
// is some, else the parsed JSON of the text, else the text (else the content
// itself). An upstream error becomes a rejection with its message.
func toolValue(res *sdk.CallToolResult) (any, error) {
	var text strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			text.WriteString(t.Text)
		}
	}
	if res.IsError {
		msg := strings.TrimSpace(text.String())
		if msg == "" {
			msg = "the upstream tool reported an error"
		}
		return nil, errors.New(msg)
	}
	if res.StructuredContent != nil {
		return res.StructuredContent, nil
	}
	if text.Len() > 0 {
		s := text.String()
		if json.Valid([]byte(strings.TrimSpace(s))) {
			return json.RawMessage(strings.TrimSpace(s)), nil
		}
		return s, nil
	}
	return res.Content, nil
}
