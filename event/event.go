// Package event is what conductor reports about each execution and each upstream MCP call, to
// whatever records them (the audit log, metrics): the records, the Sink they go to, and the
// scope a request's context carries (who asked, in which MCP session, through which tool) so
// that a record made deep in a call path names it. It imports nothing of conductor's.
package event

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Scope is who asked for an execution and how.
type Scope struct {
	Identity string // the authenticated identity ("stdio" on stdio)
	Session  string // the MCP session id; "" when the transport has none
	Tool     string // the MCP tool called (run_deno_code, execute_code, run_python_code, …)
}

type scopeKey struct{}

// WithScope returns ctx carrying s.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeOf returns the Scope ctx carries (zero when none).
func ScopeOf(ctx context.Context) Scope {
	s, _ := ctx.Value(scopeKey{}).(Scope)
	return s
}

// Execution is one execution request, run or refused.
type Execution struct {
	Time time.Time // when the request arrived
	Scope
	Language   string // typescript, python, go, javascript
	CodeSHA256 string
	CodeBytes  int
	Code       string // the code itself; a Sink writes it only if its admin asked

	Status    string // success, error, timeout, oom, … (sandbox.Status), "error" for a refusal
	ErrorType string // error.type of the result ("" on success)
	Refused   bool   // refused before it ran (invalid, package not allowed, busy, quota)

	Queued   time.Duration // waiting for an execution slot
	Start    time.Duration // getting a sandbox: a pooled one, the next booted, or a cold start
	Duration time.Duration // the whole call, without Queued

	CPU             time.Duration
	MemoryPeakBytes int64
	LimitHit        string // the limit that ended the run ("" none)

	NetAllowed int // connections and lookups the egress door allowed
	NetDenied  int // … and refused
	Calls      int // upstream calls the code made
}

// UpstreamCall is one call of sandboxed code to an upstream MCP server (mcpFactory).
type UpstreamCall struct {
	Time time.Time // when the call was made
	Scope
	Method   string // callTool, listTools, readResource, …
	Server   string
	Tool     string
	Duration time.Duration
	Outcome  string // ok, tool_error, error, refused
	IsError  bool   // Outcome is not ok
	Error    string
}

// Sink records events. Its methods are called on the request's path: they must not block
// (a Sink that writes somewhere slow buffers, bounded, and counts what it drops).
type Sink interface {
	Execution(Execution)
	UpstreamCall(UpstreamCall)
}

// Multi sends every event to each of sinks, in order; nil sinks are left out. With none, it is
// a Sink that records nothing.
func Multi(sinks ...Sink) Sink {
	var m multi
	for _, s := range sinks {
		if s != nil {
			m = append(m, s)
		}
	}
	return m
}

type multi []Sink

func (m multi) Execution(e Execution) {
	for _, s := range m {
		s.Execution(e)
	}
}

func (m multi) UpstreamCall(c UpstreamCall) {
	for _, s := range m {
		s.UpstreamCall(c)
	}
}

// Hash is the hex SHA-256 of code, as Execution.CodeSHA256 holds it.
func Hash(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}
