package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and fixed limits.
const (
	DefaultDialTimeout   = 10 * time.Second
	DefaultIdleTimeout   = 2 * time.Minute
	DefaultHeaderTimeout = 10 * time.Second
	DefaultMaxConns      = 64

	// MaxHeaderBytes bounds a request's line and headers (431 beyond).
	MaxHeaderBytes = 16 << 10
	// maxResponseHeaderBytes bounds an upstream response head (plain HTTP).
	maxResponseHeaderBytes = 64 << 10

	refuseTimeout = time.Second            // reading the head of a refused connection
	lingerTimeout = 500 * time.Millisecond // draining after an error response
	lingerBytes   = 64 << 10
	shutdownGrace = 2 * time.Second // client->upstream after upstream has finished
	copyBufSize   = 32 << 10
	spliceChunk   = 1 << 20 // bytes per ReadFrom call in a tunnel
)

// Options configure a proxy.
type Options struct {
	// NetNS is the path of the network namespace to listen in, e.g.
	// /proc/<pid>/ns/net of the sandbox's init. Required.
	NetNS string
	// Port is the port to listen on at 127.0.0.1 inside NetNS; 0 lets the
	// kernel choose. Fix it when the sandbox's environment must be written
	// before the namespace exists (see ProxyEnv).
	Port int
	// Allow lists the allowed destinations. Empty denies everything.
	Allow []Rule
	// AllowPrivate lets name rules resolve to non-public addresses
	// (loopback, RFC 1918, link-local, CGNAT, ...). Off, a name that
	// resolves only to such addresses is denied, which defeats DNS
	// rebinding onto the host or its network. IP-literal rules are explicit
	// and never need it. For tests and for admins whose registry mirror is
	// on a private network.
	AllowPrivate bool

	DialTimeout   time.Duration // resolving + connecting upstream; 0 = DefaultDialTimeout
	IdleTimeout   time.Duration // a tunnel or request with no traffic either way; 0 = DefaultIdleTimeout
	HeaderTimeout time.Duration // a client sending its request head; 0 = DefaultHeaderTimeout
	MaxConns      int           // concurrent client connections; 0 = DefaultMaxConns

	// Logger gets one record per connection: debug for allowed and failed
	// ones, info for denials and refusals. nil discards.
	Logger *slog.Logger

	// Resolver looks up a DNS name host-side; nil uses net.DefaultResolver.
	// It is only called for names an allow rule matched.
	Resolver func(ctx context.Context, host string) ([]netip.Addr, error)
	// Dial connects upstream; nil uses a net.Dialer. addr is always a vetted
	// "ip:port", never a name.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Stats are a proxy's counters since Start.
type Stats struct {
	Accepted    uint64 // connections accepted from the sandbox
	Allowed     uint64 // requests that reached an allowed upstream
	Denied      uint64 // requests refused by the allowlist or the address policy (403)
	Failed      uint64 // allowed, but the upstream could not be resolved or reached (502/504)
	BadRequests uint64 // malformed, oversized or too slow (400/408/417/431/505)
	Refused     uint64 // over MaxConns (503)
	Active      int64  // client connections being served now
	BytesUp     uint64 // bytes forwarded sandbox -> upstream
	BytesDown   uint64 // bytes forwarded upstream -> sandbox
}

// Proxy is an allowlisting HTTP forward proxy (CONNECT and absolute-form
// plain HTTP) listening on 127.0.0.1 inside a sandbox's network namespace
// and dialing from the host's.
type Proxy struct {
	o      Options
	rules  ruleSet
	ln     *net.TCPListener
	addr   string
	method string // how the listener was created: "setns" or "helper"
	log    *slog.Logger

	ctx    context.Context // cancelled by Close: aborts dials
	cancel context.CancelFunc

	sem      chan struct{}
	refusing atomic.Int32
	logLimit logLimiter

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	done   chan struct{}
	once   sync.Once
	err    error

	accepted, allowed, denied, failed, bad, refused atomic.Uint64
	active                                          atomic.Int64
	up, down                                        atomic.Uint64
}

// Start creates the listener inside o.NetNS and serves it in the
// background until ctx is done or Close is called.
func Start(ctx context.Context, o Options) (*Proxy, error) {
	if o.NetNS == "" {
		return nil, errors.New("egress: Options.NetNS is required")
	}
	if o.Port < 0 || o.Port > 65535 {
		return nil, fmt.Errorf("egress: port %d out of range", o.Port)
	}
	rules, err := compileRules(o.Allow)
	if err != nil {
		return nil, err
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Resolver == nil {
		o.Resolver = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		o.Dial = d.DialContext
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ln, method, err := listenIn(ctx, o.NetNS, o.Port)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		o: o, rules: rules, ln: ln, addr: ln.Addr().String(), method: method, log: log,
		ctx: pctx, cancel: cancel,
		sem:   make(chan struct{}, o.MaxConns),
		conns: make(map[net.Conn]struct{}),
		done:  make(chan struct{}),
	}
	log.Debug("egress proxy listening", "addr", p.addr, "netns", o.NetNS, "via", method, "rules", len(rules))
	p.wg.Add(1)
	go p.acceptLoop()
	go func() {
		select {
		case <-ctx.Done():
			p.Close()
		case <-p.done:
		}
	}()
	return p, nil
}

// Addr is the proxy's address as seen inside the sandbox: "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.addr }

// Env is ProxyEnv for this proxy's address.
func (p *Proxy) Env() []string { return proxyEnv(p.addr) }

// ProxyEnv is the environment that points deno (fetch, and npm registry
// downloads) at a proxy on 127.0.0.1:port: HTTP_PROXY and HTTPS_PROXY in both
// cases, and an empty NO_PROXY so nothing bypasses it. Use it to build the
// sandbox's environment before the namespace, and so the proxy, exists.
func ProxyEnv(port int) []string {
	return proxyEnv(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

func proxyEnv(addr string) []string {
	u := "http://" + addr
	return []string{
		"HTTPS_PROXY=" + u, "HTTP_PROXY=" + u,
		"https_proxy=" + u, "http_proxy=" + u,
		"NO_PROXY=", "no_proxy=",
	}
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted: p.accepted.Load(), Allowed: p.allowed.Load(), Denied: p.denied.Load(),
		Failed: p.failed.Load(), BadRequests: p.bad.Load(), Refused: p.refused.Load(),
		Active: p.active.Load(), BytesUp: p.up.Load(), BytesDown: p.down.Load(),
	}
}

// Close stops listening, closes every connection and tunnel, and waits for
// the proxy's goroutines. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		conns := make([]net.Conn, 0, len(p.conns))
		for c := range p.conns {
			conns = append(conns, c)
		}
		p.mu.Unlock()
		p.cancel()
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.err = err
		}
		for _, c := range conns {
			c.Close()
		}
		close(p.done)
	})
	p.wg.Wait()
	return p.err
}

