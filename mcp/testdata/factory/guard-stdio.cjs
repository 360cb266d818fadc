// A minimal MCP server over stdio (newline-delimited JSON-RPC, no SDK) for
// mcp/e2e_guard_test.go (issue 9, findings 5 and 6):
//   echo {message}  "echo: " + message (any other argument, such as a pad, is ignored)
//   pid {}          its process id
//   sleep {ms}      answers after ms milliseconds; first creates a file in
//                   $GUARD_SLEEP_MARKERS (when set), so a test can see it started
//   crash {}        prints its secret ($GUARD_SECRET) to stderr plain,
//                   base64, upper-cased and hex-encoded, creates a file in
//                   $GUARD_CRASH_MARKERS (when set), and exits 9 without answering
// It listens on nothing: stdin/stdout only.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const obj = { type: "object" };
const tools = [
  { name: "echo", inputSchema: obj },
  { name: "pid", inputSchema: obj },
  { name: "sleep", inputSchema: obj },
  { name: "crash", inputSchema: obj },
];

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

function text(id, s) {
  send({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: s }] } });
}

function marker(dir, prefix) {
  if (dir) fs.writeFileSync(path.join(dir, prefix + "-" + process.pid + "-" + Date.now() + "-" + Math.random()), "");
}

function call(id, name, args) {
  switch (name) {
    case "echo":
      return text(id, "echo: " + String(args.message));
    case "pid":
      return text(id, String(process.pid));
    case "sleep":
      marker(process.env.GUARD_SLEEP_MARKERS, "sleep");
      return setTimeout(() => text(id, "slept"), Number(args.ms) || 0);
    case "crash": {
      const s = process.env.GUARD_SECRET || "";
      process.stderr.write("GUARD-STDERR plain " + s + "\n");
      process.stderr.write("GUARD-STDERR base64 " + Buffer.from(s).toString("base64") + "\n");
      process.stderr.write("GUARD-STDERR upper " + s.toUpperCase() + "\n");
      process.stderr.write("GUARD-STDERR hex " + Buffer.from(s).toString("hex") + "\n");
      marker(process.env.GUARD_CRASH_MARKERS, "crash");
      // Exit once stderr is flushed; never answer.
      return process.stderr.write("", () => process.exit(9));
    }
  }
  send({ jsonrpc: "2.0", id, error: { code: -32602, message: "unknown tool " + name } });
}

readline.createInterface({ input: process.stdin, crlfDelay: Infinity }).on("line", (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  if (msg.id === undefined) return; // notifications
  switch (msg.method) {
    case "initialize":
      return send({
        jsonrpc: "2.0",
        id: msg.id,
        result: {
          protocolVersion: msg.params?.protocolVersion ?? "2025-11-25",
          capabilities: { tools: {} },
          serverInfo: { name: "guard-stdio", version: "1" },
        },
      });
    case "ping":
      return send({ jsonrpc: "2.0", id: msg.id, result: {} });
    case "tools/list":
      return send({ jsonrpc: "2.0", id: msg.id, result: { tools } });
    case "tools/call":
      return call(msg.id, msg.params?.name, msg.params?.arguments ?? {});
  }
  send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "method not found: " + msg.method } });
});
process.stdin.on("end", () => process.exit(0));
