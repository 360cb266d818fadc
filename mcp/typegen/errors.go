package typegen

import "errors"

// ErrUnknownTool: a tool asked for by name is not in the server's list (or
// not allowed by allowedTools).
var ErrUnknownTool = errors.New("unknown tool")
