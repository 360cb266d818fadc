package typegen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/mcp/upstream"
)

type addIn struct {
	A int `json:"a"`
	B int `json:"b"`
}

type sumOut struct {
	Sum int `json:"sum"`
}

// TestCacheRegenerates: a real go-sdk MCP server over streamable HTTP on
// 127.0.0.1 adds a tool while conductor's upstream session is open; its
// notifications/tools/list_changed makes the cache list again and
// regenerate, and nothing is listed again while the list is unchanged.
func TestCacheRegenerates(t *testing.T) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "changing", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "add", Description: "Adds a and b."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, sumOut, error) {
			return nil, sumOut{in.A + in.B}, nil
		})
	var lists atomic.Int64
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte(`"tools/list"`)) {
				lists.Add(1)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)

	// A server nothing listens for: left out of Declarations with the reason.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/mcp"
	ln.Close()
	cfg, err := upstream.ParseConfig("test.json", []byte(fmt.Sprintf(`{"mcpServers":{"chg":{"url":%q},"dead":{"url":%q}}}`, hs.URL, dead)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	m := upstream.NewManager(cfg, upstream.Options{})
	t.Cleanup(func() { _ = m.Close() })
	c := NewCache(m, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	d1, err := c.Declarations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d1, "add(args: addArgs): Promise<addResult>") || !strings.Contains(d1, "sum: number;") {
		t.Fatalf("declarations lack add:\n%s", d1)
	}
	if !regexp.MustCompile(`(?m)^// MCP server "dead" is left out: .*\S$`).MatchString(d1) || strings.Contains(d1, "McpServers.dead") {
		t.Errorf("the dead server is not left out with a one-line reason:\n%s", d1)
	}
	if _, err := c.Declarations(ctx); err != nil { // the version moved with the first session: one more list, same hash
		t.Fatal(err)
	}
	listed := lists.Load()
	for range 3 {
		if _, err := c.ForTools(ctx, "chg", []string{"add"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := lists.Load(); got != listed {
		t.Errorf("tools/list sent %d more times with an unchanged list", got-listed)
	}
	if g := c.generations("chg"); g != 1 {
		t.Errorf("generated %d times before the change, want 1", g)
	}

	mcp.AddTool(srv, &mcp.Tool{Name: "mul-two", Description: "Multiplies a by b."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, sumOut, error) {
			return nil, sumOut{in.A * in.B}, nil
		})
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := c.Declarations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(d, `"mul-two"(args: mul_twoArgs)`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the added tool never appeared (ToolsVersion %d):\n%s", m.ToolsVersion("chg"), d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Concurrent readers (the MCP server handles calls in parallel) agree.
	var wg sync.WaitGroup
	texts := make([]string, 8)
	for i := range texts {
		wg.Go(func() { texts[i], _ = c.Declarations(ctx) })
	}
	wg.Wait()
	deadLine := regexp.MustCompile(`(?m)^// MCP server "dead".*$`) // its reason says when the next attempt is due
	for _, d := range texts {
		if deadLine.ReplaceAllString(d, "") != deadLine.ReplaceAllString(texts[0], "") || !strings.Contains(d, `"mul-two"`) {
			t.Fatalf("concurrent Declarations differ or lack mul-two:\n%s\n---\n%s", d, texts[0])
		}
	}
	if g := c.generations("chg"); g != 2 {
		t.Errorf("generated %d times after one change, want 2", g)
	}
	if _, err := c.ForTools(ctx, "chg", []string{"nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("ForTools of an unknown tool: %v", err)
	}
}
