package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Secrets at the door (see the package doc, "Secrets"): a connection to a
// name some secret may be sent to is intercepted. If the sandbox speaks TLS
// first, the door completes the handshake with a certificate for that name
// from the authority only sandboxes trust, reads HTTP/1.1 requests, puts
// each secret's real value in place of its placeholder in the request's
// headers, and forwards them over its own TLS connection to the name,
// verifying the upstream's certificate normally. Real values coming back
// (a header or body that echoes them) are replaced by the placeholder, so
// the sandbox never holds one. Anything else on such a connection (plain
// HTTP, another protocol) is relayed unchanged: placeholders go out as
// placeholders, and the record says so.

// handshakeTimeout bounds the sandbox's first bytes and TLS handshake.
const handshakeTimeout = 10 * time.Second

// intercept serves a sandbox connection to a secret host.
func (d *Door) intercept(c *net.TCPConn, host string, port int, rec *record) {
	cc := &countedConn{Conn: c, d: d, rec: rec}
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		rec.set(true, "closed before sending anything")
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	d.bytesIn(rec, 1, true)
	if first[0] != 0x16 { // not a TLS handshake record: relay as is
		up, reason := d.dial(host, hostName, port)
		d.relayTo(c, up, reason, rec, first, "not TLS: relayed unchanged (secrets are put in only over TLS)")
		return
	}
	conn := &prefixConn{Conn: cc, prefix: first, done: make(chan struct{})}
	tc := tls.Server(conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		// h2 first: over HTTP/1.1 the client's first request, written right
		// behind its Finished, waits for a delayed ACK (Nagle) when the
		// server has nothing to send; h2's SETTINGS carry the ACK.
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hi.ServerName != "" && !strings.EqualFold(strings.TrimSuffix(hi.ServerName, "."), host) {
				return nil, fmt.Errorf("TLS server name %q is not %s, the name looked up", hi.ServerName, host)
			}
			return d.o.Secrets.ca.leaf(host)
		},
	})
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(d.ctx); err != nil {
		rec.set(false, "TLS handshake with the sandbox failed: "+shortErr(err))
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	rec.set(true, "")
	d.serveHTTP(tc, conn.done, host, port, rec)
}

// serveHTTP proxies the HTTP/1.1 requests of one terminated connection
// until it closes.
func (d *Door) serveHTTP(tc *tls.Conn, done <-chan struct{}, host string, port int, rec *record) {
	hostport := net.JoinHostPort(host, strconv.Itoa(port))
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "https", hostport, ""
			if port == 443 {
				pr.Out.Host = host
			}
			d.putSecrets(pr.Out, host, rec)
			// The transport asks for gzip itself and decompresses, so
			// responses can be scrubbed of real values.
			pr.Out.Header.Del("Accept-Encoding")
		},
		Transport:      d.secretTransport(host),
		ModifyResponse: func(r *http.Response) error { return d.scrubResponse(r, host) },
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			msg := "conductor egress door: " + hostport + ": " + shortErr(err)
			rec.appendReason(msg)
			http.Error(w, msg, http.StatusBadGateway)
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameAuthority(r.Host, host, port) {
			msg := fmt.Sprintf("conductor egress door: this connection is to %s; a request for %q cannot be sent on it", hostport, r.Host)
			rec.appendReason(msg)
			http.Error(w, msg, http.StatusMisdirectedRequest)
			return
		}
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: handshakeTimeout,
		IdleTimeout:       d.o.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return d.ctx },
	}
	l := &oneConnListener{c: tc, closed: make(chan struct{})}
	go func() { _ = srv.Serve(l) }()
	select {
	case <-done:
	case <-d.ctx.Done():
	}
	l.Close()
	_ = srv.Close()
}

// sameAuthority reports whether a request's Host names host:port.
func sameAuthority(reqHost, host string, port int) bool {
	h, p, err := net.SplitHostPort(reqHost)
	if err != nil {
		h, p = reqHost, strconv.Itoa(port)
	}
	return strings.EqualFold(strings.TrimSuffix(h, "."), host) && p == strconv.Itoa(port)
}

