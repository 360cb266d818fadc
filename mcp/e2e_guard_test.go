package mcp_test

// End-to-end tests of issue 9, findings 5, 6 and 7 through the BUILT binary
// (`conductor serve` over stdio, real sandboxes, real deno), with real
// upstreams: @modelcontextprotocol/server-everything and
// testdata/factory/guard-stdio.cjs (a node stdio server that sleeps, or
// prints its secret to stderr and exits mid-call).
//
//   - finding 5: an upstream's stderr never reaches the code, a tool result
//     or list_mcp_servers — only the server log;
//   - finding 6: request size and in-flight caps, checked before anything is
//     sent; a crash mid-call ends the execution whose call was in flight,
//     not everyone's access;
//   - finding 7: allowedResources / allowedPrompts.

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// guardScript is the absolute path of testdata/factory/guard-stdio.cjs.
func guardScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "factory", "guard-stdio.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the guard upstream is missing: %v", err)
	}
	return p
}

// countFiles is the number of entries in dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// everything is what a run sees of r: its text and structured content.
func everything(r result) string { return r.text + "\n" + r.String() }

// TestFactoryUpstreamStderrStaysInLog (finding 5): an upstream that prints
// its secret (from ${VAR} in its env) plain, base64, upper-cased and hex to
// stderr and exits mid-call. Neither the execution's result, nor
// list_mcp_servers, nor get_tool_details carry any of those forms or any
// stderr text; the execution learns that the upstream exited and to see the
// server log; the server log (at its default level) has the lines.
func TestFactoryUpstreamStderrStaysInLog(t *testing.T) {
	ft := needFactoryTools(t)
	secret := fmt.Sprintf("gUaRd-SeCrEt-%x", time.Now().UnixNano())
	forms := map[string]string{
		"plain":  secret,
		"base64": base64.StdEncoding.EncodeToString([]byte(secret)),
		"upper":  strings.ToUpper(secret),
		"hex":    hex.EncodeToString([]byte(secret)),
	}
	s := startFactoryServer(t, map[string]any{
		"guard": map[string]any{"command": ft.node, "args": []string{guardScript(t)},
			"env": map[string]string{"GUARD_SECRET": "${GUARD_E2E_SECRET}"}},
	}, nil, "GUARD_E2E_SECRET="+secret)

	r := s.exec(t, `
const up = mcpFactory.load("guard");
await up.callTool("pid", {});
try {
  await up.callTool("crash", {});
  return "no error";
} catch (e) {
  return "caught: " + e.message;
}`, nil)
	t.Logf("the execution: status %q, error %v, returnValue %v", r.str("status"), r.errField("message"), r.out["returnValue"])
	list, _ := json.Marshal(s.tool(t, "list_mcp_servers", nil))
	details, _ := json.Marshal(s.tool(t, "get_tool_details", map[string]any{"server": "guard"}))
	seen := map[string]string{
		"the execution's result": everything(r),
		"list_mcp_servers":       string(list),
		"get_tool_details":       string(details),
	}
	for where, text := range seen {
		for form, v := range forms {
			if strings.Contains(text, v) {
				t.Errorf("%s carries the upstream's secret (%s form): %.600s", where, form, text)
			}
		}
		if strings.Contains(text, "GUARD-STDERR") {
			t.Errorf("%s quotes the upstream's stderr: %.600s", where, text)
		}
	}
	if text := everything(r); !strings.Contains(text, `MCP server \"guard\" exited (exit status 9)`) || !strings.Contains(text, "see the server log") {
		t.Errorf("the execution should learn that the upstream exited, how, and where to look: %.600s", text)
	}
	if !strings.Contains(string(list), "exit status 9") {
		t.Errorf("list_mcp_servers should still say how the upstream ended: %s", list)
	}
	// The admin's log has the lines (the exact secret redacted there too).
	for _, want := range []string{
		"upstream MCP server process exited",
		"GUARD-STDERR base64 " + forms["base64"],
		"GUARD-STDERR hex " + forms["hex"],
		"GUARD-STDERR plain [redacted]",
	} {
		if !waitFor(5*time.Second, func() bool { return strings.Contains(s.stderr.String(), want) }) {
			t.Errorf("the server log lacks %q", want)
		}
	}
}

