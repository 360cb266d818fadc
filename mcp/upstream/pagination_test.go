package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// pagingServer serves a go-sdk server over streamable HTTP on 127.0.0.1
// whose tools/list, resources/list and prompts/list page as mode says (a
// receiving middleware answers them; everything else is the real server's):
//
//	ends     three pages of two items, then no cursor
//	endless  one item a page and a fresh cursor, forever
//	empty    no items and a fresh cursor, forever
//	repeat   one item a page and always the cursor "same"
//
// requests counts the list requests the server answered; onRequest, when
// not nil, is called with the count after each.
func pagingServer(t *testing.T, mode string, onRequest func(n int64)) (url string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := mcp.NewServer(&mcp.Implementation{Name: "pager", Version: "1"}, nil)
	// Something of each feature, so the server offers all three.
	mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, func(ctx context.Context, r *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, strOut, error) {
		return nil, strOut{in.Text}, nil
	})
	srv.AddResource(&mcp.Resource{URI: "pager://r", Name: "r"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{}, nil
	})
	srv.AddPrompt(&mcp.Prompt{Name: "p"}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{}, nil
	})
	// page answers one request: the item names on the page and the next cursor.
	page := func(cursor string) (names []string, next string) {
		n := 0
		if cursor != "" && cursor != "same" {
			n, _ = strconv.Atoi(strings.TrimPrefix(cursor, "c"))
		}
		item := func(i int) string { return fmt.Sprintf("item%d", i) }
		switch mode {
		case "ends":
			names = []string{item(2 * n), item(2*n + 1)}
			if n < 2 {
				next = fmt.Sprintf("c%d", n+1)
			}
		case "endless":
			names, next = []string{item(n)}, fmt.Sprintf("c%d", n+1)
		case "empty":
			next = fmt.Sprintf("c%d", n+1)
		case "repeat":
			names, next = []string{item(int(requests.Load()))}, "same"
		default:
			t.Errorf("pagingServer: unknown mode %q", mode)
		}
		return names, next
	}
	counted := func() {
		if n := requests.Add(1); onRequest != nil {
			onRequest(n)
		}
	}
	srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch p := req.GetParams().(type) {
			case *mcp.ListToolsParams:
				names, nc := page(p.Cursor)
				counted()
				res := &mcp.ListToolsResult{NextCursor: nc, Tools: []*mcp.Tool{}}
				for _, n := range names {
					res.Tools = append(res.Tools, &mcp.Tool{Name: n, InputSchema: map[string]any{"type": "object"}})
				}
				return res, nil
			case *mcp.ListResourcesParams:
				names, nc := page(p.Cursor)
				counted()
				res := &mcp.ListResourcesResult{NextCursor: nc, Resources: []*mcp.Resource{}}
				for _, n := range names {
					res.Resources = append(res.Resources, &mcp.Resource{URI: "pager://" + n, Name: n})
				}
				return res, nil
			case *mcp.ListPromptsParams:
				names, nc := page(p.Cursor)
				counted()
				res := &mcp.ListPromptsResult{NextCursor: nc, Prompts: []*mcp.Prompt{}}
				for _, n := range names {
					res.Prompts = append(res.Prompts, &mcp.Prompt{Name: n})
				}
				return res, nil
			}
			return next(ctx, method, req)
		}
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(ts.Close)
	return ts.URL, requests
}

