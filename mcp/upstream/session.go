// This file: one upstream's session and retry state machine — connecting
// (one attempt shared by concurrent callers), noticing a broken session,
// backoff, and running a request with at most one resend of a request that
// certainly never reached the server.

package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstream is one configured server and its (at most one) live session.
type upstream struct {
	m             *Manager
	cfg           ServerConfig
	log           *slog.Logger
	allowed       map[string]bool // nil: all
	resAllow      *allowList      // nil: all
	promptAllow   *allowList      // nil: all
	client        *mcp.Client
	httpTransport *http.Transport // HTTP transports only
	warnedMissing atomic.Bool
	toolsVersion  atomic.Uint64 // see Manager.ToolsVersion
	// warnedApproval: requireApproval's missing names were logged once.
	warnedApproval atomic.Bool
	retired        atomic.Bool // closed by Applied.Retire: no new sessions

	mu        sync.Mutex
	state     string
	sess      *session
	attempt   *attempt // the connection attempt under way, if any
	failures  int      // consecutive: failed connects and broken sessions since the last answered request
	retryAt   time.Time
	lastErr   string
	lastErrAt time.Time
	tools     int
	resources int
	prompts   int
	connects  int         // attempts started (tests)
	stderr    *stderrTail // the last stdio process's (for LastStderr)
}

type attempt struct {
	done chan struct{}
	err  error // set before done is closed
}

// session is one connection to an upstream.
type session struct {
	u      *upstream
	cs     *mcp.ClientSession
	child  *child // stdio
	caps   *mcp.ServerCapabilities
	ctx    context.Context // lives as long as the session (the SSE stream hangs off it)
	cancel context.CancelFunc

	dead      chan struct{}
	deadOnce  sync.Once
	cause     error
	closeOnce sync.Once
}

func (s *session) markDead(cause error) {
	s.deadOnce.Do(func() {
		s.cause = cause
		close(s.dead)
	})
}

func (s *session) isDead() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

// close ends the session in the background (tracked by Manager.Close).
func (s *session) close() {
	s.closeOnce.Do(func() {
		if s.child != nil {
			s.child.stop()
		}
		m := s.u.m
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			if s.cs != nil {
				_ = s.cs.Close()
			}
			s.cancel()
			s.markDead(errors.New("session closed"))
		}()
	})
}

// gone reports whether u may no longer connect (Manager.Close, or Retire).
func (u *upstream) gone() bool { return u.m.closed.Load() || u.retired.Load() }

func (u *upstream) redact(s string) string { return redact(s, u.cfg.secrets) }

func (u *upstream) setCount(p *int, n int) {
	u.mu.Lock()
	*p = n
	u.mu.Unlock()
}

// recordErrorLocked notes err as the upstream's last error.
func (u *upstream) recordErrorLocked(err error) {
	msg := u.redact(err.Error())
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	u.lastErr, u.lastErrAt = msg, time.Now()
}

// backoff is the wait before the next connection attempt after n
// consecutive failures: none after the first (a broken session is
// reconnected at once), then 0.5 s doubling up to 30 s.
func backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := 500 * time.Millisecond
	for i := 2; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// acquire returns the live session, connecting first if there is none.
