package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// States of an upstream, as reported by Status.
const (
	StateDisabled   = "disabled"   // "disabled": true in the config
	StateIdle       = "idle"       // never connected yet
	StateConnecting = "connecting" // a connection attempt is under way
	StateConnected  = "connected"  // a live session
	StateFailed     = "failed"     // the last attempt failed or the session broke; LastError says why
	StateClosed     = "closed"     // Manager.Close was called
)

// DefaultProtocolVersion is offered to upstreams in initialize. It skips the
// go-sdk's server/discover probe (protocol 2026-07-28), which the npm
// reference servers answer with "method not found" — one wasted round trip —
// and which stricter older servers may treat as a protocol violation;
// servers that speak an older version negotiate down in initialize.
const DefaultProtocolVersion = "2025-11-25"

// Options tune a Manager. Zero values select the defaults.
type Options struct {
	CallTimeout     time.Duration // per request; default 60 s
	ConnectTimeout  time.Duration // start + initialize; default 30 s
	Logger          *slog.Logger  // default: discard
	ClientInfo      *mcp.Implementation
	StopGrace       time.Duration // stdio: after stdin is closed, and again after SIGTERM; default 2 s
	ProtocolVersion string        // default DefaultProtocolVersion
}

// Status describes one configured upstream.
type Status struct {
	Name      string
	Transport string // TransportStdio, TransportStreamableHTTP, TransportSSE
	State     string // one of the State constants
	// Counts from the last successful list (tools after allowedTools); 0 when
	// the server does not offer the feature; -1 when not listed yet.
	Tools, Resources, Prompts int
	LastError                 string // "" if none yet; secrets redacted
	LastErrorAt               time.Time
}

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

// Manager owns the sessions to the configured upstream MCP servers.
type Manager struct {
	opts      Options
	log       *slog.Logger
	lookupEnv func(string) (string, bool) // conductor's environment, for the stdio base env
	ups       map[string]*upstream
	all       []string // sorted
	enabled   []string // sorted

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	children  sync.WaitGroup // stdio processes not reaped yet
	bg        sync.WaitGroup // session closes under way
}

