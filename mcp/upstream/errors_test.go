package upstream

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// classify relies on errors of go-sdk that it has no exported form of:
// rejectedByTransport matches internal/jsonrpc2.ErrRejected by its code and
// text. This ties that match to the SDK version it was checked against: a
// go.mod that moves go-sdk fails here until someone has rerun
// TestClassifySDKErrors against the new version (and read what it tests)
// and moved sdkErrorsCheckedAgainst.
func TestSDKVersionOfErrorMatch(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const mod = "github.com/modelcontextprotocol/go-sdk "
	version := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require"))
		if v, ok := strings.CutPrefix(line, mod); ok {
			version = strings.Fields(v)[0]
		}
	}
	if version != sdkErrorsCheckedAgainst {
		t.Fatalf("go.mod requires go-sdk %q; classify's match on its error text (rejectedByTransport: code %d, %q) was checked against %s. "+
			"Check internal/jsonrpc2.ErrRejected in the new SDK (or an exported form of it), rerun TestClassifySDKErrors, then update sdkErrorsCheckedAgainst",
			version, rejectedByTransportCode, rejectedByTransportText, sdkErrorsCheckedAgainst)
	}
}

// The errors a real go-sdk client returns over streamable HTTP, classified:
// an HTTP-level refusal and a forgotten session never reached the tool (sent
// again on a new session), a JSON-RPC error the server answered leaves the
// session in place. Fails when the SDK's error text or wrapping changes.
func TestClassifySDKErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// refuse answers every POST once the session is up (nil: the real server).
		refuse   func(w http.ResponseWriter, r *http.Request)
		after    func(cs *mcp.ClientSession, ts *httptest.Server) // before the call
		tool     string
		rejected bool // rejectedByTransport
		answered bool // answeredByServer
		notSent  bool
		broken   bool
	}{
		{name: "503 (transient, rejected by transport)", tool: "echo", rejected: true, notSent: true, broken: true,
			refuse: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "try later", http.StatusServiceUnavailable)
			}},
		{name: "400 with a JSON-RPC error body", tool: "echo", rejected: true, answered: true, notSent: true, broken: true,
			refuse: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"refused at the door"}}`))
			}},
		{name: "404: the server forgot the session", tool: "echo", notSent: true, broken: true,
			refuse: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "session not found", http.StatusNotFound)
			}},
		{name: "the server answers with a JSON-RPC error", tool: "no-such-tool", answered: true},
		{name: "nothing listens any more", tool: "echo", rejected: true, notSent: true, broken: true,
			after: func(cs *mcp.ClientSession, ts *httptest.Server) {
				// Not ts.Close: it waits for the client's open event stream.
				ts.Listener.Close()
				ts.CloseClientConnections()
			}},
		{name: "the session was closed here", tool: "echo", notSent: true, broken: true,
			after: func(cs *mcp.ClientSession, ts *httptest.Server) { _ = cs.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := helperServer()
			h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
			var refusing atomic.Bool // set before the call
			refused := make(chan struct{}, 1)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if refusing.Load() && r.Method == http.MethodPost && tc.refuse != nil {
					tc.refuse(w, r)
					select {
					case refused <- struct{}{}:
					default:
					}
					return
				}
				h.ServeHTTP(w, r)
			}))
			defer ts.Close()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
				Connect(ctx, &mcp.StreamableClientTransport{Endpoint: ts.URL}, &mcp.ClientSessionOptions{ProtocolVersion: DefaultProtocolVersion})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			refusing.Store(true)
			if tc.after != nil {
				tc.after(cs, ts)
			}
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"text": "x"}})
			if err == nil {
				t.Fatal("the call succeeded, want an error")
			}
			if tc.refuse != nil {
				select {
				case <-refused:
				default:
					t.Fatalf("the refusing handler never ran (error %v)", err)
				}
			}
			s := &session{dead: make(chan struct{})}
			notSent, broken := classify(s, err)
			if rejectedByTransport(err) != tc.rejected || answeredByServer(err) != tc.answered ||
				notSent != tc.notSent || broken != tc.broken {
				t.Fatalf("error %q (%T): rejectedByTransport %v answeredByServer %v classify (notSent %v, broken %v); want %v %v (%v, %v)",
					err, err, rejectedByTransport(err), answeredByServer(err), notSent, broken,
					tc.rejected, tc.answered, tc.notSent, tc.broken)
			}
		})
	}
}
