package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func loopRule(port int) Rule { return Rule{Host: "127.0.0.1", Port: port} }

func TestConnectAllowedEcho(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	h := &hooks{}
	p := startProxy(t, ns, h, Options{Allow: []Rule{loopRule(echo.port)}})
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") || p.method != "setns" {
		t.Fatalf("Addr %q via %q, want 127.0.0.1:PORT via setns", p.Addr(), p.method)
	}

	c := ns.dial(t, p.Addr())
	defer c.Close()
	// The first payload bytes ride in the same write as the CONNECT head,
	// as a TLS client's hello may: they must reach upstream too.
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nearly-", echo.addr, echo.addr)
	br := bufio.NewReader(c)
	code, _, err := readHead(br)
	if err != nil || code != 200 {
		t.Fatalf("CONNECT allowed upstream: %d %v", code, err)
	}
	io.WriteString(c, "hello")
	got := make([]byte, len("early-hello"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "early-hello" {
		t.Fatalf("echo through the tunnel: %q %v", got, err)
	}
	// Half-close from the client: the upstream echo sees EOF, closes, and the
	// tunnel ends.
	c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q %v", rest, err)
	}
	waitFor(t, "the tunnel to end", 5*time.Second, func() bool { return p.Stats().Active == 0 })
	st := p.Stats()
	if st.Allowed != 1 || st.Denied != 0 || st.BytesUp != 11 || st.BytesDown != 11 || st.Accepted != 1 {
		t.Fatalf("stats %+v, want 1 allowed, 11 bytes each way", st)
	}
	if _, dialed := h.calls(); len(dialed) != 1 || dialed[0] != echo.addr {
		t.Fatalf("dialed %v, want exactly %s", dialed, echo.addr)
	}
}

func TestConnectDenied(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	otherPort, otherHits := countingListener(t)
	h := &hooks{names: map[string][]netip.Addr{"evil.test": {netip.MustParseAddr("127.0.0.1")}}}
	p := startProxy(t, ns, h, Options{Allow: []Rule{loopRule(echo.port), {Host: "allowed.test", Port: 443}}, AllowPrivate: true})

	cases := []struct{ name, target string }{
		{"disallowed port", fmt.Sprintf("127.0.0.1:%d", otherPort)},
		{"disallowed name", "evil.test:443"},
		{"allowed name, other port", "allowed.test:8443"},
		{"IP literal of an allowed name's address", "127.0.0.2:443"},
		{"IPv6 loopback literal", fmt.Sprintf("[::1]:%d", echo.port)},
		{"name rule does not allow an IP literal", fmt.Sprintf("localhost:%d", echo.port)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ns.dial(t, p.Addr())
			defer c.Close()
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", tc.target, tc.target)
			a := readAnswer(t, c, bufio.NewReader(c))
			if a.code != 403 || !a.closed {
				t.Fatalf("CONNECT %s: %d closed=%v, want 403 and close", tc.target, a.code, a.closed)
			}
			host, port, _ := net.SplitHostPort(tc.target)
			want := net.JoinHostPort(host, port)
			if !strings.Contains(a.body, want) || !strings.Contains(a.body, "allowlist") || a.header.Get("X-Conductor-Egress") != "denied" {
				t.Fatalf("403 body %q / header %q should name %s and the allowlist", a.body, a.header.Get("X-Conductor-Egress"), want)
			}
		})
	}
	resolved, dialed := h.calls()
	if len(resolved) != 0 || len(dialed) != 0 {
		t.Fatalf("denied requests must not resolve or dial: resolved %v dialed %v", resolved, dialed)
	}
	if otherHits.Load() != 0 || echo.accepted.Load() != 0 {
		t.Fatalf("an upstream saw a connection: other %d echo %d", otherHits.Load(), echo.accepted.Load())
	}
	if st := p.Stats(); st.Denied != uint64(len(cases)) || st.Allowed != 0 {
		t.Fatalf("stats %+v, want %d denied", st, len(cases))
	}
}

