package main

import (
	"context"
	"errors"
	"fmt"
	sdkmcp "github.com/modelcontextprotocol/go-sdk/mcp"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/conductor-sandbox/conductor/cgroups"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/identity"
	"github.com/conductor-sandbox/conductor/install"
	"github.com/conductor-sandbox/conductor/mcp"
	"github.com/conductor-sandbox/conductor/mcp/typegen"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/playbook"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/seccomp"
	"github.com/conductor-sandbox/conductor/tools"
	"github.com/conductor-sandbox/conductor/typecheck"
)

// layout says where conductor's files live: next to the binary in a checkout
// (bin/conductor and .build/), else in the system or user data directory.
type layout struct {
	dataDir  string // holds deno, rootfs/ and deps/
	deno     string
	rootfs   string
	deps     string // the dependency cache's views, one per allowlist (deps.Views)
	stateDir string
}

func resolveLayout(s config.Settings) layout {
	var l layout
	if s.DataDir != "" {
		l.dataDir = s.DataDir
	} else if exe, err := executable(); err == nil {
		if cand := filepath.Join(filepath.Dir(exe), "..", ".build"); isDir(cand) {
			l.dataDir = filepath.Clean(cand)
		}
	}
	if l.dataDir == "" {
		l.dataDir = "/var/lib/conductor"
		if os.Geteuid() != 0 {
			home, _ := os.UserHomeDir()
			l.dataDir = filepath.Join(home, ".local", "share", "conductor")
		}
	}
	l.deno = filepath.Join(l.dataDir, "deno")
	l.rootfs = filepath.Join(l.dataDir, "rootfs")
	l.deps = filepath.Join(l.dataDir, "deps")
	l.stateDir = s.StateDir
	if l.stateDir == "" {
		l.stateDir = defaultStateDir()
	}
	return l
}

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/run/conductor"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "conductor")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("conductor-%d", os.Geteuid()))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// app is everything one conductor process needs to run sandboxes.
type app struct {
	settings config.Settings
	layout   layout
	log      *slog.Logger
	host     *cgroups.Host
	limits   cgroups.Limits
	root     *rootfs.Root
	tools    *tools.Set    // the admin's CLI tools, in the root
	runtimes *runtimes.Set // execute_code's runtimes, in the root
	runner   *sandbox.Runner
	runnerO  sandbox.Options // what runner was made with (doctor's network proof reuses it)
	allow    *deps.Allowlist
	registry *url.URL   // the npm registry, when npm: or jsr: packages are allowed
	index    *url.URL   // the pip index, when pypi: packages are allowed
	view     *deps.View // this allowlist's view of the dependency cache; nil = no packages
	upstream *upstream.Manager
	// upstreamConfig is MCP_CONDUCTOR_MCP_CONFIG as loaded (no servers when unset).
	upstreamConfig *upstream.Config
	// factory serves sandboxed code's mcpFactory calls; nil without upstreams.
	factory *mcp.Factory
	types   *typegen.Cache // the upstreams' TypeScript declarations; nil without upstreams
	// playbooks is MCP_CONDUCTOR_PLAYBOOKS; nil = none.
	playbooks *playbook.Dir
	pool      *pool.Set  // serve only; nil = every run starts cold
	gen       sync.Mutex // guards pool against a config reload's swap (poolStats)
	engineO   engine.Options
	engine    *engine.Engine
	// checker type-checks run_deno_code's code in sandboxes of its own runner; nil without
	// TypeScript's files (see setupTypeCheck).
	checker *typecheck.Checker
	// identities is the serving identities (serve only; a reload swaps them).
	identities *identity.Store
}

func newLogger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// loadSettings reads MCP_CONDUCTOR_* and warns about allow-all.
func loadSettings(log *slog.Logger) (config.Settings, error) {
	s, err := config.Load(os.LookupEnv)
	if err != nil {
		return s, err
	}
	if s.AllowAll {
		log.Warn("MCP_CONDUCTOR_RUN_ARGS grants allow-all: deno's own permission wall is open; only the OS sandbox holds")
	}
	if p := config.WorkspaceProblem(s); p != "" {
		log.Warn(p) // the model is told what it may do there; the admin should know it is nothing
	}
	for _, p := range config.UnknownVariableProblems(os.Environ()) {
		log.Warn(p) // a typo would otherwise leave a limit or a grant silently at its default
	}
	return s, nil
}

// limitsFor turns settings into cgroup limits, with the pids default sized
// for deno's per-CPU threads.
func limitsFor(s config.Settings) cgroups.Limits {
	l := cgroups.Limits{Memory: s.Memory, Pids: s.Pids, CPUs: s.CPUs}
	if l.Pids == 0 {
		l.Pids = cgroups.DefaultPids(runtime.NumCPU())
	}
	return l
}

// outputsLimits are the limits of runs' outputs directories (MCP_CONDUCTOR_OUTPUTS_*); a zero
// size is none.
func outputsLimits(s config.Settings) outputs.Limits {
	return outputs.Limits{TotalBytes: s.OutputsSize, Files: s.OutputsFiles, FileBytes: s.OutputsFileSize}
}

