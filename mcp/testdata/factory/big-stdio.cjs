// A minimal MCP server over stdio (newline-delimited JSON-RPC, no SDK) for
// mcp/e2e_factory_test.go: an upstream that can answer with a huge line.
//   big {bytes}     a text of that many "x"
//   echo {message}  "echo: " + message
//   hold {file}     answers once the file exists (the test creates it); logs
//                   "HOLDING <file>" on stderr first, which conductor logs
// It listens on nothing: stdin/stdout only.
"use strict";
const fs = require("node:fs");
const readline = require("node:readline");

const tools = [
  { name: "big", inputSchema: { type: "object", properties: { bytes: { type: "number" } }, required: ["bytes"] } },
  { name: "echo", inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] } },
  { name: "hold", inputSchema: { type: "object", properties: { file: { type: "string" } }, required: ["file"] } },
];

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

function text(id, s) {
  send({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: s }] } });
}

function call(id, name, args) {
  switch (name) {
    case "big":
      return text(id, "x".repeat(Math.max(0, Math.min(Number(args.bytes) || 0, 256 << 20))));
    case "echo":
      return text(id, "echo: " + String(args.message));
    case "hold": {
      process.stderr.write("HOLDING " + args.file + "\n");
      const timer = setInterval(() => {
        if (fs.existsSync(args.file)) {
          clearInterval(timer);
          text(id, "held " + args.file);
        }
      }, 20);
      return;
    }
  }
  send({ jsonrpc: "2.0", id, error: { code: -32602, message: "unknown tool " + name } });
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
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
          serverInfo: { name: "big-stdio", version: "1" },
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
