package program

import (
	"iter"
	"strings"

	sitter "github.com/smacker/go-tree-sitter"
)

// scanTop classifies the top-level statements and returns those that can
// hold a top-level return.
func (a *analysis) scanTop(root *sitter.Node, src []byte) (mayReturn []*sitter.Node) {
	for n := range children(root) {
		if !n.IsNamed() || n.IsExtra() {
			continue
		}
		typ := n.Type()
		if typ == "hash_bang_line" {
			continue
		}
		a.top = append(a.top, classify(n, typ, src))
		if mayHoldReturn[typ] {
			mayReturn = append(mayReturn, n)
		}
	}
	return mayReturn
}

// mayHoldReturn lists the statements a top-level return can be in (or be).
var mayHoldReturn = map[string]bool{
	"return_statement": true, "if_statement": true, "for_statement": true,
	"for_in_statement": true, "while_statement": true, "do_statement": true,
	"try_statement": true, "switch_statement": true, "statement_block": true,
	"labeled_statement": true, "with_statement": true,
}

// classify sorts a top-level statement.
func classify(n *sitter.Node, typ string, src []byte) topStmt {
	st := topStmt{span: span{int(n.StartByte()), int(n.EndByte())}}
	switch typ {
	case "expression_statement":
		st.kind = stmtRuntime
		for c := range namedChildren(n) {
			if !c.IsExtra() {
				st.expr = span{int(c.StartByte()), int(c.EndByte())}
				// namespace N {} is an expression to this grammar.
				head := src[st.expr.start:min(st.expr.end, st.expr.start+64)]
				if c.Type() != "internal_module" && canStartExpressionStatement(string(head)) {
					st.kind = stmtExpression
				}
				break
			}
		}
	case "empty_statement":
		st.kind = stmtEmpty
	case "interface_declaration", "type_alias_declaration", "ambient_declaration", "function_signature":
		st.kind = stmtTypeOnly
	case "import_statement":
		st.kind = stmtImport
	case "import_alias":
		st.kind = stmtImportAlias
	case "export_statement":
		st.kind = classifyExport(n, src)
	default:
		st.kind = stmtRuntime
	}
	return st
}

// canStartExpressionStatement applies the language's lookahead restriction:
// an expression statement cannot start with "{", "function", "async
// function", "class" or "let [". The grammar parses a statement-level
// `{ a: 1 }` as an object; the engine parses a block with a label.
func canStartExpressionStatement(expr string) bool {
	word := func(s, w string) bool {
		return strings.HasPrefix(s, w) && (len(s) == len(w) || !isIdentByte(s[len(w)]))
	}
	switch {
	case strings.HasPrefix(expr, "{"), word(expr, "function"), word(expr, "class"):
		return false
	case word(expr, "let"):
		return !strings.HasPrefix(strings.TrimLeft(expr[3:], " \t\n\r\v\f"), "[")
	case word(expr, "async"):
		rest := strings.TrimLeft(expr[5:], " \t\v\f")
		return !word(rest, "function")
	}
	return true
}

// isIdentByte reports whether c can continue an identifier (any non-ASCII
// byte counts: it may start a Unicode letter).
func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// classifyExport sorts an export statement by what it does at run time.
// Anything not recognised as hoistable counts as a run-time export.
func classifyExport(n *sitter.Node, src []byte) stmtKind {
	decl := n.ChildByFieldName("declaration")
	if hasToken(n, "default") {
		if decl != nil && decl.Type() == "interface_declaration" {
			return stmtExportHoist // erased: no default export at run time
		}
		return stmtExportDefault
	}
	if decl != nil {
		switch decl.Type() {
		case "interface_declaration", "type_alias_declaration", "ambient_declaration", "function_signature":
			return stmtExportHoist
		}
		return stmtExportRuntime
	}
	if hasToken(n, "=") { // export = x
		return stmtExportRuntime
	}
	source := n.ChildByFieldName("source")
	typeOnly := hasToken(n, "type")
	var clause, namespace *sitter.Node
	for c := range namedChildren(n) {
		switch {
		case c.Type() == "export_clause":
			clause = c
		case c.Type() == "namespace_export":
			namespace = c
		case c.IsExtra() || c.Type() == "import_attribute" || (source != nil && c.Equal(source)):
		default: // export import A = B.C, decorators, …
			return stmtExportRuntime
		}
	}
	switch {
	case namespace != nil: // export * as name from "…"
		for c := range namedChildren(namespace) {
			if isDefaultName(c, src) {
				return stmtExportDefault
			}
		}
		return stmtExportHoist
	case clause != nil:
		allTypes := true
		for sp := range namedChildren(clause) {
			if sp.Type() != "export_specifier" {
				continue
			}
			exported := sp.ChildByFieldName("alias")
			if exported == nil {
				exported = sp.ChildByFieldName("name")
			}
			typeSpec := typeOnly || hasToken(sp, "type")
			if isDefaultName(exported, src) && !typeSpec {
				return stmtExportDefault
			}
			allTypes = allTypes && typeSpec
		}
		if source != nil || allTypes {
			return stmtExportHoist // a re-export, export type { … } or export {}
		}
		return stmtExportRuntime // export { local }
	case source != nil: // export * from "…"
		return stmtExportHoist
	}
	return stmtExportRuntime
}

// isDefaultName reports whether n is the name `default` (bare or quoted).
func isDefaultName(n *sitter.Node, src []byte) bool {
	if n == nil {
		return false
	}
	switch n.Type() {
	case "identifier":
		return n.Content(src) == "default"
	case "string":
		v, ok := decodeLiteral(n.Content(src))
		return ok && v == "default"
	}
	return false
}

// hasToken reports whether n has a direct anonymous child of type tok.
func hasToken(n *sitter.Node, tok string) bool {
	for c := range children(n) {
		if !c.IsNamed() && c.Type() == tok {
			return true
		}
	}
	return false
}

func hasNamedChild(n *sitter.Node, typ string) bool {
	for c := range namedChildren(n) {
		if c.Type() == typ {
			return true
		}
	}
	return false
}

// children yields n's children in order. Node.Child(i) walks from the first
// child each time, so indexing would be quadratic on a long list.
func children(n *sitter.Node) iter.Seq[*sitter.Node] {
	return func(yield func(*sitter.Node) bool) {
		cur := sitter.NewTreeCursor(n)
		defer cur.Close()
		for ok := cur.GoToFirstChild(); ok; ok = cur.GoToNextSibling() {
			if !yield(cur.CurrentNode()) {
				return
			}
		}
	}
}

// namedChildren yields n's named children in order.
func namedChildren(n *sitter.Node) iter.Seq[*sitter.Node] {
	return func(yield func(*sitter.Node) bool) {
		for c := range children(n) {
			if c.IsNamed() && !yield(c) {
				return
			}
		}
	}
}
