package mcp_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestE2ENetwork: an MCP client of `conductor serve` learns what runs can
// reach from the tool description, reaches the listed loopback server the
// test started, gets the door's decisions in the structured result, and —
// with allow-all, where deno lets a loopback connection through and the
// door refuses it — reads why in the tool's text.
func TestE2ENetwork(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "listed server")
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	other, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	var otherHits atomic.Int32
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			otherHits.Add(1)
			c.Close()
		}
	}()
	otherPort := other.Addr().(*net.TCPAddr).Port

	t.Run("allow-net", func(t *testing.T) {
		s := startStdio(t, nil, nil, fmt.Sprintf("MCP_CONDUCTOR_RUN_ARGS=allow-net=127.0.0.1:%d", port))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		list, err := s.cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := runDenoTool(list.Tools).Description; !strings.Contains(d, fmt.Sprintf("Network (fetch, node:http, WebSocket, Deno.connect, Deno.resolveDns; enforced by the server below deno): 127.0.0.1:%d", port)) {
			t.Errorf("tool description does not state what is reachable: %s", d)
		}
		r := run(t, s.cs, map[string]any{"deno_code": fmt.Sprintf(`export default await (await fetch("http://127.0.0.1:%d/")).text()`, port)})
		expectSuccess(t, r)
		if r.out["returnValue"] != "listed server" {
			t.Errorf("returnValue %v", r.out["returnValue"])
		}
		recs, _ := r.out["network"].([]any)
		if len(recs) != 1 {
			t.Fatalf("network = %v, want one record", r.out["network"])
		}
		rec := recs[0].(map[string]any)
		if rec["host"] != "127.0.0.1" || rec["port"] != float64(port) || rec["allowed"] != true || rec["bytesIn"].(float64) == 0 {
			t.Errorf("network record %v", rec)
		}
	})

	t.Run("python through the door", func(t *testing.T) {
		s := startStdio(t, nil, nil, fmt.Sprintf("MCP_CONDUCTOR_RUN_ARGS=allow-net=127.0.0.1:%d", port))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		code := fmt.Sprintf(`import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%d/", timeout=10).read().decode())
try:
    urllib.request.urlopen("http://127.0.0.1:%d/", timeout=10)
    print("other reached")
except OSError as e:
    print("other refused")`, port, otherPort)
		res, err := s.cs.CallTool(ctx, &sdk.CallToolParams{Name: "execute_code", Arguments: map[string]any{"language": "python", "entrypoint_code": code}})
		if err != nil {
			t.Fatal(err)
		}
		r := toResult(t, res)
		if r.out["stdout"] != "listed server\nother refused\n" {
			t.Fatalf("python's network: %s", r.text)
		}
		want := fmt.Sprintf("network refused: 127.0.0.1:%d: not in the server's allow-net", otherPort)
		if !strings.Contains(r.text, want) {
			t.Errorf("tool text lacks %q:\n%s", want, r.text)
		}
		if n := otherHits.Load(); n != 0 {
			t.Errorf("the unlisted listener got %d connections", n)
		}
	})

	t.Run("allow-all refuses loopback", func(t *testing.T) {
		s := startStdio(t, nil, nil, "MCP_CONDUCTOR_RUN_ARGS=allow-all")
		r := run(t, s.cs, map[string]any{"deno_code": fmt.Sprintf(`await fetch("http://127.0.0.1:%d/")`, otherPort)})
		for _, want := range []string{
			fmt.Sprintf("network refused: 127.0.0.1:%d: a loopback, private, link-local, CGNAT or metadata address", otherPort),
			// The error says it too, not deno's bare "fetch failed".
			fmt.Sprintf("error at line 1, column 1: TypeError: fetch failed: the server's network policy refused 127.0.0.1:%d: a loopback", otherPort),
		} {
			if !strings.Contains(r.text, want) {
				t.Errorf("tool text lacks %q:\n%s", want, r.text)
			}
		}
		if e, _ := r.out["error"].(map[string]any); e == nil || !strings.Contains(fmt.Sprint(e["cause"]), "Connection reset by peer") {
			t.Errorf("structured error %v, want deno's text as its cause", r.out["error"])
		}
		if n := otherHits.Load(); n != 0 {
			t.Errorf("the loopback listener got %d connections", n)
		}
	})
}

// runDenoTool is run_deno_code among the listed tools (they are listed by name).
func runDenoTool(tools []*sdk.Tool) *sdk.Tool {
	for _, t := range tools {
		if t.Name == "run_deno_code" {
			return t
		}
	}
	return &sdk.Tool{}
}