// A name the allowlist includes, resolving to the host's own loopback
// (DNS rebinding), is denied unless AllowPrivate; a public resolution is
// dialed by vetted IP only.
func TestResolvedAddressPolicy(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	names := map[string][]netip.Addr{
		"rebind.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("169.254.169.254")},
		"mixed.test":  {netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("203.0.113.7")},
		"zero.test":   {netip.MustParseAddr("0.0.0.0")},
	}
	rules := []Rule{{Host: "rebind.test", Port: echo.port}, {Host: "mixed.test", Port: 443}, {Host: "zero.test", Port: echo.port}}

	t.Run("private denied", func(t *testing.T) {
		h := &hooks{names: names}
		p := startProxy(t, ns, h, Options{Allow: rules})
		c := ns.dial(t, p.Addr())
		defer c.Close()
		target := fmt.Sprintf("rebind.test:%d", echo.port)
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\n", target)
		a := readAnswer(t, c, bufio.NewReader(c))
		if a.code != 403 || !strings.Contains(a.body, "non-public") || !strings.Contains(a.body, "127.0.0.1") {
			t.Fatalf("rebinding to loopback: %d %q", a.code, a.body)
		}
		if resolved, dialed := h.calls(); len(resolved) != 1 || len(dialed) != 0 {
			t.Fatalf("resolved %v dialed %v: want one lookup, no dial", resolved, dialed)
		}
		if echo.accepted.Load() != 0 || p.Stats().Denied != 1 {
			t.Fatalf("upstream accepted %d, stats %+v", echo.accepted.Load(), p.Stats())
		}
	})
	t.Run("public address chosen", func(t *testing.T) {
		h := &hooks{names: names, failDial: true} // records, never connects anywhere
		p := startProxy(t, ns, h, Options{Allow: rules})
		c := ns.dial(t, p.Addr())
		defer c.Close()
		fmt.Fprintf(c, "CONNECT mixed.test:443 HTTP/1.1\r\n\r\n")
		a := readAnswer(t, c, bufio.NewReader(c))
		if _, dialed := h.calls(); len(dialed) != 1 || dialed[0] != "203.0.113.7:443" {
			t.Fatalf("dialed %v, want only the public address 203.0.113.7:443", dialed)
		}
		if a.code != 502 || p.Stats().Failed != 1 {
			t.Fatalf("failed dial: %d %q, stats %+v", a.code, a.body, p.Stats())
		}
	})
	t.Run("AllowPrivate", func(t *testing.T) {
		h := &hooks{names: names}
		p := startProxy(t, ns, h, Options{Allow: rules, AllowPrivate: true})
		c := ns.dial(t, p.Addr())
		defer c.Close()
		code, br := connect(t, c, fmt.Sprintf("rebind.test:%d", echo.port))
		if code != 200 {
			t.Fatalf("AllowPrivate: CONNECT %d", code)
		}
		io.WriteString(c, "x")
		if b, err := br.ReadByte(); err != nil || b != 'x' {
			t.Fatalf("echo: %q %v", b, err)
		}
		// Even with AllowPrivate, 0.0.0.0 (which reaches the host) is refused.
		c2 := ns.dial(t, p.Addr())
		defer c2.Close()
		fmt.Fprintf(c2, "CONNECT zero.test:%d HTTP/1.1\r\n\r\n", echo.port)
		if a := readAnswer(t, c2, bufio.NewReader(c2)); a.code != 403 {
			t.Fatalf("zero.test: %d %q", a.code, a.body)
		}
		if _, dialed := h.calls(); len(dialed) != 1 {
			t.Fatalf("dialed %v, want only the rebind.test address", dialed)
		}
	})
}