// track registers a connection (and a goroutine serving it) unless the proxy
// is closed.
func (p *Proxy) track(c net.Conn, goroutine bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	if goroutine {
		p.wg.Add(1)
	}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("egress accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-p.done:
				return
			}
			continue
		}
		backoff = 0
		p.accepted.Add(1)
		select {
		case p.sem <- struct{}{}:
			if !p.track(c, true) {
				<-p.sem
				c.Close()
				return
			}
			go p.serve(c)
		default:
			p.refuse(c)
		}
	}
}

// refuse answers 503 to a connection over MaxConns. It reads (a bounded,
// briefly awaited) request head first so the client sees the answer rather
// than a reset; beyond MaxConns refusals in flight it just closes.
func (p *Proxy) refuse(c *net.TCPConn) {
	p.refused.Add(1)
	if int(p.refusing.Add(1)) > p.o.MaxConns || !p.track(c, true) {
		p.refusing.Add(-1)
		c.Close()
		p.logConn(slog.LevelDebug, "refused", "", "", "too many connections; closed without reading", 0, 0, time.Now())
		return
	}
	go func() {
		defer p.wg.Done()
		defer p.refusing.Add(-1)
		defer p.untrack(c)
		defer c.Close()
		start := time.Now()
		lr := &headLimit{r: c, n: MaxHeaderBytes}
		_ = c.SetReadDeadline(start.Add(refuseTimeout))
		req, _ := http.ReadRequest(bufio.NewReaderSize(lr, 4096))
		dest := ""
		if req != nil {
			dest = req.RequestURI
		}
		msg := fmt.Sprintf("conductor egress: too many concurrent connections through the proxy (limit %d); retry later\n", p.o.MaxConns)
		p.writeError(c, http.StatusServiceUnavailable, "refused", msg)
		p.logConn(slog.LevelInfo, "refused", methodOf(req), sanitize(dest), "over MaxConns", 0, 0, start)
	}()
}

