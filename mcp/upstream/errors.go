// This file: the errors of Manager calls and the classification of a failed
// request (did it break the session; can it have reached the server).

package upstream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The errors of Manager calls. Every error a call returns is an *Error;
// errors.Is tells these kinds apart.
var (
	ErrUnknownServer  = errors.New("unknown MCP server")
	ErrDisabled       = errors.New("MCP server disabled") // comes with ErrUnknownServer
	ErrToolNotAllowed = errors.New("tool not allowed")
	// ErrResourceNotAllowed and ErrPromptNotAllowed refuse a resource or
	// prompt outside allowedResources / allowedPrompts.
	ErrResourceNotAllowed = errors.New("resource not allowed")
	ErrPromptNotAllowed   = errors.New("prompt not allowed")
	ErrUnavailable        = errors.New("MCP server unavailable")
	// ErrCrashed comes with ErrUnavailable: the upstream's session broke
	// (a stdio process exited) while this request may have reached it, so
	// the request may have caused it.
	ErrCrashed = errors.New("MCP server ended during the request")
	ErrTimeout = errors.New("MCP call timed out")      // comes with context.DeadlineExceeded
	ErrClosed  = errors.New("upstream manager closed") // comes with ErrUnavailable
)

// Error is the error of a Manager call.
type Error struct {
	Server string
	Method string // "tools/call", "tools/list", … ("" for lookups)
	msg    string
	kinds  []error
	cause  error
}

func (e *Error) Error() string { return e.msg }

func (e *Error) Unwrap() []error {
	out := slices.Clone(e.kinds)
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

func (u *upstream) unavailable(method string, cause error, extra string) *Error {
	msg := fmt.Sprintf("MCP server %q is unavailable: %s", u.cfg.Name, u.redact(cause.Error()))
	if extra != "" {
		msg += " (" + extra + ")"
	}
	kinds := []error{ErrUnavailable}
	if errors.Is(cause, ErrClosed) {
		kinds = append(kinds, ErrClosed)
	}
	return &Error{Server: u.cfg.Name, Method: method, kinds: kinds, msg: msg, cause: cause}
}

var errClosed = fmt.Errorf("%w: conductor is shutting down", ErrClosed)

// crashed is the error of a request that may have reached the upstream when
// its session broke. It says how a stdio process ended, never what it
// printed (its stderr is in the server log only).
func (u *upstream) crashed(s *session, method, what string, cause error) *Error {
	var msg string
	if s.child != nil {
		msg = fmt.Sprintf("MCP server %q exited (%s) during %s; see the server log", u.cfg.Name, s.child.describeExit(200*time.Millisecond), what)
	} else {
		msg = fmt.Sprintf("MCP server %q: the connection broke during %s (%s); see the server log", u.cfg.Name, what, u.redact(cause.Error()))
	}
	return &Error{Server: u.cfg.Name, Method: method, kinds: []error{ErrUnavailable, ErrCrashed}, msg: msg, cause: cause}
}

// classify says whether a failed request left its session broken, and
// whether the request certainly never reached the server (so sending it
// again on a new session cannot run it twice).
func classify(s *session, err error) (notSent, broken bool) {
	var ns *notSentError
	var op *net.OpError
	switch {
	case errors.As(err, &ns), // stdio: writing to the process failed
		errors.Is(err, mcp.ErrConnectionClosed), // refused locally: the connection was already closing
		errors.Is(err, mcp.ErrSessionMissing),   // HTTP 404: the server has forgotten the session
		rejectedByTransport(err),                // HTTP: the server refused the request with an HTTP error
		errors.As(err, &op) && op.Op == "dial":  // HTTP: nothing listens
		return true, true
	case s.isDead():
		return false, true
	case answeredByServer(err):
		return false, false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return false, true
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return false, true
	}
	return false, false
}

// rejectedByTransportCode and rejectedByTransportText are the go-sdk's
// internal jsonrpc2.ErrRejected: an HTTP-level refusal (a non-2xx status, or
// no connection) of a request the server did not run. The SDK exports no
// form of it, so it is matched by code and text, checked against the go-sdk
// version sdkErrorsCheckedAgainst (TestSDKVersionOfErrorMatch fails when
// go.mod moves; TestClassifySDKErrors shows the match on real SDK errors).
const (
	rejectedByTransportCode = -32005
	rejectedByTransportText = "rejected by transport"
	sdkErrorsCheckedAgainst = "v1.8.0"
)

func rejectedByTransport(err error) bool {
	found := false
	walk(err, func(e error) {
		if we, ok := e.(*jsonrpc.Error); ok && we.Code == rejectedByTransportCode && we.Message == rejectedByTransportText {
			found = true
		}
	})
	return found
}

func answeredByServer(err error) bool {
	found := false
	walk(err, func(e error) {
		if we, ok := e.(*jsonrpc.Error); ok && we.Code != rejectedByTransportCode {
			found = true
		}
	})
	return found
}

// walk visits every error in err's tree.
func walk(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		walk(x.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			walk(e, f)
		}
	}
}