func TestPlainHTTP(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	type seen struct {
		host, uri, body string
		header          http.Header
		close           bool
	}
	got := make(chan seen, 8)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Host, r.RequestURI, string(b), r.Header.Clone(), r.Close}
		w.Header().Set("Keep-Alive", "timeout=99")
		w.Header().Set("X-Upstream", "yes")
		fmt.Fprintf(w, "upstream says hi to %s", r.URL.Path)
	}))
	defer up.Close()
	upPort := up.Listener.Addr().(*net.TCPAddr).Port
	upHost := fmt.Sprintf("127.0.0.1:%d", upPort)
	otherPort, otherHits := countingListener(t)
	p := startProxy(t, ns, &hooks{}, Options{Allow: []Rule{loopRule(upPort)}})

	t.Run("GET allowed, hop-by-hop stripped, Host from URL", func(t *testing.T) {
		req := "GET http://" + upHost + "/a/b?c=d HTTP/1.1\r\n" +
			"Host: evil.test\r\n" +
			"Proxy-Authorization: Basic c2VjcmV0\r\n" +
			"Proxy-Connection: keep-alive\r\n" +
			"Connection: keep-alive, X-Drop-Me\r\n" +
			"X-Drop-Me: 1\r\n" +
			"Keep-Alive: 5\r\n" +
			"X-Keep-Me: 2\r\n\r\n"
		a, c := httpGetThrough(t, ns, p.Addr(), req)
		defer c.Close()
		if a.code != 200 || a.body != "upstream says hi to /a/b" {
			t.Fatalf("response %d %q", a.code, a.body)
		}
		if !a.closed || a.header.Get("Connection") != "close" || a.header.Get("Keep-Alive") != "" || a.header.Get("X-Upstream") != "yes" {
			t.Fatalf("response headers %v closed=%v: want Connection: close, no Keep-Alive, X-Upstream kept, then close", a.header, a.closed)
		}
		s := <-got
		if s.host != upHost || s.uri != "/a/b?c=d" || !s.close {
			t.Fatalf("upstream saw Host %q URI %q close=%v", s.host, s.uri, s.close)
		}
		for _, k := range []string{"Proxy-Authorization", "Proxy-Connection", "X-Drop-Me", "Keep-Alive", "User-Agent"} {
			if _, ok := s.header[k]; ok {
				t.Errorf("upstream received %s: %v", k, s.header)
			}
		}
		if s.header.Get("X-Keep-Me") != "2" {
			t.Errorf("end-to-end header dropped: %v", s.header)
		}
	})
	t.Run("POST chunked body with Expect", func(t *testing.T) {
		c := ns.dial(t, p.Addr())
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "POST http://%s/post HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", upHost, upHost)
		br := bufio.NewReader(c)
		if code, _, err := readHead(br); err != nil || code != 100 {
			t.Fatalf("want 100 Continue first: %d %v", code, err)
		}
		io.WriteString(c, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		a := readAnswer(t, c, br)
		if a.code != 200 {
			t.Fatalf("POST: %d %q", a.code, a.body)
		}
		if s := <-got; s.body != "hello world" || s.uri != "/post" {
			t.Fatalf("upstream got body %q uri %q", s.body, s.uri)
		}
	})
	t.Run("GET denied", func(t *testing.T) {
		a, c := httpGetThrough(t, ns, p.Addr(), fmt.Sprintf("GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n", otherPort))
		defer c.Close()
		if a.code != 403 || !a.closed || !strings.Contains(a.body, fmt.Sprintf("127.0.0.1:%d", otherPort)) {
			t.Fatalf("denied GET: %d %q closed=%v", a.code, a.body, a.closed)
		}
		// Port 80 is implied when the URL has none.
		a, c2 := httpGetThrough(t, ns, p.Addr(), "GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")
		defer c2.Close()
		if a.code != 403 || !strings.Contains(a.body, "127.0.0.1:80 ") {
			t.Fatalf("denied GET to :80: %d %q", a.code, a.body)
		}
		if otherHits.Load() != 0 {
			t.Fatal("the denied upstream was dialed")
		}
	})
	st := p.Stats()
	if st.Allowed != 2 || st.Denied != 2 || st.BytesUp == 0 || st.BytesDown == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMalformed(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	h := &hooks{}
	p := startProxy(t, ns, h, Options{Allow: []Rule{loopRule(echo.port), {Host: "allowed.test", Port: 0}}, AllowPrivate: true})
	cases := []struct {
		name, req string
		code      int
	}{
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 400},
		{"origin-form to the proxy itself", "GET / HTTP/1.1\r\nHost: " + p.Addr() + "\r\n\r\n", 400},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT without port", "CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT port out of range", "CONNECT allowed.test:99999 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT port zero", "CONNECT allowed.test:0 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT userinfo", "CONNECT user@allowed.test:443 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT numeric shorthand", "CONNECT 127.1:443 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT decimal address", "CONNECT 2130706433:443 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT IPv6 zone", "CONNECT [fe80::1%25eth0]:443 HTTP/1.1\r\n\r\n", 400},
		{"CONNECT with a path", "CONNECT /x HTTP/1.1\r\n\r\n", 400},
		{"CONNECT non-ASCII", "CONNECT ällowed.test:443 HTTP/1.1\r\n\r\n", 400},
		{"https absolute-form", "GET https://allowed.test/ HTTP/1.1\r\n\r\n", 400},
		{"percent-encoded host", "GET http://%61llowed.test/ HTTP/1.1\r\n\r\n", 400},
		{"userinfo in URL", "GET http://u:p@allowed.test/ HTTP/1.1\r\n\r\n", 400},
		{"empty port", "GET http://allowed.test:/ HTTP/1.1\r\n\r\n", 400},
		{"upgrade over plain HTTP", "GET http://allowed.test/ HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400},
		{"odd Expect", "GET http://allowed.test/ HTTP/1.1\r\nExpect: magic\r\n\r\n", 417},
		{"HTTP/2 preface-ish", "GET http://allowed.test/ HTTP/2.0\r\n\r\n", 505},
		{"conflicting lengths", "POST http://allowed.test/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"space in target", "CONNECT allowed .test:443 HTTP/1.1\r\n\r\n", 400},
		{"header without colon", "GET http://allowed.test/ HTTP/1.1\r\nNoColonHere\r\n\r\n", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, c := httpGetThrough(t, ns, p.Addr(), tc.req)
			defer c.Close()
			if a.code != tc.code || !a.closed {
				t.Fatalf("%q: got %d closed=%v (%q), want %d and close", tc.req, a.code, a.closed, a.body, tc.code)
			}
		})
	}
	if resolved, dialed := h.calls(); len(resolved)+len(dialed) != 0 {
		t.Fatalf("malformed requests resolved %v / dialed %v", resolved, dialed)
	}
	if st := p.Stats(); st.BadRequests != uint64(len(cases)) || st.Allowed+st.Denied != 0 {
		t.Fatalf("stats %+v, want %d bad requests", st, len(cases))
	}
}