// errRootfsMissing tells the user how to build the root.
var errRootfsMissing = errors.New("conductor is not set up: run `make build` (it fetches deno and builds the sandbox root)")

// errUnusableGrant: MCP_CONDUCTOR_RUN_ARGS grants a path the sandbox does not hold or cannot write.
var errUnusableGrant = errors.New(config.VarRunArgs + " grants what code cannot use in a sandbox")

// rootHas reports whether the sandbox root at dir holds path (an absolute path inside the sandbox).
func rootHas(dir string) func(path string) bool {
	return func(path string) bool {
		_, err := os.Lstat(filepath.Join(dir, path))
		return err == nil
	}
}

// newApp wires settings, cgroups, the root, seccomp and a sandbox runner,
// using the allowlist's cache view if it exists (exec, doctor).
func newApp(ctx context.Context, log *slog.Logger) (*app, error) {
	return newAppWith(ctx, log, appOptions{})
}

// appOptions are what differs between the commands that build an app.
type appOptions struct {
	// installs: the command installs packages (serve, deps install), so the
	// allowlist's cache view is created when missing. Otherwise a missing
	// view is not created and nothing is mounted: nothing is installed.
	installs bool
	// pool: the engine takes its sandboxes from a pool.Set of
	// MCP_CONDUCTOR_POOL_SIZE (serve; none when 0), which startPool fills
	// once the packages are installed.
	pool bool
}

// newAppWith is newApp with options.
func newAppWith(ctx context.Context, log *slog.Logger, o appOptions) (_ *app, retErr error) {
	s, err := loadSettings(log)
	if err != nil {
		return nil, err
	}
	a := &app{settings: s, layout: resolveLayout(s), log: log, limits: limitsFor(s)}
	defer func() {
		if retErr != nil {
			_ = a.view.Release() // no app to Close: let go of the view here
		}
	}()
	if a.allow, err = deps.ParseAllowlist(s.AllowedPackages); err != nil {
		return nil, fmt.Errorf("%s: %w", config.VarAllowedPackages, err)
	}
	// On a cgroup v2 delegated subtree the server moves into a leaf so
	// sandboxes can be its siblings (PrepareDelegation); elsewhere Start only
	// detects. The tests that start sandboxes take the same path.
	a.host, err = cgroups.Start(ctx, cgroups.Options{Prefix: sandbox.IDPrefix, Delegated: s.CgroupParent, Log: log})
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	// Ensure, not Current: it also guarantees the root holds this binary's
	// bootstrap and the deno next to it (a no-op of ~1.5 ms when they match).
	if _, err := os.Stat(a.layout.deno); err != nil {
		return nil, fmt.Errorf("%w: no deno at %s", errRootfsMissing, a.layout.deno)
	}
	rootO, ts, rs, err := rootfsOptions(ctx, a.layout, s)
	if err != nil {
		return nil, err
	}
	a.tools, a.runtimes = ts, rs
	a.root, err = rootfs.NewStore(a.layout.rootfs).WithLogger(log).Ensure(ctx, rootO)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	// Fail closed: a grant the sandbox cannot honour would be advertised to the model.
	if probs := config.GrantProblems(s, rootHas(a.root.Path)); len(probs) > 0 {
		return nil, fmt.Errorf("%w: %s (%s)", errUnusableGrant, strings.Join(probs, "; "), config.GrantFix)
	}
	upCfg, err := loadUpstreams(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.VarMCPConfig, err)
	}
	a.upstreamConfig = upCfg
	if len(upCfg.Servers) > 0 {
		a.upstream = upstream.NewManager(upCfg, upstream.Options{Logger: log, ClientInfo: &sdkmcp.Implementation{Name: "conductor", Version: version}})
	}
	if a.allow.Len() > 0 {
		if a.registry, a.index, err = install.Sources(ctx, a.allow); err != nil {
			return nil, err
		}
		if a.view, err = install.OpenView(ctx, a.layout.deps, a.layout.deno, a.allow, a.registry, a.index, pythonRuntime(a.runtimes), o.installs); err != nil {
			return nil, err
		}
	}
	netOpts, err := netOptions(s)
	if err != nil {
		return nil, err
	}
	caBundleFile, caBundleVars := caBundle(a.tools, a.runtimes)
	a.runnerO = sandbox.Options{
		DepsCache:  a.view.CacheDir(),
		Mounts:     pyMounts(a.view),
		Workspace:  s.Workspace,
		SpillMax:   s.SpillMax,
		SpillTotal: s.SpillTotal,
		// Enforced by a project quota where the host can, else checked
		// before each run; fails here if it cannot be applied.
		WorkspaceQuota: s.WorkspaceQuota,
		NPMRegistry:    install.URLString(a.registry),
		CABundle:       caBundleFile,
		CABundleEnv:    caBundleVars,
		StateDir:       a.layout.stateDir,
		Root:           a.root,
		Cgroups:        a.host,
		Seccomp:        seccomp.NewCache(),
		Limits:         a.limits,
		AllowDegraded:  s.AllowDegraded,
		DenoFlags:      s.CodeFlags(),
		Outputs:        outputsLimits(s),
		Network:        s.Network,
		Net:            netOpts,
		MaxOutput:      s.MaxOutput,
		Logger:         log,
	}
	a.runner, err = sandbox.New(ctx, a.runnerO)
	if err != nil {
		return nil, err
	}
	if a.upstream != nil && len(a.upstream.Names()) > 0 {
		a.factory = mcp.NewFactory(a.upstream, log)
		// One cache of the upstreams' declarations for get_tool_details and the type checker.
		a.types = typegen.NewCache(a.upstream, log.With("component", "typegen"))
	}
	var pbCalls *playbook.Calls
	if s.Playbooks != "" {
		// Fail closed: a directory that cannot be read (or written, when saving is on) stops the start.
		if a.playbooks, err = playbook.Open(s.Playbooks, s.PlaybooksWritable, log.With("component", "playbooks")); err != nil {
			return nil, fmt.Errorf("%s: %w", config.VarPlaybooks, err)
		}
		pbCalls = playbook.NewCalls(a.playbooks, log.With("component", "playbooks"))
	}
	calls := mcp.NewCalls(a.factory, pbCalls)
	a.engineO = engine.Options{
		Calls: calls,
		// Request bytes of mcpFactory calls: one call, one execution's in
		// flight, and all executions' in flight (one budget for the server).
		CallLimits: sandbox.CallLimits{
			MaxRequestBytes:  s.MCPMaxRequest,
			MaxInFlightBytes: s.MCPMaxInFlight,
			Shared:           sandbox.NewBudget(s.MCPMaxInFlightTotal),
		},
		Sandboxes:      a.sandboxes(o.pool),
		Runtimes:       a.runtimes,
		Allowlist:      a.allow,
		DefaultTimeout: s.DefaultTimeout,
		MaxTimeout:     s.MaxTimeout,
		MaxCodeBytes:   int(s.MaxCode),
		MaxConcurrency: s.MaxConcurrency,
		MaxQueue:       s.MaxQueue,
		MaxQueueShare:  queueShare(s),
		WorkspaceFor:   workspaceFor(a, s),
		Logger:         log,
		// A burst of executions grows the heap; once it is over, hand the
		// memory back rather than idle at the burst's size.
		OnIdle:    releaseMemory,
		IdleAfter: memoryIdle,
	}
	if err := a.setupTypeCheck(ctx); err != nil {
		_ = a.closeTypeCheck()
		_ = a.runner.Close()
		return nil, err
	}
	a.engine = engine.New(a.engineO)
	return a, nil
}