// target is a validated destination.
type target struct {
	host    string // normalized name or canonical IP
	kind    hostKind
	port    int
	connect bool
}

func (t target) String() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// hostHeader is the Host value for a plain HTTP request to t.
func (t target) hostHeader() string {
	if t.port == 80 {
		if t.kind == hostIP && strings.Contains(t.host, ":") {
			return "[" + t.host + "]"
		}
		return t.host
	}
	return t.String()
}

type badRequest struct {
	code int
	msg  string
}

func (p *Proxy) serve(c *net.TCPConn) {
	p.active.Add(1)
	defer p.wg.Done()
	defer p.active.Add(-1)
	defer func() { <-p.sem }()
	defer p.untrack(c)
	defer c.Close()

	start := time.Now()
	lr := &headLimit{r: c, n: MaxHeaderBytes}
	br := bufio.NewReaderSize(lr, 4096)
	_ = c.SetReadDeadline(start.Add(p.o.HeaderTimeout))
	req, err := http.ReadRequest(br)
	if err != nil {
		code, msg := http.StatusBadRequest, "conductor egress: malformed request\n"
		switch {
		case lr.n == 0:
			code, msg = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("conductor egress: request head larger than %d bytes\n", MaxHeaderBytes)
		case errors.Is(err, os.ErrDeadlineExceeded):
			code, msg = http.StatusRequestTimeout, "conductor egress: request head not received in time\n"
		case errors.Is(err, io.EOF) && lr.used == 0:
			// Connected and closed without a byte: nothing to answer.
			p.logConn(slog.LevelDebug, "empty", "", "", "closed before sending a request", 0, 0, start)
			return
		}
		p.bad.Add(1)
		p.writeError(c, code, "bad-request", msg)
		p.logConn(slog.LevelDebug, "bad-request", "", "", fmt.Sprintf("%d: %v", code, err), 0, 0, start)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	method := methodOf(req)

	t, bad := parseTarget(req)
	if bad != nil {
		p.bad.Add(1)
		p.writeError(c, bad.code, "bad-request", "conductor egress: "+bad.msg+"\n")
		p.logConn(slog.LevelDebug, "bad-request", method, sanitize(req.RequestURI), bad.msg, 0, 0, start)
		return
	}
	if _, ok := p.rules.match(t.host, t.kind, t.port); !ok {
		p.denied.Add(1)
		p.writeError(c, http.StatusForbidden, "denied",
			fmt.Sprintf("conductor egress: %s denied: the admin's network allowlist does not include it\n", t))
		p.logConn(slog.LevelInfo, "denied", method, t.String(), "not in allowlist", 0, 0, start)
		return
	}

	up, code, reason := p.dialUpstream(t)
	if up == nil {
		verdict := "failed"
		if code == http.StatusForbidden {
			verdict = "denied"
			p.denied.Add(1)
			p.logConn(slog.LevelInfo, verdict, method, t.String(), reason, 0, 0, start)
		} else {
			p.failed.Add(1)
			p.logConn(slog.LevelDebug, verdict, method, t.String(), reason, 0, 0, start)
		}
		p.writeError(c, code, verdict, fmt.Sprintf("conductor egress: %s: %s\n", t, reason))
		return
	}
	if !p.track(up, false) {
		up.Close()
		return
	}
	defer p.untrack(up)
	defer up.Close()
	p.allowed.Add(1)

	var st connStats
	var ferr error
	if t.connect {
		ferr = p.tunnel(c, br, up, &st)
	} else {
		lr.r = &idleConn{Conn: c, idle: p.o.IdleTimeout} // the body, if any, comes through br
		ferr = p.forwardHTTP(c, br, req, t, up, &st)
	}
	reason = ""
	if ferr != nil {
		reason = ferr.Error()
	}
	p.logConn(slog.LevelDebug, "allowed", method, t.String(), reason, st.up.Load(), st.down.Load(), start)
}

// parseTarget validates the request form and extracts the destination.
func parseTarget(req *http.Request) (target, *badRequest) {
	if req.ProtoMajor != 1 {
		return target{}, &badRequest{http.StatusHTTPVersionNotSupported, "only HTTP/1.x is supported"}
	}
	if req.Method == http.MethodConnect {
		h, ps, err := net.SplitHostPort(req.RequestURI)
		if err != nil {
			return target{}, &badRequest{http.StatusBadRequest, "CONNECT needs host:port"}
		}
		port, ok := parsePort(ps)
		if !ok {
			return target{}, &badRequest{http.StatusBadRequest, "CONNECT needs a port 1-65535"}
		}
		host, kind := normalizeHost(h)
		if kind == hostBad {
			return target{}, &badRequest{http.StatusBadRequest, "CONNECT target is not a DNS name or IP literal"}
		}
		return target{host: host, kind: kind, port: port, connect: true}, nil
	}
	raw := req.RequestURI
	if len(raw) < 7 || !strings.EqualFold(raw[:7], "http://") {
		switch {
		case strings.HasPrefix(raw, "/") || raw == "*":
			return target{}, &badRequest{http.StatusBadRequest, "this is an egress proxy, not a server: send absolute-form requests (http://host/...) or CONNECT"}
		case len(raw) >= 8 && strings.EqualFold(raw[:8], "https://"):
			return target{}, &badRequest{http.StatusBadRequest, "https:// requests go through CONNECT"}
		}
		return target{}, &badRequest{http.StatusBadRequest, "unsupported request target"}
	}
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.User != nil || req.URL.Opaque != "" {
		return target{}, &badRequest{http.StatusBadRequest, "bad request URL"}
	}
	auth := raw[7:]
	if i := strings.IndexAny(auth, "/?#"); i >= 0 {
		auth = auth[:i]
	}
	if strings.ContainsAny(auth, "@%") {
		return target{}, &badRequest{http.StatusBadRequest, "userinfo and percent-encoding are not accepted in the host"}
	}
	h, port := auth, 80
	switch {
	case strings.HasPrefix(auth, "["):
		end := strings.IndexByte(auth, ']')
		if end < 0 {
			return target{}, &badRequest{http.StatusBadRequest, "bad IPv6 literal"}
		}
		h = auth[1:end]
		if tail := auth[end+1:]; tail != "" {
			p, ok := parsePort(strings.TrimPrefix(tail, ":"))
			if !ok || tail[0] != ':' {
				return target{}, &badRequest{http.StatusBadRequest, "bad port"}
			}
			port = p
		}
		if !strings.Contains(h, ":") {
			return target{}, &badRequest{http.StatusBadRequest, "bad IPv6 literal"}
		}
	case strings.Contains(auth, ":"):
		i := strings.LastIndexByte(auth, ':')
		p, ok := parsePort(auth[i+1:])
		if !ok || strings.Contains(auth[:i], ":") {
			return target{}, &badRequest{http.StatusBadRequest, "bad port"}
		}
		h, port = auth[:i], p
	}
	host, kind := normalizeHost(h)
	if kind == hostBad {
		return target{}, &badRequest{http.StatusBadRequest, "request host is not a DNS name or IP literal"}
	}
	if e := req.Header.Get("Expect"); e != "" && !strings.EqualFold(e, "100-continue") {
		return target{}, &badRequest{http.StatusExpectationFailed, "unsupported Expect"}
	}
	if req.Header.Get("Upgrade") != "" {
		return target{}, &badRequest{http.StatusBadRequest, "protocol upgrades are not proxied over plain HTTP (use CONNECT)"}
	}
	return target{host: host, kind: kind, port: port}, nil
}

// dialUpstream resolves (names only, host-side), vets and dials. On failure
// it returns the status for the client and why.
func (p *Proxy) dialUpstream(t target) (net.Conn, int, string) {
	ctx, cancel := context.WithTimeout(p.ctx, p.o.DialTimeout)
	defer cancel()
	var addrs []netip.Addr
	if t.kind == hostIP {
		addrs = []netip.Addr{netip.MustParseAddr(t.host)} // an explicit IP rule
	} else {
		res, err := p.o.Resolver(ctx, t.host)
		if err != nil {
			if ctx.Err() != nil {
				return nil, http.StatusGatewayTimeout, "resolving the name timed out"
			}
			return nil, http.StatusBadGateway, "cannot resolve the name: " + shortErr(err)
		}
		var blocked []string
		for _, a := range res {
			a = a.Unmap()
			switch {
			case !dialableAddr(a):
				blocked = append(blocked, a.String())
			case !p.o.AllowPrivate && !publicAddr(a):
				blocked = append(blocked, a.String())
			default:
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			if len(blocked) > 0 {
				return nil, http.StatusForbidden, fmt.Sprintf("denied: the name resolves only to non-public addresses (%s), which the allowlist does not cover", strings.Join(blocked, ", "))
			}
			return nil, http.StatusBadGateway, "the name has no addresses"
		}
	}
	var lastErr error
	for _, a := range addrs {
		c, err := p.o.Dial(ctx, "tcp", netip.AddrPortFrom(a, uint16(t.port)).String())
		if err == nil {
			return c, 0, ""
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return nil, http.StatusGatewayTimeout, "connecting upstream timed out"
	}
	return nil, http.StatusBadGateway, "cannot connect upstream: " + shortErr(lastErr)
}

type connStats struct{ up, down atomic.Uint64 }

// tunnel answers 200 to a CONNECT and copies bytes both ways until both
// sides finish, either side fails, the tunnel idles, or the proxy closes.
func (p *Proxy) tunnel(c *net.TCPConn, br *bufio.Reader, up net.Conn, st *connStats) error {
	_ = c.SetWriteDeadline(time.Now().Add(p.o.IdleTimeout))
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return err
	}
	// Bytes the client sent right behind its CONNECT head (a TLS hello).
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		_ = up.SetWriteDeadline(time.Now().Add(p.o.IdleTimeout))
		w, err := up.Write(b)
		p.count(st, true, w)
		if err != nil {
			return err
		}
	}
	var last, shutdownAt atomic.Int64
	last.Store(time.Now().UnixNano())
	upDone := make(chan error, 1)
	go func() {
		err := p.copyIdle(up, c, st, true, &last, &shutdownAt)
		if err == nil {
			closeWrite(up)
		} else {
			c.Close()
			up.Close()
		}
		upDone <- err
	}()
	downErr := p.copyIdle(c, up, st, false, &last, &shutdownAt)
	if downErr == nil {
		closeWrite(c)
		// Upstream is finished; give the client a moment to finish too.
		shutdownAt.Store(time.Now().Add(shutdownGrace).UnixNano())
		_ = c.SetReadDeadline(time.Now().Add(shutdownGrace))
	} else {
		c.Close()
		up.Close()
	}
	upErr := <-upDone
	return errors.Join(downErr, upErr)
}

var errIdle = errors.New("idle timeout")

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyIdle copies src to dst until EOF (nil), an error, or idleness. It
// moves data in chunks through dst's ReadFrom, which between two TCP
// sockets is splice(2) (zero-copy), so it checks in every IdleTimeout/4 at
// most: a read that times out with nothing moved ends the copy only if
// neither direction moved for IdleTimeout (a long download with a silent
// client is not idle), or once shutdownAt has passed. A write that cannot
// progress for IdleTimeout ends it too (data may sit in the splice pipe, so
// it cannot resume).
func (p *Proxy) copyIdle(dst, src net.Conn, st *connStats, upward bool, last, shutdownAt *atomic.Int64) error {
	idle := p.o.IdleTimeout
	tick := max(idle/4, time.Millisecond)
	lr := &io.LimitedReader{R: src}
	rf, ok := dst.(io.ReaderFrom)
	if !ok {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		rf = &bufferedReaderFrom{w: dst, buf: *bp}
	}
	for {
		now := time.Now()
		rdl := now.Add(tick)
		if s := shutdownAt.Load(); s != 0 && s < rdl.UnixNano() {
			rdl = time.Unix(0, s)
		}
		wdl := now.Add(idle)
		_ = src.SetReadDeadline(rdl)
		_ = dst.SetWriteDeadline(wdl)
		lr.N = spliceChunk
		n, err := rf.ReadFrom(lr)
		if n > 0 {
			p.count(st, upward, int(n))
			last.Store(time.Now().UnixNano())
		}
		if err == nil {
			if lr.N > 0 {
				return nil // EOF before the chunk was full
			}
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		now = time.Now()
		if !now.Before(wdl) {
			return errIdle // the write side stalled
		}
		if s := shutdownAt.Load(); s != 0 && now.UnixNano() >= s {
			return errIdle
		}
		if now.UnixNano()-last.Load() < int64(idle) {
			continue
		}
		return errIdle
	}
}

// bufferedReaderFrom is io.Copy for a dst without ReadFrom (e.g. a conn
// from a custom Dial).
type bufferedReaderFrom struct {
	w   io.Writer
	buf []byte
}

func (b *bufferedReaderFrom) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(writerOnly{b.w}, r, b.buf)
}

type writerOnly struct{ io.Writer }

func (p *Proxy) count(st *connStats, upward bool, n int) {
	if n <= 0 {
		return
	}
	if upward {
		st.up.Add(uint64(n))
		p.up.Add(uint64(n))
	} else {
		st.down.Add(uint64(n))
		p.down.Add(uint64(n))
	}
}

// hopHeaders are never forwarded (RFC 9110 7.6.1, plus the proxy ones).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// forwardHTTP sends one absolute-form request upstream in origin form with
// Connection: close, relays the response, and closes.
func (p *Proxy) forwardHTTP(c *net.TCPConn, br *bufio.Reader, req *http.Request, t target, up net.Conn, st *connStats) error {
	client := &idleConn{Conn: c, idle: p.o.IdleTimeout}
	upc := &idleConn{Conn: up, idle: p.o.IdleTimeout}
	expect := strings.EqualFold(req.Header.Get("Expect"), "100-continue")
	removeHopByHop(req.Header)
	req.Header.Del("Expect")
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // Request.Write would add Go's
	}
	// The destination decides the Host: a header naming another site would
	// let the sandbox reach it through a shared (CDN) address.
	req.Host = t.hostHeader()
	req.URL.Host = req.Host
	req.URL.Scheme = "http"
	req.Close = true
	if expect {
		if _, err := io.WriteString(client, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return err
		}
	}
	werr := req.Write(&countWriter{w: upc, p: p, st: st, upward: true})

	ulr := &headLimit{r: upc, n: maxResponseHeaderBytes}
	ubr := bufio.NewReaderSize(ulr, 4096)
	for {
		resp, err := http.ReadResponse(ubr, req)
		if err != nil {
			p.writeError(c, http.StatusBadGateway, "failed", "conductor egress: no valid response from upstream\n")
			return errors.Join(werr, err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				resp.Body.Close()
				p.writeError(c, http.StatusBadGateway, "failed", "conductor egress: upstream switched protocols\n")
				return errors.New("upstream sent 101")
			}
			// 103 Early Hints and the like: relay, then read the real one.
			removeHopByHop(resp.Header)
			cw := &countWriter{w: client, p: p, st: st}
			fmt.Fprintf(cw, "HTTP/1.1 %s\r\n", resp.Status)
			resp.Header.Write(cw)
			io.WriteString(cw, "\r\n")
			ulr.n = maxResponseHeaderBytes
			continue
		}
		ulr.n = -1
		removeHopByHop(resp.Header)
		resp.Header.Set("Connection", "close")
		resp.Close = true
		resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
		err = resp.Write(&countWriter{w: client, p: p, st: st})
		resp.Body.Close()
		lingerClose(c)
		return err
	}
}

