package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// ErrNoPython is wrapped by the refusal of run_python_code on a server that offers no Python.
var ErrNoPython = errors.New("python is not available")

// PythonRequest is one run_python_code call.
type PythonRequest struct {
	Code    string
	Timeout time.Duration   // 0 = the default timeout
	Globals json.RawMessage // a JSON object, or nil: read-only names in the code
	// Dependencies are PyPI distribution names (pyyaml, PyYAML, pyyaml==6.0.1); each must be on
	// the allowlist (deps.Allowlist.CheckPython). Informational otherwise: the admin installs the
	// allowed packages (conductor deps install), a run installs nothing.
	Dependencies []string
	OnOutput     func(stream string, chunk []byte)
}

// In the working directory: the user's code as main.py (its name in tracebacks and errors), and
// the runner, the globals and the outcome in .conductor/.
const (
	pyCodeFile    = "main.py"
	pyRunnerFile  = runtimes.PythonRunnerFile
	pyGlobalsFile = ".conductor/globals.json"
	pyResultFile  = ".conductor/result.json"
	pyFactoryFile = runtimes.PythonFactoryFile // the mcpFactory client, on a server with upstreams
)

// pyOutcome is what the runner writes: a value or an error.
type pyOutcome struct {
	Value     json.RawMessage    `json:"value"`
	Truncated bool               `json:"truncated"`
	Error     *sandbox.ErrorInfo `json:"error"`
}

