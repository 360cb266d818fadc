package engine

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/fairq"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// launcher is the module a launcher sandbox evaluates (see launcher.ts).
//
//go:embed launcher.ts
var launcher string

// warmBoot is the boot module of a launcher sandbox whose runtime has a pre-started
// interpreter (see warm.ts); warmSpecMark in it is replaced by its warmSpec.
//
//go:embed warm.ts
var warmBoot string

const warmSpecMark = "__CONDUCTOR_WARM_SPEC__"

// DefaultWorkDirSize is the size of a run's working directory unless the engine is told another.
const DefaultWorkDirSize = 64 << 20

// ErrLanguage is wrapped by the refusal of a language this server does not offer.
var ErrLanguage = errors.New("language not available")

// CodeRequest is one execute_code call: a program's files in a language.
type CodeRequest struct {
	Language   string
	Entrypoint File // its Name may be "": the language's default
	Files      []File
	Timeout    time.Duration // 0 = the default timeout
	OnOutput   func(stream string, chunk []byte)
}

// LauncherOptions are what a launcher sandbox for rt is started with: its deno may run rt's
// program and read and write the working directory, nothing else; never the model's choice. With
// relay (the engine has upstreams: Options.Calls), a pre-started interpreter gets the channel of
// the launcher's mcpFactory relay (see warm.ts), and the deno may read its own environment (the
// sandbox's, which the program inherits; node:child_process reads it).
func LauncherOptions(rt *runtimes.Runtime, workDirSize int64, relay bool) sandbox.StartOptions {
	if workDirSize <= 0 {
		workDirSize = DefaultWorkDirSize
	}
	so := sandbox.StartOptions{
		DenoFlags: []string{"--allow-read=" + config.WorkDir, "--allow-write=" + config.WorkDir, "--allow-run=" + rt.Program()},
		WorkDir:   &sandbox.WorkDir{Path: config.WorkDir, Size: workDirSize, Exec: rt.Exec},
	}
	if len(rt.Warm) > 0 {
		// The interpreter starts while the sandbox boots: a pooled sandbox holds it ready.
		spec, _ := json.Marshal(warmSpec{Dir: config.WorkDir, Argv: rt.Warm, Env: runtimeEnv(rt), Channel: relay})
		so.Boot = strings.Replace(warmBoot, warmSpecMark, string(spec), 1)
		if relay {
			so.DenoFlags = append(so.DenoFlags, "--allow-env")
		}
	}
	return so
}

// warmSpec is the boot module's global: the interpreter's command, and whether it gets a channel.
type warmSpec struct {
	Dir     string            `json:"dir"`
	Argv    []string          `json:"argv"`
	Env     map[string]string `json:"env"`
	Channel bool              `json:"channel,omitempty"`
}

// runtimeEnv is what rt's program gets on top of the sandbox's environment.
func runtimeEnv(rt *runtimes.Runtime) map[string]string {
	env := map[string]string{}
	for _, kv := range rt.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// launch is the launcher's global: what to write and run.
type launch struct {
	Dir   string            `json:"dir"`
	Files []File            `json:"files,omitempty"`
	Argv  []string          `json:"argv"`
	Env   map[string]string `json:"env"`
	Entry string            `json:"entry,omitempty"` // the entrypoint's name, for a pre-started interpreter
	// Result names the file (in Dir) whose text the launcher returns when the program succeeds.
	Result string `json:"result,omitempty"`
	// MCPMaxLine, when set, makes the launcher relay a pre-started interpreter's mcpFactory calls
	// (see launcher.ts), accepting request lines of up to this many bytes.
	MCPMaxLine int64 `json:"mcpMaxLine,omitempty"`
}

// MarshalJSON of File: the launcher's field names.
func (f File) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string `json:"name"`
		Content string `json:"content"`
	}{f.Name, f.Content})
}

// ExecuteCode runs req's program with its language's runtime in a launcher sandbox. Refusals
// (unknown language, bad files, busy) return an error; everything that ran returns a Result whose
// Status is an error when the program exited non-zero (its exit code is ExitCode).
func (e *Engine) ExecuteCode(ctx context.Context, req CodeRequest) (*Result, error) {
	t0 := time.Now()
	ctx, done, err := e.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	req.Timeout = e.timeoutOrDefault(req.Timeout)
	if p := e.timeoutProblem(req.Timeout); p != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalidRequest, p)
	}
	rt, lang, ok := e.o.Runtimes.Language(req.Language)
	if !ok {
		return nil, fmt.Errorf("%w: %q; this server offers: %s (only the admin can add one)", ErrLanguage, req.Language, strings.Join(e.o.Runtimes.Names(), ", "))
	}
	if req.Entrypoint.Name == "" {
		req.Entrypoint.Name = lang.DefaultFile
	}
	if req.Entrypoint.Content == "" {
		return nil, fmt.Errorf("%w: entrypoint_code is empty", ErrInvalidRequest)
	}
	files := append([]File{req.Entrypoint}, req.Files...)
	limits := DefaultFileLimits
	limits.Bytes, limits.BytesSetting = e.o.MaxCodeBytes, config.VarMaxCode
	if err := CheckFiles(files, limits); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	files = append(files, e.importCheck(rt, files, path.Dir(req.Entrypoint.Name), "")...)
	res, err := e.launch(ctx, rt, files, req.Entrypoint.Name, "", false, req.Timeout, req.OnOutput)
	if err != nil {
		return nil, err
	}
	res.DurationMs = sandbox.Millis(time.Since(t0)) - res.QueuedMs
	res.ReturnValue = nil
	e.log.Debug("execute_code", "language", req.Language, "status", res.Status, "ms", res.DurationMs)
	return &Result{Result: res}, nil
}

