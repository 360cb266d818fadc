package mcp_test

// Tests of the HTTP server's timeouts, 401 handling and session cap, in
// process: the real handler over a real TCP listener on 127.0.0.1, a real
// engine with real sandboxes, the go-sdk client and raw connections. (The
// connection-exhaustion attack against the built binary, with its fd count,
// is in e2e_http_test.go.)

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/mcp"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// init turns the re-executed test binary into a container's init.
func init() { sandbox.MaybeInit() }

const testToken = "in-process-token-0123456789"

// inProcess is a conductor HTTP server in this process.
type inProcess struct {
	url  string // http://127.0.0.1:PORT/mcp
	addr string
	hs   *mcp.HTTPServer
}

// startInProcess serves a real engine over o on a fresh loopback port.
func startInProcess(t *testing.T, o mcp.HTTPOptions) *inProcess {
	t.Helper()
	allow, err := deps.ParseAllowlist("")
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Options{
		Sandboxes:      sandboxtest.Runner(t, nil),
		Allowlist:      allow,
		DefaultTimeout: 20 * time.Second,
		MaxTimeout:     30 * time.Second,
		MaxCodeBytes:   64 << 10,
		MaxConcurrency: 2,
		MaxQueue:       4,
	})
	t.Cleanup(eng.Shutdown)
	srv, err := mcp.New(mcp.Options{Engine: eng, Version: "test", DefaultTimeout: 20 * time.Second, MaxTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.NewHTTPServer(o)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &inProcess{url: "http://" + ln.Addr().String() + "/mcp", addr: ln.Addr().String(), hs: hs}
}

// closedWithin reads c until the server closes it and returns how long
// that took from start; an error if c is still open after limit.
func closedWithin(c net.Conn, start time.Time, limit time.Duration) (time.Duration, error) {
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, fmt.Errorf("connection still open after %s", limit)
	}
	return time.Since(start), nil
}

// TestHTTPTimeouts: connections that hold the server without finishing a
// request — idle after one request, a body that never ends (with and
// without the token), headers sent byte by byte — are closed after the
// timeouts, while a legitimate call that runs longer than all of them
// completes, and a GET /mcp stream stays open past them.
func TestHTTPTimeouts(t *testing.T) {
	const timeout = time.Second
	s := startInProcess(t, mcp.HTTPOptions{
		Token:             testToken,
		ReadHeaderTimeout: timeout,
		BodyTimeout:       timeout,
		IdleTimeout:       timeout,
		MaxConns:          64,
		MaxConnsPerIP:     32,
	})

	// The legitimate long call: it sleeps 5 s, past every timeout, and
	// streams its result over SSE in the POST's response.
	cs, err := connectHTTP(context.Background(), s.url, testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	long := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{
			"deno_code": "await new Promise((r) => setTimeout(r, 5000)); 'slept'",
		}})
		switch {
		case err != nil:
			long <- err
		case res.IsError:
			long <- fmt.Errorf("isError: %+v", res.Content)
		default:
			long <- nil
		}
	}()

	attacks := []struct {
		name string
		// open starts the attack on c and returns when the server should
		// start counting (after the last byte that arms its timeout).
		open func(c net.Conn) error
	}{
		{"idle after one request", func(c net.Conn) error {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", s.addr)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthz: %v %v", resp, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body) // Content-Length: 3
			return nil
		}},
		{"body that never ends, no token", func(c net.Conn) error {
			_, err := fmt.Fprintf(c, "POST /healthz HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", s.addr)
			return err
		}},
		{"body that never ends, with the token", func(c net.Conn) error {
			_, err := fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
				"Accept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{\"jsonrpc\":", s.addr, testToken)
			return err
		}},
		{"headers byte by byte", func(c net.Conn) error {
			go func() {
				for _, b := range []byte("GET /healthz HTTP/1.1\r\nX-Slow: " + strings.Repeat("a", 200)) {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			return nil
		}},
	}
	// The attacks run while the long call runs.
	type outcome struct {
		name string
		took time.Duration
		err  error
	}
	outcomes := make(chan outcome, len(attacks))
	for _, a := range attacks {
		go func() {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				outcomes <- outcome{a.name, 0, err}
				return
			}
			defer c.Close()
			start := time.Now()
			if err := a.open(c); err != nil {
				outcomes <- outcome{a.name, 0, err}
				return
			}
			took, err := closedWithin(c, start, 4*timeout)
			outcomes <- outcome{a.name, took, err}
		}()
	}
	for range attacks {
		o := <-outcomes
		switch {
		case o.err != nil:
			t.Errorf("%s: %v", o.name, o.err)
		case o.took < timeout/2:
			t.Errorf("%s: closed after %s, before the %s timeout", o.name, o.took, timeout)
		default:
			t.Logf("%s: closed after %s", o.name, o.took)
		}
	}
	select {
	case err := <-long:
		t.Fatalf("the long call ended before the attacks were over: %v", err)
	default:
	}

	t.Run("GET stream outlives the timeouts", func(t *testing.T) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A session of its own: the go-sdk client above holds its
		// session's one GET stream.
		id := rawSession(t, s)
		fmt.Fprintf(c, "GET /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\nMcp-Session-Id: %s\r\n\r\n",
			s.addr, testToken, id)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /mcp: %v %v", resp, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * timeout))
		_, err = io.Copy(io.Discard, resp.Body)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("the GET /mcp stream ended within %s (%v); want it open", 3*timeout, err)
		}
	})

	if err := <-long; err != nil {
		t.Fatalf("a legitimate 5 s call under %s timeouts: %v", timeout, err)
	}
}

