package program

// The text Prepare adds. None of it contains a line break except wrapClose,
// which starts on a new line after all of the user's code (the code may end
// inside a // comment).
const (
	// exportOpen/exportClose wrap the last expression when there is no
	// top-level return: `export default await (EXPR)`.
	exportOpen  = "export default await ("
	exportClose = ")"
	// wrapOpen/wrapClose wrap the body when there is a top-level return.
	wrapOpen  = "export default await (async () => {"
	wrapClose = "\n})();"
	// returnOpen/returnClose wrap the last expression inside the wrapper.
	returnOpen  = "return ("
	returnClose = ")"
)

// tailItem is appended after the edited code: written text, or a copy of
// code[start:end] (a hoisted statement moved out of the wrapper).
type tailItem struct {
	start, end int
	text       string
	copied     bool
}

// plan decides how the module yields the result and returns the edits.
func plan(a *analysis, code string, idx *lineIndex) ([]edit, []tailItem, ResultKind, error) {
	if len(a.returns) > 0 {
		return planReturn(a, code, idx)
	}
	for _, st := range a.top {
		if st.kind == stmtExportDefault {
			return nil, nil, ResultExportDefault, nil
		}
	}
	last := lastRunning(a.top)
	if last == nil || last.kind != stmtExpression {
		return nil, nil, ResultNone, nil
	}
	return []edit{
		{start: last.expr.start, end: last.expr.start, text: exportOpen},
		{start: last.expr.end, end: last.expr.end, text: exportClose},
	}, nil, ResultLastExpression, nil
}

// planReturn wraps every statement that runs in an async arrow function
// whose awaited value is the default export, so a top-level return is a
// function's return. Imports, re-exports and type-only exports must stay at
// module level: those before the first wrapped statement stay where they are;
// later ones are blanked in place and re-emitted after the wrapper (they are
// hoisted by the language, so moving them changes nothing).
func planReturn(a *analysis, code string, idx *lineIndex) ([]edit, []tailItem, ResultKind, error) {
	for _, st := range a.top {
		var err error
		switch st.kind {
		case stmtExportDefault, stmtExportRuntime:
			err = ErrReturnWithExport
		case stmtImportAlias:
			err = ErrReturnWithImportAlias
		}
		if err != nil {
			line, col := idx.position(st.start)
			r, rc := idx.position(a.returns[0].start)
			return nil, nil, ResultNone, &Error{Line: line, Column: col, Err: err,
				Detail: positionText("the first top-level return is at", r, rc)}
		}
	}
	var edits []edit
	var tail []tailItem
	opened := false
	for _, st := range a.top {
		hoisted := st.kind == stmtImport || st.kind == stmtExportHoist
		switch {
		case !hoisted && !opened:
			edits = append(edits, edit{start: st.start, end: st.start, text: wrapOpen})
			opened = true
		case hoisted && opened:
			edits = append(edits, edit{start: st.start, end: st.end, text: blank(code[st.start:st.end])})
			tail = append(tail, tailItem{start: st.start, text: "\n"}, tailItem{start: st.start, end: st.end, copied: true})
		}
	}
	if last := lastRunning(a.top); last != nil && last.kind == stmtExpression {
		edits = append(edits,
			edit{start: last.expr.start, end: last.expr.start, text: returnOpen},
			edit{start: last.expr.end, end: last.expr.end, text: returnClose})
	}
	tail = append([]tailItem{{start: len(code), text: wrapClose}}, tail...)
	return edits, tail, ResultReturn, nil
}

// lastRunning returns the last top-level statement that does something at
// run time, skipping empty statements, type-only declarations, imports and
// hoisted exports, or nil.
func lastRunning(top []topStmt) *topStmt {
	for i := len(top) - 1; i >= 0; i-- {
		switch top[i].kind {
		case stmtEmpty, stmtTypeOnly, stmtImport, stmtExportHoist:
			continue
		}
		return &top[i]
	}
	return nil
}
