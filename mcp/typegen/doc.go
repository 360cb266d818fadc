// Package typegen turns upstream MCP tool lists into TypeScript declarations,
// so code run by run_deno_code can call upstream tools as typed functions.
//
// # Shape
//
// For every enabled upstream server S the declarations hold
//
//	declare namespace McpServers.S {      // S sanitized to an identifier (Namespace)
//	  type tool_nameArgs = { … };        // from the tool's inputSchema
//	  type tool_nameResult = …;          // from its outputSchema, else unknown
//	  interface Tools { "tool-name"(args: tool_nameArgs): Promise<tool_nameResult>; }
//	}
//	interface ConductorServers { readonly "S": McpServers.S.Tools }
//	declare var servers: ConductorServers;
//
// and in the sandbox the global `servers` is a frozen Proxy where
// servers.S.tool(args) is mcpFactory.load("S").callTool("tool", args)
// (sandbox/bootstrap.js). Names that are not identifiers stay reachable as
// quoted properties: servers["my-server"]["get-sum"]({ a: 1, b: 2 }). The
// interface merges and `declare var` may be repeated, so the texts of several
// ForTools calls can be concatenated into one valid .d.ts. The server
// namespaces live inside McpServers (Outer) so that a server named Deno,
// Promise or globalThis merges with no global.
//
// A tool without an outputSchema resolves to what mcpFactory's callTool
// gives (mcp/factory.go toolValue): the structured content, else the JSON
// text parsed, else the text, else the content blocks; that is declared
// unknown, and the code narrows it.
//
// # Schemas
//
// TS (the schema → type mapping) takes hostile input: any JSON, and must
// always produce a valid TypeScript type expression (FuzzTS checks the
// output's lexical shape; TestDenoCheck runs deno check over a table of
// awkward cases, TestDenoCheckRandom over 300 random schemas and names).
// Mapping: type string/number/integer/boolean/null, arrays of types →
// unions, enum and const → literal unions, objects → object types
// (required fields without '?'; additionalProperties true or a schema → an
// index signature; absent or false → none, so a misspelled field is a type
// error), items → arrays, oneOf/anyOf → unions, allOf → intersections,
// $ref to "#", "#/$defs/…" or "#/definitions/…" inside the same schema →
// the referenced type inlined (a cycle or more than maxDepth levels →
// unknown), and everything else → unknown. Descriptions become JSDoc with
// "*/" broken up.
//
// # Cache
//
// Cache keeps one entry per upstream, keyed by a hash of its tool list
// (names, descriptions, schemas). It lists an upstream's tools again only
// when the upstream's tools version (upstream.Manager.ToolsVersion) moved:
// on a notifications/tools/list_changed and on every new session. When the
// hash is unchanged the generated text is reused.
package typegen