// NewManager prepares the upstreams of cfg; nothing is started until a call
// or ConnectAll.
func NewManager(cfg *Config, o Options) *Manager {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 60 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	if o.ProtocolVersion == "" {
		o.ProtocolVersion = DefaultProtocolVersion
	}
	if o.ClientInfo == nil {
		o.ClientInfo = &mcp.Implementation{Name: "conductor", Version: "dev"}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: o, log: log, lookupEnv: os.LookupEnv, ups: map[string]*upstream{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if cfg == nil {
		cfg = &Config{}
	}
	for _, sc := range cfg.Servers {
		u := &upstream{m: m, cfg: sc, log: log, state: StateIdle, tools: -1, resources: -1, prompts: -1}
		if sc.Disabled {
			u.state = StateDisabled
		} else {
			m.enabled = append(m.enabled, sc.Name)
		}
		if sc.AllowedTools != nil {
			u.allowed = map[string]bool{}
			for _, t := range sc.AllowedTools {
				u.allowed[t] = true
			}
		}
		u.resAllow = newAllowList("allowedResources", sc.AllowedResources, sc.AllowedTools != nil)
		u.promptAllow = newAllowList("allowedPrompts", sc.AllowedPrompts, sc.AllowedTools != nil)
		// No roots, sampling or elicitation: conductor has nothing to offer
		// an upstream that asks. A changed tool list moves ToolsVersion.
		u.client = mcp.NewClient(o.ClientInfo, &mcp.ClientOptions{
			Capabilities: &mcp.ClientCapabilities{},
			ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
				u.toolsVersion.Add(1)
				log.Debug("upstream tool list changed", "server", u.cfg.Name)
			},
		})
		if sc.Transport != TransportStdio {
			u.httpTransport = http.DefaultTransport.(*http.Transport).Clone()
		}
		m.ups[sc.Name] = u
		m.all = append(m.all, sc.Name)
	}
	slices.Sort(m.all)
	slices.Sort(m.enabled)
	return m
}

// Names returns the enabled upstreams, sorted.
func (m *Manager) Names() []string { return slices.Clone(m.enabled) }

// ToolsVersion changes whenever server's tool list may have changed: on a
// notifications/tools/list_changed from it and on every new session. Caches
// of its tools (typegen.Cache) list again when it moved. 0 for an unknown
// server.
func (m *Manager) ToolsVersion(server string) uint64 {
	u, ok := m.ups[server]
	if !ok {
		return 0
	}
	return u.toolsVersion.Load()
}

// Status reports every configured upstream (disabled ones too), sorted by
// name. It never connects: counts come from the last successful list.
func (m *Manager) Status(ctx context.Context) []Status {
	out := make([]Status, 0, len(m.all))
	for _, name := range m.all {
		u := m.ups[name]
		u.mu.Lock()
		out = append(out, Status{
			Name: name, Transport: u.cfg.Transport, State: u.state,
			Tools: u.tools, Resources: u.resources, Prompts: u.prompts,
			LastError: u.lastErr, LastErrorAt: u.lastErrAt,
		})
		u.mu.Unlock()
	}
	return out
}

// LastStderr returns the last lines of the stderr of server's most recent
// stdio process (secrets redacted), or nil. It is for the admin (conductor
// doctor): never hand it to code, a tool result or the model — a server
// may print a secret in a form redaction does not recognise.
func (m *Manager) LastStderr(server string) []string {
	u, ok := m.ups[server]
	if !ok {
		return nil
	}
	u.mu.Lock()
	st := u.stderr
	u.mu.Unlock()
	if st == nil {
		return nil
	}
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select { // a dead process's last lines may still be on their way
	case <-st.done:
	case <-t.C:
	}
	return st.lastLines()
}

// ConnectAll connects every enabled upstream now, in parallel, and lists
// their tools, resources and prompts to fill Status. Failures are recorded
// in Status, not returned.
func (m *Manager) ConnectAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range m.enabled {
		u := m.ups[name]
		wg.Go(func() {
			if _, err := u.acquire(ctx); err != nil {
				m.log.Warn("upstream MCP server did not connect", "server", name, "error", err)
				return
			}
			_, _ = m.ListTools(ctx, name)
			_, _ = m.ListResources(ctx, name)
			_, _ = m.ListPrompts(ctx, name)
		})
	}
	wg.Wait()
}

// ListTools lists the upstream's tools that allowedTools lets through.
func (m *Manager) ListTools(ctx context.Context, server string) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	u, err := m.call(ctx, server, "tools/list", "", func(ctx context.Context, s *session) error {
		tools = nil
		if s.caps != nil && s.caps.Tools == nil {
			return nil
		}
		return paginate(ctx, func(ctx context.Context, cursor string) (string, error) {
			res, err := s.cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: cursor})
			if err != nil {
				return "", err
			}
			tools = append(tools, res.Tools...)
			return res.NextCursor, nil
		})
	}, nil)
	if err != nil {
		return nil, err
	}
	if u.allowed != nil {
		have := map[string]bool{}
		tools = slices.DeleteFunc(tools, func(t *mcp.Tool) bool {
			have[t.Name] = true
			return !u.allowed[t.Name]
		})
		if missing := missingTools(u.cfg.AllowedTools, have); len(missing) > 0 && !u.warnedMissing.Swap(true) {
			m.log.Warn("allowedTools names tools the upstream does not have", "server", server, "missing", missing)
		}
	}
	if len(u.cfg.ApprovalTools) > 0 {
		have := map[string]bool{}
		for _, t := range tools {
			have[t.Name] = true
		}
		if missing := missingTools(u.cfg.ApprovalTools, have); len(missing) > 0 && !u.warnedApproval.Swap(true) {
			m.log.Warn("requireApproval names tools the upstream does not list", "server", server, "missing", missing)
		}
	}
	u.setCount(&u.tools, len(tools))
	return tools, nil
}

func missingTools(allowed []string, have map[string]bool) []string {
	var out []string
	for _, t := range allowed {
		if !have[t] {
			out = append(out, t)
		}
	}
	return out
}

// RequiresApproval reports whether sandboxed code's call of tool on server
// must wait for the user's approval (requireApproval in the config).
func (m *Manager) RequiresApproval(server, tool string) bool {
	u, ok := m.ups[server]
	return ok && u.cfg.NeedsApproval(tool)
}

