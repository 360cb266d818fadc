package mcp_test

// The reload of the upstream MCP servers end to end: the built `conductor serve --http`, a go-sdk
// client, two Go upstreams on loopback, the MCP config file rewritten (its watch, and SIGHUP).

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestE2EUpstreamReload: serve starts with upstream a. The MCP config gains b (a unchanged) and
// serve reloads it (the file's watch): in the SAME MCP session code calls b, list_mcp_servers and the run tool's
// description name b, the client got tools/list_changed, and a's upstream saw no new initialize
// (its session was kept). Then a is removed (and SIGHUP sent): calling a is an error naming the servers there are
// (b), and list_mcp_servers no longer lists a. A broken MCP config, and one with no servers, are
// refused and b keeps serving.
func TestE2EUpstreamReload(t *testing.T) {
	a, b := startGoUpstream(t), startGoUpstream(t)
	cfgFile := filepath.Join(t.TempDir(), "mcp.json")
	writeServers := func(servers map[string]*goUpstream) {
		t.Helper()
		m := map[string]any{}
		for name, u := range servers {
			m[name] = map[string]any{"url": u.url, "type": "http"}
		}
		data, err := json.Marshal(map[string]any{"mcpServers": m})
		if err != nil {
			t.Fatal(err)
		}
		writeAtomic(t, cfgFile, string(data))
	}
	writeServers(map[string]*goUpstream{"a": a})
	conf := filepath.Join(t.TempDir(), "conductor.json")
	writeAtomic(t, conf, `{"pool_size": 1}`)
	s := startHTTP(t, "MCP_CONDUCTOR_CONFIG="+conf, "MCP_CONDUCTOR_MCP_CONFIG="+cfgFile)
	listChanged := make(chan struct{}, 8)
	cs := mustConnectHTTP(t, s, "", &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { listChanged <- struct{}{} },
	})
	const callBoth = `const out = {};
for (const name of ["a", "b"]) {
  try { out[name] = await mcpFactory.load(name).callTool("big", { bytes: 3 }); }
  catch (e) { out[name] = "error: " + (e?.message ?? String(e)); }
}
return out;`
	calls := func() map[string]any {
		t.Helper()
		r := run(t, cs, map[string]any{"deno_code": callBoth})
		rv, ok := r.out["returnValue"].(map[string]any)
		if !ok {
			t.Fatalf("no returnValue: %v", r)
		}
		return rv
	}
	servers := func() []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "list_mcp_servers"})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(res.StructuredContent)
		var out struct{ Servers []struct{ Name string } }
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, sv := range out.Servers {
			names = append(names, sv.Name)
		}
		return names
	}
	reload := func(want string) {
		t.Helper()
		testenv.WaitFor(t, "the reload's log line "+want, 20*time.Second, func() bool {
			return strings.Contains(s.stderr.String(), want)
		})
	}
	drain := func() {
		for {
			select {
			case <-listChanged:
			default:
				return
			}
		}
	}

	rv := calls()
	if rv["a"] != "xxx" || !strings.Contains(rv["b"].(string), `unknown MCP server "b"`) {
		t.Fatalf("before any reload: %v; want a's xxx and b unknown", rv)
	}
	initsA := a.initializes.Load()
	if initsA < 1 {
		t.Fatalf("a's upstream saw %d initialize requests; want at least 1", initsA)
	}
	drain()

	writeServers(map[string]*goUpstream{"a": a, "b": b})
	reload(`kept=[a] changed=[] added=[b] removed=[]`)
	if rv := calls(); rv["a"] != "xxx" || rv["b"] != "xxx" {
		t.Errorf("after adding b, same session: %v; want xxx from both", rv)
	}
	if n := a.initializes.Load(); n != initsA {
		t.Errorf("a's upstream saw %d initialize requests, %d before the reload: its session was not kept", n, initsA)
	}
	if b.initializes.Load() < 1 {
		t.Error("b's upstream saw no initialize")
	}
	if got := servers(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("list_mcp_servers after adding b: %v", got)
	}
	expectToolsRelisted(t, cs, listChanged, "a, b")

	// This time by SIGHUP (the file's watch may reload it too: the same change, applied once).
	writeServers(map[string]*goUpstream{"b": b})
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reload(`kept=[b] changed=[] added=[] removed=[a]`)
	rv = calls()
	if rv["b"] != "xxx" {
		t.Errorf("after removing a: b gave %v; want xxx", rv["b"])
	}
	if msg, _ := rv["a"].(string); !strings.Contains(msg, `unknown MCP server "a"`) || !strings.Contains(msg, "configured: b") {
		t.Errorf("calling the removed a: %q; want an error naming a and the configured servers (b)", msg)
	}
	if got := servers(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("list_mcp_servers after removing a: %v", got)
	}

	// A broken file, and one with no servers left, are refused naming the key; b keeps serving.
	for _, c := range []struct{ data, want string }{
		{`{"mcpServers": {"b": {"url": 7}}}`, "config reload refused"},
		{`{"mcpServers": {}}`, "MCP_CONDUCTOR_MCP_CONFIG (key mcp_config): upstream MCP servers all removed or disabled: cannot change while serving; restart serve"},
	} {
		writeAtomic(t, cfgFile, c.data)
		reload(c.want)
		if rv := calls(); rv["b"] != "xxx" {
			t.Errorf("after the refused reload (%s): b gave %v; want xxx", c.data, rv["b"])
		}
	}
	_ = os.Remove(cfgFile + ".new")
}