// secretTransport is the door's HTTP client to a secret host: it dials
// through the door's own resolve-vet-dial path and verifies the upstream's
// certificate against the host's roots (or UpstreamRoots).
func (d *Door) secretTransport(host string) *http.Transport {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.transports[host]; ok {
		return t
	}
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			_, ps, _ := net.SplitHostPort(addr)
			port, _ := strconv.Atoi(ps)
			up, reason := d.dial(host, hostName, port)
			if up == nil {
				return nil, errors.New(reason)
			}
			if !d.track(up, false) {
				up.Close()
				return nil, net.ErrClosed
			}
			return &untrackConn{Conn: up, d: d}, nil
		},
		TLSClientConfig:       &tls.Config{ServerName: host, RootCAs: d.o.UpstreamRoots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   handshakeTimeout,
		ResponseHeaderTimeout: d.o.IdleTimeout,
		IdleConnTimeout:       d.o.IdleTimeout,
		MaxIdleConnsPerHost:   4,
	}
	if d.transports == nil {
		d.transports = map[string]*http.Transport{}
	}
	d.transports[host] = t
	return t
}

// putSecrets replaces placeholders in the request's headers with the real
// values of the secrets that may go to host, and records which secrets
// went and which placeholders went out as placeholders (in the target, or
// of secrets not for this host).
func (d *Door) putSecrets(r *http.Request, host string, rec *record) {
	mine := d.o.Secrets.forHost(host)
	for k, vs := range r.Header {
		for i, v := range vs {
			if !strings.Contains(v, placeholderPrefix) && !(strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "Proxy-Authorization")) {
				continue
			}
			nv := v
			for _, s := range mine {
				if strings.Contains(nv, s.placeholder) {
					nv = strings.ReplaceAll(nv, s.placeholder, s.Value)
					rec.addSecret(s.Name)
				}
			}
			nv = d.putInBasic(nv, mine, rec)
			vs[i] = nv
			for _, n := range d.o.Secrets.placeholdersIn([]byte(nv)) {
				rec.addPlaceholder(n)
			}
		}
	}
	for _, n := range d.o.Secrets.placeholdersIn([]byte(r.URL.RequestURI())) {
		rec.addPlaceholder(n)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &scanBody{ReadCloser: r.Body, scan: &scanOut{s: d.o.Secrets, rec: rec}}
	}
}

// putInBasic substitutes inside "Basic base64(user:password)" credentials.
func (d *Door) putInBasic(v string, mine []*secret, rec *record) string {
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return v
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil || !bytes.Contains(raw, []byte(placeholderPrefix)) {
		return v
	}
	changed := false
	for _, s := range mine {
		if bytes.Contains(raw, []byte(s.placeholder)) {
			raw = bytes.ReplaceAll(raw, []byte(s.placeholder), []byte(s.Value))
			rec.addSecret(s.Name)
			changed = true
		}
	}
	for _, n := range d.o.Secrets.placeholdersIn(raw) {
		rec.addPlaceholder(n)
	}
	if !changed {
		return v
	}
	return scheme + " " + base64.StdEncoding.EncodeToString(raw)
}

// scrubResponse puts placeholders back wherever the host's answer holds a
// real value of a secret that may go to it.
// An answer in an encoding the door cannot read (it asks for gzip only,
// which the transport decodes) is refused: it could carry a value back.
func (d *Door) scrubResponse(r *http.Response, host string) error {
	mine := d.o.Secrets.forHost(host)
	scrubHeader(r.Header, mine)
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") && r.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("%w: the host answered in Content-Encoding %q, which the door cannot check for the secrets' values", errUncheckable, ce)
	}
	if r.Body == nil || r.Body == http.NoBody || r.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	var body io.ReadCloser = r.Body
	for _, s := range mine {
		body = newReplacer(body, []byte(s.Value), []byte(s.placeholder))
	}
	// Trailers arrive with the body's end; the proxy copies them after it.
	r.Body = &atEOF{ReadCloser: body, fn: func() { scrubHeader(r.Trailer, mine) }}
	r.ContentLength = -1
	r.Header.Del("Content-Length")
	return nil
}

var errUncheckable = errors.New("answer refused")

// scrubHeader puts placeholders back in place of real values.
func scrubHeader(h http.Header, mine []*secret) {
	for _, vs := range h {
		for i, v := range vs {
			for _, s := range mine {
				v = strings.ReplaceAll(v, s.Value, s.placeholder)
			}
			vs[i] = v
		}
	}
}

// atEOF calls fn once when the body ends.
type atEOF struct {
	io.ReadCloser
	fn   func()
	once sync.Once
}

func (a *atEOF) Read(p []byte) (int, error) {
	n, err := a.ReadCloser.Read(p)
	if err == io.EOF {
		a.once.Do(a.fn)
	}
	return n, err
}

// replacer is a streaming replace of old by new.
type replacer struct {
	src      io.ReadCloser
	old, new []byte
	in, out  []byte
	buf      []byte
	eof      bool
	err      error
}