// TestFactoryUpstreamCrashEndsExecution (finding 6): code that crashes a
// shared upstream mid-call, three times in a row, is ended at the first
// crash (the upstream ran the crash once), with an error that says why; an
// execution that was waiting between calls on the same upstream at that
// moment, and the next execution, are served by the restarted upstream.
func TestFactoryUpstreamCrashEndsExecution(t *testing.T) {
	ft := needFactoryTools(t)
	crashes, sleeps := t.TempDir(), t.TempDir()
	s := startFactoryServer(t, map[string]any{
		"guard": map[string]any{"command": ft.node, "args": []string{guardScript(t)},
			"env": map[string]string{"GUARD_CRASH_MARKERS": crashes, "GUARD_SLEEP_MARKERS": sleeps}},
	}, nil)
	first := s.exec(t, `return await mcpFactory.load("guard").callTool("pid", {})`, nil)
	expectSuccess(t, first)
	pid0 := first.out["returnValue"]

	// The bystander: inside the upstream before the crash, between calls
	// during it, calling again after it.
	type out struct{ r result }
	done := make(chan out, 1)
	go func() {
		done <- out{s.exec(t, `
const up = mcpFactory.load("guard");
const before = await up.callTool("sleep", { ms: 1 });
await new Promise((r) => setTimeout(r, 6000));
return [before, await up.callTool("echo", { message: "bystander" })];`, nil)}
	}()
	if !waitFor(30*time.Second, func() bool { return countFiles(t, sleeps) == 1 }) {
		t.Fatal("the bystander did not reach the upstream within 30 s")
	}

	r := s.exec(t, `
const up = mcpFactory.load("guard");
for (let i = 0; i < 3; i++) {
  try {
    await up.callTool("crash", {});
  } catch (e) {
    console.log("caught: " + e.message);
  }
}
return "went on after the crash";`, nil)
	t.Logf("the crashing execution: status %q, error %v", r.str("status"), r.errField("message"))
	if r.str("status") == "success" || r.out["returnValue"] == "went on after the crash" {
		t.Errorf("the execution went on after crashing the shared upstream: %s", r)
	}
	msg, _ := r.errField("message").(string)
	for _, want := range []string{`MCP server "guard" exited (exit status 9) during tools/call "crash"`, "see the server log", "this execution was ended"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the ended execution's error %q lacks %q", msg, want)
		}
	}
	if n := countFiles(t, crashes); n != 1 {
		t.Errorf("the upstream crashed %d times, want once: the execution that crashed it must not get to do it again", n)
	}

	o := <-done
	expectSuccess(t, o.r)
	sameJSON(t, "the bystander (between calls during the crash)", o.r.out["returnValue"], `["slept", "echo: bystander"]`)
	after := s.exec(t, `return await mcpFactory.load("guard").callTool("pid", {})`, nil)
	expectSuccess(t, after)
	if after.out["returnValue"] == pid0 {
		t.Errorf("the upstream did not restart (pid %v before and after)", pid0)
	}
}