// TestHTTPUnauthorizedCloses: a request without the token gets 401 with
// Connection: close, and the server closes the connection at once without
// waiting for the body the client announced.
func TestHTTPUnauthorizedCloses(t *testing.T) {
	s := startInProcess(t, mcp.HTTPOptions{Token: testToken})
	for _, tc := range []struct{ name, auth string }{
		{"no token", ""},
		{"wrong token", "Authorization: Bearer wrong-token-0123456789\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			// 10 of the 1000 announced bytes.
			fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n0123456789", s.addr, tc.auth)
			br := bufio.NewReader(c)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within 5 s to a request without the token (the server waits for its body?): %v", err)
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if !resp.Close { // ReadResponse takes the Connection: close header into Close
				t.Errorf("401 without Connection: close: %v", resp.Header)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Errorf("connection not closed by the server within 2 s of the 401: %v", err)
			}
			t.Logf("closed after %s", time.Since(start))
		})
	}
}

// TestHTTPSessionCap: with MaxSessions 2, a third session is refused with a
// message naming the limit and who sets it; a closed session frees its slot
// at once, an idle one after the session timeout.
func TestHTTPSessionCap(t *testing.T) {
	const idle = 1500 * time.Millisecond
	s := startInProcess(t, mcp.HTTPOptions{Token: testToken, MaxSessions: 2, SessionTimeout: idle})
	ctx := context.Background()
	connect := func() (*sdk.ClientSession, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return connectHTTP(cctx, s.url, testToken, nil)
	}
	mustConnect := func(what string) *sdk.ClientSession {
		t.Helper()
		cs, err := connect()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return cs
	}
	refused := func(what string) {
		t.Helper()
		cs, err := connect()
		if err == nil {
			_ = cs.Close()
			t.Fatalf("%s: a session beyond the cap of 2 was accepted", what)
		}
		for _, want := range []string{"refused", "2 live sessions", "MCP_CONDUCTOR_HTTP_MAX_SESSIONS", "admin"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", what, err, want)
			}
		}
	}

	first := mustConnect("session 1")
	second := mustConnect("session 2")
	defer second.Close()
	refused("session 3")
	refused("session 3 again") // a refusal takes no slot

	if err := first.Close(); err != nil { // DELETE /mcp
		t.Fatal(err)
	}
	// The slot is back when the DELETE is answered; under a loaded CI
	// machine the session's own shutdown can lag it, so allow 3 s.
	var third *sdk.ClientSession
	for deadline := time.Now().Add(3 * time.Second); third == nil; {
		cs, err := connect()
		switch {
		case err == nil:
			third = cs
		case time.Now().After(deadline):
			t.Fatalf("a session after one was closed: %v", err)
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The new session works.
	res, err := third.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": "6 * 7"}})
	if err != nil || res.IsError {
		t.Fatalf("call on the new session: %v %+v", err, res)
	}
	refused("over the cap again")

	// Both live sessions go idle; after the timeout they are closed and
	// their slots free: two new sessions fit. The timeout itself is waited
	// out; then each slot is polled for (a loaded machine's session shutdown
	// lags; and third, used last, idles out last).
	time.Sleep(idle)
	for _, what := range []string{"a session after the others idled out", "a second one"} {
		var fresh *sdk.ClientSession
		for deadline := time.Now().Add(testenv.Scale(5 * time.Second)); fresh == nil; {
			cs, err := connect()
			switch {
			case err == nil:
				fresh = cs
			case time.Now().After(deadline):
				t.Fatalf("%s: %v", what, err)
			default:
				time.Sleep(50 * time.Millisecond)
			}
		}
		defer fresh.Close()
	}
	if _, err := third.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": "1"}}); err == nil {
		t.Errorf("a call on a session that idled out succeeded; want it gone")
	}
}