func newReplacer(src io.ReadCloser, old, new []byte) *replacer {
	return &replacer{src: src, old: old, new: new}
}

func (r *replacer) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.eof && len(r.in) == 0 {
			return 0, r.err
		}
		if !r.eof {
			if r.buf == nil {
				r.buf = make([]byte, 32<<10)
			}
			n, err := r.src.Read(r.buf)
			r.in = append(r.in, r.buf[:n]...)
			if err != nil {
				r.eof, r.err = true, err
			}
		}
		// Replace whole matches in the raw input; keep back a raw tail that
		// may be the start of one (shorter than old, so no whole match).
		var out []byte
		i := 0
		for {
			j := bytes.Index(r.in[i:], r.old)
			if j < 0 {
				break
			}
			out = append(out, r.in[i:i+j]...)
			out = append(out, r.new...)
			i += j + len(r.old)
		}
		rest := r.in[i:]
		keep := 0
		if !r.eof {
			keep = min(len(r.old)-1, len(rest))
		}
		r.out = append(out, rest[:len(rest)-keep]...)
		r.in = append([]byte(nil), rest[len(rest)-keep:]...)
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *replacer) Close() error { return r.src.Close() }

// scanBody records placeholders in a request body, which goes out as is.
type scanBody struct {
	io.ReadCloser
	scan *scanOut
}

func (b *scanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.scan.scan(p[:n])
	return n, err
}

// countedConn counts the sandbox side of an intercepted connection into its
// record and the door's byte limit.
type countedConn struct {
	net.Conn
	d   *Door
	rec *record
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.d.bytesIn(c.rec, n, true) {
		return n, fmt.Errorf("%w (%d bytes)", errByteCap, c.d.o.MaxBytes)
	}
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	if !c.d.bytesIn(c.rec, len(p), false) {
		return 0, fmt.Errorf("%w (%d bytes)", errByteCap, c.d.o.MaxBytes)
	}
	return c.Conn.Write(p)
}

// bytesIn counts n bytes of rec (out: sandbox to destination) and reports
// whether the door's limit still holds.
func (d *Door) bytesIn(rec *record, n int, out bool) bool {
	if out {
		rec.out.Add(int64(n))
	} else {
		rec.in.Add(int64(n))
	}
	return d.bytes.Add(int64(n)) <= d.o.MaxBytes
}

// prefixConn replays bytes already read, and says when it is closed.
type prefixConn struct {
	net.Conn
	prefix []byte
	once   sync.Once
	done   chan struct{}
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *prefixConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

// untrackConn removes an upstream connection from the door's set on close.
type untrackConn struct {
	net.Conn
	d    *Door
	once sync.Once
}

func (c *untrackConn) Close() error {
	c.once.Do(func() { c.d.untrack(c.Conn) })
	return c.Conn.Close()
}

// oneConnListener hands out one connection, then blocks until closed.
type oneConnListener struct {
	mu     sync.Mutex
	c      net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }

// scanOut records placeholders in a relayed stream (sandbox to
// destination); tail carries the end of the previous chunk.
type scanOut struct {
	s    *Secrets
	rec  *record
	tail []byte
	seen atomic.Bool
}

func (o *scanOut) scan(b []byte) {
	if o == nil || o.seen.Load() {
		return
	}
	o.tail = append(o.tail, b...)
	names := o.s.placeholdersIn(o.tail)
	for _, n := range names {
		o.rec.addPlaceholder(n)
	}
	if keep := o.s.maxPlaceholder(); len(o.tail) > keep {
		o.tail = append([]byte(nil), o.tail[len(o.tail)-keep:]...)
	}
	if len(names) == len(o.s.list) {
		o.seen.Store(true)
	}
}

// addSecret and addPlaceholder note, once each, a secret put in and a
// placeholder that went out as is.
func (r *record) addSecret(name string) {
	r.mu.Lock()
	if !slices.Contains(r.r.Secrets, name) {
		r.r.Secrets = append(r.r.Secrets, name)
	}
	r.mu.Unlock()
}

func (r *record) addPlaceholder(name string) {
	r.mu.Lock()
	if !slices.Contains(r.r.Placeholders, name) {
		r.r.Placeholders = append(r.r.Placeholders, name)
	}
	r.mu.Unlock()
}

// appendReason adds to the record's reason, bounded.
func (r *record) appendReason(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.r.Reason) > 400 {
		return
	}
	if r.r.Reason != "" {
		r.r.Reason += "; "
	}
	r.r.Reason += sanitize(s)
}
