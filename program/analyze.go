package program

import (
	"context"
	"errors"
	"fmt"
	"time"

	sitter "github.com/smacker/go-tree-sitter"
)

// analysis is what Prepare learns from the syntax tree.
type analysis struct {
	parseFailed bool
	imports     []Import
	returns     []span // top-level return statements
	top         []topStmt
}

// span is a byte range of the user's code.
type span struct{ start, end int }

// topStmt is one top-level statement (comments and the hashbang excluded).
type topStmt struct {
	span
	kind stmtKind
	expr span // the expression of an expression statement
}

type stmtKind int

const (
	stmtRuntime       stmtKind = iota // runs: a declaration, a loop, …
	stmtExpression                    // an expression statement
	stmtEmpty                         // ";"
	stmtTypeOnly                      // interface, type alias, declare …: erased
	stmtImport                        // import … from / import "…" / import x = require(…)
	stmtExportHoist                   // an export that runs nothing here: re-export, type-only, export {}
	stmtExportDefault                 // gives the module a default export
	stmtExportRuntime                 // any other export (export const …, export { local })
	stmtImportAlias                   // TypeScript `import A = N.B` (runs: it is a const)
)

// parseBudget bounds the parse: tree-sitter parses TypeScript at about
// 5 MB/s, and recovers from errors at about 1 MB/s; this allows several
// times that.
func parseBudget(size int) time.Duration {
	return 2*time.Second + time.Duration(size)*(4*time.Second)/(1<<20)
}

// analyze parses code with the TypeScript grammar and collects imports,
// top-level statements and top-level returns. When the tree has errors only
// the imports are collected.
func analyze(ctx context.Context, code string) (*analysis, error) {
	g, err := grammar()
	if err != nil {
		return nil, err
	}
	parser := sitter.NewParser()
	defer parser.Close()
	parser.SetLanguage(g.lang)
	parser.SetOperationLimit(int(parseBudget(len(code)).Microseconds()))
	src := []byte(code)
	tree, err := parser.ParseCtx(ctx, nil, src)
	if errors.Is(err, sitter.ErrOperationLimit) {
		return nil, &Error{Line: 1, Column: 1, Err: ErrTooComplex, Detail: fmt.Sprintf("the parser gave up after %v", parseBudget(len(code)))}
	}
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	defer tree.Close()
	root := tree.RootNode()

	qc := sitter.NewQueryCursor() // reused by every query below
	defer qc.Close()
	a := &analysis{parseFailed: root.HasError()}
	dynamic := a.scanImports(g, qc, root, src)
	if a.parseFailed {
		return a, nil // no type-only marks: the type query needs an error-free tree
	}
	if dynamic > 0 {
		a.markTypeOnly(g, qc, root)
	}
	for _, n := range a.scanTop(root, src) {
		a.scanReturns(g, qc, n)
	}
	return a, nil
}