type countWriter struct {
	w      io.Writer
	p      *Proxy
	st     *connStats
	upward bool
}

func (w *countWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.p.count(w.st, w.upward, n)
	return n, err
}

// idleConn refreshes the deadline before every read and write.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}

// headLimit lets at most n bytes through (n < 0: unlimited), so a request
// or response head can never make the proxy read without bound.
type headLimit struct {
	r    io.Reader
	n    int64
	used int64
}

func (l *headLimit) Read(b []byte) (int, error) {
	if l.n == 0 {
		return 0, errHeadTooLarge
	}
	if l.n > 0 && int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	if l.n > 0 {
		l.n -= int64(n)
	}
	l.used += int64(n)
	return n, err
}

var errHeadTooLarge = errors.New("egress: head too large")

// writeError sends a short plain-text answer and closes gracefully.
func (p *Proxy) writeError(c net.Conn, code int, verdict, body string) {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nX-Conductor-Egress: %s\r\n\r\n%s",
		code, http.StatusText(code), len(body), verdict, body)
	lingerClose(c)
}

// lingerClose half-closes and drains a little of what the client may still
// be sending, so closing does not reset the connection under the answer.
func lingerClose(c net.Conn) {
	closeWrite(c)
	_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, c, lingerBytes)
	c.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

