package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Approvals of nested tool calls (requireApproval in the upstream config).
//
// A call of sandboxed code to a tool that requires approval waits in
// Factory.Call while the user is asked, through MCP elicitation on the
// session whose tools/call started the run. The tool handler puts an
// approver in the run's context; the sandbox hands that context's values to
// every mcpFactory call of the run (sandbox.CallHandler), so the one path
// every nested tool call takes — Factory.Call's callTool — finds it there.
//
// Two protocols:
//
//   - A client on a protocol before 2026-07-28 that declared the
//     elicitation capability is asked directly (ServerSession.Elicit)
//     while its tools/call is in flight (directApprover). Parallel calls of
//     the code each get their own question, at once.
//   - From 2026-07-28 a server may not send requests of its own (SEP-2322):
//     the tools/call answers with inputRequests and a requestState, and the
//     client calls again with the user's answers. The run goes on in the
//     background meanwhile (pausedRun): its questions are collected and
//     sent together, one batch per round, and a retry carrying its
//     requestState delivers the answers and waits for the run's end or its
//     next questions.
//
// A client that did not declare elicitation, a session that is gone, and
// `conductor exec` have no approver: such a call is refused
// (ErrApprovalUnavailable). The run's timeout runs on while the user
// decides; when it ends the question is abandoned and the call fails with
// the execution.

// Decisions on a call that requires approval (sandbox.CallDetail.Approval).
const (
	ApprovalAccepted    = "accepted"
	ApprovalDeclined    = "declined"
	ApprovalCancelled   = "cancelled"
	ApprovalUnavailable = "unavailable"
)

// ErrApprovalDeclined and ErrApprovalUnavailable are the refusals of a call
// that required the user's approval: the user said no (or dismissed the
// question), or could not be asked.
var (
	ErrApprovalDeclined    = errors.New("the user did not approve the call")
	ErrApprovalUnavailable = errors.New("the user's approval could not be asked")
)

// maxApprovalArgs caps the arguments shown in an approval question.
const maxApprovalArgs = 4 << 10

// protocolMRTR is the first protocol version in which a server asks for
// input by returning inputRequests (multi round-trip, SEP-2322).
const protocolMRTR = "2026-07-28"

// approver asks the user whether a nested call may go on. It returns the
// decision (ApprovalAccepted, ApprovalDeclined or ApprovalCancelled) or an
// error when the question could not be asked or answered.
type approver interface {
	approve(ctx context.Context, q *sdk.ElicitParams) (string, error)
}

type approverKey struct{}

// withApprover returns ctx carrying a (nil: none).
func withApprover(ctx context.Context, a approver) context.Context {
	return context.WithValue(ctx, approverKey{}, a)
}

func approverFrom(ctx context.Context) approver {
	a, _ := ctx.Value(approverKey{}).(approver)
	return a
}

// approvalQuestion is the elicitation for a call of tool on server with
// args (the raw JSON code sent): the server, the tool and the arguments as
// indented JSON, cut at maxApprovalArgs with a note. The schema is an
// empty form: clients show the message with accept and decline.
func approvalQuestion(server, tool string, args json.RawMessage) *sdk.ElicitParams {
	shown := "{}"
	if len(bytes.TrimSpace(args)) > 0 && string(bytes.TrimSpace(args)) != "null" {
		var b bytes.Buffer
		if json.Indent(&b, args, "", "  ") == nil {
			shown = b.String()
		} else {
			shown = string(args)
		}
	}
	note := ""
	if len(shown) > maxApprovalArgs {
		cut := maxApprovalArgs
		for cut > 0 && !utf8.RuneStart(shown[cut]) {
			cut--
		}
		note = fmt.Sprintf("\n(arguments cut: the first %d of %d bytes are shown)", cut, len(shown))
		shown = shown[:cut]
	}
	return &sdk.ElicitParams{
		Mode: "form",
		Message: fmt.Sprintf("Code running in conductor's sandbox wants to call the tool %q on the MCP server %q with these arguments:\n%s%s\n\n"+
			"Allow this call? Accept to let it run, decline to refuse it (the code sees the refusal).", tool, server, shown, note),
		RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}},
	}
}

// decision maps an elicitation's action to a decision.
func decision(action string) string {
	switch action {
	case "accept":
		return ApprovalAccepted
	case "decline":
		return ApprovalDeclined
	}
	return ApprovalCancelled
}

// approvalError is the error code sees for a call that was not approved:
// its message is the sentence alone; it wraps ErrApprovalDeclined or
// ErrApprovalUnavailable (and the cause of a question that failed).
func approvalError(decision, server, tool string, cause error) error {
	switch decision {
	case ApprovalDeclined:
		return &refusal{kind: ErrApprovalDeclined, msg: fmt.Sprintf("the user declined the call of tool %q on server %q", tool, server)}
	case ApprovalCancelled:
		return &refusal{kind: ErrApprovalDeclined, msg: fmt.Sprintf("the user dismissed the approval of the call of tool %q on server %q without deciding; the call was not made", tool, server)}
	}
	msg := fmt.Sprintf("tool %q on server %q requires the user's approval, and this MCP client cannot be asked (it does not support elicitation); "+
		"only the admin can lift the requirement (requireApproval in the MCP config)", tool, server)
	if cause != nil {
		msg += fmt.Sprintf(" (asking failed: %v)", cause)
	}
	return &refusal{kind: ErrApprovalUnavailable, msg: msg, cause: cause}
}

