package mcp_test

// End-to-end tests of approvals of nested tool calls (requireApproval):
// real `conductor serve` over stdio, real sandboxes and deno, real upstreams
// (server-everything, server-memory), and real clients — go-sdk clients with
// an elicitation handler on both protocols (2026-07-28, where the question
// comes back as inputRequests of the tools/call and the client calls again;
// 2025-11-25, where the server asks with elicitation/create while the call
// is in flight), a go-sdk client without one, and the inspector CLI.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// asker is a client's elicitation handler under the test's control.
type asker struct {
	mu     sync.Mutex
	decide func(ctx context.Context, msg string) string // the action; nil: "accept"
	asked  []string                                     // the messages, in order
}

func (a *asker) handle(ctx context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
	a.mu.Lock()
	a.asked = append(a.asked, req.Params.Message)
	decide := a.decide
	a.mu.Unlock()
	action := "accept"
	if decide != nil {
		action = decide(ctx, req.Params.Message)
	}
	res := &sdk.ElicitResult{Action: action}
	if action == "accept" {
		res.Content = map[string]any{}
	}
	return res, nil
}

func (a *asker) reset(decide func(ctx context.Context, msg string) string) {
	a.mu.Lock()
	a.decide, a.asked = decide, nil
	a.mu.Unlock()
}

func (a *asker) questions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.asked...)
}

// approvalConfig: echo on everything and create_entities on memory need the
// user's approval; every other tool does not.
func approvalConfig(t *testing.T, ft factoryTools) map[string]any {
	memFile := filepath.Join(t.TempDir(), "memory.jsonl")
	return map[string]any{
		"everything": map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"}, "requireApproval": []string{"echo"}},
		"memory": map[string]any{"command": ft.node, "args": []string{ft.memory}, "env": map[string]string{"MEMORY_FILE_PATH": memFile},
			"requireApproval": []string{"create_entities"}},
	}
}

// callDetail is one entry of mcpCallDetails.
type callDetail struct {
	Method, Server, Tool, Outcome, Approval, Error string
	Ms                                             float64
}

func details(t *testing.T, r result) []callDetail {
	t.Helper()
	var out []callDetail
	decodeInto(t, r.out["mcpCallDetails"], &out)
	return out
}

// detailOf is the first detail of tool, failing the test when there is none.
func detailOf(t *testing.T, r result, tool string) callDetail {
	t.Helper()
	for _, d := range details(t, r) {
		if d.Tool == tool {
			return d
		}
	}
	t.Fatalf("mcpCallDetails has no call of %s: %s", tool, r)
	return callDetail{}
}

const declinedCode = `const m = mcpFactory.load("memory");
let refusal = "the call went through";
try {
  await m.callTool("create_entities", { entities: [{ name: "approval-probe", entityType: "probe", observations: ["x"] }] });
} catch (e) {
  refusal = e.name + ": " + e.message;
}
const graph = await m.callTool("read_graph", {});
return { refusal, names: graph.entities.map((e) => e.name) };`

// typedDeclinedCode is declinedCode through the typed binding servers.memory.
const typedDeclinedCode = `let refusal = "the call went through";
try {
  await servers.memory.create_entities({ entities: [{ name: "approval-probe", entityType: "probe", observations: ["x"] }] });
} catch (e) {
  refusal = e.name + ": " + e.message;
}
const graph = await servers.memory.read_graph({});
return { refusal, names: graph.entities.map((e) => e.name) };`

// checkDeclined: the code caught the refusal, the upstream was not called, the user was asked
// once with the arguments, and the call's detail says declined.
func checkDeclined(t *testing.T, r result, asked []string) {
	expectSuccess(t, r)
	rv, _ := r.out["returnValue"].(map[string]any)
	want := `McpError: the user declined the call of tool "create_entities" on server "memory"`
	if got := fmt.Sprint(rv["refusal"]); !strings.HasPrefix(got, want) {
		t.Errorf("the code caught %q, want %q", got, want)
	}
	if names, _ := rv["names"].([]any); len(names) != 0 {
		t.Errorf("the graph holds %v after a declined create_entities: the upstream was called", names)
	}
	if len(asked) != 1 || !strings.Contains(asked[0], `"approval-probe"`) {
		t.Errorf("questions %q, want one naming the entity", asked)
	}
	if d := detailOf(t, r, "create_entities"); d.Approval != "declined" || d.Outcome != "refused" || !strings.Contains(d.Error, "declined") {
		t.Errorf("create_entities' detail %+v, want declined and refused", d)
	}
}

