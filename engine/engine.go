package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/fairq"
	"github.com/conductor-sandbox/conductor/program"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/typecheck"
)

// Sentinel errors callers branch on. Each is wrapped with the details.
var (
	ErrInvalidRequest = errors.New("invalid request")
	ErrBusy           = errors.New("server busy")
	// ErrQuota: the caller's identity is at one of its quotas (error.type "quota").
	ErrQuota      = errors.New("quota exceeded")
	ErrDependency = errors.New("dependency not allowed")
)

// Starter starts a booted sandbox; *sandbox.Runner is one.
type Starter interface {
	StartWith(ctx context.Context, so sandbox.StartOptions) (*sandbox.Sandbox, error)
}

// Options configure an Engine.
type Options struct {
	Sandboxes      Starter
	Allowlist      *deps.Allowlist // nil = no packages allowed
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	MaxCodeBytes   int // 0 = DefaultMaxCodeBytes
	MaxConcurrency int // parallel executions; 0 = 1
	MaxQueue       int // requests waiting for a slot; beyond it, ErrBusy
	// MaxQueueShare caps the waiting places one identity (event.ScopeOf the request's context)
	// holds; 0 = no cap. Waiting identities are served round-robin either way.
	MaxQueueShare int
	// WorkspaceFor, when set, says which workspace a request's sandbox gets, from its context
	// (event.ScopeOf: the identity): sub = its own <workspace>/<sub>/ (sandbox
	// StartOptions.WorkspaceOf), none = no workspace. nil = the whole workspace for everyone.
	WorkspaceFor func(ctx context.Context) (sub string, none bool)
	ResultLimit  int // bytes of encoded return value; 0 = sandbox default
	// Calls answers mcpFactory calls (nil: no upstreams, no mcpFactory);
	// CallLimits bound each execution's calls.
	Calls      sandbox.CallHandler
	CallLimits sandbox.CallLimits
	// TypeCheck type-checks code before it runs (nil: this server cannot); with TypeCheckAll
	// every request is checked, else those that ask (Request.TypeCheck).
	TypeCheck    *typecheck.Checker
	TypeCheckAll bool
	// Runtimes run execute_code's languages (nil: none offered).
	Runtimes *runtimes.Set
	// WorkDirSize is the size of an execute_code run's working directory; 0 = DefaultWorkDirSize.
	WorkDirSize int64
	Logger      *slog.Logger
	// OnIdle, if set, is called once the engine has had nothing to do
	// (no execution, no teardown) for IdleAfter; again after each busy spell.
	OnIdle    func()
	IdleAfter time.Duration
}

// DefaultMaxCodeBytes bounds the code of one request.
const DefaultMaxCodeBytes = 1 << 20

// Engine runs requests. It is safe for concurrent use.
type Engine struct {
	o        Options
	sched    *fairq.Queue // the execution slots and the queue for them
	log      *slog.Logger
	stop     context.Context // cancelled by Shutdown
	stopFunc context.CancelFunc
	mu       sync.Mutex // guards closed, active, and running.Add against Shutdown's Wait
	closed   bool
	active   int            // executions and teardowns in progress
	running  sync.WaitGroup // the same, for Shutdown to wait on
	idle     *time.Timer    // runs OnIdle; nil without one
}

// New returns an engine with o's limits.
func New(o Options) *Engine {
	if o.MaxCodeBytes <= 0 {
		o.MaxCodeBytes = DefaultMaxCodeBytes
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = 1
	}
	if o.MaxQueue < 0 {
		o.MaxQueue = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Runtimes == nil {
		o.Runtimes = &runtimes.Set{}
	}
	stop, stopFunc := context.WithCancel(context.Background())
	e := &Engine{
		o:        o,
		sched:    fairq.New(o.MaxConcurrency, o.MaxQueue, o.MaxQueueShare),
		log:      o.Logger,
		stop:     stop,
		stopFunc: stopFunc,
	}
	if o.OnIdle != nil && o.IdleAfter > 0 {
		e.idle = time.AfterFunc(o.IdleAfter, o.OnIdle)
		e.idle.Stop() // armed when the first execution ends
	}
	return e
}

// ErrShutdown is returned for requests that arrive after Shutdown.
var ErrShutdown = errors.New("server is shutting down")

// Shutdown refuses new requests, cancels every running one (their sandboxes
// are killed and they return as cancelled) and waits until each has cleaned
// up, so a server may exit as soon as it returns.
func (e *Engine) Shutdown() {
	e.mu.Lock()
	e.closed = true
	if e.idle != nil {
		e.idle.Stop()
	}
	e.mu.Unlock()
	e.stopFunc()
	e.running.Wait()
}

// Drain refuses new requests (ErrShutdown) and waits until every running one has finished on
// its own, cancelling none: after a config reload the old engine's executions end under the
// policy they started with. Shutdown may still be called during or after it.
func (e *Engine) Drain() {
	e.mu.Lock()
	e.closed = true
	if e.idle != nil {
		e.idle.Stop()
	}
	e.mu.Unlock()
	e.running.Wait()
}

// workspaced is so with the workspace WorkspaceFor gives ctx's request.
func (e *Engine) workspaced(ctx context.Context, so sandbox.StartOptions) sandbox.StartOptions {
	if e.o.WorkspaceFor != nil {
		so.WorkspaceOf, so.NoWorkspace = e.o.WorkspaceFor(ctx)
		if so.NoWorkspace {
			so.WorkspaceOf = ""
		}
	}
	return so
}

// admit counts a new execution in, unless the engine is shutting down.
func (e *Engine) admit() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.enterLocked()
	return true
}

