// Package typecheck type-checks the code of run_deno_code before it runs, against deno's
// declarations, conductor's globals (conductor.d.ts: mcpFactory, and playbooks when the server
// has them) and the upstreams' declarations (Options.Declarations: `declare const servers`).
//
// # The checker
//
// A Checker is TypeScript's compiler (typescript.js, fetched and pinned by `make build` into
// <data dir>/typescript with TypeScript's lib files and `deno types`) running in deno in a
// conductor sandbox with the same walls as any run: a read-only root, no network, seccomp,
// cgroup limits; deno may read only config.TypeScriptDir, where that directory is mounted
// read-only (RunnerOptions). It is booted once, loads the compiler and parses and binds the lib
// files once (about 0.5 s), and then checks one program after another: the requests travel as
// the replies to its mcpFactory calls ("next"), each carrying the module text and the
// declarations, and each reply's diagnostics come back with its next call. Reusing it is safe
// because it never runs the code it checks: code is only text given to the compiler. It checks
// one program at a time (a Checker serialises Check calls); it is replaced after MaxChecks
// checks (its replacement boots at once, in the background), and when it dies or a check
// overruns Options.Timeout (the check fails with ErrChecker: never a silent pass); then the next
// check boots a new one.
//
// # What is checked
//
// The module as it runs: program.Prepare's rewrite (top-level return wrapped in an async
// function, the last expression as the default export), so top-level return and await are
// allowed as they are at run time, and every diagnostic's position is mapped back to the user's
// own line and column (1-based, UTF-16 columns: program's positions). Options are deno's
// defaults where they matter to code: strict, target and lib ESNext plus deno's own
// declarations (no DOM), module detection forced. Only errors in the user's code are reported,
// the first Options.MaxDiagnostics of them. Imports of npm:, jsr: and node: modules, and of
// packages by bare name (which the import map resolves), are of type any: their declarations
// are not at hand (whether a package may be imported at all is the
// allowlist's check, made before this one). A relative or remote import stays an error, as it
// would fail at run time.
//
// Declarations are global scripts (no top-level import or export): conductor.d.ts, the
// playbooks' declaration when Options.Playbooks, Options.Declarations' text, which must parse
// (a syntax error there is an ErrChecker naming it, not the user's type error), and the
// request's globals, each a `declare const` typed from its JSON value (RequestGlobals).
package typecheck
