package mcp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/identity"
)

// Defaults for HTTPOptions' zero durations.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultSessionTimeout    = 30 * time.Minute
)

// HTTPOptions configure conductor's streamable HTTP server.
type HTTPOptions struct {
	// Token is the bearer token required on /mcp; "" = none (the admin's
	// explicit opt-out, or a unix socket whose permissions authenticate).
	Token string
	// Identities, when set, replace Token: /mcp (and /metrics) accept the token of any identity
	// the store holds now, and each request carries its identity (auth.TokenInfo.UserID, which
	// the go-sdk binds sessions to, and which scopeOf reports).
	Identities *identity.Store
	// SessionTimeout closes MCP sessions that received no request for this
	// long; 0 = DefaultSessionTimeout.
	SessionTimeout time.Duration
	// MaxSessions caps live MCP sessions per token (conductor has one
	// token, so all its clients share the cap); 0 = no cap.
	MaxSessions  int
	MaxBodyBytes int64
	// MaxConns and MaxConnsPerIP cap open connections (see connLimiter);
	// 0 = no cap.
	MaxConns, MaxConnsPerIP int
	// ReadHeaderTimeout bounds the time from a connection's accept (or the
	// end of its idle wait) to the end of the request's headers.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds the time to receive a request's body. It is a read
	// deadline set when the handler starts and cleared once the body is
	// read, so it never cuts a response that streams for minutes.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for this long.
	IdleTimeout time.Duration
	// BaseContext, when set, is the parent of every request's context
	// (cancel it to end long-lived streams at shutdown, after Drain: a POST
	// whose context ends before its answer is written loses the answer).
	BaseContext context.Context
	// Metrics, when set, serves /metrics, behind Token as /mcp is.
	Metrics http.Handler
	// Ready, when set, serves /readyz, without a token as /healthz is.
	Ready http.Handler
	// Stateless serves without MCP sessions (the go-sdk's stateless mode):
	// each POST is answered by a temporary session, GET and DELETE get 405,
	// and the server can send the client no request of its own (so no
	// approvals by elicitation).
	Stateless bool
}

func (o *HTTPOptions) defaults() {
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.BaseContext == nil {
		o.BaseContext = context.Background()
	}
}

// HTTPServer serves streamable HTTP at /mcp, a health check at /healthz (and, when its
// HTTPOptions set them, /metrics and /readyz),
// with the timeouts and caps of its HTTPOptions.
type HTTPServer struct {
	o   HTTPOptions
	log *slog.Logger
	hs  *http.Server

	mu      sync.Mutex
	limiter *connLimiter // set by Serve when a connection cap is on

	posts posts // the POSTs on /mcp being served (see Drain)
}

// NewHTTPServer builds the HTTP server; Serve starts it on a listener.
func (s *Server) NewHTTPServer(o HTTPOptions) *HTTPServer {
	o.defaults()
	h := &HTTPServer{o: o, log: s.opt().Logger}
	h.hs = &http.Server{
		Handler:           bodyDeadline(o.BodyTimeout, s.handler(o, &h.posts)),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.opt().Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return o.BaseContext },
		ConnContext:       withConn,
	}
	return h
}

// Serve accepts connections on ln until Shutdown or Close.
func (h *HTTPServer) Serve(ln net.Listener) error {
	if h.o.MaxConns > 0 || h.o.MaxConnsPerIP > 0 {
		maxConns, perIP := h.o.MaxConns, h.o.MaxConnsPerIP
		if maxConns <= 0 {
			maxConns = int(^uint(0) >> 1)
		}
		if perIP <= 0 {
			perIP = maxConns
		}
		l := newConnLimiter(ln, maxConns, perIP, h.log)
		h.mu.Lock()
		h.limiter = l
		h.mu.Unlock()
		ln = l
	}
	return h.hs.Serve(ln)
}

// OpenConns is the number of connections the caps count now (-1 without caps).
func (h *HTTPServer) OpenConns() int {
	h.mu.Lock()
	l := h.limiter
	h.mu.Unlock()
	if l == nil {
		return -1
	}
	return l.open()
}