// TestE2EApprovals: a nested call of a tool that requires approval asks the
// user through the client's elicitation, on the 2026-07-28 protocol (input
// requests and a retry) and on 2025-11-25 (a request while the call is in
// flight). Accept: the call goes through and the value comes back; decline:
// the code catches an McpError naming tool and server, and the upstream was
// never called (server-memory's graph stays empty); cancel likewise; two
// calls in parallel are each asked; a user who takes longer than the run's
// timeout leaves a run that timed out normally. Every decision is in
// mcpCallDetails and the log.
func TestE2EApprovals(t *testing.T) {
	ft := needFactoryTools(t)
	for _, proto := range []struct {
		name    string
		version string // "" = the go-sdk's newest
		want    string // the negotiated version
	}{
		{"multi round trip", "", "2026-07-28"},
		{"elicitation request", "2025-11-25", "2025-11-25"},
	} {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			a := &asker{}
			var sopts *sdk.ClientSessionOptions
			if proto.version != "" {
				sopts = &sdk.ClientSessionOptions{ProtocolVersion: proto.version}
			}
			s := startFactoryServerWith(t, &sdk.ClientOptions{ElicitationHandler: a.handle}, sopts, approvalConfig(t, ft), nil)
			if got := s.cs.InitializeResult().ProtocolVersion; got != proto.want {
				t.Fatalf("negotiated protocol %q, want %q", got, proto.want)
			}
			cases := []struct {
				name    string
				decide  func(ctx context.Context, msg string) string
				code    string
				timeout int
				check   func(t *testing.T, r result, asked []string)
			}{
				{
					name: "accept", code: `const ev = mcpFactory.load("everything");
const echoed = await ev.callTool("echo", { message: "approved hello" });
const sum = await ev.callTool("get-sum", { a: 20, b: 22 });
return { echoed, sum };`,
					check: func(t *testing.T, r result, asked []string) {
						expectSuccess(t, r)
						rv, _ := r.out["returnValue"].(map[string]any)
						if e := fmt.Sprint(rv["echoed"]); !strings.Contains(e, "approved hello") {
							t.Errorf("echo returned %q, want the message back", e)
						}
						if sum := fmt.Sprint(rv["sum"]); !strings.Contains(sum, "42") {
							t.Errorf("get-sum returned %q, want 42", sum)
						}
						if len(asked) != 1 {
							t.Fatalf("the user was asked %d times, want once (echo; get-sum needs no approval): %q", len(asked), asked)
						}
						for _, want := range []string{`"echo"`, `"everything"`, `"message": "approved hello"`} {
							if !strings.Contains(asked[0], want) {
								t.Errorf("the question %q does not contain %s", asked[0], want)
							}
						}
						if d := detailOf(t, r, "echo"); d.Approval != "accepted" || d.Outcome != "ok" || d.Server != "everything" || d.Method != "callTool" {
							t.Errorf("echo's detail %+v, want accepted and ok", d)
						}
						if d := detailOf(t, r, "get-sum"); d.Approval != "" || d.Outcome != "ok" {
							t.Errorf("get-sum's detail %+v, want no approval and ok", d)
						}
						if n, _ := r.out["mcpCalls"].(float64); n != 2 {
							t.Errorf("mcpCalls %v, want 2", r.out["mcpCalls"])
						}
					},
				},
				{
					name: "decline", decide: func(context.Context, string) string { return "decline" }, code: declinedCode,
					check: checkDeclined,
				},
				{
					// The typed binding sends the same callTool: the same question, the same refusal.
					name: "decline through servers.memory", decide: func(context.Context, string) string { return "decline" }, code: typedDeclinedCode,
					check: checkDeclined,
				},
				{
					name: "cancel", decide: func(context.Context, string) string { return "cancel" }, code: declinedCode,
					check: func(t *testing.T, r result, asked []string) {
						expectSuccess(t, r)
						rv, _ := r.out["returnValue"].(map[string]any)
						if got := fmt.Sprint(rv["refusal"]); !strings.Contains(got, "dismissed the approval") || !strings.Contains(got, "the call was not made") {
							t.Errorf("the code caught %q, want the dismissal", got)
						}
						if names, _ := rv["names"].([]any); len(names) != 0 {
							t.Errorf("the graph holds %v after a cancelled create_entities", names)
						}
						if d := detailOf(t, r, "create_entities"); d.Approval != "cancelled" || d.Outcome != "refused" {
							t.Errorf("create_entities' detail %+v, want cancelled and refused", d)
						}
					},
				},
				{
					name: "parallel calls are each asked",
					code: `const ev = mcpFactory.load("everything");
return await Promise.all([ev.callTool("echo", { message: "one" }), ev.callTool("echo", { message: "two" })]);`,
					check: func(t *testing.T, r result, asked []string) {
						expectSuccess(t, r)
						if got := fmt.Sprint(r.out["returnValue"]); !strings.Contains(got, "one") || !strings.Contains(got, "two") {
							t.Errorf("returnValue %s, want both echoes", got)
						}
						joined := strings.Join(asked, "\n")
						if len(asked) != 2 || !strings.Contains(joined, `"one"`) || !strings.Contains(joined, `"two"`) {
							t.Errorf("questions %q, want one per call", asked)
						}
						for _, d := range details(t, r) {
							if d.Approval != "accepted" || d.Outcome != "ok" {
								t.Errorf("detail %+v, want accepted and ok", d)
							}
						}
					},
				},
				{
					name: "the timeout runs while the user decides", timeout: 2500,
					decide: func(ctx context.Context, _ string) string {
						select { // a user who answers too late
						case <-ctx.Done():
						case <-time.After(6 * time.Second):
						}
						return "accept"
					},
					code: `await mcpFactory.load("everything").callTool("echo", { message: "slow" }); return "ran"`,
					check: func(t *testing.T, r result, asked []string) {
						if r.str("status") != "timeout" {
							t.Fatalf("want a run that timed out, got %s", r)
						}
						if ms, _ := r.out["durationMs"].(float64); ms < 2500 || ms > 5000 {
							t.Errorf("durationMs %v, want the 2500 ms timeout (and a little)", ms)
						}
						if len(asked) != 1 {
							t.Errorf("questions %q, want one", asked)
						}
					},
				},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					a.reset(c.decide)
					args := map[string]any{"deno_code": c.code, "timeout": 45000}
					if c.timeout > 0 {
						args["timeout"] = c.timeout
					}
					r := run(t, s.cs, args)
					c.check(t, r, a.questions())
				})
			}
			// One log line per decision, naming server, tool and decision.
			log := s.stderr.String()
			for _, want := range []string{
				`msg="nested tool call approval" server=everything tool=echo decision=accepted`,
				`msg="nested tool call approval" server=memory tool=create_entities decision=declined`,
				`msg="nested tool call approval" server=memory tool=create_entities decision=cancelled`,
			} {
				if !strings.Contains(log, want) {
					t.Errorf("the log lacks %s", want)
				}
			}
		})
	}
}

