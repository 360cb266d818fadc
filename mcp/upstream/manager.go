// This file: the Manager's API — construction, the calls (list, call,
// read, get), Status and Close — and the per-call wrapper (lookup, allowlists,
// logging). How a call reaches a session is session.go's job.

package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
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

// Manager owns the sessions to the configured upstream MCP servers.
type Manager struct {
	opts      Options
	log       *slog.Logger
	lookupEnv func(string) (string, bool) // conductor's environment, for the stdio base env

	set      sync.RWMutex // guards ups, all, enabled, versions and retired (Apply replaces them)
	ups      map[string]*upstream
	all      []string           // sorted
	enabled  []string           // sorted
	versions map[string]uint64  // the last ToolsVersion of a server Apply replaced or removed
	retired  map[*upstream]bool // replaced or removed by Apply, not closed yet

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
		m.ups[sc.Name] = m.newUpstream(sc)
	}
	m.index()
	return m
}

// newUpstream prepares the upstream of sc; nothing is started.
func (m *Manager) newUpstream(sc ServerConfig) *upstream {
	log, o := m.log, m.opts
	u := &upstream{m: m, cfg: sc, log: log, state: StateIdle, tools: -1, resources: -1, prompts: -1}
	if sc.Disabled {
		u.state = StateDisabled
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
		u.httpTransport = newHTTPTransport()
	}
	return u
}

// index rebuilds all and enabled from ups (with m.set held, or before m is shared).
func (m *Manager) index() {
	m.all, m.enabled = nil, nil
	for name, u := range m.ups {
		m.all = append(m.all, name)
		if !u.cfg.Disabled {
			m.enabled = append(m.enabled, name)
		}
	}
	slices.Sort(m.all)
	slices.Sort(m.enabled)
}

// get returns server's upstream, if configured.
func (m *Manager) get(server string) (*upstream, bool) {
	m.set.RLock()
	defer m.set.RUnlock()
	u, ok := m.ups[server]
	return u, ok
}

// Names returns the enabled upstreams, sorted.
func (m *Manager) Names() []string {
	m.set.RLock()
	defer m.set.RUnlock()
	return slices.Clone(m.enabled)
}

// ToolsVersion changes whenever server's tool list may have changed: on a
// notifications/tools/list_changed from it and on every new session. Caches
// of its tools (typegen.Cache) list again when it moved. 0 for an unknown
// server.
func (m *Manager) ToolsVersion(server string) uint64 {
	u, ok := m.get(server)
	if !ok {
		return 0
	}
	return u.toolsVersion.Load()
}

// Status reports every configured upstream (disabled ones too), sorted by
// name. It never connects: counts come from the last successful list.
func (m *Manager) Status(ctx context.Context) []Status {
	m.set.RLock()
	ups := make([]*upstream, 0, len(m.all))
	for _, name := range m.all {
		ups = append(ups, m.ups[name])
	}
	m.set.RUnlock()
	out := make([]Status, 0, len(ups))
	for _, u := range ups {
		name := u.cfg.Name
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
	u, ok := m.get(server)
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
	for _, name := range m.Names() {
		u, ok := m.get(name)
		if !ok {
			continue
		}
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
		var err error
		tools, err = listAll(ctx, s.cs.ListTools,
			func(cursor string) *mcp.ListToolsParams { return &mcp.ListToolsParams{Cursor: cursor} },
			func(res *mcp.ListToolsResult) ([]*mcp.Tool, string) { return res.Tools, res.NextCursor })
		return err
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
	u, ok := m.get(server)
	return ok && u.cfg.NeedsApproval(tool)
}

// HasApprovals reports whether any enabled upstream requires approval of
// some of its tools.
func (m *Manager) HasApprovals() bool {
	m.set.RLock()
	defer m.set.RUnlock()
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
	if u, ok := m.get(server); ok && !u.cfg.Disabled && u.allowed != nil && !u.allowed[tool] {
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
		var err error
		out, err = listAll(ctx, s.cs.ListResources,
			func(cursor string) *mcp.ListResourcesParams { return &mcp.ListResourcesParams{Cursor: cursor} },
			func(res *mcp.ListResourcesResult) ([]*mcp.Resource, string) { return res.Resources, res.NextCursor })
		return err
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
		var err error
		out, err = listAll(ctx, s.cs.ListPrompts,
			func(cursor string) *mcp.ListPromptsParams { return &mcp.ListPromptsParams{Cursor: cursor} },
			func(res *mcp.ListPromptsResult) ([]*mcp.Prompt, string) { return res.Prompts, res.NextCursor })
		return err
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

// maxPages bounds a paginated list: a server that keeps handing out cursors
// is cut off with errTooManyPages.
const maxPages = 100

// errTooManyPages ends a list whose server handed out more than maxPages
// pages (broken or hostile pagination). The session lives on.
var errTooManyPages = fmt.Errorf("the server handed out more than %d pages of one list; conductor stops listing there (the server's operator must fix its pagination)", maxPages)

// listAll gathers every page of one list method (tools/list,
// resources/list, prompts/list): list is the session's method, params makes
// its request for a cursor, page takes a result apart. The list ends at an
// empty next cursor or at one equal to the cursor just sent (a server that
// repeats itself), and fails with errTooManyPages after maxPages requests.
//
// It is not the go-sdk's ClientSession.Tools/Resources/Prompts iterators:
// in v1.8.0 they have no page cap and yield nothing for an empty page, so a
// server handing out empty pages with fresh cursors would keep them
// requesting until CallTimeout (TestSDKIteratorsHaveNoPageCap pins this).
func listAll[P, R, T any](ctx context.Context, list func(context.Context, P) (R, error), params func(cursor string) P, page func(R) ([]T, string)) ([]T, error) {
	var out []T
	cursor := ""
	for range maxPages {
		res, err := list(ctx, params(cursor))
		if err != nil {
			return nil, err
		}
		items, next := page(res)
		out = append(out, items...)
		if next == "" || next == cursor {
			return out, nil
		}
		cursor = next
	}
	return nil, errTooManyPages
}

// Close ends every session. Stdio upstreams get their stdin closed, then
// SIGTERM and SIGKILL (to the whole process group) after StopGrace each;
// Close returns once every one of them has been reaped (or after
// 2×StopGrace + 5 s, with an error).
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		m.cancel() // aborts connection attempts under way
		m.set.Lock()
		ups := make([]*upstream, 0, len(m.ups)+len(m.retired))
		for _, name := range m.all {
			ups = append(ups, m.ups[name])
		}
		for u := range m.retired {
			ups = append(ups, u)
		}
		m.retired = nil
		m.set.Unlock()
		for _, u := range ups {
			u.close()
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
	u, ok := m.get(server)
	return u, ok && !u.cfg.Disabled
}

func (m *Manager) lookup(server, method string) (*upstream, error) {
	u, ok := m.get(server)
	if !ok {
		known := "none is configured"
		if names := m.Names(); len(names) > 0 {
			known = "configured: " + strings.Join(names, ", ")
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