// refusal is a call refused for want of an approval.
type refusal struct {
	kind  error // ErrApprovalDeclined or ErrApprovalUnavailable
	msg   string
	cause error
}

func (r *refusal) Error() string { return r.msg }

func (r *refusal) Unwrap() []error {
	if r.cause != nil {
		return []error{r.kind, r.cause}
	}
	return []error{r.kind}
}

// directApprover asks a client on a protocol before 2026-07-28 with a
// server-initiated elicitation request.
type directApprover struct{ ss *sdk.ServerSession }

func (d directApprover) approve(ctx context.Context, q *sdk.ElicitParams) (string, error) {
	res, err := d.ss.Elicit(ctx, q)
	if err != nil {
		return "", err
	}
	return decision(res.Action), nil
}

// canElicit reports whether the client that sent req declared form
// elicitation.
func canElicit(req *sdk.CallToolRequest) bool {
	caps := req.ClientCapabilities()
	if caps == nil || caps.Elicitation == nil {
		return false
	}
	e := caps.Elicitation
	return e.Form != nil || e.URL == nil // neither: form, for older clients
}

// question is one call's approval waiting for the user (multi round trip).
type question struct {
	params *sdk.ElicitParams
	answer chan string // buffered: the decision
}

// pausedRun is a run whose client answers questions by calling again
// (multi round trip): it runs on after the tools/call that started it has
// returned its questions.
type pausedRun struct {
	id        string // the requestState
	session   string // the session that started it ("" over stateless HTTP)
	cancel    context.CancelFunc
	questions chan *question // from the run's calls; read by a waiting handler
	done      chan struct{}  // closed when the run ended
	res       *runOutcome

	mu    sync.Mutex
	asked map[string]*question // by input request id, sent and not answered yet
	seq   int
}

type runOutcome struct {
	result *sdk.CallToolResult
	err    error
}

func (r *pausedRun) approve(ctx context.Context, q *sdk.ElicitParams) (string, error) {
	qu := &question{params: q, answer: make(chan string, 1)}
	select {
	case r.questions <- qu:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case a := <-qu.answer:
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// pausedRuns are the runs waiting for a client's next round, by requestState.
type pausedRuns struct {
	mu   sync.Mutex
	runs map[string]*pausedRun
}

// keepFinished is how long a finished run's result waits for the client's
// retry; a run whose client never calls again is forgotten then.
const keepFinished = time.Minute

func newRunID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// callApproving runs a tool's execution for a client that answers
// questions by calling again, or resumes the run a retry names.
func (s *Server) callApproving(ctx context.Context, req *sdk.CallToolRequest, start func(ctx context.Context) (*sdk.CallToolResult, error)) (*sdk.CallToolResult, RunOutput, error) {
	sessionID := ""
	if req.Session != nil {
		sessionID = req.Session.ID()
	}
	if state := req.Params.RequestState; state != "" {
		s.paused.mu.Lock()
		r := s.paused.runs[state]
		s.paused.mu.Unlock()
		if r == nil || r.session != sessionID {
			return nil, nil, fmt.Errorf("no run of this server is waiting for these answers (requestState %.12q…): it ended more than %s ago or was started by another session; call the tool again without requestState", state, keepFinished)
		}
		r.mu.Lock()
		for id, q := range r.asked {
			d := ApprovalCancelled
			if res, ok := req.Params.InputResponses[id].(*sdk.ElicitResult); ok && res != nil {
				d = decision(res.Action)
			}
			q.answer <- d
		}
		clear(r.asked)
		r.mu.Unlock()
		return s.awaitRun(ctx, r)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &pausedRun{id: newRunID(), session: sessionID, cancel: cancel, questions: make(chan *question),
		done: make(chan struct{}), asked: map[string]*question{}}
	runCtx = withApprover(runCtx, r)
	s.paused.mu.Lock()
	if s.paused.runs == nil {
		s.paused.runs = map[string]*pausedRun{}
	}
	s.paused.runs[r.id] = r
	s.paused.mu.Unlock()
	go func() {
		res, err := start(runCtx)
		r.res = &runOutcome{res, err}
		close(r.done)
		cancel()
		time.AfterFunc(keepFinished, func() { s.forgetRun(r.id) })
	}()
	return s.awaitRun(ctx, r)
}

func (s *Server) forgetRun(id string) {
	s.paused.mu.Lock()
	delete(s.paused.runs, id)
	s.paused.mu.Unlock()
}

// awaitRun waits for r's end (its result) or its questions (an
// input-required result naming them). A request cancelled while it waits
// cancels the run.
func (s *Server) awaitRun(ctx context.Context, r *pausedRun) (*sdk.CallToolResult, RunOutput, error) {
	select {
	case <-r.done:
		s.forgetRun(r.id)
		return r.res.result, nil, r.res.err
	case q := <-r.questions:
		reqs := sdk.InputRequestMap{}
		r.mu.Lock()
		add := func(q *question) {
			r.seq++
			id := fmt.Sprintf("approval-%d", r.seq)
			r.asked[id] = q
			reqs[id] = q.params
		}
		add(q)
		for more := true; more; { // the questions asked meanwhile go in the same round
			select {
			case q := <-r.questions:
				add(q)
			default:
				more = false
			}
		}
		r.mu.Unlock()
		return &sdk.CallToolResult{InputRequests: reqs, RequestState: r.id}, nil, nil
	case <-ctx.Done():
		r.cancel()
		<-r.done
		s.forgetRun(r.id)
		return r.res.result, nil, r.res.err
	}
}
