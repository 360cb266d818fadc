package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// recordingUpstreams records what reaches the upstreams. Tools named
// "guarded*" require approval.
type recordingUpstreams struct {
	mu    sync.Mutex
	calls []recordedCall
}

type recordedCall struct {
	method, server, tool, uri, name string
	args                            any
}

func (u *recordingUpstreams) add(c recordedCall) {
	u.mu.Lock()
	u.calls = append(u.calls, c)
	u.mu.Unlock()
}

func (u *recordingUpstreams) Names() []string { return []string{"a", "b"} }
func (u *recordingUpstreams) ListTools(_ context.Context, server string) ([]*sdk.Tool, error) {
	u.add(recordedCall{method: "listTools", server: server})
	return nil, nil
}
func (u *recordingUpstreams) CallTool(_ context.Context, server, tool string, args map[string]any) (*sdk.CallToolResult, error) {
	u.add(recordedCall{method: "callTool", server: server, tool: tool, args: args})
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil
}
func (u *recordingUpstreams) ListResources(_ context.Context, server string) ([]*sdk.Resource, error) {
	u.add(recordedCall{method: "listResources", server: server})
	return nil, nil
}
func (u *recordingUpstreams) ReadResource(_ context.Context, server, uri string) (*sdk.ReadResourceResult, error) {
	u.add(recordedCall{method: "readResource", server: server, uri: uri})
	return &sdk.ReadResourceResult{}, nil
}
func (u *recordingUpstreams) ListPrompts(_ context.Context, server string) ([]*sdk.Prompt, error) {
	u.add(recordedCall{method: "listPrompts", server: server})
	return nil, nil
}
func (u *recordingUpstreams) GetPrompt(_ context.Context, server, name string, args map[string]string) (*sdk.GetPromptResult, error) {
	u.add(recordedCall{method: "getPrompt", server: server, name: name, args: args})
	return &sdk.GetPromptResult{}, nil
}
func (u *recordingUpstreams) RequiresApproval(_, tool string) bool {
	return strings.HasPrefix(tool, "guarded")
}

// answerApprover answers every question with its decision and keeps the
// questions.
type answerApprover struct {
	decision  string
	questions []*sdk.ElicitParams
}

func (a *answerApprover) approve(_ context.Context, q *sdk.ElicitParams) (string, error) {
	a.questions = append(a.questions, q)
	return a.decision, nil
}

// FuzzFactoryParams: every mcpFactory call's parameters come from
// sandboxed code. The factory decodes them strictly: a malformed call
// reaches no upstream and its error names the method; what reaches an
// upstream is exactly what the parameters say (server, tool, uri, name,
// args as an object); a tool that requires approval is called only after
// the user accepted, and the question shows exactly the arguments that
// are then sent.
func FuzzFactoryParams(f *testing.F) {
	for _, s := range []struct{ method, params string }{
		{"callTool", `{"server":"a","tool":"echo","args":{"message":"hi"}}`},
		{"callTool", `{"server":"a","tool":"guarded","args":{"path":"/safe","path":"/etc/shadow"}}`},
		{"callTool", `{"server":"a","tool":"guarded","args":{"n":12345678901234567890,"s":"<b>&"}}`},
		{"callTool", `{"server":"a","tool":"x","args":[1]}`},
		{"callTool", `{"server":"a","tool":"x","sneaky":1}`},
		{"callTool", `{"server":"a","tool":"x","args":null}`},
		{"callTool", `{"server":"a","tool":"x"}{"server":"b"}`},
		{"listServers", ``},
		{"listTools", `{"server":"b"}`},
		{"readResource", `{"server":"a","uri":"file:///x"}`},
		{"getPrompt", `{"server":"a","name":"p","args":{"k":"v"}}`},
		{"getPrompt", `{"server":"a","name":"p","args":{"k":1}}`},
		{"exec", `{"server":"a"}`},
	} {
		f.Add(s.method, []byte(s.params), true)
	}
	f.Fuzz(func(t *testing.T, method string, raw []byte, accept bool) {
		up := &recordingUpstreams{}
		fac := NewFactory(up, nil)
		ap := &answerApprover{decision: ApprovalDeclined}
		if accept {
			ap.decision = ApprovalAccepted
		}
		ctx := withApprover(context.Background(), ap)
		_, err := fac.Call(ctx, method, raw)

		var p factoryParams
		strict := true
		if len(raw) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			strict = dec.Decode(&p) == nil
		}
		if !strict {
			if err == nil || !strings.HasPrefix(err.Error(), method+": malformed parameters") {
				t.Fatalf("malformed parameters %q: error %v", raw, err)
			}
		}
		if len(up.calls) > 1 {
			t.Fatalf("one call reached the upstreams %d times", len(up.calls))
		}
		if len(up.calls) == 0 {
			if len(ap.questions) > 0 && accept && err == nil {
				t.Fatal("an accepted call reached no upstream and did not fail")
			}
			return
		}
		c := up.calls[0]
		if !strict || c.method != method || c.server != p.Server || c.server == "" || err != nil {
			t.Fatalf("call %q %q reached the upstream as %+v (err %v)", method, raw, c, err)
		}
		switch method {
		case "callTool":
			var want map[string]any
			if len(p.Args) > 0 && string(p.Args) != "null" {
				if json.Unmarshal(p.Args, &want) != nil {
					t.Fatalf("args %s are not an object, yet sent", p.Args)
				}
			}
			if c.tool != p.Tool || c.tool == "" || !reflect.DeepEqual(c.args, want) {
				t.Fatalf("callTool sent %q %v, parameters %q %s", c.tool, c.args, p.Tool, p.Args)
			}
			guarded := strings.HasPrefix(p.Tool, "guarded")
			if guarded != (len(ap.questions) == 1) || guarded && !accept {
				t.Fatalf("tool %q called with %d questions asked, accepted %v", p.Tool, len(ap.questions), accept)
			}
			if guarded {
				shown := approvalQuestion(p.Server, p.Tool, canonicalArgs(want)).Message
				if ap.questions[0].Message != shown {
					t.Fatalf("the user was asked\n%s\nbut the call sends\n%s", ap.questions[0].Message, shown)
				}
			}
		case "readResource":
			if c.uri != p.URI || c.uri == "" {
				t.Fatalf("readResource sent %q, parameters %q", c.uri, p.URI)
			}
		case "getPrompt":
			if c.name != p.Name || c.name == "" {
				t.Fatalf("getPrompt sent %q, parameters %q", c.name, p.Name)
			}
		case "listTools", "listResources", "listPrompts":
		default:
			t.Fatalf("method %q reached the upstreams", method)
		}
	})
}
