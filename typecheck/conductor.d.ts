// conductor's globals, as code run by run_deno_code sees them (sandbox/bootstrap.js,
// makeMcpFactory). The upstreams' typed bindings (`servers`) have their own declarations.

/** One upstream MCP server, as mcpFactory.load returns it. Calls reject with an McpError. */
interface McpServer {
  readonly name: string;
  listTools(): Promise<{ name: string; description: string; inputSchema: unknown; outputSchema?: unknown }[]>;
  /**
   * Calls a tool. Resolves with its structuredContent, else its text (parsed when it is JSON),
   * else its content list; rejects when the tool reports an error.
   */
  // deno-lint-ignore no-explicit-any
  callTool(tool: string, args?: Record<string, unknown>): Promise<any>;
  listResources(): Promise<{ uri: string; name: string; description?: string; mimeType?: string }[]>;
  // deno-lint-ignore no-explicit-any
  readResource(uri: string): Promise<any>;
  listPrompts(): Promise<{ name: string; description?: string; arguments?: { name: string; description?: string; required?: boolean }[] }[]>;
  // deno-lint-ignore no-explicit-any
  getPrompt(name: string, args?: Record<string, string>): Promise<any>;
}

/** The upstream MCP servers the admin configured. */
declare const mcpFactory: {
  /** The names of the configured servers. */
  listServers(): Promise<string[]>;
  load(server: string): McpServer;
};