const unavailableMsg = `tool "echo" on server "everything" requires the user's approval, and this MCP client cannot be asked (it does not support elicitation); ` +
	`only the admin can lift the requirement (requireApproval in the MCP config)`

// TestE2EApprovalUnavailable: a client that cannot be asked (no elicitation
// capability: a go-sdk client without a handler, the inspector CLI) gets the
// call refused with a message saying approval was required and who can lift
// the requirement; tools that need none still work.
func TestE2EApprovalUnavailable(t *testing.T) {
	ft := needFactoryTools(t)
	code := `const ev = mcpFactory.load("everything");
const sum = await ev.callTool("get-sum", { a: 1, b: 2 });
try { await ev.callTool("echo", { message: "x" }); return "ran"; } catch (e) { return e.name + ": " + e.message + " | " + JSON.stringify(sum); }`
	check := func(t *testing.T, rv any, details any) {
		t.Helper()
		got := fmt.Sprint(rv)
		if !strings.HasPrefix(got, "McpError: "+unavailableMsg) || !strings.Contains(got, "3") {
			t.Errorf("the code returned %q, want the refusal %q and get-sum's 3", got, unavailableMsg)
		}
		b, _ := json.Marshal(details)
		if !strings.Contains(string(b), `"tool":"echo"`) || !strings.Contains(string(b), `"approval":"unavailable"`) || !strings.Contains(string(b), `"outcome":"refused"`) {
			t.Errorf("mcpCallDetails %s, want echo refused with approval unavailable", b)
		}
	}
	t.Run("go-sdk client without elicitation", func(t *testing.T) {
		s := startFactoryServer(t, approvalConfig(t, ft), nil)
		r := s.exec(t, code, nil)
		expectSuccess(t, r)
		check(t, r.out["returnValue"], r.out["mcpCallDetails"])
		if !strings.Contains(s.stderr.String(), `msg="nested tool call approval" server=everything tool=echo decision=unavailable`) {
			t.Errorf("the log lacks the unavailable decision")
		}
	})
	t.Run("inspector CLI", func(t *testing.T) {
		mcpTools(t)
		b, err := json.Marshal(map[string]any{"mcpServers": approvalConfig(t, ft)})
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(t.TempDir(), "mcp-config.json")
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out := inspector(t, "-e", "MCP_CONDUCTOR_STATE_DIR="+t.TempDir(), "-e", "MCP_CONDUCTOR_MCP_CONFIG="+cfg, conductorBin(t), "serve",
			"--method", "tools/call", "--tool-name", toolName, "--tool-arg", "deno_code="+code)
		sc, _ := out["structuredContent"].(map[string]any)
		if sc["status"] != "success" {
			t.Fatalf("want a successful run, got %v", out)
		}
		check(t, sc["returnValue"], sc["mcpCallDetails"])
	})
}

