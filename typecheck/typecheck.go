package typecheck

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/playbook"
	"github.com/conductor-sandbox/conductor/program"
	"github.com/conductor-sandbox/conductor/sandbox"
)

var (
	//go:embed checker.ts
	checkerSource string
	//go:embed conductor.d.ts
	conductorDecls string
	//go:embed modules.d.ts
	modulesDecls string
)

// Sentinel errors callers branch on; each is wrapped with the details.
var (
	// ErrUnavailable: this server has no type checker (TypeScript's files are missing).
	ErrUnavailable = errors.New("type checking is not available on this server")
	// ErrChecker: the checker failed (did not start, died, overran its time, answered
	// nonsense). The code was not checked; it must not run as if it had passed.
	ErrChecker = errors.New("the type checker failed")
)

// Defaults of Options.
const (
	DefaultMaxChecks      = 500
	DefaultTimeout        = 30 * time.Second
	DefaultStartTimeout   = 60 * time.Second
	DefaultMaxDiagnostics = 20
)

// Files TypeScriptDir must hold (fetched by `make build`: scripts/fetch-typescript.sh).
var requiredFiles = []string{"typescript.js", "lib.esnext.d.ts", "lib.deno.d.ts"}

// Diagnostic is one type error, at its position in the user's code: a 1-based line and
// column (UTF-16 code units), TypeScript's code (2345 for TS2345) and its message.
type Diagnostic struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// String is the diagnostic as the error message lists it: "3:14: TS2345: …".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%d:%d: TS%d: %s", d.Line, d.Column, d.Code, d.Message)
}

// Options configure a Checker.
type Options struct {
	// Runner starts the checker's sandboxes; make its options with RunnerOptions.
	Runner *sandbox.Runner
	// NewRunner, when Runner is nil, makes the checker's runner at its first boot; the
	// checker owns it and closes it on Close. A server whose calls never ask for a check so
	// has no second sandbox instance (state directory, cgroups) besides its runs'.
	NewRunner func(ctx context.Context) (*sandbox.Runner, error)
	// Declarations, when set, gives the upstreams' declarations (a global script declaring
	// `servers`) for CheckProgram; called at every check, so it should cache.
	Declarations func(ctx context.Context) (string, error)
	// MCPFactory declares mcpFactory (the server has upstreams); Playbooks declares playbooks.
	MCPFactory bool
	Playbooks  bool
	// MaxChecks is how many checks one checker makes before it is replaced; 0 = DefaultMaxChecks.
	MaxChecks int
	// Timeout bounds one check; 0 = DefaultTimeout. StartTimeout bounds a checker's boot and
	// warm-up; 0 = DefaultStartTimeout.
	Timeout      time.Duration
	StartTimeout time.Duration
	// MaxDiagnostics is how many diagnostics a check returns at most; 0 = DefaultMaxDiagnostics.
	MaxDiagnostics int
	Logger         *slog.Logger
}

// CheckDir reports whether dir holds what the checker needs, with how to get it if not.
func CheckDir(dir string) error {
	for _, f := range requiredFiles {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%w: %s is missing from %s (`make build` fetches TypeScript's compiler and deno's declarations there; `make install` copies them)", ErrUnavailable, f, dir)
		}
	}
	return nil
}

// RunnerOptions are the options of the checker's runner, from the server's run sandboxes'
// (base: root, cgroups, seccomp, limits, state directory): dir, the host's TypeScript
// directory, is mounted read-only at config.TypeScriptDir, which deno may read and nothing
// else; no network, workspace, dependency cache, other mounts or tool environment.
func RunnerOptions(base sandbox.Options, dir string) sandbox.Options {
	o := base
	o.DenoFlags = []string{"--allow-read=" + config.TypeScriptDir}
	o.Network, o.Net = false, nil
	o.Workspace, o.WorkspaceQuota, o.SpillMax, o.SpillTotal = "", 0, 0, 0
	o.DepsCache = ""
	o.Mounts = []sandbox.Mount{{Host: dir, Path: config.TypeScriptDir}}
	o.Env, o.CABundle, o.CABundleEnv = nil, "", nil
	o.NPMRegistry = ""
	return o
}

