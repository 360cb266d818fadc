// Package mcp is conductor's MCP server: the run_deno_code tool, served over
// stdio or streamable HTTP with github.com/modelcontextprotocol/go-sdk.
//
// execute_code (code.go) is the Isolator-compatible tool: {language,
// entrypoint_code, entrypoint_filename?, additional_files?, snippet_name?,
// timeout?}, the languages in its schema and description being those this
// server offers (package runtimes). Its result is run_deno_code's structured
// result, isError on any failure including a non-zero exit, and a text in
// Isolator's layout (a status line, then "--- stdout ---" and "--- stderr ---"
// sections). Snippets (MCP_CONDUCTOR_SNIPPETS) are MCP prompts — a prompt is
// what a client shows a user to pick, and its text holds the code and how to
// run it — re-read before prompts/list, prompts/get and every snippet run
// when the directory or a file in it changed.
//
// Code mode: with upstreams, code also has the global servers
// (servers.<server>.<tool>(args), typed by the declarations package typegen
// generates from each upstream's tool list, cached per list hash and
// regenerated on tools/list_changed). search_tools ranks every upstream's
// tools for a query offline (package toolsearch) and returns one-line
// signatures; get_tool_details returns the named tools' schemas and their
// declarations, so a model loads a few tools' types instead of every
// schema.
// Playbooks (MCP_CONDUCTOR_PLAYBOOKS, package playbook) are the tools
// list_playbooks, get_playbook and, when the admin made the directory
// writable, save_playbook, and the resources playbook://NAME, re-synced
// before resources/list and resources/read and after each playbook tool call
// (the go-sdk sends resources/list_changed). Calls routes the host calls of
// sandboxed code: the playbooks global's to playbook.Calls, mcpFactory's to
// the Factory.
//
// A run's outputs (sandbox.Result.Outputs, collected by package outputs) become content of the
// execution tools' results in one place (toolResult, outputs.go): small images as image content,
// small text files as embedded resources, the rest as resource links into the artifacts store
// (conductor://outputs/<id>/<name>; workspace files a run named, conductor://workspace/<path>,
// read from the identity's workspace only when asked). resources/read serves both forms as
// resource templates, and only to the identity whose run made them; they are never listed.
//
// Factory answers the mcpFactory calls of sandboxed code by forwarding them
// to the upstream MCP servers (package upstream). What one execution may ask
// of the host is bounded in package sandbox (sandbox.CallLimits: calls,
// calls in flight, reply bytes, and request bytes — one call, one
// execution's in flight, all executions' in flight through one shared
// sandbox.Budget). When an upstream dies while a call of an execution was
// in flight and may have reached it (upstream.ErrCrashed), the factory ends
// that execution (sandbox.ErrEndExecution): its call may be what killed a
// server every execution shares, and it must not get to repeat it. Every
// execution whose call the dead server had read is ended, since conductor
// cannot tell which one was the cause; calls it had not read are sent again
// on the restarted server and succeed. Upstream stderr never reaches code
// or a tool result (see package upstream).
//
// A tool call of code to a tool that requires approval (requireApproval)
// waits for the user's decision, asked through MCP elicitation on the
// session whose tools/call started the run (approval.go: a request while
// the call is in flight before protocol 2026-07-28, input requests and a
// retry from it); declined, dismissed or unaskable, it rejects in the code.
// Every call's server, tool, time, outcome and approval are in the result
// (mcpCallDetails) and every decision in the log.
//
// Over HTTP (Server.NewHTTPServer) the transport defends itself against
// clients that hold resources without finishing requests:
//
//   - Timeouts that never cut a legitimate long call: headers within
//     ReadHeaderTimeout, a request body within BodyTimeout (a per-request read
//     deadline cleared once the body is read; none for requests without a
//     body, whose background read must not time out), idle keep-alive
//     connections closed after IdleTimeout. A tools/call streaming SSE for
//     minutes and a GET /mcp stream are not affected.
//   - Connection caps, total and per source address (connLimiter). Over a cap
//     the oldest connection that has not yet carried an authenticated request
//     is evicted, so unauthenticated connections cannot lock out the token
//     holder; a connection becomes exempt with its first authenticated
//     request.
//   - Requests without the bearer token get 401 with Connection: close; their
//     body is not read.
//   - A cap on live MCP sessions per token: an initialize beyond it gets a
//     JSON-RPC error naming the limit; DELETE or idle expiry frees a slot.
package mcp