// HasApprovals reports whether any enabled upstream requires approval of
// some of its tools.
func (m *Manager) HasApprovals() bool {
	for _, name := range m.enabled {
		if c := m.ups[name].cfg; c.RequireApproval || len(c.ApprovalTools) > 0 {
			return true
		}
	}
	return false
}

// CallTool calls tool on server. A tool outside allowedTools is refused
// without contacting the server. A result with IsError is not a Go error.
func (m *Manager) CallTool(ctx context.Context, server, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	if u, ok := m.ups[server]; ok && !u.cfg.Disabled && u.allowed != nil && !u.allowed[tool] {
		allowed := "allowedTools is empty"
		if len(u.cfg.AllowedTools) > 0 {
			allowed = "allowed: " + strings.Join(u.cfg.AllowedTools, ", ")
		}
		err := &Error{Server: server, Method: "tools/call", kinds: []error{ErrToolNotAllowed},
			msg: fmt.Sprintf("MCP server %q: tool %q is not allowed (%s)", server, tool, allowed)}
		m.logCall(server, "tools/call", tool, 0, "not_allowed", err)
		return nil, err
	}
	var arguments any = args
	if args == nil {
		// A nil map in an interface is not nil: the SDK would send
		// "arguments": null, which servers reject.
		arguments = map[string]any{}
	}
	var res *mcp.CallToolResult
	_, err := m.call(ctx, server, "tools/call", tool, func(ctx context.Context, s *session) error {
		var err error
		res, err = s.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: arguments})
		return err
	}, func() string {
		if res != nil && res.IsError {
			return "tool_error"
		}
		return "ok"
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ListResources lists the upstream's resources that allowedResources lets
// through. When it allows none, the server is not contacted.
func (m *Manager) ListResources(ctx context.Context, server string) ([]*mcp.Resource, error) {
	if u, ok := m.enabledUpstream(server); ok && u.resAllow.none() {
		m.logCall(server, "resources/list", "", 0, "not_allowed", nil)
		u.setCount(&u.resources, 0)
		return []*mcp.Resource{}, nil
	}
	var out []*mcp.Resource
	u, err := m.call(ctx, server, "resources/list", "", func(ctx context.Context, s *session) error {
		out = nil
		if s.caps != nil && s.caps.Resources == nil {
			return nil
		}
		return paginate(ctx, func(ctx context.Context, cursor string) (string, error) {
			res, err := s.cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: cursor})
			if err != nil {
				return "", err
			}
			out = append(out, res.Resources...)
			return res.NextCursor, nil
		})
	}, nil)
	if err != nil {
		return nil, err
	}
	out = slices.DeleteFunc(out, func(r *mcp.Resource) bool { return !u.resAllow.allows(r.URI) })
	u.setCount(&u.resources, len(out))
	return out, nil
}

