// Package engine runs one request to execute code, end to end: it validates
// the request, checks every package the code names against the admin's
// allowlist, prepares the program (return value capture), waits for a free
// execution slot, runs it in a fresh sandbox, and maps error positions back to
// the user's own code. The MCP tool and `conductor exec` both use it, so they
// return the same result object. A request refused before it runs returns an
// error wrapping one of the sentinels (ErrDependency, ErrInvalidRequest,
// ErrBusy...); Refusal makes it the result both return, its error.type saying
// why. A result's durationMs is the request's own time; the wait for a slot is
// queuedMs.
//
// ExecuteCode runs execute_code's requests: a program's files in a language
// of package runtimes. The file names are checked on the host (CheckFiles,
// a pure function: relative, clean, no "..", no control characters, bounded
// depth, count and bytes). The sandbox boots the usual bootstrap as a
// launcher (LauncherOptions: allow-run of the runtime's program only, read
// and write of the per-run working directory config.WorkDir and, on a server
// with upstreams, read of its own environment; never the model's choice);
// the launcher module (launcher.ts) receives the files and
// argv as a global, writes the files, spawns the runtime's command there
// with its output going to the sandbox's captured streams, and exits with
// its exit code. So limits, timeout, output caps, seccomp, the network door,
// the pool and the result are run_deno_code's. A program that exits
// non-zero is an error naming its exit code (or the signal that ended it);
// a cgroup OOM kill of the program is status "oom" (the launcher then sends
// no result frame). JavaScript and TypeScript run in a child deno with the
// admin's permissions (the same deno wall as run_deno_code); Python and Go
// have the OS walls only. A runtime row may run the working directory as a
// whole (runtimes.Runtime.Dir: Go's `go run .`, no file name appended) and
// bring default files the request lacks (Runtime.Defaults: Go's go.mod),
// added after the request's files were checked. go run exits 1 when the
// program fails (its "exit status N" is on stderr). A runtime with a
// pre-started interpreter (Runtime.Warm: Python) has it started while the
// launcher sandbox boots (StartOptions.Boot, warm.ts), so a pooled sandbox
// holds it ready; the launcher hands it the entrypoint's name.
//
// ExecutePython runs run_python_code's requests on the same launcher: the
// user's code as main.py, with runtimes.PythonRunner as the entrypoint, which
// compiles the code (its last expression statement becomes the value, top-level
// await allowed, the request's globals read-only names), runs it and writes its
// outcome — the value as faithful JSON, or the error with the line and column
// in the code — to a file the launcher returns as its result. On a server
// with upstreams, the code has mcpFactory: the pre-started interpreter's fd 3
// is a socketpair to the launcher (warm.ts, LauncherOptions' relay), which
// relays its requests to the bootstrap's mcpFactory, so the host's
// CallHandler and CallLimits answer Python's calls as they answer
// run_deno_code's, over the one channel the launcher deno owns.
package engine