// Checker type-checks programs in a pre-booted sandbox. It is safe for concurrent use; checks
// run one at a time.
type Checker struct {
	o       Options
	log     *slog.Logger
	globals string
	sem     chan struct{}   // one token: the check (or boot) in progress
	owned   *sandbox.Runner // made by Options.NewRunner; guarded by sem
	ids     atomic.Int64
	mu      sync.Mutex // guards w and closed
	w       *worker    // the running checker; nil before the first boot and after one is retired
	closed  bool
}

// New returns a checker; it boots on Start or on the first check.
func New(o Options) *Checker {
	if o.MaxChecks <= 0 {
		o.MaxChecks = DefaultMaxChecks
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.MaxDiagnostics <= 0 {
		o.MaxDiagnostics = DefaultMaxDiagnostics
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{o: o, log: o.Logger, globals: Globals(o.MCPFactory, o.Playbooks), sem: make(chan struct{}, 1)}
}

// Globals is the declaration text of conductor's globals: the imports of packages (any), and
// mcpFactory and playbooks when the server has them.
func Globals(mcpFactory, playbooks bool) string {
	g := modulesDecls
	if mcpFactory {
		g += "\n" + conductorDecls
	}
	if playbooks {
		g += "\n" + playbook.Declarations // package playbook owns the global
	}
	return g
}

// Start boots a checker unless one is running, and returns once it has loaded the compiler
// and checked a first program: a server that must type-check (fail closed) calls it at start.
func (c *Checker) Start(ctx context.Context) error {
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	_, err := c.worker(ctx)
	return err
}

// Close stops the checker and waits until its sandbox is gone, and a boot in progress has
// ended; checks after it fail with ErrChecker.
func (c *Checker) Close() error {
	c.mu.Lock()
	c.closed = true
	w := c.w
	c.w = nil
	c.mu.Unlock()
	if w != nil {
		w.stop() // a check in progress ends at once: its checker is gone
	}
	c.sem <- struct{}{} // a boot in progress ends (and stops what it booted) first
	defer func() { <-c.sem }()
	if c.owned != nil {
		err := c.owned.Close()
		c.owned = nil
		return err
	}
	return nil
}

// Check type-checks code (run_deno_code's, as the user wrote it) against decls (extra
// declarations, a global script) besides conductor's globals and deno's. The diagnostics are
// at positions in code; none means it type-checks. An error means it was not checked.
func (c *Checker) Check(ctx context.Context, code, decls string) ([]Diagnostic, error) {
	prog, err := program.PrepareContext(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("typecheck: %w", err)
	}
	return c.check(ctx, prog, decls)
}

// CheckProgram is Check of a prepared program, with Options.Declarations' text and the
// request's globals (run_deno_code's globals, a JSON object or nil; see RequestGlobals).
func (c *Checker) CheckProgram(ctx context.Context, prog *program.Program, globals json.RawMessage) ([]Diagnostic, error) {
	var decls string
	if c.o.Declarations != nil {
		d, err := c.o.Declarations(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: the upstreams' declarations: %w", ErrChecker, err)
		}
		decls = d
	}
	g, err := RequestGlobals(globals)
	if err != nil {
		return nil, err
	}
	if g != "" {
		decls += "\n" + g
	}
	return c.check(ctx, prog, decls)
}

func (c *Checker) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Checker) release() { <-c.sem }

// check sends the module to the checker and maps the diagnostics back to the user's code.
func (c *Checker) check(ctx context.Context, prog *program.Program, decls string) ([]Diagnostic, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	w, err := c.worker(ctx)
	if err != nil {
		return nil, err
	}
	r := &request{
		frame: requestFrame{ID: c.ids.Add(1), Code: prog.Module, Globals: c.globals + packageModules(prog), Decls: decls},
		reply: make(chan replyFrame, 1),
	}
	timer := time.NewTimer(c.o.Timeout)
	defer timer.Stop()
	var rep replyFrame
	for sent := false; ; {
		var send chan<- *request
		if !sent {
			send = w.reqs
		}
		select {
		case send <- r:
			sent = true
			continue
		case rep = <-r.reply:
		case <-w.done:
			c.retire(w)
			return nil, fmt.Errorf("%w: it exited: %s", ErrChecker, w.describe())
		case <-timer.C:
			c.retire(w)
			return nil, fmt.Errorf("%w: no answer within %s (the checker was restarted)", ErrChecker, c.o.Timeout)
		case <-ctx.Done():
			// The checker finishes this check and discards it; the next one waits for that.
			return nil, ctx.Err()
		}
		break
	}
	if w.checks.Add(1) >= int64(c.o.MaxChecks) {
		c.retire(w)
		go c.rewarm() // the replacement boots now, not on the next check
	}
	if rep.Error != "" {
		return nil, fmt.Errorf("%w: %s", ErrChecker, capText(rep.Error, 2000))
	}
	c.log.Debug("type check", "ms", rep.Ms, "diagnostics", len(rep.Diagnostics))
	out := make([]Diagnostic, 0, min(len(rep.Diagnostics), c.o.MaxDiagnostics))
	for _, d := range rep.Diagnostics {
		if len(out) == c.o.MaxDiagnostics {
			break
		}
		d.Line, d.Column = prog.MapPosition(d.Line, d.Column)
		d.Message = capText(d.Message, 1000)
		out = append(out, d)
	}
	return out, nil
}

// packageModules declares the packages prog imports by bare name ("zod", which the import map
// resolves to the admin's version) as modules of type any, like npm: ones; relative and remote
// imports stay errors (they fail at run time).
func packageModules(prog *program.Program) string {
	var b strings.Builder
	for _, imp := range prog.Imports {
		sp := imp.Specifier
		if imp.NonLiteral || sp == "" || strings.HasPrefix(sp, ".") || strings.HasPrefix(sp, "/") || strings.Contains(sp, ":") {
			continue
		}
		q, err := json.Marshal(sp)
		if err == nil {
			fmt.Fprintf(&b, "declare module %s;\n", q)
		}
	}
	return b.String()
}

// capText cuts hostile text (it comes from the sandbox) to n bytes.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// worker returns the running checker, booting one first if there is none. The caller holds sem.
func (c *Checker) worker(ctx context.Context) (*worker, error) {
	c.mu.Lock()
	w, closed := c.w, c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: it is shut down", ErrChecker)
	}
	if w != nil {
		select {
		case <-w.done:
			c.retire(w)
		default:
			return w, nil
		}
	}
	w, err := c.boot(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	closed = c.closed
	if !closed {
		c.w = w
	}
	c.mu.Unlock()
	if closed {
		w.stop()
		return nil, fmt.Errorf("%w: it is shut down", ErrChecker)
	}
	return w, nil
}

// rewarm boots a checker unless one is running (or the checker is closed).
func (c *Checker) rewarm() {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.StartTimeout)
	defer cancel()
	if err := c.acquire(ctx); err != nil {
		return
	}
	defer c.release()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	if _, err := c.worker(ctx); err != nil {
		c.log.Warn("the type checker's replacement did not start; the next check tries again", "err", err)
	}
}