// Shutdown stops accepting and waits for open requests to end (see
// http.Server.Shutdown).
func (h *HTTPServer) Shutdown(ctx context.Context) error { return h.hs.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (h *HTTPServer) Close() error { return h.hs.Close() }

// OpenPosts is the number of POSTs on /mcp being served now: each that
// carries calls is open until all of them are answered.
func (h *HTTPServer) OpenPosts() int { return int(h.posts.open.Load()) }

// drainPoll is how often Drain looks at the POSTs still open.
const drainPoll = 10 * time.Millisecond

// Drain waits until no POST on /mcp is open, or ctx ends (then it returns
// ctx's error and how many were still open). The SDK holds a POST that
// carries calls open until each is answered, so once Shutdown stopped new
// connections and the executions were cancelled (their calls then answer
// with status cancelled), Drain returning nil means every call in flight
// has its answer written. Only then may BaseContext be cancelled: it ends
// the requests that wait for nothing (GET /mcp streams), and a POST whose
// context ends returns without writing its answer.
func (h *HTTPServer) Drain(ctx context.Context) error {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		n := h.posts.open.Load()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d POST requests still open: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// posts counts the POSTs on /mcp being served.
type posts struct{ open atomic.Int64 }

// wrap counts next's POSTs.
func (p *posts) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			p.open.Add(1)
			defer p.open.Add(-1)
		}
		next.ServeHTTP(w, r)
	})
}

// handler routes /mcp (token, session cap, the SDK's handler; its POSTs
// counted in p for Drain), /healthz, and /metrics (token) and /readyz when set. The SDK's DNS-rebinding protection
// stays on.
func (s *Server) handler(o HTTPOptions, p *posts) http.Handler {
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.sdk }, &sdk.StreamableHTTPOptions{
		SessionTimeout:      o.SessionTimeout,
		Logger:              sdkLogger(s.opt().Logger),
		MaxRequestBodyBytes: o.MaxBodyBytes,
		Stateless:           o.Stateless,
	})
	mux := http.NewServeMux()
	authn := func(next http.Handler) http.Handler { return requireToken(o.Token, next) }
	if o.Identities != nil {
		authn = func(next http.Handler) http.Handler { return requireIdentity(o.Identities, next) }
	}
	mux.Handle("/mcp", p.wrap(authn(capSessions(s.sdk, o.MaxSessions, o.SessionTimeout, h))))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", authn(o.Metrics))
	}
	if o.Ready != nil {
		mux.Handle("GET /readyz", o.Ready)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		markAnswered(r.Context()) // for the connection caps: served; trusted only if authenticated
	})
}

// requireToken rejects requests without the bearer token with 401 and
// closes their connection without reading their body; an accepted request
// marks its connection trusted for the connection caps.
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="conductor"`)
			w.Header().Set("Connection", "close")
			http.Error(w, "401 unauthorized: send Authorization: Bearer <token> (the admin has it: MCP_CONDUCTOR_HTTP_TOKEN, "+
				"or the token file named in the server's log)", http.StatusUnauthorized)
			if r.Body != nil && r.Body != http.NoBody {
				// net/http reads up to 256 KiB of an unread body after the
				// handler returns; with the deadline passed it stops at once
				// and the connection closes after the 401.
				_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			}
			return
		}
		markTrusted(r.Context())
		next.ServeHTTP(w, r)
	})
}

// requireIdentity accepts the token of any identity store holds when the request arrives
// (SHA-256 digests compared in constant time, identity.Set.Verify), through the go-sdk's
// bearer-token middleware, so the request's context carries auth.TokenInfo{UserID: identity} and
// the go-sdk binds each session to its identity. A refused request gets a 401 saying what to
// send and who has the tokens, and its connection closes.
func requireIdentity(store *identity.Store, next http.Handler) http.Handler {
	verify := func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		name, ok := store.Load().Verify(token)
		if !ok {
			return nil, fmt.Errorf("401 unauthorized: %w: this bearer token is no identity's (the admin gives each identity its token "+
				"and lists its SHA-256 in \"identities\" of MCP_CONDUCTOR_CONFIG)", auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{UserID: name}, nil
	}
	checked := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			markTrusted(r.Context())
			next.ServeHTTP(w.(*refusedWriter).ResponseWriter, r)
		}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := strings.Fields(r.Header.Get("Authorization")); len(f) != 2 || !strings.EqualFold(f[0], "bearer") {
			unauthorized(w, r, "401 unauthorized: send Authorization: Bearer <token>, the token of your identity (the admin gives it)")
			return
		}
		checked.ServeHTTP(&refusedWriter{ResponseWriter: w, r: r}, r)
	})
}

// refusedWriter closes the connection of a request answered 401 without reading its body.
type refusedWriter struct {
	http.ResponseWriter
	r *http.Request
}

func (w *refusedWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="conductor"`)
		w.Header().Set("Connection", "close")
		stopBody(w.ResponseWriter, w.r)
	}
	w.ResponseWriter.WriteHeader(code)
}