// launch runs files (checked) with rt in a launcher sandbox, entry being the entrypoint; with
// resultFile, the launcher's result is that file's text (ReturnValue, a JSON string), if the
// program wrote it. With mcp and an engine that has upstreams, the program's mcpFactory calls go
// through the launcher to the engine's CallHandler, within its CallLimits, as run_deno_code's do.
// A failed program's exit is worded in its own terms.
func (e *Engine) launch(ctx context.Context, rt *runtimes.Runtime, files []File, entry, resultFile string, mcp bool, timeout time.Duration, onOutput func(string, []byte)) (*sandbox.Result, error) {
	argv := append([]string{}, rt.Argv...)
	if !rt.Dir {
		argv = append(argv, entry)
	}
	spec := launch{Dir: config.WorkDir, Files: withDefaults(files, rt.Defaults), Env: runtimeEnv(rt), Argv: argv, Entry: entry, Result: resultFile}
	job := sandbox.Job{Code: launcher, Timeout: timeout, ResultLimit: 1 << 10, OnOutput: onOutput}
	if mcp && sandbox.Serves(e.o.Calls, sandbox.GlobalMCPFactory) {
		job.Calls, job.CallLimits = e.o.Calls, e.o.CallLimits
		spec.MCPMaxLine = relayMaxLine(e.o.CallLimits)
	}
	globals, err := json.Marshal(map[string]launch{"__conductor_launch": spec})
	if err != nil {
		return nil, fmt.Errorf("engine: launch: %w", err)
	}
	release, queued, err := e.slot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	t1 := time.Now()
	sb, err := e.o.Sandboxes.StartWith(ctx, e.workspaced(ctx, LauncherOptions(rt, e.o.WorkDirSize, sandbox.Serves(e.o.Calls, sandbox.GlobalMCPFactory))))
	if err != nil {
		return nil, err
	}
	defer e.teardown(sb)
	startWait := time.Since(t1)
	job.Globals = globals
	if resultFile != "" {
		job.ResultLimit = 4 * sandbox.DefaultResultLimit // the file's text, escaped as a JSON string
	}
	res := sb.Run(ctx, job)
	describeExit(res, path.Base(rt.Program()))
	if res.Error != nil {
		res.Error.Stack = ""
	}
	res.QueuedMs = sandbox.Millis(queued)
	res.StartWait = startWait
	return res, nil
}

// relayMaxLine is the longest request line the launcher's relay reads: one call's largest
// request and room for the rest of the line, so a request over the limit still reaches the host,
// whose refusal names the limit and its setting; a longer line closes the relay.
func relayMaxLine(l sandbox.CallLimits) int64 {
	req := l.MaxRequestBytes
	if req <= 0 {
		req = config.DefaultMCPMaxRequest
	}
	return 2*req + 64<<10
}

// withDefaults adds the runtime's default files the request does not bring (after the request's
// files were checked: defaults are the admin's data, not the model's).
func withDefaults(files []File, defaults []runtimes.File) []File {
	for _, d := range defaults {
		if !slices.ContainsFunc(files, func(f File) bool { return f.Name == d.Name }) {
			files = append(files, File{Name: d.Name, Content: d.Content})
		}
	}
	return files
}

// slot waits for a queue place and an execution slot; release gives both back; queued is how
// long it waited.
func (e *Engine) slot(ctx context.Context) (release func(), queued time.Duration, err error) {
	who := event.ScopeOf(ctx).Identity
	release, queued, err = e.sched.Acquire(ctx, who)
	switch {
	case errors.Is(err, fairq.ErrShare):
		return nil, 0, fmt.Errorf("%w: identity %q already has %d requests waiting, its share of the %d queue places (%s, set by the admin; "+
			"with identities one may hold half of them); try again when one of them has started", ErrBusy, who, e.o.MaxQueueShare, e.o.MaxQueue, "MCP_CONDUCTOR_MAX_QUEUE")
	case errors.Is(err, fairq.ErrFull):
		return nil, 0, fmt.Errorf("%w: %d executions are running and %d waiting; try again shortly", ErrBusy, e.o.MaxConcurrency, e.o.MaxQueue)
	}
	return release, queued, err
}

// describeExit words a failed program's exit in its own terms: the launcher deno exits with the
// program's code (128 + the signal's number after a signal).
func describeExit(res *sandbox.Result, prog string) {
	if res.Error == nil || res.Error.Type != sandbox.ErrorRuntime || res.ExitCode == nil || !strings.HasPrefix(res.Error.Message, "deno exited with code ") {
		return
	}
	code := *res.ExitCode
	msg := fmt.Sprintf("%s exited with code %d", prog, code)
	if sig := unix.Signal(code - 128); code > 128 && unix.SignalName(sig) != "" {
		msg = fmt.Sprintf("%s was killed by %s", prog, unix.SignalName(sig))
		if sig == unix.SIGSYS {
			msg += " (a forbidden system call)"
		}
	}
	res.Error.Message = strings.Replace(res.Error.Message, fmt.Sprintf("deno exited with code %d", code), msg, 1)
}