// retire stops w (in the background) unless it was replaced already.
func (c *Checker) retire(w *worker) {
	c.mu.Lock()
	if c.w == w {
		c.w = nil
	}
	c.mu.Unlock()
	go w.stop()
}

// boot starts a checker's sandbox and waits until it asks for its first program.
func (c *Checker) boot(ctx context.Context) (*worker, error) {
	r := c.o.Runner
	if r == nil && c.o.NewRunner != nil {
		if c.owned == nil {
			nr, err := c.o.NewRunner(ctx)
			if err != nil {
				return nil, fmt.Errorf("%w: its sandboxes cannot be made: %w", ErrChecker, err)
			}
			c.owned = nr
		}
		r = c.owned
	}
	if r == nil {
		return nil, fmt.Errorf("%w: no runner", ErrUnavailable)
	}
	t0 := time.Now()
	sb, err := r.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: its sandbox did not start: %w", ErrChecker, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w := &worker{reqs: make(chan *request), ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		w.res = sb.Run(runCtx, sandbox.Job{
			Code: checkerSource, Timeout: 100 * 365 * 24 * time.Hour, Calls: w,
			CallLimits: sandbox.CallLimits{
				MaxCalls: c.o.MaxChecks + 2, MaxInFlight: 2,
				MaxReplyBytes: 64 << 20, MaxTotalBytes: 1 << 50,
				MaxRequestBytes: 4 << 20, MaxInFlightBytes: 8 << 20,
			},
		})
		if err := sb.Close(); err != nil {
			c.log.Warn("removing the type checker's sandbox failed; the next start sweeps it", "err", err)
		}
	}()
	timer := time.NewTimer(c.o.StartTimeout)
	defer timer.Stop()
	select {
	case <-w.ready:
		c.log.Info("type checker ready", "version", w.version, "boot_ms", time.Since(t0).Milliseconds(), "warmup_ms", w.warmMs)
		return w, nil
	case <-w.done:
		return nil, fmt.Errorf("%w: it exited while starting: %s", ErrChecker, w.describe())
	case <-timer.C:
		w.stop()
		return nil, fmt.Errorf("%w: not ready within %s", ErrChecker, c.o.StartTimeout)
	case <-ctx.Done():
		w.stop()
		return nil, ctx.Err()
	}
}

