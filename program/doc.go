// Package program turns the user's code into the module the sandbox
// evaluates: it captures the return value, lists the imports, and maps
// positions in the module back to the user's code.
//
// The code is parsed with tree-sitter's TypeScript grammar, never scanned as
// text, so strings, comments, template literals and regular expressions that
// look like imports or returns are not mistaken for them.
//
// # The result
//
// The sandbox evaluates Module with
// `const m = await import("data:application/typescript," + encodeURIComponent(Module))`;
// m.default is the result. Prepare picks one of:
//
//   - ResultExportDefault: the code has a default export of its own
//     (export default …, export { x as default }, export { default } from …).
//     Module is the code unchanged.
//   - ResultReturn: the code has a return statement outside every function
//     and class. All statements that run are wrapped in an async arrow
//     function, `export default await (async () => {` … `\n})();`, so a
//     top-level return is an ordinary return: it ends the program early,
//     runs enclosing finally blocks, works from loops, switch, try and
//     labeled blocks, and `return;` yields undefined. If no return runs, the
//     value of the last top-level expression statement is returned (it is
//     wrapped in `return (` … `)`). An arrow keeps the module's `this`
//     (undefined) and has no `arguments`; var and function declarations are
//     hoisted within the function as they were within the module; await
//     works inside. Statements that must stay at module level — imports,
//     re-exports (export … from), `export {}` and type-only exports — stay
//     in place if they come before the first wrapped statement, and are
//     otherwise blanked in place (spaces, same line breaks) and re-emitted
//     after the wrapper, which changes nothing as the language hoists them.
//     Code with a top-level return and a run-time export (export const …,
//     export default …, export { local }) or a TypeScript import alias
//     (import A = N.B) is refused with an *Error: those cannot move into a
//     function. Type declarations (interface, type, enum, namespace,
//     declare …) stay inside the function; deno accepts all of them there.
//   - ResultLastExpression: the last top-level statement that runs is an
//     expression statement: it becomes `export default await (EXPR)`, the
//     rest untouched. Trailing comments, empty statements, imports,
//     re-exports and type-only declarations after it do not count. A block
//     `{ a: 1 }` is a block with a label, not an object; `({ a: 1 })` is.
//   - ResultNone: anything else — the last statement is a declaration
//     (`const x = 1` yields undefined), if, a loop, try, a block, or the code
//     is empty, only comments, or did not parse. Module is the code
//     unchanged; m.default is undefined.
//
// Code the grammar cannot parse (ERROR or MISSING nodes) is returned
// unchanged with ParseFailed set, so deno reports the syntax error at its
// own exact position; Imports then lists what error recovery kept, which can
// miss an import swallowed by the error. A leading hashbang line and a byte
// order mark are left in place; deno accepts both.
//
// # Imports
//
// Imports lists static imports and `import x = require(…)` anywhere
// (including inside `declare module "…" { }`, whose imports deno loads),
// `export … from`, and every import(…) call, in source order. Type-only
// forms are marked: deno does not load them at run time. Specifiers are
// decoded string values (escapes applied); import(…) with anything but a
// string or a template literal without substitutions is NonLiteral.
//
// # Positions
//
// Every rewrite is a list of pieces: runs copied verbatim from the code, and
// text Prepare wrote, each anchored to a user offset. Prepare adds no line
// break inside the user's code (only after its end), and blanking keeps
// line breaks and UTF-16 widths, so lines keep their numbers. MapPosition
// converts a module position to a byte offset, maps it through the pieces
// and converts back. Positions are deno's: 1-based lines ending at "\n",
// "\r\n" or "\r" (not U+2028/U+2029), 1-based columns in UTF-16 code units;
// a byte order mark at the start takes no column. Runtime errors, stack
// frames and V8's early errors (e.g. a redeclared let) use UTF-16 columns;
// deno's own parse errors count code points, which differs only after an
// astral character (an emoji) on the same line. Such errors usually come
// from code the grammar rejects too, which is not rewritten; and on a
// rewritten line the mapping is a shift by the inserted text's width, so a
// column counted in code points comes out right in code points.
//
// # Cost
//
// Prepare takes about 2 ms for 200 lines and 0.3 s per MB (tree-sitter's
// parse is most of it), and holds about 50 bytes of memory per byte of code
// while it runs, mostly the syntax tree outside the Go heap. MaxCodeBytes
// bounds the input and the parse is bounded in time (ErrTooComplex).
// Tree-sitter queries, which are quadratic on the long flat lists of tokens
// that error recovery builds, only ever run on subtrees without errors.
package program