// ReadResource reads the resource uri from server. A uri outside
// allowedResources is refused without contacting the server.
func (m *Manager) ReadResource(ctx context.Context, server, uri string) (*mcp.ReadResourceResult, error) {
	if u, ok := m.enabledUpstream(server); ok && !u.resAllow.allows(uri) {
		err := &Error{Server: server, Method: "resources/read", kinds: []error{ErrResourceNotAllowed},
			msg: fmt.Sprintf("MCP server %q: resource %q is not allowed (%s; the conductor admin sets it in the MCP config)", server, uri, u.resAllow.describe())}
		m.logCall(server, "resources/read", uri, 0, "not_allowed", err)
		return nil, err
	}
	var res *mcp.ReadResourceResult
	_, err := m.call(ctx, server, "resources/read", uri, func(ctx context.Context, s *session) error {
		var err error
		res, err = s.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ListPrompts lists the upstream's prompts that allowedPrompts lets
// through. When it allows none, the server is not contacted.
func (m *Manager) ListPrompts(ctx context.Context, server string) ([]*mcp.Prompt, error) {
	if u, ok := m.enabledUpstream(server); ok && u.promptAllow.none() {
		m.logCall(server, "prompts/list", "", 0, "not_allowed", nil)
		u.setCount(&u.prompts, 0)
		return []*mcp.Prompt{}, nil
	}
	var out []*mcp.Prompt
	u, err := m.call(ctx, server, "prompts/list", "", func(ctx context.Context, s *session) error {
		out = nil
		if s.caps != nil && s.caps.Prompts == nil {
			return nil
		}
		return paginate(ctx, func(ctx context.Context, cursor string) (string, error) {
			res, err := s.cs.ListPrompts(ctx, &mcp.ListPromptsParams{Cursor: cursor})
			if err != nil {
				return "", err
			}
			out = append(out, res.Prompts...)
			return res.NextCursor, nil
		})
	}, nil)
	if err != nil {
		return nil, err
	}
	out = slices.DeleteFunc(out, func(p *mcp.Prompt) bool { return !u.promptAllow.allows(p.Name) })
	u.setCount(&u.prompts, len(out))
	return out, nil
}

// GetPrompt gets the prompt name from server. A prompt outside
// allowedPrompts is refused without contacting the server.
func (m *Manager) GetPrompt(ctx context.Context, server, name string, args map[string]string) (*mcp.GetPromptResult, error) {
	if u, ok := m.enabledUpstream(server); ok && !u.promptAllow.allows(name) {
		err := &Error{Server: server, Method: "prompts/get", kinds: []error{ErrPromptNotAllowed},
			msg: fmt.Sprintf("MCP server %q: prompt %q is not allowed (%s; the conductor admin sets it in the MCP config)", server, name, u.promptAllow.describe())}
		m.logCall(server, "prompts/get", name, 0, "not_allowed", err)
		return nil, err
	}
	var res *mcp.GetPromptResult
	_, err := m.call(ctx, server, "prompts/get", name, func(ctx context.Context, s *session) error {
		var err error
		res, err = s.cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: name, Arguments: args})
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// maxPages bounds a paginated list (a server that keeps handing out cursors).
const maxPages = 100

func paginate(ctx context.Context, page func(ctx context.Context, cursor string) (string, error)) error {
	cursor := ""
	for range maxPages {
		next, err := page(ctx, cursor)
		if err != nil {
			return err
		}
		if next == "" || next == cursor {
			return nil
		}
		cursor = next
	}
	return fmt.Errorf("the list has more than %d pages", maxPages)
}

// Close ends every session. Stdio upstreams get their stdin closed, then
// SIGTERM and SIGKILL (to the whole process group) after StopGrace each;
// Close returns once every one of them has been reaped (or after
// 2×StopGrace + 5 s, with an error).
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		m.cancel() // aborts connection attempts under way
		for _, name := range m.all {
			u := m.ups[name]
			u.mu.Lock()
			s, a := u.sess, u.attempt
			u.sess = nil
			if u.state != StateDisabled {
				u.state = StateClosed
			}
			u.mu.Unlock()
			if a != nil {
				<-a.done // the attempt sees m.ctx cancelled and closes what it started
			}
			if s != nil {
				s.close()
			}
			if u.httpTransport != nil {
				u.httpTransport.CloseIdleConnections()
			}
		}
		done := make(chan struct{})
		go func() {
			m.bg.Wait()
			m.children.Wait()
			close(done)
		}()
		limit := 2*m.opts.StopGrace + 5*time.Second
		select {
		case <-done:
		case <-time.After(limit):
			m.closeErr = fmt.Errorf("upstream manager: sessions or processes still ending %s after Close", limit)
		}
	})
	return m.closeErr
}

// logCall logs one call at debug.
func (m *Manager) logCall(server, method, detail string, d time.Duration, outcome string, err error) {
	if !m.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"server", server, "method", method}
	switch method {
	case "tools/call":
		attrs = append(attrs, "tool", detail)
	case "prompts/get":
		attrs = append(attrs, "prompt", detail)
	case "resources/read":
		attrs = append(attrs, "uri", detail)
	}
	attrs = append(attrs, "duration", d, "outcome", outcome)
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	m.log.Debug("upstream call", attrs...)
}