// requestFrame is one check as the checker receives it (the reply to its "next" call).
type requestFrame struct {
	ID      int64  `json:"id"`
	Code    string `json:"code"`
	Globals string `json:"globals"`
	Decls   string `json:"decls"`
}

// replyFrame is what the checker sends with its "next" call: the previous check's outcome.
type replyFrame struct {
	ID          int64        `json:"id"`
	Diagnostics []Diagnostic `json:"diagnostics"`
	Error       string       `json:"error"`
	Ms          int64        `json:"ms"`
	Version     string       `json:"version"`
}

type request struct {
	frame requestFrame
	reply chan replyFrame // buffered: a reply nobody waits for any more is dropped
}

// worker is one running checker: its sandbox's run, and the call handler the checker asks
// for work through.
type worker struct {
	reqs   chan *request // handed to the checker's waiting "next" call
	ready  chan struct{} // closed at its first "next" call
	done   chan struct{} // closed when its run has ended and its sandbox is gone
	res    *sandbox.Result
	cancel context.CancelFunc
	checks atomic.Int64

	mu      sync.Mutex // guards pending, started
	pending *request   // the request the checker is working on
	started bool
	warmMs  int64
	version string
}

// Call answers the checker's calls: callTool("next", outcome) gives the outcome of the
// pending check to its caller and waits for the next check.
func (w *worker) Call(ctx context.Context, method string, params json.RawMessage) (any, error) {
	var p struct {
		Tool string          `json:"tool"`
		Args json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(params, &p); err != nil || method != "callTool" || p.Tool != "next" {
		return nil, fmt.Errorf("%w: unexpected call %s", sandbox.ErrEndExecution, method)
	}
	var rep replyFrame
	if err := json.Unmarshal(p.Args, &rep); err != nil {
		return nil, fmt.Errorf("%w: its answer does not decode: %v", sandbox.ErrEndExecution, err)
	}
	w.mu.Lock()
	if pr := w.pending; pr != nil {
		if rep.ID != pr.frame.ID {
			rep = replyFrame{Error: fmt.Sprintf("answered check %d, not %d", rep.ID, pr.frame.ID)}
		}
		pr.reply <- rep
		w.pending = nil
	}
	if !w.started {
		w.started = true
		w.warmMs, w.version = rep.Ms, rep.Version
		close(w.ready)
	}
	w.mu.Unlock()
	select {
	case r := <-w.reqs:
		w.mu.Lock()
		w.pending = r
		w.mu.Unlock()
		return r.frame, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop ends the checker's run and waits until its sandbox is gone.
func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// describe says how a checker's run ended (after done).
func (w *worker) describe() string {
	r := w.res
	if r == nil {
		return "no result"
	}
	s := string(r.Status)
	if r.Error != nil {
		s += ": " + r.Error.Message
	}
	if r.LimitHit != "" {
		s += " (limit: " + r.LimitHit + ")"
	}
	if t := strings.TrimSpace(r.Stderr); t != "" {
		s += "; stderr: " + capText(t[max(0, len(t)-500):], 500)
	}
	return s
}
