// Package mcp is conductor's MCP server: the run_deno_code tool, served over
// stdio or streamable HTTP with github.com/modelcontextprotocol/go-sdk.
package mcp
