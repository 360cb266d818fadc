package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sync/atomic"
	"testing"
	"time"
)

// testHandler answers calls: "echo" returns its params, "sleep" waits,
// "big" returns n bytes, "fail" fails. It records concurrency and whether
// calls saw their context end.
type testHandler struct {
	active, maxActive atomic.Int32
	cancelled         atomic.Int32
}

func (h *testHandler) Call(ctx context.Context, method string, params json.RawMessage) (any, error) {
	n := h.active.Add(1)
	defer h.active.Add(-1)
	for {
		m := h.maxActive.Load()
		if n <= m || h.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	var p struct {
		Server string `json:"server"`
		Args   struct {
			Ms int `json:"ms"`
			N  int `json:"n"`
		} `json:"args"`
		Tool string `json:"tool"`
	}
	_ = json.Unmarshal(params, &p)
	switch method + ":" + p.Tool {
	case "callTool:echo":
		return json.RawMessage(params), nil
	case "callTool:sleep":
		select {
		case <-time.After(time.Duration(p.Args.Ms) * time.Millisecond):
			return "slept", nil
		case <-ctx.Done():
			h.cancelled.Add(1)
			return nil, ctx.Err()
		}
	case "callTool:big":
		return strings.Repeat("x", p.Args.N), nil
	case "callTool:fail":
		return nil, errors.New("upstream said no")
	case "callTool:end":
		return nil, fmt.Errorf("%w: the upstream died during this call", ErrEndExecution)
	case "listServers:":
		return []string{"a"}, nil
	}
	return nil, errors.New("unknown method " + method)
}

func TestCalls(t *testing.T) {
	h := &testHandler{}
	r := newTestRunner(t, nil)
	run := func(code string, limits CallLimits) *Result {
		t.Helper()
		res, err := r.Run(context.Background(), Job{Code: code, Timeout: 20 * time.Second, Calls: h, CallLimits: limits})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	shared := NewBudget(1500)
	tests := []struct {
		name   string
		code   string
		limits CallLimits
		want   string // canonical JSON of the return value
		calls  int
	}{
		{"round trip", `export default await mcpFactory.load("a").callTool("echo", {n: 1})`, CallLimits{},
			`{"args":{"n":1},"server":"a","tool":"echo"}`, 1},
		{"list servers", `export default await mcpFactory.listServers()`, CallLimits{}, `["a"]`, 1},
		{"upstream error rejects with its message", `export default await mcpFactory.load("a").callTool("fail").catch(e => [e.name, e.message])`, CallLimits{},
			`["McpError","upstream said no"]`, 1},
		{"call limit", `const a = mcpFactory.load("a"); const out = []; for (let i = 0; i < 4; i++) out.push(await a.callTool("echo").then(() => "ok", e => e.message)); export default out`,
			CallLimits{MaxCalls: 3}, `["ok","ok","ok","this execution has made 3 calls, the limit"]`, 3},
		{"reply size limit", `export default await mcpFactory.load("a").callTool("big", {n: 5000}).catch(e => e.message.includes("over the 1000-byte limit"))`,
			CallLimits{MaxReplyBytes: 1000}, `true`, 1},
		{"in-flight limit", `const a = mcpFactory.load("a"); export default (await Promise.allSettled([a.callTool("sleep", {ms: 300}), a.callTool("sleep", {ms: 300}), a.callTool("sleep", {ms: 300})])).map(r => r.status)`,
			CallLimits{MaxInFlight: 2}, `["fulfilled","fulfilled","rejected"]`, 2},
		{"request size limit", `const a = mcpFactory.load("a"); export default [await a.callTool("echo", {s: "x".repeat(2000)}).then(() => "sent", e => e.message.includes("over the 1024-byte limit of one call (MCP_CONDUCTOR_MCP_MAX_REQUEST")), await a.callTool("echo", {s: "x"}).then(() => "small one sent")]`,
			CallLimits{MaxRequestBytes: 1024}, `[true,"small one sent"]`, 1},
		{"in-flight bytes of one execution", `const a = mcpFactory.load("a"), pad = "p".repeat(600); export default (await Promise.allSettled([a.callTool("sleep", {ms: 300, pad}), a.callTool("sleep", {ms: 300, pad}), a.callTool("echo", {pad})])).map(r => r.status === "rejected" ? r.reason.message.includes("(MCP_CONDUCTOR_MCP_MAX_INFLIGHT,") : r.status)`,
			CallLimits{MaxRequestBytes: 1024, MaxInFlightBytes: 1500}, `["fulfilled","fulfilled",true]`, 2},
		{"in-flight bytes of all executions", `const a = mcpFactory.load("a"), pad = "p".repeat(600); export default (await Promise.allSettled([a.callTool("sleep", {ms: 300, pad}), a.callTool("sleep", {ms: 300, pad}), a.callTool("echo", {pad})])).map(r => r.status === "rejected" ? r.reason.message.includes("(MCP_CONDUCTOR_MCP_MAX_INFLIGHT_TOTAL,") : r.status)`,
			CallLimits{MaxRequestBytes: 1024, MaxInFlightBytes: 1 << 20, Shared: shared}, `["fulfilled","fulfilled",true]`, 2},
		{"load needs a name", `export default (() => { try { mcpFactory.load(42) } catch (e) { return e.message } })()`, CallLimits{}, `"mcpFactory.load(name): name must be a server name string"`, 0},
		{"servers: typed binding", `export default await servers.a.echo({n: 1})`, CallLimits{},
			`{"args":{"n":1},"server":"a","tool":"echo"}`, 1},
		{"servers: names that are not identifiers", `export default await servers["my-server"]["echo"]({a: 1})`, CallLimits{},
			`{"args":{"a":1},"server":"my-server","tool":"echo"}`, 1},
		{"servers: no args sends {}", `export default await servers.a.echo()`, CallLimits{},
			`{"args":{},"server":"a","tool":"echo"}`, 1},
		{"servers: errors reject like mcpFactory's", `export default await servers.a.fail({}).catch(e => [e.name, e.message])`, CallLimits{},
			`["McpError","upstream said no"]`, 1},
		{"servers: not thenable, frozen, stable", `const s = await servers.a; const out = [s === servers.a, typeof servers.then, typeof servers.a.then, typeof servers.a.toJSON, Object.isFrozen(servers), servers.a.echo === servers.a.echo, servers.a.echo.name];
for (const f of [() => { servers.x = 1 }, () => { servers.a.echo = 1 }, () => { delete servers.a }, () => Object.defineProperty(servers, "y", {value: 1})]) { try { f(); out.push("changed") } catch (e) { out.push(e.name) } }
export default out`, CallLimits{},
			`[true,"undefined","undefined","undefined",true,true,"echo","TypeError","TypeError","TypeError","TypeError"]`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(tc.code, tc.limits)
			if res.Status != StatusSuccess {
				t.Fatalf("status %s: %+v %s", res.Status, res.Error, res.Stderr)
			}
			if got := canonical(t, res.ReturnValue); got != canonical(t, []byte(tc.want)) {
				t.Errorf("returnValue %s, want %s", got, tc.want)
			}
			if res.Calls != tc.calls {
				t.Errorf("mcpCalls = %d, want %d", res.Calls, tc.calls)
			}
		})
	}

	if n := shared.InUse(); n != 0 {
		t.Errorf("the shared budget holds %d bytes after every call ended", n)
	}
	t.Run("a call can end its execution", func(t *testing.T) {
		res := run(`const a = mcpFactory.load("a"); try { await a.callTool("end") } catch {} ; export default "went on"`, CallLimits{})
		if res.Status != StatusKilled || res.Error == nil || res.ReturnValue != nil ||
			!strings.Contains(res.Error.Message, "ended by the host: the host ended the execution: the upstream died during this call") {
			t.Fatalf("status %s, error %+v, returnValue %s; want the execution killed with the handler's reason", res.Status, res.Error, res.ReturnValue)
		}
	})
	t.Run("an uncaught upstream error is at the user's call", func(t *testing.T) {
		res := run("const a = mcpFactory.load(\"a\");\nawait new Promise((r) => setTimeout(r, 10));\n  await a.callTool(\"fail\");", CallLimits{})
		if res.Status != StatusError || res.Error == nil || res.Error.Name != "McpError" {
			t.Fatalf("status %s error %+v; want the McpError uncaught", res.Status, res.Error)
		}
		// The stack is the call's: its first frame is the callTool in the code (line 3, column 11).
		if first, _, _ := strings.Cut(strings.TrimPrefix(res.Error.Stack, "McpError: upstream said no\n"), "\n"); !strings.Contains(first, "main.ts:3:11") {
			t.Errorf("stack %q: want its first frame at main.ts:3:11, the callTool", res.Error.Stack)
		}
	})
	t.Run("parallel calls overlap", func(t *testing.T) {
		h.maxActive.Store(0)
		res := run(`const a = mcpFactory.load("a"); export default await Promise.all([1, 2, 3].map(() => a.callTool("sleep", {ms: 300})))`, CallLimits{})
		if res.Status != StatusSuccess || h.maxActive.Load() < 3 {
			t.Fatalf("status %s, %d calls at once; want 3 (Promise.all must run them in parallel)", res.Status, h.maxActive.Load())
		}
	})
	t.Run("calls in flight end with the execution", func(t *testing.T) {
		h.cancelled.Store(0)
		res := run(`mcpFactory.load("a").callTool("sleep", {ms: 10000}); await new Promise(r => setTimeout(r, 200)); Deno.exit(0)`, CallLimits{})
		if res.Status != StatusSuccess || h.cancelled.Load() != 1 {
			t.Fatalf("status %s, cancelled calls %d; want the pending call cancelled when deno exits", res.Status, h.cancelled.Load())
		}
	})
	t.Run("no handler: no mcpFactory", func(t *testing.T) {
		res, _ := r.Run(context.Background(), Job{Code: `export default typeof mcpFactory`, Timeout: 10 * time.Second})
		if string(res.ReturnValue) != `"undefined"` {
			t.Fatalf("typeof mcpFactory = %s without upstreams", res.ReturnValue)
		}
		res, _ = r.Run(context.Background(), Job{Code: `export default typeof servers`, Timeout: 10 * time.Second})
		if string(res.ReturnValue) != `"undefined"` {
			t.Fatalf("typeof servers = %s without upstreams", res.ReturnValue)
		}
	})
	t.Run("a global named servers is refused with upstreams", func(t *testing.T) {
		res, err := r.Run(context.Background(), Job{Code: `export default 1`, Timeout: 10 * time.Second, Calls: h, Globals: json.RawMessage(`{"servers": 1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Error == nil || !strings.Contains(res.Error.Message, `global "servers" is taken by the typed MCP bindings`) {
			t.Fatalf("status %s, error %+v", res.Status, res.Error)
		}
	})
}

// TestHostileChannel: code with deno's walls open writes to the channel
// itself. Its own execution fails; the host and the next execution do not.
func TestHostileChannel(t *testing.T) {
	h := &testHandler{}
	r := newTestRunner(t, func(o *Options) { o.DenoFlags = []string{"--allow-all"} })
	tests := []struct {
		name string
		code string
	}{
		{"garbage bytes", `const f = Deno.openSync("/proc/self/fd/3", {write: true}); f.writeSync(new TextEncoder().encode("\xff\xff\xff\xffgarbage"))`},
		{"oversized frame header", `const f = Deno.openSync("/proc/self/fd/3", {write: true}); const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, 0x7fffffff); f.writeSync(b)`},
		{"call frame without id", `const f = Deno.openSync("/proc/self/fd/3", {write: true}); const body = new TextEncoder().encode('{"type":"call","method":"callTool"}'); const h = new Uint8Array(4); new DataView(h.buffer).setUint32(0, body.length); f.writeSync(h); f.writeSync(body); await new Promise(r => setTimeout(r, 100))`},
		{"reused call id", `const f = Deno.openSync("/proc/self/fd/3", {write: true}); const w = (o) => { const body = new TextEncoder().encode(JSON.stringify(o)); const h = new Uint8Array(4); new DataView(h.buffer).setUint32(0, body.length); f.writeSync(h); f.writeSync(body) }; w({type:"call", id: 7, method:"callTool", params:{server:"a", tool:"sleep", args:{ms: 2000}}}); w({type:"call", id: 7, method:"callTool", params:{server:"a", tool:"sleep", args:{ms: 2000}}}); await new Promise(r => setTimeout(r, 300))`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Run(context.Background(), Job{Code: tc.code, Timeout: 10 * time.Second, Calls: h})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != StatusError || res.Error == nil || !strings.Contains(res.Error.Message, "channel protocol") {
				t.Fatalf("status %s error %+v; want the execution failed for breaking the channel", res.Status, res.Error)
			}
			next, err := r.Run(context.Background(), Job{Code: `export default await mcpFactory.load("a").callTool("echo", {ok: true})`, Timeout: 10 * time.Second, Calls: h})
			if err != nil || next.Status != StatusSuccess {
				t.Fatalf("the next execution: %v %+v", err, next)
			}
		})
	}
	t.Run("over the call limit: refusals, then success", func(t *testing.T) {
		res, _ := r.Run(context.Background(), Job{
			Code:       `const a = mcpFactory.load("a"); const rs = await Promise.allSettled(Array.from({length: 1500}, () => a.callTool("echo"))); export default rs.filter(r => r.status === "fulfilled").length`,
			Timeout:    30 * time.Second,
			Calls:      h,
			CallLimits: CallLimits{MaxCalls: 1000, MaxInFlight: 16},
		})
		var ok int
		_ = json.Unmarshal(res.ReturnValue, &ok)
		if res.Status != StatusSuccess || ok < 16 || ok > 1000 {
			t.Fatalf("status %s, %d calls succeeded, error %+v; want success with between 16 and 1000", res.Status, ok, res.Error)
		}
	})
	t.Run("a flood of calls ends the execution at once", func(t *testing.T) {
		res, _ := r.Run(context.Background(), Job{
			Code:       `const a = mcpFactory.load("a"); await Promise.allSettled(Array.from({length: 100000}, () => a.callTool("echo")))`,
			Timeout:    60 * time.Second,
			Calls:      h,
			CallLimits: CallLimits{MaxCalls: 1000, MaxInFlight: 16},
		})
		if res.Status != StatusError || res.Error == nil || !strings.Contains(res.Error.Message, "flood") {
			t.Fatalf("flood: status %s error %+v", res.Status, res.Error)
		}
		if res.LimitHit == LimitTimeout {
			t.Fatalf("the flood ran into its timeout instead of being ended")
		}
		next, _ := r.Run(context.Background(), Job{Code: `export default await mcpFactory.load("a").callTool("echo", {})`, Timeout: 10 * time.Second, Calls: h})
		if next == nil || next.Status != StatusSuccess {
			t.Fatalf("the next execution after a flood: %+v", next)
		}
	})
}