// Concurrent callers share one connection attempt.
func (u *upstream) acquire(ctx context.Context) (*session, error) {
	for {
		u.mu.Lock()
		if u.gone() {
			u.mu.Unlock()
			return nil, u.unavailable("", errClosed, "")
		}
		if s := u.sess; s != nil {
			if !s.isDead() {
				u.mu.Unlock()
				return s, nil
			}
			u.mu.Unlock()
			u.broken(s, s.cause)
			continue
		}
		a := u.attempt
		if a == nil {
			if wait := time.Until(u.retryAt); wait > 0 {
				err := u.unavailable("", errors.New(u.lastErr), fmt.Sprintf("next connection attempt in %s", wait.Round(time.Millisecond)))
				u.mu.Unlock()
				return nil, err
			}
			a = &attempt{done: make(chan struct{})}
			u.attempt = a
			u.state = StateConnecting
			u.connects++
			go u.run(a)
		}
		u.mu.Unlock()
		select {
		case <-a.done:
			if a.err != nil {
				return nil, a.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// run makes the connection attempt a.
func (u *upstream) run(a *attempt) {
	s, err := u.connect()
	u.mu.Lock()
	u.attempt = nil
	if err == nil && u.gone() {
		err = errClosed
		s.close()
	}
	if err != nil {
		u.failures++
		u.retryAt = time.Now().Add(backoff(u.failures))
		if u.state != StateClosed {
			u.state = StateFailed
		}
		u.recordErrorLocked(err)
		a.err = u.unavailable("", err, "")
		u.log.Debug("upstream connection failed", "server", u.cfg.Name, "error", a.err.Error(), "failures", u.failures)
	} else {
		u.sess = s
		u.state = StateConnected
		u.toolsVersion.Add(1) // a new session may list other tools
		if s.caps != nil {
			if s.caps.Tools == nil {
				u.tools = 0
			}
			if s.caps.Resources == nil {
				u.resources = 0
			}
			if s.caps.Prompts == nil {
				u.prompts = 0
			}
		}
		go u.watch(s)
	}
	close(a.done)
	u.mu.Unlock()
}

// connect starts a session (and, for stdio, the process).
func (u *upstream) connect() (*session, error) {
	ctx, cancel := context.WithTimeout(u.m.ctx, u.m.opts.ConnectTimeout)
	defer cancel()
	s := &session{u: u, dead: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(u.m.ctx)
	var t mcp.Transport
	switch u.cfg.Transport {
	case TransportStdio:
		t = &stdioTransport{u: u, s: s}
	case TransportStreamableHTTP:
		t = &mcp.StreamableClientTransport{Endpoint: u.cfg.URL, HTTPClient: u.httpClient()}
	case TransportSSE:
		t = &sseTransport{inner: &mcp.SSEClientTransport{Endpoint: u.cfg.URL, HTTPClient: u.httpClient()}, s: s}
	default:
		s.cancel()
		return nil, fmt.Errorf("unknown transport %q", u.cfg.Transport)
	}
	start := time.Now()
	cs, err := u.client.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: u.m.opts.ProtocolVersion})
	if err != nil {
		s.cancel()
		switch {
		case u.m.ctx.Err() != nil:
			err = errClosed
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = fmt.Errorf("no answer to initialize within %s: %w", u.m.opts.ConnectTimeout, err)
		}
		if s.child != nil {
			s.child.stop()
			if !errors.Is(err, ErrClosed) {
				err = fmt.Errorf("%w (process %s; see the server log)", err, s.child.describeExit(300*time.Millisecond))
			}
		}
		return nil, err
	}
	s.cs = cs
	res := cs.InitializeResult()
	if res != nil {
		s.caps = res.Capabilities
	}
	attrs := []any{"server", u.cfg.Name, "transport", u.cfg.Transport, "duration", time.Since(start)}
	if res != nil {
		attrs = append(attrs, "protocol", res.ProtocolVersion)
		if res.ServerInfo != nil {
			attrs = append(attrs, "upstream", res.ServerInfo.Name+" "+res.ServerInfo.Version)
		}
	}
	if s.child != nil {
		attrs = append(attrs, "pid", s.child.pid)
	}
	u.log.Debug("upstream connected", attrs...)
	return s, nil
}

// watch marks the upstream failed as soon as its session ends by itself.
func (u *upstream) watch(s *session) {
	go func() {
		err := s.cs.Wait()
		if err == nil {
			err = errors.New("the connection ended")
		}
		s.markDead(err)
	}()
	<-s.dead
	u.broken(s, s.cause)
}

// broken drops s if it is still the live session, and returns cause with
// how the process ended (stdio).
func (u *upstream) broken(s *session, cause error) error {
	if cause == nil {
		cause = errors.New("the session ended")
	}
	if s.child != nil {
		cause = fmt.Errorf("%w (process %s; see the server log)", cause, s.child.describeExit(200*time.Millisecond))
	}
	u.mu.Lock()
	if u.sess == s {
		u.sess = nil
		u.failures++
		u.retryAt = time.Now().Add(backoff(u.failures))
		if u.state != StateClosed {
			u.state = StateFailed
		}
		u.recordErrorLocked(cause)
		u.log.Debug("upstream session ended", "server", u.cfg.Name, "error", u.lastErr, "failures", u.failures)
	}
	u.mu.Unlock()
	s.close()
	return cause
}

// answered notes that the upstream answered a request on s.
func (u *upstream) answered(s *session) {
	u.mu.Lock()
	if u.sess == s {
		u.failures = 0
	}
	u.mu.Unlock()
}

// do runs fn, returning the outcome for the log and the error.
func (u *upstream) do(ctx context.Context, method, detail string, fn func(context.Context, *session) error) (string, error) {
	what := method
	if detail != "" {
		what = fmt.Sprintf("%s %q", method, detail)
	}
	for try := 0; ; try++ {
		s, err := u.acquire(ctx)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e2 := *e // shared by every caller that waited on the attempt
				e2.Method = method
				return "unavailable", &e2
			}
			return "canceled", &Error{Server: u.cfg.Name, Method: method, cause: err,
				msg: fmt.Sprintf("MCP server %q: %s: %v", u.cfg.Name, what, err)}
		}
		mark := int64(-1)
		if s.child != nil {
			mark = s.child.written.Load()
		}
		cctx, cancel := context.WithTimeout(ctx, u.m.opts.CallTimeout)
		err = fn(cctx, s)
		timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err == nil {
			u.answered(s)
			return "ok", nil
		}
		switch {
		case timedOut:
			return "timeout", &Error{Server: u.cfg.Name, Method: method,
				kinds: []error{ErrTimeout, context.DeadlineExceeded}, cause: err,
				msg: fmt.Sprintf("MCP server %q: %s got no answer within %s", u.cfg.Name, what, u.m.opts.CallTimeout)}
		case ctx.Err() != nil:
			return "canceled", &Error{Server: u.cfg.Name, Method: method, kinds: []error{ctx.Err()}, cause: err,
				msg: fmt.Sprintf("MCP server %q: %s: %v", u.cfg.Name, what, ctx.Err())}
		}
		notSent, broken := classify(s, err)
		if broken && !notSent && s.child != nil && s.child.unreadSince(mark, 300*time.Millisecond) {
			notSent = true // the process died without reading the request
		}
		if !broken {
			u.answered(s)
			return "error", &Error{Server: u.cfg.Name, Method: method, cause: err,
				msg: fmt.Sprintf("MCP server %q: %s: %s", u.cfg.Name, what, u.redact(err.Error()))}
		}
		cause := u.broken(s, err)
		if notSent && try == 0 && !u.gone() {
			u.log.Debug("upstream session broken before the request was sent; reconnecting", "server", u.cfg.Name, "method", method, "error", u.redact(err.Error()))
			continue
		}
		if u.gone() {
			cause = fmt.Errorf("%w: %w", errClosed, err)
			e := u.unavailable(method, cause, "")
			e.msg = fmt.Sprintf("MCP server %q is unavailable: %s failed: %s", u.cfg.Name, what, u.redact(cause.Error()))
			return "unavailable", e
		}
		if notSent {
			// Sent again once and not delivered again.
			e := u.unavailable(method, cause, "")
			e.msg = fmt.Sprintf("MCP server %q is unavailable: %s failed: %s", u.cfg.Name, what, u.redact(cause.Error()))
			return "unavailable", e
		}
		return "crashed", u.crashed(s, method, what, cause)
	}
}
