package mcp_test

// End-to-end tests of mcpFactory from Python (issue 12): run_python_code through the BUILT binary,
// as e2e_factory_test.go tests it from TypeScript, against the real server-everything and
// server-memory over stdio and the Go upstream (goup) over streamable HTTP.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pyRun calls run_python_code with code and globals (protocol errors fail the test).
func (s *factoryServer) pyRun(t *testing.T, code string, globals map[string]any) result {
	t.Helper()
	args := map[string]any{"python_code": code, "timeout": 45000}
	if globals != nil {
		args["globals"] = globals
	}
	return toResult(t, s.tool(t, "run_python_code", args))
}

// startPythonFactory is conductor with run_python_code (the host's Python) and upstreams:
// server-everything over stdio, whose env holds the expanded ${FACTORY_SENTINEL}, server-memory
// over stdio, and goup.
func startPythonFactory(t *testing.T, ft factoryTools, goup *goUpstream, sentinel string) *factoryServer {
	t.Helper()
	return startFactoryServer(t, map[string]any{
		"everything": map[string]any{"command": ft.node, "args": []string{ft.everything, "stdio"},
			"env": map[string]string{"E2E_TOKEN": "${FACTORY_SENTINEL}"}},
		"memory": map[string]any{"command": ft.node, "args": []string{ft.memory},
			"env": map[string]string{"MEMORY_FILE_PATH": filepath.Join(t.TempDir(), "memory.json")}},
		"goup": map[string]any{"url": goup.url, "type": "http",
			"headers": map[string]string{"Authorization": "Bearer ${FACTORY_SENTINEL}"}},
	}, nil, "MCP_CONDUCTOR_PYTHON="+hostPython(t), "FACTORY_SENTINEL="+sentinel)
}