// TestE2EApprovalsPython: run_python_code's calls take the same path: the
// user approves echo and declines create_entities in one run; Python sees
// the refusal as McpError and the graph stays empty.
func TestE2EApprovalsPython(t *testing.T) {
	ft := needFactoryTools(t)
	a := &asker{}
	a.reset(func(_ context.Context, msg string) string {
		if strings.Contains(msg, `"create_entities"`) {
			return "decline"
		}
		return "accept"
	})
	s := startFactoryServerWith(t, &sdk.ClientOptions{ElicitationHandler: a.handle}, nil, approvalConfig(t, ft), nil, "MCP_CONDUCTOR_PYTHON="+hostPython(t))
	r := s.pyRun(t, `
ev = mcpFactory.load("everything")
mem = mcpFactory.load("memory")
echo = await ev.call_tool("echo", {"message": "from python"})
try:
    await mem.call_tool("create_entities", {"entities": [{"name": "py-probe", "entityType": "probe", "observations": []}]})
    refusal = "the call went through"
except McpError as e:
    refusal = str(e)
graph = await mem.call_tool("read_graph", {})
{"echo": echo, "refusal": refusal, "names": [e["name"] for e in graph["entities"]]}`, nil)
	expectSuccess(t, r)
	sameJSON(t, "returnValue", r.out["returnValue"], `{"echo": "Echo: from python",
  "refusal": "the user declined the call of tool \"create_entities\" on server \"memory\"", "names": []}`)
	if q := a.questions(); len(q) != 2 {
		t.Errorf("the user was asked %d times, want twice (echo, create_entities): %q", len(q), q)
	}
	if d := detailOf(t, r, "create_entities"); d.Approval != "declined" || d.Outcome != "refused" {
		t.Errorf("create_entities' detail %+v", d)
	}
	if d := detailOf(t, r, "echo"); d.Approval != "accepted" || d.Outcome != "ok" {
		t.Errorf("echo's detail %+v", d)
	}
}

// TestE2EApprovalRounds drives the 2026-07-28 rounds by hand (a go-sdk
// client whose automatic retries are off): the tools/call answers with one
// input request naming the tool and a requestState; a retry with a
// requestState conductor never gave is refused; the retry with the user's
// decline finishes the run, whose code caught the refusal.
func TestE2EApprovalRounds(t *testing.T) {
	ft := needFactoryTools(t)
	a := &asker{}
	s := startFactoryServerWith(t, &sdk.ClientOptions{ElicitationHandler: a.handle, MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true}},
		nil, approvalConfig(t, ft), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	params := &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": declinedCode, "timeout": 45000}}
	first, err := s.cs.CallTool(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if !first.NeedsInput() || len(first.InputRequests) != 1 || first.RequestState == "" {
		t.Fatalf("want one input request and a requestState, got %+v", first)
	}
	var id string
	for k, v := range first.InputRequests {
		q, ok := v.(*sdk.ElicitParams)
		if !ok || !strings.Contains(q.Message, `"create_entities"`) || !strings.Contains(q.Message, `"memory"`) {
			t.Fatalf("input request %q: %#v, want an elicitation naming create_entities on memory", k, v)
		}
		id = k
	}

	forged := *params
	forged.RequestState, forged.InputResponses = "00112233445566778899aabbccddeeff", sdk.InputResponseMap{id: &sdk.ElicitResult{Action: "accept", Content: map[string]any{}}}
	res, err := s.cs.CallTool(ctx, &forged)
	if err != nil {
		t.Fatal(err)
	}
	if r := toResult(t, res); !res.IsError || !strings.Contains(r.text, "no run of this server is waiting for these answers") {
		t.Fatalf("a forged requestState: want a refusal, got %s", r)
	}

	retry := *params
	retry.RequestState, retry.InputResponses = first.RequestState, sdk.InputResponseMap{id: &sdk.ElicitResult{Action: "decline"}}
	res, err = s.cs.CallTool(ctx, &retry)
	if err != nil {
		t.Fatal(err)
	}
	r := toResult(t, res)
	expectSuccess(t, r)
	rv, _ := r.out["returnValue"].(map[string]any)
	if got := fmt.Sprint(rv["refusal"]); got != `McpError: the user declined the call of tool "create_entities" on server "memory"` {
		t.Errorf("the code caught %q", got)
	}
	if names, _ := rv["names"].([]any); len(names) != 0 {
		t.Errorf("the graph holds %v after a decline", names)
	}
	if len(a.questions()) != 0 {
		t.Errorf("the client's handler was called %d times with automatic rounds off", len(a.questions()))
	}
}
