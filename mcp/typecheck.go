package mcp

// typeCheckDescription tells the model whether its code is type-checked before it runs.
func (s *Server) typeCheckDescription() string {
	const what = "(strict TypeScript against deno's declarations and mcpFactory's; npm: imports are any): a type error returns " +
		"error.type \"type\" listing each diagnostic as line:column: TScode: message, and nothing runs. "
	switch {
	case s.opt().TypeCheckAll:
		return "Every call is type-checked before it runs " + what
	case s.opt().TypeCheckAvailable:
		return "typecheck: true type-checks the code before it runs " + what
	}
	return ""
}