func (p *Proxy) logConn(level slog.Level, verdict, method, dest, reason string, up, down uint64, start time.Time) {
	if !p.log.Enabled(p.ctx, level) {
		return
	}
	if level >= slog.LevelInfo {
		// The sandbox decides how often this happens: bound it.
		ok, suppressed := p.logLimit.allow(time.Now())
		if suppressed > 0 {
			p.log.Warn("egress: connection records suppressed (rate limit)", "count", suppressed)
		}
		if !ok {
			return
		}
	}
	attrs := []slog.Attr{
		slog.String("verdict", verdict),
		slog.String("method", method),
		slog.String("dest", dest),
		slog.Uint64("bytes_up", up),
		slog.Uint64("bytes_down", down),
		slog.Duration("duration", time.Since(start)),
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	p.log.LogAttrs(context.Background(), level, "egress", attrs...)
}

// infoLogsPerSecond bounds the info records one proxy writes.
const infoLogsPerSecond = 20

type logLimiter struct {
	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

// allow reports whether a record may be written now, and how many were
// suppressed in the window that just ended (to be reported once).
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var report int
	if now.Sub(l.window) >= time.Second {
		report, l.suppressed = l.suppressed, 0
		l.window, l.n = now, 0
	}
	if l.n >= infoLogsPerSecond {
		l.suppressed++
		return false, report
	}
	l.n++
	return true, report
}

func methodOf(req *http.Request) string {
	if req == nil {
		return ""
	}
	return sanitize(req.Method)
}

// sanitize bounds and cleans client-supplied text for logs.
func sanitize(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func shortErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Err // not the server's resolver address
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