func TestHeaderLimits(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	p := startProxy(t, ns, &hooks{}, Options{Allow: []Rule{loopRule(echo.port)}, HeaderTimeout: 400 * time.Millisecond})

	flood := func(t *testing.T, prefix string, line string) {
		c := ns.dial(t, p.Addr())
		defer c.Close()
		var sent int64
		done := make(chan struct{})
		go func() { // keeps sending until the proxy hangs up
			defer close(done)
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.WriteString(c, prefix)
			sent += int64(n)
			for sent < 64<<20 {
				n, err := io.WriteString(c, line)
				sent += int64(n)
				if err != nil {
					return
				}
			}
		}()
		a := readAnswer(t, c, bufio.NewReader(c))
		if a.code != 431 || !a.closed {
			t.Fatalf("flood: %d closed=%v %q, want 431 and close", a.code, a.closed, a.body)
		}
		<-done
		if sent >= 64<<20 {
			t.Fatalf("the proxy kept reading: %d bytes of request head accepted", sent)
		}
	}
	t.Run("many headers", func(t *testing.T) {
		flood(t, fmt.Sprintf("CONNECT %s HTTP/1.1\r\n", echo.addr), "X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
	})
	t.Run("one huge line", func(t *testing.T) {
		flood(t, "GET http://127.0.0.1/", strings.Repeat("a", 4096))
	})
	t.Run("slow head", func(t *testing.T) {
		c := ns.dial(t, p.Addr())
		defer c.Close()
		start := time.Now()
		io.WriteString(c, "CONNECT 127.0.0.1:1 HTTP/1.1\r\n") // never finished
		a := readAnswer(t, c, bufio.NewReader(c))
		if a.code != 408 || !a.closed || time.Since(start) > 3*time.Second {
			t.Fatalf("slow head: %d closed=%v after %v", a.code, a.closed, time.Since(start))
		}
	})
	if echo.accepted.Load() != 0 {
		t.Fatal("upstream was dialed")
	}
}

func TestMaxConns(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	p := startProxy(t, ns, &hooks{}, Options{Allow: []Rule{loopRule(echo.port)}, MaxConns: 2})
	var tunnels []net.Conn
	for i := 0; i < 2; i++ {
		c := ns.dial(t, p.Addr())
		defer c.Close()
		if code, _ := connect(t, c, echo.addr); code != 200 {
			t.Fatalf("tunnel %d: %d", i, code)
		}
		tunnels = append(tunnels, c)
	}
	c := ns.dial(t, p.Addr())
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\n", echo.addr)
	a := readAnswer(t, c, bufio.NewReader(c))
	if a.code != 503 || !a.closed || !strings.Contains(a.body, "limit 2") {
		t.Fatalf("third connection: %d %q closed=%v, want 503", a.code, a.body, a.closed)
	}
	if echo.accepted.Load() != 2 || p.Stats().Refused != 1 {
		t.Fatalf("upstream accepted %d, stats %+v", echo.accepted.Load(), p.Stats())
	}
	// A slot frees when a tunnel ends.
	tunnels[0].Close()
	waitFor(t, "a free slot", 5*time.Second, func() bool { return p.Stats().Active == 1 })
	c2 := ns.dial(t, p.Addr())
	defer c2.Close()
	if code, _ := connect(t, c2, echo.addr); code != 200 {
		t.Fatalf("after a slot freed: %d", code)
	}
}

func TestCloseEndsTunnels(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	p := startProxy(t, ns, &hooks{}, Options{Allow: []Rule{loopRule(echo.port)}})
	c := ns.dial(t, p.Addr())
	defer c.Close()
	code, br := connect(t, c, echo.addr)
	if code != 200 {
		t.Fatalf("CONNECT %d", code)
	}
	idle := ns.dial(t, p.Addr()) // connected, never sent a request
	defer idle.Close()
	waitFor(t, "two active connections", 5*time.Second, func() bool { return p.Stats().Active == 2 })

	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("tunnel still open after Close: %v", err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("pending connection still open after Close: %v", err)
	}
	if _, err := ns.tryDial(p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Close: %v, want connection refused", err)
	}
	if st := p.Stats(); st.Active != 0 {
		t.Fatalf("active %d after Close", st.Active)
	}
}

func TestContextCancelCloses(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, Options{NetNS: ns.path})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cancel()
	waitFor(t, "the listener to close", 5*time.Second, func() bool {
		_, err := ns.tryDial(p.Addr())
		return errors.Is(err, syscall.ECONNREFUSED)
	})
}