// TestPythonFactoryE2E: Python code reaches the upstreams with mcpFactory: calls in parallel with
// asyncio.gather (proved by goup's barrier, which only opens when all five calls are inside the
// upstream at once, and fails after 15 s otherwise), every method in both spellings, results as
// dicts and lists, state kept by server-memory from one run to the next, an upstream's error
// raised as McpError with its message (caught, and uncaught as the run's error), calls past the
// CallLimits refused as in TypeScript, the upstreams' secrets out of the sandbox's reach, and
// hostile lines on the channel leaving the run, its later calls and the server working.
func TestPythonFactoryE2E(t *testing.T) {
	ft := needFactoryTools(t)
	goup := startGoUpstream(t)
	sentinel := fmt.Sprintf("PYSENTINEL-%x", time.Now().UnixNano())
	s := startPythonFactory(t, ft, goup, sentinel)
	entity := fmt.Sprintf("py-factory-e2e-%d", time.Now().UnixNano())

	t.Run("the tool's description names mcpFactory and the servers", func(t *testing.T) {
		tools, err := s.cs.ListTools(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tl := range tools.Tools {
			if tl.Name == "run_python_code" && (!strings.Contains(tl.Description, "`mcpFactory` reaches these MCP servers: everything, goup, memory") || !strings.Contains(tl.Description, "asyncio.gather")) {
				t.Errorf("run_python_code's description: %q", tl.Description)
			}
		}
	})

	t.Run("one run, parallel calls, every method", func(t *testing.T) {
		r := s.pyRun(t, `
import asyncio
ev = mcpFactory.load("everything")
mem = mcpFactory.load("memory")
go = mcpFactory.load("goup")
servers = await mcpFactory.list_servers()
(tools, tools2, echo, sums, doc, prompt, resources, prompts, created, barrier) = await asyncio.gather(
    ev.list_tools(),
    ev.listTools(),
    ev.call_tool("echo", {"message": "from python"}),
    asyncio.gather(*(ev.callTool("get-sum", {"a": i, "b": 10 * i}) for i in range(1, 5))),
    ev.read_resource("demo://resource/static/document/features.md"),
    ev.getPrompt("args-prompt", {"city": "Lisbon", "state": "PT"}),
    ev.listResources(),
    ev.list_prompts(),
    mem.call_tool("create_entities", {"entities": [{"name": entity, "entityType": "test", "observations": ["stored by python run 1"]}]}),
    asyncio.gather(*(go.call_tool("barrier", {"key": "py", "n": 5}) for _ in range(5))),
)
{
    "servers": servers,
    "same tools": tools == tools2,
    "echo schema": next(t for t in tools if t["name"] == "echo")["inputSchema"]["properties"]["message"]["type"],
    "types": [type(x).__name__ for x in (servers, tools, doc, prompt, resources, created)],
    "echo": echo,
    "sum": sum(int(s.rsplit(" ", 1)[1].rstrip(".")) for s in sums),
    "doc": [doc["contents"][0]["uri"], doc["contents"][0]["mimeType"]],
    "prompt": [m["role"] + ": " + m["content"]["text"] for m in prompt["messages"]],
    "has the resource": "demo://resource/static/document/features.md" in [r["uri"] for r in resources],
    "has the prompt": "args-prompt" in [p["name"] for p in prompts],
    "created": [e["name"] == entity for e in created["entities"]],
    "barrier": barrier,
    "server": repr(go),
}`, map[string]any{"entity": entity})
		expectSuccess(t, r)
		sameJSON(t, "summary", r.out["returnValue"], `{
  "servers": ["everything", "goup", "memory"],
  "same tools": true,
  "echo schema": "string",
  "types": ["list", "list", "dict", "dict", "list", "dict"],
  "echo": "Echo: from python",
  "sum": 110,
  "doc": ["demo://resource/static/document/features.md", "text/markdown"],
  "prompt": ["user: What's weather in Lisbon, PT?"],
  "has the resource": true,
  "has the prompt": true,
  "created": [true],
  "barrier": ["5 together", "5 together", "5 together", "5 together", "5 together"],
  "server": "<mcpFactory server 'goup'>"
}`)
		if got := r.out["mcpCalls"]; got != float64(18) {
			t.Errorf("mcpCalls %v, want 18", got)
		}
	})

	t.Run("the next run reads the state back", func(t *testing.T) {
		r := s.pyRun(t, `
mem = mcpFactory.load("memory")
opened = await mem.callTool("open_nodes", {"names": [entity]})
[[e["name"] == entity, e["entityType"], e["observations"]] for e in opened["entities"]]`, map[string]any{"entity": entity})
		expectSuccess(t, r)
		sameJSON(t, "read back", r.out["returnValue"], `[[true, "test", ["stored by python run 1"]]]`)
	})

	t.Run("an upstream error is McpError", func(t *testing.T) {
		r := s.pyRun(t, `
try:
    await mcpFactory.load("goup").call_tool("fail", {"message": "boom 42"})
    out = "returned"
except McpError as e:
    out = [isinstance(e, Exception), type(e).__name__, str(e)]
try:
    await mcpFactory.load("nowhere").list_tools()
except McpError as e:
    out.append(str(e))
try:
    mcpFactory.load("")
except TypeError as e:
    out.append(str(e))
out`, nil)
		expectSuccess(t, r)
		sameJSON(t, "caught", r.out["returnValue"], `[true, "McpError", "goup: deliberate failure: boom 42",
  "unknown MCP server \"nowhere\" (configured: everything, goup, memory)",
  "mcpFactory.load(name): name must be a server name string"]`)
		r = s.pyRun(t, "x = 1\nawait mcpFactory.load(\"goup\").callTool(\"fail\", {\"message\": \"uncaught\"})", nil)
		if !r.res.IsError || r.errField("name") != "McpError" || r.errField("message") != "goup: deliberate failure: uncaught" || r.errField("line") != float64(2) {
			t.Errorf("uncaught upstream error: %s", r)
		}
	})

	t.Run("read-only globals", func(t *testing.T) {
		r := s.pyRun(t, "mcpFactory = None", nil)
		if !r.res.IsError || r.errField("type") != "syntax" || !strings.Contains(fmt.Sprint(r.errField("message")), "'mcpFactory' is a read-only global") {
			t.Errorf("binding mcpFactory: %s", r)
		}
		r = s.pyRun(t, `
out = []
for f in (lambda: setattr(mcpFactory, "load", None), lambda: setattr(mcpFactory.load("goup"), "name", "x")):
    try:
        f()
    except AttributeError as e:
        out.append(str(e))
out`, nil)
		expectSuccess(t, r)
		sameJSON(t, "setattr", r.out["returnValue"], `["McpFactory is read-only", "McpServer is read-only"]`)
		res := s.tool(t, "run_python_code", map[string]any{"python_code": "1", "globals": map[string]any{"mcpFactory": 1}})
		expectRefused(t, toResult(t, res), "mcpFactory", "shadow")
	})

	t.Run("calls past the limits are refused", func(t *testing.T) {
		r := s.pyRun(t, `
import asyncio
g = mcpFactory.load("goup")
rs = await asyncio.gather(*(g.call_tool("sleep", {"ms": 1000}) for _ in range(100)), return_exceptions=True)
refused = [r for r in rs if isinstance(r, BaseException)]
too_big = []
for n in (1_500_000, 3_000_000):
    try:
        await g.call_tool("sleep", {"ms": 1, "tag": "x" * n})
    except McpError as e:
        too_big.append(str(e))
{"ok": len(rs) - len(refused), "refused": len(refused), "names": sorted({type(r).__name__ for r in refused}),
 "in flight": all("32 calls are already in flight" in str(r) for r in refused), "too big": too_big}`, nil)
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		tooBig, _ := rv["too big"].([]any)
		delete(rv, "too big")
		sameJSON(t, "100 parallel calls against the in-flight limit of 32", rv, `{"ok": 32, "refused": 68, "names": ["McpError"], "in flight": true}`)
		if len(tooBig) != 2 || !strings.Contains(fmt.Sprint(tooBig[0]), "MCP_CONDUCTOR_MCP_MAX_REQUEST") || !strings.Contains(fmt.Sprint(tooBig[1]), "it was not sent") {
			t.Errorf("a 1.5 MB request should be refused by the host naming its setting, a 3 MB one by the runner: %.600s", abbreviate(tooBig))
		}
		if got := r.out["mcpCalls"]; got != float64(32) {
			t.Errorf("mcpCalls %v, want the 32 admitted", got)
		}
	})

	t.Run("secrets stay outside", func(t *testing.T) {
		r := s.pyRun(t, `
import os
found = {"env": dict(os.environ)}
for d in sorted(os.listdir("/proc")):
    if d.isdigit():
        for f in ("environ", "cmdline"):
            try:
                with open("/proc/%s/%s" % (d, f), "rb") as fh:
                    found[d + "/" + f] = fh.read().decode("utf-8", "replace")
            except OSError as e:
                found[d + "/" + f] = "ERR " + type(e).__name__
try:
    open(cfg).read()
except OSError as e:
    found["config"] = type(e).__name__
found["tools"] = await mcpFactory.load("goup").list_tools()
print(found)
found`, map[string]any{"cfg": s.cfgPath})
		expectSuccess(t, r)
		all, _ := json.Marshal(r.out)
		if strings.Contains(string(all)+r.text, sentinel) {
			t.Errorf("the code found the secret: %s", tail(string(all), 4000))
		}
		rv, _ := r.out["returnValue"].(map[string]any)
		if rv["config"] != "FileNotFoundError" {
			t.Errorf("the config file from inside: %v, want FileNotFoundError", rv["config"])
		}
		if env, _ := rv["env"].(map[string]any); env["DENO_EXTRA_STDIO_FDS"] != nil || env["PATH"] == nil {
			t.Errorf("the code's environment: %v", env)
		}
		// Control: the secret did reach the stdio upstream's environment.
		r = s.pyRun(t, `await mcpFactory.load("everything").call_tool("get-env", {})`, nil)
		expectSuccess(t, r)
		if env, _ := json.Marshal(r.out["returnValue"]); !strings.Contains(string(env), sentinel) {
			t.Errorf("control: the stdio upstream's env lacks the expanded ${FACTORY_SENTINEL}: %s", abbreviate(r.out["returnValue"]))
		}
		if strings.Contains(s.stderr.String(), sentinel) {
			t.Errorf("conductor's log shows the secret")
		}
	})

	t.Run("the channel stays the runner's", func(t *testing.T) {
		// The code's own processes do not inherit fd 3, and execute_code's Python (no mcpFactory
		// there) finds its end closed.
		r := s.pyRun(t, `
import subprocess, sys
child = subprocess.run([sys.executable, "-c", "import os; os.fstat(3)"], capture_output=True)
[child.returncode, b"Bad file descriptor" in child.stderr]`, nil)
		expectSuccess(t, r)
		sameJSON(t, "a child process's fd 3", r.out["returnValue"], `[1, true]`)
		res := s.tool(t, "execute_code", map[string]any{"language": "python", "entrypoint_code": `import os
print(os.read(3, 10), "DENO_EXTRA_STDIO_FDS" in os.environ)`})
		if got := toResult(t, res); got.res.IsError || got.str("stdout") != "b'' False\n" {
			t.Errorf("execute_code's Python on a server with upstreams: %s", got)
		}
	})

	t.Run("hostile lines on the channel", func(t *testing.T) {
		// The code writes to the runner's channel (fd 3) itself: garbage, requests with bogus ids,
		// an unknown method, bad params; the relay answers (to no call of the runner's) and the
		// runner's calls go on. Then a line over the relay's limit closes the channel: the next
		// call raises McpError, and the run still ends with its value.
		r := s.pyRun(t, `
import os, asyncio
ev = mcpFactory.load("everything")
before = await ev.call_tool("echo", {"message": "before"})
for line in (b"garbage\n", b"\xff\xfe\n", b"[1, 2]\n", b"null\n", b'{"id": "x", "method": "listServers"}\n',
             b'{"id": -1, "method": "listServers"}\n', b'{"id": 1.5, "method": "listServers"}\n',
             b'{"id": 9007199254740993, "method": "listServers"}\n', b'{"id": 77, "method": "shutdown"}\n',
             b'{"id": 78, "method": "callTool", "params": [1]}\n', b'{"id": 79, "method": "callTool", "params": {"server": 5}}\n',
             b'{"id": 80, "method": "callTool", "params": {"server": "everything", "tool": "echo", "args": "x"}}\n',
             b"\n" * 1000):
    os.write(3, line)
after = await asyncio.gather(*(ev.call_tool("echo", {"message": "after %d" % i}) for i in range(3)))
try:
    big = b"x" * (3 << 20)
    while big:
        big = big[os.write(3, big):]
    wrote = "all"
except OSError as e:
    wrote = type(e).__name__
try:
    await ev.call_tool("echo", {"message": "closed"})
    closed = "returned"
except McpError as e:
    closed = str(e)
{"before": before, "after": after, "closed": closed}`, nil)
		expectSuccess(t, r)
		rv, _ := r.out["returnValue"].(map[string]any)
		closed, _ := rv["closed"].(string)
		delete(rv, "closed")
		sameJSON(t, "calls around the garbage", rv, `{"before": "Echo: before", "after": ["Echo: after 0", "Echo: after 1", "Echo: after 2"]}`)
		if !strings.Contains(closed, "closed") {
			t.Errorf("a call after the oversize line: %q, want McpError saying the channel is closed", closed)
		}
		if got := r.out["mcpCalls"]; got != float64(4) {
			t.Errorf("mcpCalls %v: want the runner's 4 (the bad lines never reach the host)", got)
		}
		// The relay answered garbage on a channel the code could read: the run and the next work.
		r = s.pyRun(t, `await mcpFactory.load("memory").call_tool("open_nodes", {"names": [entity]})`, map[string]any{"entity": entity})
		expectSuccess(t, r)
		if err := s.cs.Ping(t.Context(), nil); err != nil {
			t.Errorf("ping after the hostile runs: %v", err)
		}
	})
}

// TestPythonFactoryAbsent: without upstreams, Python code has no mcpFactory (as TypeScript has
// none), and its name is the code's own.
func TestPythonFactoryAbsent(t *testing.T) {
	needFactoryTools(t)
	s := startFactoryServer(t, map[string]any{}, nil, "MCP_CONDUCTOR_PYTHON="+hostPython(t))
	r := s.pyRun(t, `
try:
    mcpFactory
    out = "present"
except NameError as e:
    out = str(e)
out`, nil)
	expectSuccess(t, r)
	sameJSON(t, "mcpFactory without upstreams", r.out["returnValue"], `"name 'mcpFactory' is not defined"`)
	r = s.pyRun(t, "mcpFactory = 1\nMcpError = 2\nmcpFactory + McpError", nil)
	expectSuccess(t, r)
	sameJSON(t, "the names are the code's", r.out["returnValue"], `3`)
}