// memoryIdle is how long the server waits after its last execution before
// returning freed heap to the operating system.
const memoryIdle = 500 * time.Millisecond

// poolIdle is how long the pool waits for a request before it destroys its
// pre-started sandboxes (they cost memory); the next request regrows it.
const poolIdle = 10 * time.Minute

// sandboxes is where the engine's sandboxes come from: with pooled and a
// pool size, a pool.Set (empty until startPool fills it: until then every
// start is cold), else the runner. The engine is built once, with this source.
func (a *app) sandboxes(pooled bool) engine.Starter {
	if !pooled || a.settings.PoolSize <= 0 {
		return a.runner
	}
	a.pool = pool.NewSet(a.runner, a.settings.PoolSize, poolIdle, a.log)
	a.pool.GrowUpTo(a.settings.PoolLimit(runtime.NumCPU()))
	return a.pool
}

// startPool starts pre-starting sandboxes for the engine (serve): the app
// was built with appOptions.poolSize; without a pool it does nothing.
func (a *app) startPool() error {
	if a.pool == nil {
		return nil
	}
	static, err := a.allow.ImportMap()
	if err != nil {
		return err
	}
	if a.allow.Len() == 0 {
		static = nil
	}
	a.pool.Pool(sandbox.StartOptions{ImportMap: static})
	// Each execute_code runtime gets its launchers' pool on its first use.
	for _, rt := range a.runtimes.Runtimes {
		a.pool.Lazy(engine.LauncherOptions(rt, a.engineO.WorkDirSize, sandbox.Serves(a.engineO.Calls, sandbox.GlobalMCPFactory)))
	}
	return nil
}

// poolStats are the serving pool's numbers (the metrics); zero without a pool.
func (a *app) poolStats() pool.Stats {
	a.gen.Lock()
	p := a.pool
	a.gen.Unlock()
	if p == nil {
		return pool.Stats{}
	}
	return p.Stats()
}

func (a *app) Close() error {
	if a.engine != nil {
		a.engine.Shutdown()
	}
	if a.pool != nil {
		a.pool.Close()
	}
	if a.upstream != nil {
		_ = a.upstream.Close() // ends every upstream child process
	}
	err := a.closeTypeCheck()
	if a.runner != nil {
		err = errors.Join(err, a.runner.Close())
	}
	return errors.Join(err, a.view.Release())
}