func TestIdleTimeout(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	// Upstream that streams for a while without reading anything.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil {
					return
				}
				if b[0] == 's' { // stream one byte every 50 ms for 1.2 s, then finish
					for i := 0; i < 24; i++ {
						if _, err := c.Write([]byte{'.'}); err != nil {
							return
						}
						time.Sleep(50 * time.Millisecond)
					}
					return
				}
				io.Copy(io.Discard, c) // 'q': stay silent
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	p := startProxy(t, ns, &hooks{}, Options{Allow: []Rule{loopRule(port)}, IdleTimeout: 300 * time.Millisecond})
	target := fmt.Sprintf("127.0.0.1:%d", port)

	t.Run("silent tunnel closes", func(t *testing.T) {
		c := ns.dial(t, p.Addr())
		defer c.Close()
		_, br := connect(t, c, target)
		c.Write([]byte{'q'})
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := br.ReadByte()
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("idle tunnel: %v", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("idle tunnel closed after %v, want ~300ms", d)
		}
	})
	t.Run("one-way download is not idle", func(t *testing.T) {
		c := ns.dial(t, p.Addr())
		defer c.Close()
		_, br := connect(t, c, target)
		c.Write([]byte{'s'})
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(br)
		if err != nil || len(got) != 24 {
			t.Fatalf("streamed %d bytes (%v), want all 24 over 1.2 s despite a silent client and a 300 ms idle timeout", len(got), err)
		}
	})
}