// call runs fn on a session of server: it looks the server up, connects if
// needed, applies CallTimeout, classifies failures, reconnects and retries
// once when the request never reached the server, and logs the call.
func (m *Manager) call(ctx context.Context, server, method, detail string, fn func(context.Context, *session) error, okOutcome func() string) (*upstream, error) {
	start := time.Now()
	u, err := m.lookup(server, method)
	if err != nil {
		m.logCall(server, method, detail, 0, "unknown_server", err)
		return nil, err
	}
	outcome, err := u.do(ctx, method, detail, fn)
	if outcome == "ok" && okOutcome != nil {
		outcome = okOutcome()
	}
	m.logCall(server, method, detail, time.Since(start), outcome, err)
	return u, err
}

// enabledUpstream returns server's upstream when it is configured and
// enabled (the allowlist checks; lookup reports the other cases).
func (m *Manager) enabledUpstream(server string) (*upstream, bool) {
	u, ok := m.ups[server]
	return u, ok && !u.cfg.Disabled
}

func (m *Manager) lookup(server, method string) (*upstream, error) {
	u, ok := m.ups[server]
	if !ok {
		known := "none is configured"
		if len(m.enabled) > 0 {
			known = "configured: " + strings.Join(m.enabled, ", ")
		}
		return nil, &Error{Server: server, Method: method, kinds: []error{ErrUnknownServer},
			msg: fmt.Sprintf("unknown MCP server %q (%s)", server, known)}
	}
	if u.cfg.Disabled {
		return nil, &Error{Server: server, Method: method, kinds: []error{ErrUnknownServer, ErrDisabled},
			msg: fmt.Sprintf("MCP server %q is disabled in the config", server)}
	}
	return u, nil
}

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

// acquire returns the live session, connecting first if there is none.
// Concurrent callers share one connection attempt.
func (u *upstream) acquire(ctx context.Context) (*session, error) {
	for {
		u.mu.Lock()
		if u.m.closed.Load() {
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
	if err == nil && u.m.closed.Load() {
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
		if notSent && try == 0 && !u.m.closed.Load() {
			u.log.Debug("upstream session broken before the request was sent; reconnecting", "server", u.cfg.Name, "method", method, "error", u.redact(err.Error()))
			continue
		}
		if u.m.closed.Load() {
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

// rejectedByTransportCode is the go-sdk's internal jsonrpc2.ErrRejected: an
// HTTP-level refusal (a non-2xx status) of a request the server did not run.
const rejectedByTransportCode = -32005

func rejectedByTransport(err error) bool {
	found := false
	walk(err, func(e error) {
		if we, ok := e.(*jsonrpc.Error); ok && we.Code == rejectedByTransportCode && we.Message == "rejected by transport" {
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

// httpClient is the HTTP client of one upstream: the configured headers on
// every request, and redirects only within the same origin (the headers may
// carry credentials).
func (u *upstream) httpClient() *http.Client {
	return &http.Client{
		Transport: &headerTransport{base: u.httpTransport, headers: u.cfg.Headers},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
				return fmt.Errorf("refusing a redirect to another origin (%s://%s)", req.URL.Scheme, req.URL.Host)
			}
			return nil
		},
	}
}

type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

// MaxResponseBytes bounds one upstream message. Replies a sandbox may receive
// are far smaller (8 MiB); this keeps a hostile or broken upstream from
// growing the server's memory before that check. A longer message is dropped
// and its request fails alone: the session, shared by every execution, lives on.
const MaxResponseBytes = 32 << 20

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 {
		req = req.Clone(req.Context())
		for k, v := range t.headers {
			req.Header.Set(k, v)
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || resp.Body == nil {
		return resp, err
	}
	// A POST response carries its request's reply: a JSON body on one line,
	// or an event stream whose messages are each one "data:" line.
	g := newLineGuard(resp.Body, MaxResponseBytes)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		g.prefix = "data: "
	}
	resp.Body = readCloser{g, resp.Body}
	return resp, nil
}

// sseTransport connects the legacy SSE transport with the session's
// context: its event stream is bound to the context it connects with, which
// must outlive the connection attempt. The attempt's deadline still applies
// to connecting.
type sseTransport struct {
	inner *mcp.SSEClientTransport
	s     *session
}

func (t *sseTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	type result struct {
		c   mcp.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := t.inner.Connect(t.s.ctx)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		t.s.cancel()
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
		return nil, ctx.Err()
	}
}
