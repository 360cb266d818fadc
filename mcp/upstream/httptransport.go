// This file: the HTTP transport policy of HTTP upstreams — configured
// headers, same-origin redirects, the response size bound, and the legacy
// SSE transport's connection context.

package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// newHTTPTransport is the connection pool of one HTTP upstream (its own, so
// Close can drop its idle connections): the default transport's settings.
func newHTTPTransport() *http.Transport {
	return http.DefaultTransport.(*http.Transport).Clone()
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
