package audit

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/conductor-sandbox/conductor/event"
)

// Line types: the "type" field of every line.
const (
	TypeExecution    = "execution"
	TypeUpstreamCall = "upstream_call"
	TypeDropped      = "dropped"
)

// ExecutionLine is the line of one execution tool call, run or refused. Durations are
// milliseconds; time is when the request arrived (RFC 3339, nanoseconds, UTC).
type ExecutionLine struct {
	Type            string  `json:"type"` // "execution"
	Time            string  `json:"time"`
	Identity        string  `json:"identity"` // the verified token's identity; "http" for the one HTTP token; "stdio"
	Session         string  `json:"session"`  // the MCP session id ("" when the transport has none)
	Tool            string  `json:"tool"`     // run_deno_code, execute_code, …
	Language        string  `json:"language"`
	CodeSHA256      string  `json:"code_sha256"` // hex SHA-256 of the code
	CodeBytes       int     `json:"code_bytes"`
	Code            *string `json:"code,omitempty"` // only with MCP_CONDUCTOR_AUDIT_CODE
	Status          string  `json:"status"`         // success, error, timeout, oom, cancelled, …
	ErrorType       string  `json:"error_type"`     // the result's error.type ("" on success)
	Refused         bool    `json:"refused"`        // refused before it ran
	QueuedMs        float64 `json:"queued_ms"`      // waiting for an execution slot
	StartMs         float64 `json:"start_ms"`       // getting a sandbox
	DurationMs      float64 `json:"duration_ms"`    // the whole call, without queued_ms
	CPUMs           float64 `json:"cpu_ms"`
	MemoryPeakBytes int64   `json:"memory_peak_bytes"`
	LimitHit        string  `json:"limit_hit"` // the limit that ended the run ("" none)
	NetAllowed      int     `json:"net_allowed"`
	NetDenied       int     `json:"net_denied"`
	UpstreamCalls   int     `json:"upstream_calls"`
}

// UpstreamCallLine is the line of one call sandboxed code made to an upstream MCP server; the
// identity, session and tool are those of the execution that made it.
type UpstreamCallLine struct {
	Type         string  `json:"type"` // "upstream_call"
	Time         string  `json:"time"` // when the call was made
	Identity     string  `json:"identity"`
	Session      string  `json:"session"`
	Tool         string  `json:"tool"`          // the execution's MCP tool
	Method       string  `json:"method"`        // callTool, listTools, readResource, …
	Server       string  `json:"server"`        // the upstream server's name in the MCP config
	UpstreamTool string  `json:"upstream_tool"` // the upstream tool called ("" for other methods)
	DurationMs   float64 `json:"duration_ms"`
	Outcome      string  `json:"outcome"` // ok, tool_error, error, refused
	IsError      bool    `json:"is_error"`
	Error        string  `json:"error"` // what went wrong (at most 1 KiB), "" when ok
}

// DroppedLine says that Dropped lines were dropped (the queue was full) since the previous
// dropped line; it is written once the writer has caught up.
type DroppedLine struct {
	Type    string `json:"type"` // "dropped"
	Time    string `json:"time"`
	Dropped int64  `json:"dropped"`
}

// EncodeExecution is e's line, newline included; code says whether the code itself is in it.
func EncodeExecution(e event.Execution, code bool) []byte {
	l := ExecutionLine{
		Type: TypeExecution, Time: stamp(e.Time),
		Identity: e.Identity, Session: e.Session, Tool: e.Tool, Language: e.Language,
		CodeSHA256: e.CodeSHA256, CodeBytes: e.CodeBytes,
		Status: e.Status, ErrorType: e.ErrorType, Refused: e.Refused,
		QueuedMs: ms(e.Queued), StartMs: ms(e.Start), DurationMs: ms(e.Duration), CPUMs: ms(e.CPU),
		MemoryPeakBytes: e.MemoryPeakBytes, LimitHit: e.LimitHit,
		NetAllowed: e.NetAllowed, NetDenied: e.NetDenied, UpstreamCalls: e.Calls,
	}
	if code {
		l.Code = &e.Code
	}
	return encode(l)
}

// EncodeUpstreamCall is c's line, newline included.
func EncodeUpstreamCall(c event.UpstreamCall) []byte {
	return encode(UpstreamCallLine{
		Type: TypeUpstreamCall, Time: stamp(c.Time),
		Identity: c.Identity, Session: c.Session, Tool: c.Scope.Tool,
		Method: c.Method, Server: c.Server, UpstreamTool: c.Tool,
		DurationMs: ms(c.Duration), Outcome: c.Outcome, IsError: c.IsError, Error: truncate(c.Error, maxErrorBytes),
	})
}

// EncodeDropped is the line saying n lines were dropped, at t.
func EncodeDropped(t time.Time, n int64) []byte {
	return encode(DroppedLine{Type: TypeDropped, Time: stamp(t), Dropped: n})
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // strings, numbers and bools only: cannot happen
		panic("audit: encoding a line: " + err.Error())
	}
	return append(b, '\n')
}

// stamp is t in UTC as RFC 3339 with nanoseconds ("" for the zero time).
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// truncate cuts s to at most n bytes on a character boundary, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