// rawSession initializes a session with plain HTTP requests (no GET stream)
// and returns its id.
func rawSession(t *testing.T, s *inProcess) string {
	t.Helper()
	post := func(body, session string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+testToken)
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s", body, resp.Status)
		}
		return resp
	}
	resp := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, "")
	id := resp.Header.Get("Mcp-Session-Id")
	if id == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, id)
	return id
}

// TestHTTPDrain: OpenPosts counts the POSTs on /mcp whose calls are not
// answered yet and Drain waits for them (the HTTP SIGTERM order: a GET
// stream may end only once Drain returned): nothing open returns at once;
// a call in flight holds Drain until its answer is written, or fails it
// with the count when its context ends first.
func TestHTTPDrain(t *testing.T) {
	tests := []struct {
		name     string
		code     string        // "" = no call in flight
		drainFor time.Duration // Drain's context
		wantOpen int
		wantErr  bool
	}{
		{name: "idle session", drainFor: time.Second},
		{name: "call outlives the drain", code: "await new Promise((r) => setTimeout(r, 3000)); 'slept'", drainFor: 300 * time.Millisecond, wantOpen: 1, wantErr: true},
		{name: "call answered within the drain", code: "await new Promise((r) => setTimeout(r, 1000)); 'slept'", drainFor: 15 * time.Second, wantOpen: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startInProcess(t, mcp.HTTPOptions{Token: testToken})
			cs, err := connectHTTP(context.Background(), s.url, testToken, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			answered := make(chan error, 1)
			if tc.code != "" {
				go func() {
					_, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{"deno_code": tc.code}})
					answered <- err
				}()
				if !waitFor(10*time.Second, func() bool { return s.hs.OpenPosts() == tc.wantOpen }) {
					t.Fatalf("OpenPosts = %d with the call in flight, want %d", s.hs.OpenPosts(), tc.wantOpen)
				}
			} else if !waitFor(10*time.Second, func() bool { return s.hs.OpenPosts() == 0 }) {
				// The connect's last POST (notifications/initialized) is answered before its
				// handler returns: the count falls to 0 just after.
				t.Fatalf("OpenPosts = %d on an idle session, want 0", s.hs.OpenPosts())
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.drainFor)
			defer cancel()
			err = s.hs.Drain(ctx)
			switch {
			case tc.wantErr && (err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), fmt.Sprintf("%d POST", tc.wantOpen))):
				t.Errorf("Drain = %v, want the deadline with %d POST still open", err, tc.wantOpen)
			case !tc.wantErr && err != nil:
				t.Errorf("Drain = %v, want nil", err)
			case !tc.wantErr && tc.code != "":
				// Drain returned: the answer has been written.
				select {
				case err := <-answered:
					if err != nil {
						t.Errorf("the call drained for got %v, want its answer", err)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("Drain returned but the call had no answer 5 s later")
				}
			}
		})
	}
}
