package program

import (
	"fmt"
	"sync"

	sitter "github.com/smacker/go-tree-sitter"
	"github.com/smacker/go-tree-sitter/typescript/typescript"
)

// The queries find what the analysis needs below the top-level statements.
// Captures arrive in document order, so a node captured as @scope or @type
// encloses every later capture that starts before it ends.

// importQuery runs over the whole tree: every static import, export …
// from, and dynamic import(…).
const importQuery = `
(import_statement) @import
(export_statement) @export
(call_expression function: (import)) @dynamic
`

// returnQuery runs inside each top-level statement that can hold a
// top-level return (if, loops, try, switch, blocks, labels). A @scope is a
// function-like or class body: a return inside it is not top-level.
const returnQuery = `
[
  (function_expression)
  (function_declaration)
  (generator_function)
  (generator_function_declaration)
  (arrow_function)
  (method_definition)
  (class_body)
  (internal_module)
  (module)
] @scope
(return_statement) @return
`

// typeQuery runs over the whole tree, only when the code has a dynamic
// import: an import(…) inside a @type context is type-only (deno does not
// load it at run time).
const typeQuery = `
[
  (type_annotation)
  (opting_type_annotation)
  (omitting_type_annotation)
  (adding_type_annotation)
  (asserts_annotation)
  (type_predicate_annotation)
  (type_query)
  (type_alias_declaration)
  (interface_declaration)
  (type_arguments)
  (type_parameters)
  (implements_clause)
  (extends_type_clause)
] @type
(call_expression function: (import)) @dynamic
`

// compiled holds the grammar and its queries. Compiling takes milliseconds,
// so it is done once; a compiled query is immutable and safe to share
// between goroutines (each run uses its own cursor).
type compiled struct {
	lang                    *sitter.Language
	imports, returns, types *sitter.Query
}

var grammar = sync.OnceValues(func() (*compiled, error) {
	c := &compiled{lang: typescript.GetLanguage()}
	for _, q := range []struct {
		dst *(*sitter.Query)
		src string
	}{{&c.imports, importQuery}, {&c.returns, returnQuery}, {&c.types, typeQuery}} {
		compiledQuery, err := sitter.NewQuery([]byte(q.src), c.lang)
		if err != nil {
			return nil, fmt.Errorf("compile query: %w", err)
		}
		*q.dst = compiledQuery
	}
	return c, nil
})

// capture is one captured node.
type capture struct {
	name       string
	node       *sitter.Node
	start, end int
}

// captures runs q on n with the cursor qc and calls fn for each capture in
// document order. n must have no syntax errors (see scanImports).
func captures(qc *sitter.QueryCursor, q *sitter.Query, n *sitter.Node, fn func(capture)) {
	qc.Exec(q, n)
	for {
		m, idx, ok := qc.NextCapture()
		if !ok {
			return
		}
		c := m.Captures[idx]
		fn(capture{
			name:  q.CaptureNameForId(c.Index),
			node:  c.Node,
			start: int(c.Node.StartByte()),
			end:   int(c.Node.EndByte()),
		})
	}
}
