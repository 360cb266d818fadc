// Package upstream manages the upstream MCP servers an admin configures for
// conductor: sandboxed code calls mcpFactory.load(name).callTool(tool, args)
// and the host forwards the call here.
//
// # Config
//
// The file named by MCP_CONDUCTOR_MCP_CONFIG (default
// ~/.mcp-conductor/mcp-config.json) uses the "mcpServers" format of MCP
// clients:
//
//	{ "mcpServers": {
//	    "memory": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"],
//	                "env": {"TOKEN": "${MY_TOKEN}"}, "cwd": "/tmp" },
//	    "remote": { "url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer ${API_KEY}"} },
//	    "legacy": { "url": "http://127.0.0.1:3002/sse", "type": "sse" },
//	    "github": { "command": "…", "allowedTools": ["search_issues", "get_issue"], "disabled": false },
//	    "docs": { "command": "…", "allowedTools": ["search"],
//	              "allowedResources": ["docs://guides/*"], "allowedPrompts": ["summarize-*"] }
//	} }
//
// Server fields: type, command, args, env, cwd (stdio); url, headers (HTTP);
// allowedTools, allowedResources, allowedPrompts, requireApproval, disabled (both). "type" may be left out (stdio with
// "command", streamable HTTP with "url") or be "stdio", "http" or
// "streamable-http", or "sse" (the legacy HTTP+SSE transport). The file is
// checked strictly and a problem stops conductor with an error naming the
// file, the server and the field: unknown fields (top level too: a typo such
// as "mcpservers" must not silently mean "no upstreams"), wrong JSON types,
// duplicate keys, both or neither of command and url, fields of the other
// transport (env on an HTTP server), a bad URL (http or https with a host),
// a relative cwd, invalid or transport-owned header names (Mcp-Session-Id,
// Content-Type, …), and server names outside [A-Za-z0-9_-]{1,64}. A missing
// file at the default path means no upstreams; at a path set in
// MCP_CONDUCTOR_MCP_CONFIG it is an error.
//
// ${NAME} expands from conductor's own environment in command, args, env
// values, cwd, url and header values (not in names, type or allowedTools).
// ${NAME:-default} uses default when NAME is unset or empty; "$${" is a
// literal "${"; any other '$' is literal. An unset NAME without a default
// is an error (fail closed: a server must not start with an empty token).
// A disabled server is checked for shape only: its ${NAME}s are not
// expanded, so a secret it would need may be absent. Substituted values of
// four bytes or more are treated as secrets and replaced by "[redacted]" in
// errors, Status and the upstream's logged stderr (a second line of
// defence: stderr itself never reaches an error).
//
// allowedTools, when present, is the complete list of tools that may be
// listed and called (an empty list allows none); a call outside it fails
// with ErrToolNotAllowed without contacting the server.
//
// requireApproval is true (every tool), false (none, as when absent) or a
// list of tool names (non-empty, no control characters, no duplicates):
// a call of such a tool from sandboxed code waits for the user's approval
// (package mcp asks; Manager.RequiresApproval says which calls). Names
// the server does not list are logged once, like allowedTools'.
//
// allowedResources and allowedPrompts are lists of patterns over resource
// URIs and prompt names: '*' matches any run of characters (including '/'
// and none), every other character matches itself, and a pattern matches
// the whole URI or name ("demo://docs/*", "summarize-*", "*" for all).
// Entries must be non-empty, at most 1024 bytes, without control characters
// (checked at load, like every field). Which resources pass:
//
//	allowedTools  allowedResources  resources that pass
//	absent        absent            all
//	set           absent            none (an upstream narrowed to some tools exposes nothing else by default)
//	any           [patterns]        those matching a pattern ([] allows none)
//
// and the same for allowedPrompts. listResources and listPrompts return
// only what passes (nothing, without contacting the server, when nothing
// can pass); readResource and getPrompt outside the list fail with
// ErrResourceNotAllowed / ErrPromptNotAllowed without contacting the
// server. A URI a resource template produces passes when it matches a
// pattern.
//
// # Sessions
//
// Each enabled upstream has at most one long-lived *mcp.ClientSession,
// opened on first use (or by ConnectAll) and shared by every caller, so a
// stateful server keeps its state across calls and executions. Concurrent
// callers share one connection attempt. The client offers protocol
// DefaultProtocolVersion (2025-11-25) and no client capabilities (no roots,
// sampling or elicitation). It handles notifications/tools/list_changed:
// Manager.ToolsVersion moves on one and on every new session, so caches of
// a tool list (typegen.Cache's declarations) list again only then.
//
// A call that fails because the session is gone marks the upstream failed
// and closes the session; the next call reconnects. The failed call itself
// is sent again (once, on a new session) only when it certainly never
// reached the server: the connection was already closed, writing to the
// process failed, the process died without reading it from its stdin pipe
// (measured with FIONREAD once the process group is dead), the HTTP server
// refused it with an HTTP error or no longer knows the session (a restart),
// or nothing listened. A call that may have reached the server (it crashed
// mid-call) is not repeated — a tool may have had effects — and fails with
// ErrUnavailable and ErrCrashed: it may be what brought the server down.
// mcpFactory ends the execution that made it (see package mcp); when
// several executions had requests the server had read, each gets
// ErrCrashed, since any of them may be the cause. Consecutive failures
// (failed connects and broken sessions, reset by any answered request)
// back off: the first reconnect is immediate, then 0.5 s doubling to 30 s; calls in the backoff window fail
// at once with ErrUnavailable saying when the next attempt is due. A
// timeout (CallTimeout) or the caller's cancellation leaves the session in
// place.
//
// Lists (tools, resources, prompts) follow the server's cursors to the end:
// an empty next cursor, or the cursor just sent handed back again. A server
// that keeps handing out fresh cursors is cut off after 100 pages; the list
// fails with an error saying so and the session stays (listAll; not the
// go-sdk's iterators, which have no page cap).
//
// Whether a failed request can have reached the server is read from the
// go-sdk's errors (classify). One of them, the HTTP transport's refusal,
// the SDK does not export and is matched by code and text; that match is
// tied to the go-sdk version in go.mod by a test that fails when it moves.
//
// States (Status.State): "disabled", "idle" (never connected),
// "connecting", "connected", "failed" (LastError says why; the next call
// retries subject to the backoff) and "closed" (after Close). LastError and
// LastErrorAt keep the most recent error even after a recovery. Counts are
// those of the last successful list (tools after allowedTools), 0 for a
// feature the server does not offer, -1 before any list; Status never
// connects. ConnectAll connects and lists everything.
//
// # Stdio upstreams
//
// The process gets a minimal environment: PATH, HOME, LANG, LC_ALL, TZ and
// TMPDIR from conductor's own (PATH defaults to the usual system dirs), with
// the server's env merged over it. Nothing else of conductor's environment
// is passed on — it may hold MCP_CONDUCTOR_HTTP_TOKEN or other servers'
// secrets. A bare command is looked up in that effective PATH; cwd is the
// working directory. stderr goes to the log at debug, one record per line
// with the server name, lines cut at 1 KiB and rate-limited (burst 200, then
// 20 lines/s). When the process exits, a record "upstream MCP server
// process exited" at warn (at debug when conductor stopped it and it ended
// quietly) gives its pid, exit status and last stderr lines. That log and
// Manager.LastStderr (which `conductor doctor --upstreams` shows the admin)
// are the only places stderr goes: errors and Status.LastError — so the
// code, the model and list_mcp_servers — get "MCP server X exited (exit
// status N) …; see the server log" and never its text: a server may print
// a secret in a form redaction cannot recognise (base64, upper-cased, hex).
//
// Each process leads its own process group. Close (and a broken session)
// closes its stdin, then after StopGrace sends SIGTERM to the group, after
// StopGrace again SIGKILL; when the leader exits the rest of the group is
// killed before the leader is reaped (the zombie keeps the group id from
// being reused), so npx → sh → node chains end too. Close returns once every
// process has been reaped. As the backstop when conductor dies without
// Close, the leader has Pdeathsig SIGKILL. Pdeathsig fires when the thread
// that forked the child ends (golang/go#27505), and Go ends a thread when a
// goroutine locked to it returns — which libcontainer code in conductor
// does — so every upstream is started from one goroutine locked to a thread
// that is never released and never returns. Limit: Pdeathsig reaches only
// the leader; a launcher's children (npx's node) then see EOF on stdin,
// which most servers treat as the end. Configure the server's own binary
// (node /path/to/dist/index.js) for a hard guarantee.
//
// # HTTP upstreams
//
// Streamable HTTP uses mcp.StreamableClientTransport, legacy SSE
// mcp.SSEClientTransport; the configured headers are added to every
// request, and redirects are followed only within the same origin (the
// headers may carry credentials).
//
// # Files
//
// manager.go is the API (NewManager, the calls, Status, Close) and the
// per-call wrapper (lookup, allowlists, logging); apply.go Manager.Apply, a
// reload's new config on the serving Manager (unchanged servers keep their
// sessions; replaced and removed ones close on Applied.Retire); session.go one upstream's
// session and retry state machine; errors.go the errors of calls and the
// classification of failures; httptransport.go the HTTP transport policy;
// stdio.go the stdio process; config.go the config file; allow.go the
// resource and prompt patterns; lineguard.go the message size bound.
//
// Every call is logged at debug: server, method, tool (or prompt, uri),
// duration and outcome (ok, tool_error, error, timeout, canceled,
// unavailable, crashed, not_allowed, unknown_server). Arguments are never logged.
package upstream