// TestFactoryRequestCaps (finding 6): against server-everything over stdio,
// a 15 MiB echo argument is refused before it reaches the upstream (its pid
// is unchanged and another execution's echo works), and 32 parallel 7 MiB
// calls are refused without growing conductor's memory.
func TestFactoryRequestCaps(t *testing.T) {
	ft := needFactoryTools(t)
	s := startFactoryServer(t, map[string]any{
		"everything": map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"}},
	}, nil)
	expectSuccess(t, s.exec(t, `return await mcpFactory.load("everything").callTool("echo", { message: "warm" })`, nil))
	pid := s.upstreamPid(ft.everything)
	if pid == 0 {
		t.Fatal("server-everything is not running after the first call")
	}
	wantLimit := []string{"1048576-byte limit", "MCP_CONDUCTOR_MCP_MAX_REQUEST", "admin", "not sent"}

	t.Run("15 MiB echo", func(t *testing.T) {
		r := s.exec(t, `
const message = "x".repeat(15 << 20);
try {
  const v = await mcpFactory.load("everything").callTool("echo", { message });
  return "sent: " + String(v).length;
} catch (e) {
  return e.message;
}`, nil)
		expectSuccess(t, r)
		msg, _ := r.out["returnValue"].(string)
		t.Logf("15 MiB echo: %.300s", msg)
		for _, w := range wantLimit {
			if !strings.Contains(msg, w) {
				t.Errorf("the refusal %q lacks %q", msg, w)
			}
		}
		if got := s.upstreamPid(ft.everything); got != pid {
			t.Errorf("server-everything's pid changed from %d to %d: the call reached it", pid, got)
		}
		other := s.exec(t, `return await mcpFactory.load("everything").callTool("echo", { message: "after" })`, nil)
		expectSuccess(t, other)
		if other.out["returnValue"] != "Echo: after" {
			t.Errorf("another execution's echo: %s", other)
		}
	})

	t.Run("32 parallel 7 MiB calls", func(t *testing.T) {
		base := s.resetPeak(t)
		before := s.vmHWM(t)
		r := s.exec(t, `
const message = "x".repeat(7 << 20);
const up = mcpFactory.load("everything");
const rs = await Promise.allSettled(Array.from({ length: 32 }, () => up.callTool("echo", { message })));
return rs.map((r) => (r.status === "rejected" ? r.reason.message : "fulfilled"));`, nil)
		after := s.vmHWM(t)
		t.Logf("conductor memory: RSS %d MiB before, peak (VmHWM) %d MiB during 32 parallel 7 MiB calls (growth %d MiB)", base>>20, after>>20, (after-before)>>20)
		expectSuccess(t, r)
		outcomes, _ := r.out["returnValue"].([]any)
		if len(outcomes) != 32 {
			t.Fatalf("want 32 outcomes, got %s", r)
		}
		for i, o := range outcomes {
			msg, _ := o.(string)
			if !strings.Contains(msg, "MCP_CONDUCTOR_MCP_MAX_REQUEST") {
				t.Errorf("call %d: %.200s", i, msg)
				break
			}
		}
		if grow := after - before; grow >= 150<<20 {
			t.Errorf("conductor's peak RSS grew by %d MiB (%d -> %d MiB) for calls it refused", grow>>20, before>>20, after>>20)
		}
		if got := s.upstreamPid(ft.everything); got != pid {
			t.Errorf("server-everything's pid changed from %d to %d", pid, got)
		}
	})
}

