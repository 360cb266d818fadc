package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// recordSink keeps every event.
type recordSink struct {
	mu    sync.Mutex
	execs []event.Execution
	calls []event.UpstreamCall
}

func (r *recordSink) Execution(e event.Execution) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.execs = append(r.execs, e)
}

func (r *recordSink) UpstreamCall(c event.UpstreamCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// callUpstreams answers callTool: "ok" succeeds, "bad" is a tool error, anything else fails.
type callUpstreams struct{ staticUpstreams }

func (callUpstreams) RequiresApproval(string, string) bool { return false }

func (callUpstreams) CallTool(_ context.Context, _, tool string, _ map[string]any) (*sdk.CallToolResult, error) {
	switch tool {
	case "ok":
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "fine"}}}, nil
	case "bad":
		return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "bad input"}}}, nil
	}
	return nil, errors.New("upstream went away")
}

// TestFactoryReportsCalls: every mcpFactory call, whatever its outcome, is one
// event.UpstreamCall naming the scope of the execution that made it.
func TestFactoryReportsCalls(t *testing.T) {
	rec := &recordSink{}
	f := NewFactory(callUpstreams{}, nil).ReportTo(rec)
	scope := event.Scope{Identity: "alice", Session: "s1", Tool: "run_deno_code"}
	ctx := event.WithScope(context.Background(), scope)
	for _, tool := range []string{"ok", "bad", "gone"} {
		_, _ = f.Call(ctx, "callTool", json.RawMessage(`{"server":"a","tool":"`+tool+`"}`))
	}
	_, _ = f.Call(ctx, "callTool", json.RawMessage(`{"tool":"ok"}`)) // no server: refused by the factory
	want := []struct {
		tool, outcome string
		isError       bool
		errHas        string
	}{
		{"ok", "ok", false, ""},
		{"bad", "tool_error", true, "bad input"},
		{"gone", "error", true, "upstream went away"},
		{"ok", "error", true, "no server named"},
	}
	if len(rec.calls) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(rec.calls), len(want), rec.calls)
	}
	for i, w := range want {
		c := rec.calls[i]
		switch {
		case c.Scope != scope:
			t.Errorf("call %d: scope %+v, want %+v", i, c.Scope, scope)
		case c.Method != "callTool" || c.Tool != w.tool || c.Outcome != w.outcome || c.IsError != w.isError:
			t.Errorf("call %d: %+v, want tool %s outcome %s isError %v", i, c, w.tool, w.outcome, w.isError)
		case !strings.Contains(c.Error, w.errHas):
			t.Errorf("call %d: error %q, want it to say %q", i, c.Error, w.errHas)
		case c.Time.IsZero() || c.Duration < 0:
			t.Errorf("call %d: time %v duration %v", i, c.Time, c.Duration)
		}
	}
}

// TestScopeOf: the identity comes from the verified token's UserID, else the transport.
func TestScopeOf(t *testing.T) {
	tests := []struct {
		name string
		req  *sdk.CallToolRequest
		want event.Scope
	}{
		{"no request", nil, event.Scope{Identity: "stdio"}},
		{"stdio", &sdk.CallToolRequest{Params: &sdk.CallToolParamsRaw{Name: "run_deno_code"}}, event.Scope{Identity: "stdio", Tool: "run_deno_code"}},
		{"http, one token", &sdk.CallToolRequest{Params: &sdk.CallToolParamsRaw{Name: "execute_code"}, Extra: &sdk.RequestExtra{Header: http.Header{}}},
			event.Scope{Identity: "http", Tool: "execute_code"}},
		{"http, a verified identity", &sdk.CallToolRequest{Params: &sdk.CallToolParamsRaw{Name: "run_python_code"},
			Extra: &sdk.RequestExtra{Header: http.Header{}, TokenInfo: &auth.TokenInfo{UserID: "bob"}}},
			event.Scope{Identity: "bob", Tool: "run_python_code"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := scopeOf(tc.req); got != tc.want {
				t.Errorf("scopeOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRefusalReported: a call refused before it reaches the engine is an execution event too,
// with the code's hash and size, the refusal's error type and the tool.
func TestRefusalReported(t *testing.T) {
	rec := &recordSink{}
	s := &Server{events: event.Multi(rec)}
	s.cur.Store(&Options{MaxTimeout: time.Minute})
	req := &sdk.CallToolRequest{Params: &sdk.CallToolParamsRaw{Name: "run_deno_code"}}
	res, _, err := s.runHandler(context.Background(), req, RunInput{DenoCode: "export default 1", Timeout: -1})
	if err != nil || res == nil || !res.IsError {
		t.Fatalf("refusal: %+v, %v", res, err)
	}
	if len(rec.execs) != 1 {
		t.Fatalf("%d execution events, want 1", len(rec.execs))
	}
	e := rec.execs[0]
	switch {
	case !e.Refused || e.Status != string(sandbox.StatusError) || e.ErrorType != sandbox.ErrorInvalidRequest:
		t.Errorf("event %+v: want refused, status error, type %s", e, sandbox.ErrorInvalidRequest)
	case e.Tool != "run_deno_code" || e.Identity != "stdio" || e.Language != "typescript":
		t.Errorf("event scope %+v language %q", e.Scope, e.Language)
	case e.CodeSHA256 != event.Hash("export default 1") || e.CodeBytes != len("export default 1") || e.Code != "export default 1":
		t.Errorf("event code fields: %q %d %q", e.CodeSHA256, e.CodeBytes, e.Code)
	}
}
