package typegen

import (
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// reserved are the words TypeScript does not accept as a namespace or type
// name.
var reserved = map[string]bool{
	"break": true, "case": true, "catch": true, "class": true, "const": true, "continue": true,
	"debugger": true, "default": true, "delete": true, "do": true, "else": true, "enum": true,
	"export": true, "extends": true, "false": true, "finally": true, "for": true, "function": true,
	"if": true, "import": true, "in": true, "instanceof": true, "new": true, "null": true,
	"return": true, "super": true, "switch": true, "this": true, "throw": true, "true": true,
	"try": true, "typeof": true, "var": true, "void": true, "while": true, "with": true,
	"implements": true, "interface": true, "let": true, "package": true, "private": true,
	"protected": true, "public": true, "static": true, "yield": true, "await": true,
	"any": true, "boolean": true, "number": true, "string": true, "symbol": true, "never": true,
	"unknown": true, "object": true, "undefined": true, "bigint": true,
	"declare": true, "namespace": true, "module": true, "type": true, "global": true,
	// The declarations' own global names.
	"servers": true, "ConductorServers": true, "mcpFactory": true, Outer: true,
}

// Outer is the namespace the servers' namespaces are declared in, so that a
// server's name never merges with a global's (Deno, Promise, globalThis).
const Outer = "McpServers"

// Ident turns name into an identifier: characters outside [A-Za-z0-9_$]
// become _, a leading digit or a reserved word gets a leading _.
func Ident(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '_' || r == '$' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || (s[0] >= '0' && s[0] <= '9') || reserved[s] {
		s = "_" + s
	}
	return s
}

// Namespace is the namespace inside Outer that holds server's types
// (McpServers.<Namespace>.<tool>Args).
func Namespace(server string) string { return Ident(server) }

// ResultDoc is what a tool without an outputSchema resolves to.
const ResultDoc = "Resolves to the tool's structured content, else its JSON text parsed, else its text; an upstream error rejects with McpError."

// Server returns the declarations for tools of server (all of them when
// only is nil; else those named, in the list's order).
func Server(server string, tools []*mcp.Tool, only []string) (string, error) {
	return serverDecl(server, Namespace(server), tools, only)
}

// namespaces gives each server a distinct namespace (servers "a-b" and "a_b"
// would both be a_b): in sorted order, a later one gets a suffix.
func namespaces(servers []string) map[string]string {
	out := map[string]string{}
	used := map[string]bool{}
	for _, s := range servers {
		ns := Namespace(s)
		for i := 2; used[ns]; i++ {
			ns = fmt.Sprintf("%s_%d", Namespace(s), i)
		}
		used[ns] = true
		out[s] = ns
	}
	return out
}

func serverDecl(server, ns string, tools []*mcp.Tool, only []string) (string, error) {
	sel := tools
	if only != nil {
		byName := map[string]*mcp.Tool{}
		for _, t := range tools {
			byName[t.Name] = t
		}
		sel = nil
		var missing []string
		for _, n := range only {
			t, ok := byName[n]
			if !ok {
				missing = append(missing, Quote(n))
				continue
			}
			sel = append(sel, t)
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("%w: server %q has no tool %s that code may call", ErrUnknownTool, server, strings.Join(missing, ", "))
		}
	}
	var b strings.Builder
	b.WriteString(JSDoc("", fmt.Sprintf("Tools of the MCP server %s: servers%s.<tool>(args).", Quote(server), Access(server))))
	fmt.Fprintf(&b, "declare namespace %s.%s {\n", Outer, ns)
	typeNames := map[string]bool{}
	var iface strings.Builder
	for _, t := range sel {
		base := Ident(t.Name)
		for typeNames[base] {
			base += "_"
		}
		typeNames[base] = true
		args, result := base+"Args", base+"Result"
		b.WriteString(JSDoc("  ", "Arguments of "+Quote(t.Name)+"."))
		fmt.Fprintf(&b, "  type %s = %s;\n", args, tsAt(t.InputSchema, "  "))
		if t.OutputSchema != nil {
			b.WriteString(JSDoc("  ", "Result of "+Quote(t.Name)+" (its structured content)."))
			fmt.Fprintf(&b, "  type %s = %s;\n", result, tsAt(t.OutputSchema, "  "))
		} else {
			b.WriteString(JSDoc("  ", "Result of "+Quote(t.Name)+": unknown. "+ResultDoc))
			fmt.Fprintf(&b, "  type %s = unknown;\n", result)
		}
		doc := t.Description
		if t.Title != "" && doc == "" {
			doc = t.Title
		}
		if doc != "" {
			iface.WriteString(JSDoc("    ", doc))
		}
		opt := ""
		if !requiresArgs(t.InputSchema) {
			opt = "?"
		}
		fmt.Fprintf(&iface, "    %s(args%s: %s): Promise<%s>;\n", PropName(t.Name), opt, args, result)
	}
	fmt.Fprintf(&b, "  interface Tools {\n%s  }\n}\n", iface.String())
	fmt.Fprintf(&b, "interface ConductorServers {\n  readonly %s: %s.%s.Tools;\n}\n", PropName(server), Outer, ns)
	b.WriteString("declare var servers: ConductorServers;\n")
	return b.String(), nil
}

// requiresArgs reports whether a tool's input schema has required fields
// (the call's argument may be left out otherwise; mcpFactory sends {}).
func requiresArgs(schema any) bool {
	s, ok := normalize(schema).(map[string]any)
	if !ok {
		return false
	}
	r, _ := s["required"].([]any)
	return len(r) > 0
}