// The listener exists only inside the sandbox namespace: the same address
// on the host reaches something else (or nothing), never the proxy.
func TestNotReachableFromHost(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	p := startProxy(t, ns, &hooks{}, Options{})
	// Whatever answers on the host (usually nothing: refused) is not the
	// proxy; send it nothing.
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
	}
	time.Sleep(50 * time.Millisecond)
	// Positive control: the same address inside the namespace is the proxy.
	c := ns.dial(t, p.Addr())
	fmt.Fprintf(c, "CONNECT x.test:443 HTTP/1.1\r\n\r\n")
	if a := readAnswer(t, c, bufio.NewReader(c)); a.code != 403 {
		t.Fatalf("in-namespace request: %d", a.code)
	}
	c.Close()
	if st := p.Stats(); st.Accepted != 1 || st.Denied != 1 {
		t.Fatalf("stats %+v: the proxy must have seen exactly the in-namespace connection", st)
	}
}

func TestFixedPortAndEnv(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	p := startProxy(t, ns, nil, Options{Port: 3128})
	if p.Addr() != "127.0.0.1:3128" {
		t.Fatalf("Addr %q", p.Addr())
	}
	want := []string{
		"HTTPS_PROXY=http://127.0.0.1:3128", "HTTP_PROXY=http://127.0.0.1:3128",
		"https_proxy=http://127.0.0.1:3128", "http_proxy=http://127.0.0.1:3128",
		"NO_PROXY=", "no_proxy=",
	}
	if got := p.Env(); strings.Join(got, " ") != strings.Join(want, " ") || strings.Join(ProxyEnv(3128), " ") != strings.Join(want, " ") {
		t.Fatalf("Env %q / ProxyEnv %q, want %q", got, ProxyEnv(3128), want)
	}
	// The port is taken in that namespace now.
	if _, err := Start(context.Background(), Options{NetNS: ns.path, Port: 3128}); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second proxy on the same port: %v, want EADDRINUSE", err)
	}
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no netns", Options{}, "NetNS is required"},
		{"missing path", Options{NetNS: "/nonexistent/ns/net"}, "no such file"},
		{"not a namespace", Options{NetNS: "/proc/self/status"}, "not a namespace file"},
		{"wrong namespace type", Options{NetNS: "/proc/self/ns/uts"}, "not a network namespace"},
		{"bad rule", Options{NetNS: "/proc/self/ns/net", Allow: []Rule{{Host: "exa mple.com", Port: 443}}}, "not a DNS name"},
		{"unspecified rule", Options{NetNS: "/proc/self/ns/net", Allow: []Rule{{Host: "0.0.0.0", Port: 443}}}, "unspecified"},
		{"bad port", Options{NetNS: "/proc/self/ns/net", Port: 70000}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(ctx, tc.o)
			if err == nil {
				p.Close()
				t.Fatalf("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLogging(t *testing.T) {
	requireRoot(t)
	ns := newNetNS(t)
	echo := newEcho(t)
	var mu sync.Mutex
	var buf bytes.Buffer
	lw := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(b) })
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p := startProxy(t, ns, &hooks{}, Options{Allow: []Rule{loopRule(echo.port)}, Logger: log})
	c := ns.dial(t, p.Addr())
	code, br := connect(t, c, echo.addr)
	c.Write([]byte("ab"))
	io.ReadFull(br, make([]byte, 2))
	c.Close()
	c = ns.dial(t, p.Addr())
	fmt.Fprintf(c, "CONNECT denied.test:443 HTTP/1.1\r\n\r\n")
	readAnswer(t, c, bufio.NewReader(c))
	c.Close()
	waitFor(t, "the connections to end", 5*time.Second, func() bool { return p.Stats().Active == 0 })
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if code != 200 || strings.Contains(out, "verdict=allowed") || !strings.Contains(out, "verdict=denied") || !strings.Contains(out, "dest=denied.test:443") {
		t.Fatalf("at info level: denials only, with the destination; got:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	for i := 0; i < infoLogsPerSecond; i++ {
		if ok, _ := l.allow(t0); !ok {
			t.Fatalf("record %d refused within the budget", i)
		}
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.allow(t0.Add(500 * time.Millisecond)); ok {
			t.Fatal("record allowed past the budget")
		}
	}
	if ok, suppressed := l.allow(t0.Add(1100 * time.Millisecond)); !ok || suppressed != 5 {
		t.Fatalf("next window: ok=%v suppressed=%d, want true and 5", ok, suppressed)
	}
}