// enterLocked counts work in; e.mu must be held.
func (e *Engine) enterLocked() {
	e.active++
	e.running.Add(1)
	if e.idle != nil {
		e.idle.Stop()
	}
}

// leave counts work out, arming the idle timer when nothing is left.
func (e *Engine) leave() {
	e.mu.Lock()
	e.active--
	if e.active == 0 && e.idle != nil && !e.closed {
		e.idle.Reset(e.o.IdleAfter)
	}
	e.mu.Unlock()
	e.running.Done()
}

// Request is one execution as an agent asks for it.
type Request struct {
	Code         string
	Timeout      time.Duration   // 0 = the default timeout
	Globals      json.RawMessage // a JSON object, or nil
	Dependencies []string        // npm:/jsr: specifiers; each must pass the allowlist
	// TypeCheck asks for the code to be type-checked before it runs, even when the server does
	// not check every request (Options.TypeCheckAll); false does not turn the server's off.
	TypeCheck bool
	// OnOutput sees output as it arrives (see sandbox.Job.OnOutput).
	OnOutput func(stream string, chunk []byte)
}

// Result is the outcome: the sandbox's result with positions in the user's
// code, plus where the full output went when it was capped.
type Result struct {
	*sandbox.Result
}

// Refusal is the result of a request refused before it ran (the error of Execute, ExecuteCode
// or ExecutePython): status error, no exit code, and error.type saying why — dependency (a
// package not allowed), invalid_request, busy, cancelled, or internal (the server failed).
func Refusal(err error) *Result {
	typ := sandbox.ErrorInternal
	switch {
	case errors.Is(err, ErrDependency):
		typ = sandbox.ErrorDependency
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrLanguage), errors.Is(err, ErrNoPython):
		typ = sandbox.ErrorInvalidRequest
	case errors.Is(err, ErrBusy):
		typ = sandbox.ErrorBusy
	case errors.Is(err, ErrQuota):
		typ = sandbox.ErrorQuota
	case errors.Is(err, ErrShutdown), errors.Is(err, context.Canceled):
		typ = sandbox.ErrorCancelled
	}
	var te *TypeError
	if errors.As(err, &te) {
		typ = sandbox.ErrorType
	}
	info := &sandbox.ErrorInfo{Type: typ, Message: err.Error()}
	var pe *program.Error
	if errors.As(err, &pe) {
		info.Line, info.Column = pe.Line, pe.Column
	}
	if te != nil && len(te.Diagnostics) > 0 {
		info.Line, info.Column = te.Diagnostics[0].Line, te.Diagnostics[0].Column
	}
	return &Result{Result: &sandbox.Result{Status: sandbox.StatusError, Degraded: []string{}, Error: info}}
}

// identifier matches the global names a request may define.
var identifier = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// validate checks everything about req that does not need a sandbox.
func (e *Engine) validate(req *Request) error {
	var problems []string
	switch {
	case req.Code == "":
		problems = append(problems, "deno_code is empty")
	case len(req.Code) > e.o.MaxCodeBytes:
		problems = append(problems, fmt.Sprintf("deno_code is %d bytes; the limit is %d bytes", len(req.Code), e.o.MaxCodeBytes))
	case !utf8.ValidString(req.Code):
		problems = append(problems, "deno_code is not valid UTF-8")
	}
	if p := e.timeoutProblem(req.Timeout); p != "" {
		problems = append(problems, p)
	}
	if len(req.Globals) > 0 && string(req.Globals) != "null" {
		var g map[string]json.RawMessage
		if err := json.Unmarshal(req.Globals, &g); err != nil {
			problems = append(problems, "globals must be a JSON object mapping names to values")
		}
		for name := range g {
			if !identifier.MatchString(name) {
				problems = append(problems, fmt.Sprintf("global name %q is not a JavaScript identifier (letters, digits, _ and $, not starting with a digit)", name))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidRequest, strings.Join(problems, "; "))
	}
	return nil
}

// checkPackages resolves every declared dependency and every import in the
// program against the allowlist, and returns the import map the run needs so
// the admin's versions win.
func (e *Engine) checkPackages(req *Request, prog *program.Program) ([]byte, error) {
	var problems, specs []string
	for _, d := range req.Dependencies {
		if _, err := e.o.Allowlist.Check(d); err != nil {
			problems = append(problems, fmt.Sprintf("dependency: %v", err))
		}
	}
	for _, imp := range prog.Imports {
		where := fmt.Sprintf("import at main.ts:%d:%d", imp.Line, imp.Column)
		switch {
		case imp.TypeOnly:
			continue
		case imp.NonLiteral:
			problems = append(problems, where+": a dynamic import() must name its module with a string literal so it can be checked against the allowed packages")
			continue
		}
		if _, err := e.o.Allowlist.Check(imp.Specifier); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		specs = append(specs, imp.Specifier)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrDependency, strings.Join(problems, "; "))
	}
	if e.o.Allowlist.Len() == 0 {
		return nil, nil
	}
	m, err := e.o.Allowlist.ImportMapFor(specs)
	if err != nil {
		return nil, fmt.Errorf("%w: import map: %w", ErrDependency, err)
	}
	return m, nil
}