// unauthorized answers 401 with msg and closes the connection without reading the body.
func unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="conductor"`)
	w.Header().Set("Connection", "close")
	http.Error(w, msg, http.StatusUnauthorized)
	stopBody(w, r)
}

// stopBody: net/http reads up to 256 KiB of an unread body after the handler returns; with the
// deadline passed it stops at once and the connection closes after the 401.
func stopBody(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
}

// bodyDeadline bounds the time to receive a request's body with a read
// deadline, cleared as soon as the body has been read to its end. Requests
// without a body get none: for them net/http already reads in the
// background to notice a closed connection, and a deadline expiring there
// would cancel the request (a GET /mcp stream may last for hours).
// http.Server.ReadTimeout is not used for the same reason, and because it
// covers the whole request.
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline when the body hits its end.
type deadlineBody struct {
	io.ReadCloser
	clear func()
	once  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.clear)
	}
	return n, err
}

// capSessions refuses a new MCP session (a POST without Mcp-Session-Id)
// while max sessions are live. A slot is taken before the SDK creates the
// session and given back when the session closes: by the client (DELETE),
// by idle expiry (timeout), or at once when initialization failed.
func capSessions(srv *sdk.Server, max int, timeout time.Duration, next http.Handler) http.Handler {
	if max <= 0 {
		return next
	}
	slots := make(chan struct{}, max)
	var freed sync.Map // session id -> chan struct{}, closed once its slot is back
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Mcp-Session-Id"); r.Method == http.MethodDelete && id != "" {
			// The slot is back before the DELETE is answered, so a client
			// that closes one session can open the next at once.
			next.ServeHTTP(w, r)
			if done, ok := freed.Load(id); ok {
				select {
				case <-done.(chan struct{}):
				case <-time.After(2 * time.Second):
				}
			}
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Mcp-Session-Id") != "" {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			refuseSession(w, r, max, timeout)
			return
		}
		// A POST that creates no session (one the SDK answers without a session, or refuses)
		// gives its slot back before its answer leaves: the client's next request may come
		// before this handler returns, and must not find the slot still taken.
		var release sync.Once
		give := func() { release.Do(func() { <-slots }) }
		sw := &sessionWriter{ResponseWriter: w, noSession: give}
		next.ServeHTTP(sw, r)
		ss := findSession(srv, w.Header().Get("Mcp-Session-Id"))
		if ss == nil {
			give() // no session was created, or it is already closed
			return
		}
		done := make(chan struct{})
		freed.Store(ss.ID(), done)
		go func() {
			_ = ss.Wait()
			<-slots
			freed.Delete(ss.ID())
			close(done)
		}()
	})
}

// sessionWriter calls noSession as the response's header is written without an
// Mcp-Session-Id, before anything reaches the client.
type sessionWriter struct {
	http.ResponseWriter
	noSession   func()
	wroteHeader bool
}

func (w *sessionWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if w.Header().Get("Mcp-Session-Id") == "" {
			w.noSession()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps the SDK's event streams streaming through the wrapper.
func (w *sessionWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func findSession(srv *sdk.Server, id string) *sdk.ServerSession {
	if id == "" {
		return nil
	}
	for ss := range srv.Sessions() {
		if ss.ID() == id {
			return ss
		}
	}
	return nil
}

// refuseSession answers an initialize over the session cap with a JSON-RPC
// error (carrying the request's id, which the client needs to show it).
// Not 429/503: the go-sdk client reports those as a bare status text.
func refuseSession(w http.ResponseWriter, r *http.Request, max int, timeout time.Duration) {
	msg := fmt.Sprintf("refused: a new MCP session would exceed the limit of %d live sessions per token "+
		"(MCP_CONDUCTOR_HTTP_MAX_SESSIONS, set by the admin). Close a session you no longer use (HTTP DELETE /mcp "+
		"with its Mcp-Session-Id) or reuse one; idle sessions expire after %s.", max, timeout)
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req)
	if len(req.ID) == 0 || string(req.ID) == "null" {
		req.ID = json.RawMessage("0")
	}
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      req.ID,
		"error":   map[string]any{"code": -32000, "message": msg},
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(body)
}