// ExecutePython runs req's code with the Python runtime: the value of its last expression
// statement is ReturnValue (faithful JSON, see runtimes/pyrun.py), a syntax error or an uncaught
// exception is Error with the line and column in the code as written.
func (e *Engine) ExecutePython(ctx context.Context, req PythonRequest) (*Result, error) {
	t0 := time.Now()
	ctx, done, err := e.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rt, _, ok := e.o.Runtimes.Language("python")
	if !ok {
		return nil, fmt.Errorf("%w on this server (only the admin can add it: %s)", ErrNoPython, config.VarPython)
	}
	req.Timeout = e.timeoutOrDefault(req.Timeout)
	globals, err := e.checkPython(&req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if err := e.checkPythonDependencies(req.Dependencies); err != nil {
		return nil, err
	}
	code := File{Name: pyCodeFile, Content: req.Code}
	files := []File{
		code,
		{Name: pyRunnerFile, Content: runtimes.PythonRunner},
		{Name: pyGlobalsFile, Content: string(globals)},
	}
	files = append(files, e.importCheck(rt, []File{code}, ".", pyResultFile)...)
	if sandbox.Serves(e.o.Calls, sandbox.GlobalMCPFactory) {
		files = append(files, File{Name: pyFactoryFile, Content: runtimes.PythonFactory})
	}
	res, err := e.launch(ctx, rt, files, pyRunnerFile, pyResultFile, true, req.Timeout, req.OnOutput)
	if err != nil {
		return nil, err
	}
	res.DurationMs = sandbox.Millis(time.Since(t0)) - res.QueuedMs
	if err := applyOutcome(res); err != nil {
		return nil, err
	}
	e.log.Debug("run_python_code", "status", res.Status, "ms", res.DurationMs)
	return &Result{Result: res}, nil
}

// checkPython checks what needs no sandbox and returns the globals as a JSON object.
func (e *Engine) checkPython(req *PythonRequest) ([]byte, error) {
	var problems []string
	switch {
	case req.Code == "":
		problems = append(problems, "python_code is empty")
	case len(req.Code) > e.o.MaxCodeBytes:
		problems = append(problems, fmt.Sprintf("python_code is %d bytes; the limit is %d bytes (%s)", len(req.Code), e.o.MaxCodeBytes, config.VarMaxCode))
	case !utf8.ValidString(req.Code):
		problems = append(problems, "python_code is not valid UTF-8")
	}
	if p := e.timeoutProblem(req.Timeout); p != "" {
		problems = append(problems, p)
	}
	globals := []byte("{}")
	if len(req.Globals) > 0 && string(req.Globals) != "null" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(req.Globals, &m); err != nil {
			problems = append(problems, "globals must be a JSON object")
		}
		for k := range m {
			switch {
			case !runtimes.PyIdentifier(k) || strings.HasPrefix(k, "__"):
				problems = append(problems, fmt.Sprintf("global %q: names must be Python identifiers (ASCII letters, digits, _; not starting with a digit or __)", k))
			case sandbox.Serves(e.o.Calls, sandbox.GlobalMCPFactory) && (k == "mcpFactory" || k == "McpError"):
				problems = append(problems, fmt.Sprintf("global %q would shadow the built-in global of that name; choose another name", k))
			}
		}
		globals = req.Globals
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return globals, nil
}

// checkPythonDependencies checks run_python_code's dependencies against the allowlist; a refusal
// names it.
func (e *Engine) checkPythonDependencies(names []string) error {
	var problems []string
	for _, d := range names {
		if _, err := e.o.Allowlist.CheckPython(d); err != nil {
			problems = append(problems, fmt.Sprintf("dependency: %v", err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrDependency, strings.Join(problems, "; "))
	}
	return nil
}

// importCheck is the file with which rt's interpreter checks the run's imports before it runs
// anything (Runtime.ImportCheck; none for a runtime without): the files of rt's languages among
// files, whose own modules are in dir (the program's sys.path[0]); with result, a refusal is the
// outcome written there (run_python_code's), else the program's failure.
func (e *Engine) importCheck(rt *runtimes.Runtime, files []File, dir, result string) []File {
	if rt.ImportCheck == "" {
		return nil
	}
	spec := runtimes.ImportSpec{Files: []string{}, Dir: dir, Allowed: e.o.Allowlist.PythonAllowed(), Result: result}
	for _, f := range files {
		if slices.ContainsFunc(rt.Languages, func(l runtimes.Language) bool { return slices.Contains(l.Extensions, path.Ext(f.Name)) }) {
			spec.Files = append(spec.Files, f.Name)
		}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		panic(err) // strings only
	}
	return []File{{Name: rt.ImportCheck, Content: string(b)}}
}

// PythonImports is one sentence for the model: what Python code may import here.
func (e *Engine) PythonImports() string {
	rt, _, ok := e.o.Runtimes.Language("python")
	if !ok {
		return ""
	}
	var b strings.Builder
	b.WriteString("Imports: the standard library")
	if n := len(rt.Modules); n > 0 {
		const shown = 12
		fmt.Fprintf(&b, "; the interpreter's packages (%s", strings.Join(rt.Modules[:min(n, shown)], ", "))
		if n > shown {
			fmt.Fprintf(&b, " and %d more", n-shown)
		}
		b.WriteString(")")
	}
	if pkgs := e.o.Allowlist.PythonPackages(); len(pkgs) > 0 {
		names := make([]string, len(pkgs))
		for i, p := range pkgs {
			names[i] = p.Name + p.Version
		}
		fmt.Fprintf(&b, "; the allowed PyPI packages (%s; list them in dependencies)", strings.Join(names, ", "))
	}
	b.WriteString(". Any other import is refused before the code runs, naming its line.")
	return b.String()
}

// applyOutcome turns the runner's outcome (the launcher's ReturnValue, the result file's text as a
// JSON string) into the result's value or error. A run that ended otherwise keeps its own status.
func applyOutcome(res *sandbox.Result) error {
	raw := res.ReturnValue
	res.ReturnValue = nil
	if res.Status != sandbox.StatusSuccess {
		return nil
	}
	var text *string
	if err := json.Unmarshal(raw, &text); err != nil || text == nil {
		return nil // no outcome written (the program left with os._exit): no value
	}
	var o pyOutcome
	if err := json.Unmarshal([]byte(*text), &o); err != nil {
		res.Status = sandbox.StatusError
		res.Error = &sandbox.ErrorInfo{Type: sandbox.ErrorRuntime, Message: "the program overwrote its outcome (.conductor/result.json) with something that is not its JSON"}
		return nil
	}
	if o.Error != nil {
		res.Status = sandbox.StatusError
		res.Error = o.Error
		one := 1
		res.ExitCode = &one
		return nil
	}
	res.ReturnValue, res.ReturnTruncated = o.Value, o.Truncated
	return nil
}
