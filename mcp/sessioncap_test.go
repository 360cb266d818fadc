package mcp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSessionCapSlotBackBeforeAnswer: a POST that creates no session gives its slot back before
// its answer reaches the client. The go-sdk client's first POST of protocol 2026-07-28 creates
// none, and it sends the initialize right after the answer: under load that came while the first
// handler had not returned, and was refused as over the cap (TestHTTPSessionCap's CI flake).
func TestSessionCapSlotBackBeforeAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		next   int // the status the next POST gets
	}{
		{"header written", func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }, http.StatusOK},
		{"body written", func(w http.ResponseWriter) { _, _ = w.Write([]byte("{}")) }, http.StatusOK},
		{"flushed", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, http.StatusOK},
		{"a session made", func(w http.ResponseWriter) {
			w.Header().Set("Mcp-Session-Id", "not-one-the-server-has")
			w.WriteHeader(http.StatusOK)
		}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answered := make(chan struct{})
			hold := make(chan struct{})
			first := true
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !first {
					w.WriteHeader(http.StatusOK)
					return
				}
				first = false
				tc.answer(w)
				close(answered)
				<-hold // the handler has not returned yet
			})
			h := capSessions(sdk.NewServer(&sdk.Implementation{Name: "t"}, nil), 1, time.Minute, next)
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}")))
			}()
			<-answered
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"id":1}`)))
			close(hold)
			<-done
			if w.Code != tc.next {
				t.Fatalf("the next POST got %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.next)
			}
		})
	}
}