// scanImports collects every import and returns how many are dynamic.
//
// Tree-sitter's query cursor takes time quadratic in the length of a flat
// run of children, which only error recovery produces (an ERROR node holding
// thousands of tokens took 90 s for 200 KB). So the query runs only on
// subtrees without errors; the nodes on the way to an error are visited one
// by one, which is linear.
func (a *analysis) scanImports(g *compiled, qc *sitter.QueryCursor, root *sitter.Node, src []byte) int {
	dynamic := 0
	visit := func(c capture) {
		switch c.name {
		case "import":
			a.staticImport(c.node, src)
		case "export":
			if s := c.node.ChildByFieldName("source"); s != nil {
				a.addLiteral(s, src, Import{TypeOnly: hasToken(c.node, "type")})
			}
		case "dynamic":
			a.dynamicImport(c.node, src)
			dynamic++
		}
	}
	cur := sitter.NewTreeCursor(root)
	defer cur.Close()
	stack := []*sitter.Node{root}
	var children []*sitter.Node
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !n.HasError() {
			if n.ChildCount() > 0 { // a token cannot be an import
				captures(qc, g.imports, n, visit)
			}
			continue
		}
		// n is broken somewhere below: match n itself, then its children
		// (pushed in reverse, so they come off the stack in source order).
		if name := importNodeName(n); name != "" {
			visit(capture{name: name, node: n, start: int(n.StartByte()), end: int(n.EndByte())})
		}
		children = children[:0]
		cur.Reset(n)
		for ok := cur.GoToFirstChild(); ok; ok = cur.GoToNextSibling() {
			children = append(children, cur.CurrentNode())
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return dynamic
}

// importNodeName is importQuery for one node: its capture name, or "".
func importNodeName(n *sitter.Node) string {
	switch n.Type() {
	case "import_statement":
		return "import"
	case "export_statement":
		return "export"
	case "call_expression":
		if f := n.ChildByFieldName("function"); f != nil && f.Type() == "import" {
			return "dynamic"
		}
	}
	return ""
}

// markTypeOnly marks the dynamic imports that sit in a type context.
func (a *analysis) markTypeOnly(g *compiled, qc *sitter.QueryCursor, root *sitter.Node) {
	typeOnly := map[int]bool{} // start offset of an import(…) call in a type
	var types []int            // end offsets of the enclosing type contexts
	captures(qc, g.types, root, func(c capture) {
		types = popEnded(types, c.start)
		switch c.name {
		case "type":
			types = append(types, c.end)
		case "dynamic":
			if len(types) > 0 {
				typeOnly[c.start] = true
			}
		}
	})
	for i := range a.imports {
		if a.imports[i].Dynamic && typeOnly[a.imports[i].call] {
			a.imports[i].TypeOnly = true
		}
	}
}

// scanReturns collects the returns in stmt that are not inside a function
// or class.
func (a *analysis) scanReturns(g *compiled, qc *sitter.QueryCursor, stmt *sitter.Node) {
	var scopes []int // end offsets of the enclosing functions and classes
	captures(qc, g.returns, stmt, func(c capture) {
		scopes = popEnded(scopes, c.start)
		switch c.name {
		case "scope":
			scopes = append(scopes, c.end)
		case "return":
			if len(scopes) == 0 {
				a.returns = append(a.returns, span{c.start, c.end})
			}
		}
	})
}

// popEnded drops the enclosing ranges that end at or before off.
func popEnded(stack []int, off int) []int {
	for len(stack) > 0 && stack[len(stack)-1] <= off {
		stack = stack[:len(stack)-1]
	}
	return stack
}

func (a *analysis) staticImport(n *sitter.Node, src []byte) {
	if s := n.ChildByFieldName("source"); s != nil {
		a.addLiteral(s, src, Import{TypeOnly: hasToken(n, "type")})
		return
	}
	for c := range namedChildren(n) {
		if c.Type() == "import_require_clause" {
			if s := c.ChildByFieldName("source"); s != nil {
				a.addLiteral(s, src, Import{Require: true})
			}
		}
	}
}

func (a *analysis) dynamicImport(n *sitter.Node, src []byte) {
	imp := Import{Dynamic: true, call: int(n.StartByte())}
	var arg *sitter.Node
	if args := n.ChildByFieldName("arguments"); args != nil {
		for c := range namedChildren(args) {
			if !c.IsExtra() {
				arg = c
				break
			}
		}
	}
	if arg == nil { // import() without an argument: deno rejects it
		imp.NonLiteral = true
		imp.offset = int(n.StartByte())
		a.imports = append(a.imports, imp)
		return
	}
	if arg.Type() == "string" || (arg.Type() == "template_string" && !hasNamedChild(arg, "template_substitution")) {
		a.addLiteral(arg, src, imp)
		return
	}
	imp.NonLiteral = true
	imp.offset = int(arg.StartByte())
	a.imports = append(a.imports, imp)
}

// addLiteral records an import whose specifier is the literal n.
func (a *analysis) addLiteral(n *sitter.Node, src []byte, imp Import) {
	imp.offset = int(n.StartByte())
	v, ok := decodeLiteral(n.Content(src))
	if !ok {
		imp.NonLiteral = true
	}
	imp.Specifier = v
	a.imports = append(a.imports, imp)
}