// TestFactoryInFlightBudgets (finding 6): with 2 MiB in flight per execution
// and 3 MiB for all, one execution holding two 900 KiB calls is refused a
// third at once (per execution), and a second execution is refused its
// second while the first holds its two (all executions); the budget comes
// back once the calls end.
func TestFactoryInFlightBudgets(t *testing.T) {
	ft := needFactoryTools(t)
	sleeps := t.TempDir()
	s := startFactoryServer(t, map[string]any{
		"guard": map[string]any{"command": ft.node, "args": []string{guardScript(t)},
			"env": map[string]string{"GUARD_SLEEP_MARKERS": sleeps}},
	}, nil, "MCP_CONDUCTOR_MCP_MAX_INFLIGHT=2MiB", "MCP_CONDUCTOR_MCP_MAX_INFLIGHT_TOTAL=3MiB")

	t.Run("one execution", func(t *testing.T) {
		r := s.exec(t, `
const up = mcpFactory.load("guard");
const pad = "p".repeat(900 << 10);
const held = [up.callTool("sleep", { ms: 1500, pad }), up.callTool("sleep", { ms: 1500, pad })];
const t0 = Date.now();
let third;
try {
  third = await up.callTool("echo", { message: "third", pad });
} catch (e) {
  third = e.message;
}
const ms = Date.now() - t0;
const slept = await Promise.all(held);
const after = await up.callTool("echo", { message: "after", pad });
return { third, ms, slept, after };`, nil)
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		third, _ := rv["third"].(string)
		t.Logf("third call: %.300s (%v ms)", third, rv["ms"])
		for _, w := range []string{"2097152-byte limit", "(MCP_CONDUCTOR_MCP_MAX_INFLIGHT,", "admin", "this execution"} {
			if !strings.Contains(third, w) {
				t.Errorf("the third call's refusal %q lacks %q", third, w)
			}
		}
		if ms, _ := rv["ms"].(float64); ms >= 1000 {
			t.Errorf("the refusal took %v ms: it should not wait for the calls in flight", ms)
		}
		sameJSON(t, "the held calls", rv["slept"], `["slept", "slept"]`)
		if rv["after"] != "echo: after" {
			t.Errorf("a call after the held ones ended: %v", rv["after"])
		}
	})

	t.Run("all executions", func(t *testing.T) {
		n0 := countFiles(t, sleeps)
		type out struct{ r result }
		done := make(chan out, 1)
		go func() {
			done <- out{s.exec(t, `
const up = mcpFactory.load("guard");
const pad = "p".repeat(900 << 10);
return await Promise.all([up.callTool("sleep", { ms: 5000, pad }), up.callTool("sleep", { ms: 5000, pad })]);`, nil)}
		}()
		if !waitFor(30*time.Second, func() bool { return countFiles(t, sleeps) >= n0+2 }) {
			t.Fatal("the first execution's calls did not reach the upstream within 30 s")
		}
		code := `
const up = mcpFactory.load("guard");
const pad = "p".repeat(900 << 10);
const first = up.callTool("sleep", { ms: 300, pad });
let second;
try {
  second = await up.callTool("echo", { message: "second", pad });
} catch (e) {
  second = e.message;
}
return { first: await first, second };`
		r := s.exec(t, code, nil)
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		second, _ := rv["second"].(string)
		t.Logf("second execution's second call: %.300s", second)
		for _, w := range []string{"all executions together", "3145728-byte limit", "MCP_CONDUCTOR_MCP_MAX_INFLIGHT_TOTAL", "admin"} {
			if !strings.Contains(second, w) {
				t.Errorf("the refusal %q lacks %q", second, w)
			}
		}
		if rv["first"] != "slept" {
			t.Errorf("the second execution's first call: %v", rv["first"])
		}
		o := <-done
		expectSuccess(t, o.r)
		sameJSON(t, "the first execution's calls", o.r.out["returnValue"], `["slept", "slept"]`)
		// The budget is back: the same code now passes whole.
		again := s.exec(t, code, nil)
		expectSuccess(t, again)
		sameJSON(t, "the second execution's code once the first ended", again.out["returnValue"], `{"first": "slept", "second": "echo: second"}`)
	})
}

