// Package engine runs one request to execute code, end to end: it validates
// the request, checks every package the code names against the admin's
// allowlist, prepares the program (return value capture), waits for a free
// execution slot, runs it in a fresh sandbox, and maps error positions back to
// the user's own code. The MCP tool and `conductor exec` both use it, so they
// return the same result object.
package engine