// A list ends at an empty cursor or a repeated one; a server that keeps
// handing out fresh cursors (with items or without) is cut off after
// maxPages requests with a clear error, and its session lives on.
func TestListPageCap(t *testing.T) {
	t.Parallel()
	lists := []struct {
		method string
		list   func(*Manager, context.Context) ([]string, error)
	}{
		{"tools/list", func(m *Manager, ctx context.Context) ([]string, error) {
			tools, err := m.ListTools(ctx, "pager")
			return toolNames(tools), err
		}},
		{"resources/list", func(m *Manager, ctx context.Context) ([]string, error) {
			rs, err := m.ListResources(ctx, "pager")
			var names []string
			for _, r := range rs {
				names = append(names, r.Name)
			}
			return names, err
		}},
		{"prompts/list", func(m *Manager, ctx context.Context) ([]string, error) {
			ps, err := m.ListPrompts(ctx, "pager")
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			return names, err
		}},
	}
	for _, tc := range []struct {
		mode         string
		wantItems    int   // when no error
		wantRequests int64 // per list
		wantErr      bool
	}{
		{mode: "ends", wantItems: 6, wantRequests: 3},
		{mode: "repeat", wantItems: 2, wantRequests: 2},
		{mode: "endless", wantRequests: maxPages, wantErr: true},
		{mode: "empty", wantRequests: maxPages, wantErr: true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, requests := pagingServer(t, tc.mode, nil)
			m := newTestManager(t, Options{}, ServerConfig{Name: "pager", Transport: TransportStreamableHTTP, URL: url})
			for _, l := range lists {
				before := requests.Load()
				names, err := l.list(m, ctx)
				if got := requests.Load() - before; got != tc.wantRequests {
					t.Errorf("%s: the server answered %d list requests, want %d", l.method, got, tc.wantRequests)
				}
				if !tc.wantErr {
					if err != nil || len(names) != tc.wantItems {
						t.Errorf("%s: %v, %d items %v, want %d", l.method, err, len(names), names, tc.wantItems)
					}
					continue
				}
				var e *Error
				if !errors.Is(err, errTooManyPages) || !errors.As(err, &e) || e.Method != l.method ||
					errors.Is(err, ErrUnavailable) ||
					!strings.Contains(err.Error(), `MCP server "pager": `+l.method) ||
					!strings.Contains(err.Error(), fmt.Sprintf("more than %d pages", maxPages)) {
					t.Errorf("%s: want an *Error with errTooManyPages naming the server, method and cap, got %v (%d items)", l.method, err, len(names))
				}
			}
			// The session is not dropped for it: the server answers a call on it.
			res, err := m.CallTool(ctx, "pager", "echo", map[string]any{"text": "still here"})
			if err != nil || structuredString(res, "s") != "still here" {
				t.Fatalf("echo after the lists: %v %+v", err, res)
			}
			if n := m.connectsOf("pager"); n != 1 {
				t.Fatalf("%d connects, want 1", n)
			}
			if st := statusOf(m, "pager"); tc.wantErr && st.Tools != -1 {
				t.Fatalf("a cut-off list set Status.Tools to %d, want -1 (not listed)", st.Tools)
			}
		})
	}
}

// Why listAll is not the go-sdk's iterators: ClientSession.Tools (v1.8.0)
// has no page cap and yields nothing for an empty page, so against a server
// handing out empty pages it keeps requesting. If this fails, the SDK
// changed: listAll may then be able to use its iterators.
func TestSDKIteratorsHaveNoPageCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Stop the iterator ourselves, well past maxPages: cancel its context
	// once the server has answered 3×maxPages requests.
	iterCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	url, requests := pagingServer(t, "empty", func(n int64) {
		if n >= 3*maxPages {
			cancel()
		}
	})
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, &mcp.ClientSessionOptions{ProtocolVersion: DefaultProtocolVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	yielded, stoppedBy := 0, error(nil)
	for _, err := range cs.Tools(iterCtx, nil) {
		if err != nil {
			stoppedBy = err
			break
		}
		yielded++
	}
	if yielded != 0 || requests.Load() < 3*maxPages || !errors.Is(stoppedBy, context.Canceled) {
		t.Fatalf("the SDK iterator yielded %d items after %d requests and stopped with %v; want 0 items, ≥ %d requests, stopped only by our cancellation",
			yielded, requests.Load(), stoppedBy, 3*maxPages)
	}
}