// enter admits one execution: the returned context ends when ctx does or
// the engine stops; done releases the admission and must be called.
func (e *Engine) enter(ctx context.Context) (context.Context, func(), error) {
	if !e.admit() {
		return nil, nil, ErrShutdown
	}
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(e.stop, cancel)
	return ctx, func() { unhook(); cancel(); e.leave() }, nil
}

// timeoutOrDefault is d, or the default timeout when the request gave none.
func (e *Engine) timeoutOrDefault(d time.Duration) time.Duration {
	if d == 0 {
		return e.o.DefaultTimeout
	}
	return d
}

// timeoutProblem says what is wrong with a request's timeout ("" = nothing).
func (e *Engine) timeoutProblem(d time.Duration) string {
	if d < 0 || d > e.o.MaxTimeout {
		return fmt.Sprintf("timeout %d ms is out of range; allowed: 1 to %d ms", d.Milliseconds(), e.o.MaxTimeout.Milliseconds())
	}
	return ""
}

// Execute runs req. Requests the engine refuses (invalid, packages not
// allowed, busy) return an error; everything that ran returns a Result, whose
// Status says how it went.
func (e *Engine) Execute(ctx context.Context, req Request) (*Result, error) {
	t0 := time.Now()
	ctx, done, err := e.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	req.Timeout = e.timeoutOrDefault(req.Timeout)
	if err := e.validate(&req); err != nil {
		return nil, err
	}
	prog, err := program.PrepareContext(ctx, req.Code)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	importMap, err := e.checkPackages(&req, prog)
	if err != nil {
		return nil, err
	}
	if err := e.typeCheck(ctx, &req, prog); err != nil {
		return nil, err
	}

	release, queued, err := e.slot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	t1 := time.Now()
	sb, err := e.o.Sandboxes.StartWith(ctx, e.workspaced(ctx, sandbox.StartOptions{ImportMap: importMap}))
	if err != nil {
		return nil, err
	}
	defer e.teardown(sb)
	startWait := time.Since(t1)
	res := sb.Run(ctx, sandbox.Job{
		Code: prog.Module, Globals: req.Globals, Timeout: req.Timeout, ResultLimit: e.o.ResultLimit,
		OnOutput: req.OnOutput, Calls: e.o.Calls, CallLimits: e.o.CallLimits,
	})
	res.StartWait = startWait
	res.QueuedMs = sandbox.Millis(queued)
	res.DurationMs = sandbox.Millis(time.Since(t0)) - res.QueuedMs
	mapPositions(res, prog)
	e.log.Debug("execution", "status", res.Status, "ms", res.DurationMs)
	return &Result{Result: res}, nil
}

// teardown removes a used sandbox after the result has gone back. Run has
// returned, so every process in it is dead (it waits for the init's exit and
// kills on timeout or cancel); what remains is the container's state, cgroups
// and namespaces, whose removal can wait for the kernel (cgroup rmdir retries
// while the last task is reaped). The caller need not wait for that; Shutdown
// does.
func (e *Engine) teardown(sb *sandbox.Sandbox) {
	e.mu.Lock()
	e.enterLocked() // the caller's count is still held, so Shutdown's Wait cannot have started
	e.mu.Unlock()
	go func() {
		defer e.leave()
		if err := sb.Close(); err != nil {
			e.log.Warn("removing a used sandbox failed; the next start sweeps it", "err", err)
		}
	}()
}

// position finds the first "main.ts:LINE:COL" in s.
var position = regexp.MustCompile(`main\.ts:(\d+):(\d+)`)

// mapPositions rewrites positions in the error (and an Error return value's
// stack) to the user's code, and fills the error's line and column.
func mapPositions(res *sandbox.Result, prog *program.Program) {
	if res.Error == nil {
		return
	}
	res.Error.Message = prog.MapText(res.Error.Message)
	res.Error.Stack = prog.MapText(res.Error.Stack)
	for _, s := range []string{res.Error.Stack, res.Error.Message} {
		if m := position.FindStringSubmatch(s); m != nil {
			res.Error.Line, _ = strconv.Atoi(m[1])
			res.Error.Column, _ = strconv.Atoi(m[2])
			break
		}
	}
}