// TestFactoryResourcePromptAllowlists (finding 7), against server-everything
// over stdio: with allowedTools ["echo"] only, listResources and listPrompts
// list nothing and readResource and getPrompt are refused, without the
// upstream ever being started; with allowedResources / allowedPrompts
// patterns, exactly the matching resources and prompts pass.
func TestFactoryResourcePromptAllowlists(t *testing.T) {
	ft := needFactoryTools(t)
	ev := func(extra map[string]any) map[string]any {
		m := map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	resPatterns := []string{"demo://resource/static/document/features.md", "demo://resource/dynamic/text/*"}

	t.Run("allowedTools only", func(t *testing.T) {
		s := startFactoryServer(t, map[string]any{"tools_only": ev(map[string]any{"allowedTools": []string{"echo"}})}, nil)
		r := s.exec(t, `
const up = mcpFactory.load("tools_only");
const err = (p) => p.then((v) => "reached: " + JSON.stringify(v).slice(0, 200), (e) => e.message);
return {
  resources: await up.listResources(),
  prompts: await up.listPrompts(),
  read: await err(up.readResource("demo://resource/static/document/features.md")),
  get: await err(up.getPrompt("simple-prompt", {})),
};`, nil)
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		sameJSON(t, "listResources", rv["resources"], `[]`)
		sameJSON(t, "listPrompts", rv["prompts"], `[]`)
		if msg, _ := rv["read"].(string); !strings.Contains(msg, `resource "demo://resource/static/document/features.md" is not allowed`) || !strings.Contains(msg, "allowedResources") {
			t.Errorf("readResource: %q", msg)
		}
		if msg, _ := rv["get"].(string); !strings.Contains(msg, `prompt "simple-prompt" is not allowed`) || !strings.Contains(msg, "allowedPrompts") {
			t.Errorf("getPrompt: %q", msg)
		}
		// Never contacted: the upstream was never even started.
		var list struct {
			Servers []struct{ Name, Status string } `json:"servers"`
		}
		decodeInto(t, s.tool(t, "list_mcp_servers", nil).StructuredContent, &list)
		for _, st := range list.Servers {
			if st.Name == "tools_only" && st.Status != "idle" {
				t.Errorf("tools_only is %q: the refused requests reached it", st.Status)
			}
		}
	})

	t.Run("patterns", func(t *testing.T) {
		s := startFactoryServer(t, map[string]any{
			"all": ev(nil),
			"patterns": ev(map[string]any{"allowedTools": []string{"echo"},
				"allowedResources": resPatterns, "allowedPrompts": []string{"simple-*"}}),
		}, nil)
		r := s.exec(t, `
const all = mcpFactory.load("all"), up = mcpFactory.load("patterns");
const err = (p) => p.then((v) => "reached", (e) => e.message);
const uris = (l) => l.map((r) => r.uri);
const names = (l) => l.map((p) => p.name);
return {
  allResources: uris(await all.listResources()),
  allPrompts: names(await all.listPrompts()),
  resources: uris(await up.listResources()),
  prompts: names(await up.listPrompts()),
  readListed: await err(up.readResource("demo://resource/static/document/features.md")),
  readTemplate: await err(up.readResource("demo://resource/dynamic/text/1")),
  readOther: await err(up.readResource("demo://resource/dynamic/blob/1")),
  readPrefix: await err(up.readResource("demo://resource/static/document/features.md.bak")),
  getListed: await err(up.getPrompt("simple-prompt", {})),
  getOther: await err(up.getPrompt("args-prompt", { city: "Lisbon" })),
};`, nil)
		expectSuccess(t, r)
		var rv struct {
			AllResources, AllPrompts, Resources, Prompts                         []string
			ReadListed, ReadTemplate, ReadOther, ReadPrefix, GetListed, GetOther string
		}
		decodeInto(t, r.out["returnValue"], &rv)
		wantRes := slices.DeleteFunc(slices.Clone(rv.AllResources), func(u string) bool {
			return u != resPatterns[0] && !strings.HasPrefix(u, "demo://resource/dynamic/text/")
		})
		wantPrompts := slices.DeleteFunc(slices.Clone(rv.AllPrompts), func(n string) bool { return !strings.HasPrefix(n, "simple-") })
		t.Logf("all resources %v → %v; all prompts %v → %v", rv.AllResources, rv.Resources, rv.AllPrompts, rv.Prompts)
		if len(wantRes) == 0 || len(rv.AllResources) <= len(wantRes) || !slices.Equal(rv.Resources, wantRes) {
			t.Errorf("listResources: %v, want %v (of %v)", rv.Resources, wantRes, rv.AllResources)
		}
		if len(wantPrompts) == 0 || len(rv.AllPrompts) <= len(wantPrompts) || !slices.Equal(rv.Prompts, wantPrompts) {
			t.Errorf("listPrompts: %v, want %v (of %v)", rv.Prompts, wantPrompts, rv.AllPrompts)
		}
		for what, got := range map[string]string{"readListed": rv.ReadListed, "readTemplate": rv.ReadTemplate, "getListed": rv.GetListed} {
			if got != "reached" {
				t.Errorf("%s: %q, want it allowed", what, got)
			}
		}
		for what, got := range map[string]string{"readOther": rv.ReadOther, "readPrefix": rv.ReadPrefix, "getOther": rv.GetOther} {
			if !strings.Contains(got, "is not allowed") {
				t.Errorf("%s: %q, want a refusal", what, got)
			}
		}
	})
}
