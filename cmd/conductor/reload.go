package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/mcp"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// reloadable are the settings a reload may change: each makes a new runner, pool and engine (and
// new tool descriptions). A change of any other setting refuses the reload: it needs a restart.
var reloadable = map[string]bool{
	config.VarRunArgs: true, config.VarMemory: true, config.VarPids: true, config.VarCPUs: true,
	config.VarMaxOutput: true, config.VarDefaultTimeout: true, config.VarMaxTimeout: true,
	config.VarAllowDegraded: true, config.VarWorkspace: true, config.VarWorkspaceQuota: true,
	config.VarMaxConcurrency: true, config.VarMaxQueue: true, config.VarMaxCode: true,
	config.VarPoolSize: true, config.VarPoolMax: true, config.VarSpillMax: true, config.VarSpillTotal: true,
	config.VarMCPMaxRequest: true, config.VarMCPMaxInFlight: true, config.VarMCPMaxInFlightTotal: true,
	config.VarNetPrivate: true, config.VarNetSecrets: true,
	config.KeyIdentities: true,
	// The upstream servers: the file's path, and its content (re-read and compared at every
	// reload; see upstreamChange).
	config.VarMCPConfig: true,
}

// errNeedsRestart: a reload changed a setting that cannot change while serving.
var errNeedsRestart = errors.New("cannot change while serving")

// reloadDebounce is how long the config file must be quiet before a change of it reloads (an
// editor's write, or its rename of a new file into place, comes as several events).
const reloadDebounce = 200 * time.Millisecond

// reloader applies a changed config file (and environment) to a serving server: a valid new
// policy gets a new runner, pool and engine, which the MCP server's tools use for the executions
// that start from then on; the old engine's executions finish under the policy they started with,
// then its pool and runner are closed. An invalid one is refused, logged, and the old stays.
type reloader struct {
	a      *app
	srv    *mcp.Server
	log    *slog.Logger
	counts func(ok bool) // conductor_config_reloads_total

	mu       sync.Mutex     // one reload at a time; guards src, old, closed and a's generation
	closed   bool           // Shutdown was called: no more reloads
	src      config.Sources // what the serving policy was loaded from
	old      []*engine.Engine
	draining sync.WaitGroup
}

func newReloader(a *app, srv *mcp.Server, counts func(bool), log *slog.Logger) (*reloader, error) {
	_, src, err := config.LoadSources(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return &reloader{a: a, srv: srv, log: log, counts: counts, src: src}, nil
}

// reload re-reads the config file and the environment and applies them (see reloader). why says
// what asked for it, for the log.
func (r *reloader) reload(ctx context.Context, why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed, err := r.apply(ctx)
	if err != nil {
		r.counts(false)
		r.log.Error("config reload refused: the old policy stays", "trigger", why, "err", err)
		return err
	}
	r.counts(true)
	if len(changed) == 0 {
		r.log.Info("config reloaded: nothing changed", "trigger", why)
		return nil
	}
	r.log.Info("config reloaded: new executions run with the new policy", "trigger", why, "changed", strings.Join(changed, ","))
	return nil
}

// apply is reload's work, with r.mu held: the names of the changed settings, or why not.
func (r *reloader) apply(ctx context.Context) ([]string, error) {
	if r.closed {
		return nil, errors.New("serve is shutting down")
	}
	s, src, err := config.LoadSources(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	changed := r.src.Changed(src)
	var fixed []string
	for _, name := range changed {
		if !reloadable[name] {
			fixed = append(fixed, fmt.Sprintf("%s (key %s)", name, config.FileKey(name)))
		}
	}
	if len(fixed) > 0 {
		return nil, fmt.Errorf("%s: %w; restart serve to apply them (or undo the change)", strings.Join(fixed, ", "), errNeedsRestart)
	}
	a := r.a
	up, err := r.upstreamChange(s)
	if err != nil {
		return nil, err
	}
	if up != nil && !slices.Contains(changed, config.VarMCPConfig) {
		changed = append(changed, config.VarMCPConfig) // same path, new content
	}
	if len(changed) == 0 {
		return nil, nil
	}
	if slices.Contains(changed, config.KeyIdentities) {
		if had, has := a.settings.Identities.HasTokens(), s.Identities.HasTokens(); had != has {
			// HTTP authentication (one token or the identities') is chosen at the start.
			return nil, fmt.Errorf("key %s: identities with tokens %s: %w; restart serve to apply it (or undo the change)",
				config.KeyIdentities, map[bool]string{true: "added where there were none", false: "all removed"}[has], errNeedsRestart)
		}
		if len(changed) == 1 {
			// Only who may call, and their quotas: the policy stays; sessions and running
			// executions are untouched; a removed identity's token fails its next request.
			r.swapIdentities(s)
			r.src = src
			return changed, nil
		}
	}
	if (a.settings.PoolSize > 0) != (s.PoolSize > 0) {
		// The metrics' readiness is built for a server with a pool or without one.
		return nil, fmt.Errorf("%s (key %s) %d -> %d: turning the pool on or off %w; restart serve to apply it (or undo the change)",
			config.VarPoolSize, config.FileKey(config.VarPoolSize), a.settings.PoolSize, s.PoolSize, errNeedsRestart)
	}
	if probs := config.GrantProblems(s, rootHas(a.root.Path)); len(probs) > 0 {
		return nil, fmt.Errorf("%w: %s (%s)", errUnusableGrant, strings.Join(probs, "; "), config.GrantFix)
	}
	netOpts, err := netOptions(s)
	if err != nil {
		return nil, err
	}
	ro := a.runnerO
	ro.Workspace, ro.SpillMax, ro.SpillTotal, ro.WorkspaceQuota = s.Workspace, s.SpillMax, s.SpillTotal, s.WorkspaceQuota
	ro.Limits, ro.AllowDegraded, ro.MaxOutput = limitsFor(s), s.AllowDegraded, s.MaxOutput
	ro.DenoFlags, ro.Network, ro.Net = s.CodeFlags(), s.Network, netOpts
	runner, err := sandbox.New(ctx, ro)
	if err != nil {
		return nil, err
	}
	eo := a.engineO
	eo.CallLimits = sandbox.CallLimits{
		MaxRequestBytes:  s.MCPMaxRequest,
		MaxInFlightBytes: s.MCPMaxInFlight,
		Shared:           sandbox.NewBudget(s.MCPMaxInFlightTotal),
	}
	eo.DefaultTimeout, eo.MaxTimeout, eo.MaxCodeBytes = s.DefaultTimeout, s.MaxTimeout, int(s.MaxCode)
	eo.MaxConcurrency, eo.MaxQueue, eo.MaxQueueShare, eo.WorkspaceFor = s.MaxConcurrency, s.MaxQueue, queueShare(s), workspaceFor(a, s)
	var p *pool.Set
	eo.Sandboxes = runner
	if s.PoolSize > 0 {
		p = pool.NewSet(runner, s.PoolSize, poolIdle, a.log)
		p.GrowUpTo(s.PoolLimit(runtime.NumCPU()))
		eo.Sandboxes = p
	}
	eng := engine.New(eo)
	var applied upstream.Applied
	if up != nil {
		if applied, err = a.upstream.Apply(up); err != nil {
			if p != nil {
				p.Close()
			}
			_ = runner.Close()
			return nil, fmt.Errorf("%s: %w", config.VarMCPConfig, err)
		}
		a.upstreamConfig = up
		r.log.Info("config reload: upstream MCP servers", "kept", applied.Kept, "changed", applied.Changed, "added", applied.Added, "removed", applied.Removed)
	}

	oldEngine, oldPool, oldRunner := a.engine, a.pool, a.runner
	a.gen.Lock()
	a.settings, a.limits, a.runnerO, a.engineO = s, ro.Limits, ro, eo
	a.runner, a.pool, a.engine = runner, p, eng
	a.gen.Unlock()
	if err := a.startPool(); err != nil {
		a.log.Warn("config reload: the new pool does not pre-start sandboxes; runs start cold", "err", err)
	}
	if err := r.srv.Reload(serverPolicy(a, eng)); err != nil {
		return nil, err // not reached with an engine; the new policy is in place either way
	}
	r.swapIdentities(s)
	r.src = src
	r.old = append(r.old, oldEngine)
	r.draining.Add(1)
	go func() {
		defer r.draining.Done()
		oldEngine.Drain()
		applied.Retire() // the changed and removed upstreams' old sessions
		if oldPool != nil {
			oldPool.Close()
		}
		if err := oldRunner.Close(); err != nil {
			r.log.Warn("config reload: closing the old runner", "err", err)
		}
		r.log.Debug("config reload: the old policy's executions have ended; its pool and runner are closed")
	}()
	return changed, nil
}

// upstreamChange re-reads the upstream MCP servers' config (MCP_CONDUCTOR_MCP_CONFIG's file, or
// the default one) for s: nil when it equals the serving one, else the new config, or why it
// cannot be applied. Going from no upstreams to some, or back, needs a restart (the proxy tools
// and the mcpFactory are set up at the start for a server with upstreams).
func (r *reloader) upstreamChange(s config.Settings) (*upstream.Config, error) {
	a := r.a
	up, err := loadUpstreams(s)
	if err != nil {
		return nil, fmt.Errorf("%s (key %s): %w", config.VarMCPConfig, config.FileKey(config.VarMCPConfig), err)
	}
	was := a.upstreamConfig
	if was == nil {
		was = &upstream.Config{}
	}
	if len(was.Servers) == 0 && len(up.Servers) == 0 || reflect.DeepEqual(was.Servers, up.Servers) {
		return nil, nil
	}
	had, has := a.upstream != nil && a.factory != nil, enabledCount(up) > 0
	if had != has || (a.upstream == nil) != (len(up.Servers) == 0) {
		return nil, fmt.Errorf("%s (key %s): upstream MCP servers %s: %w; restart serve to apply it (or undo the change)",
			config.VarMCPConfig, config.FileKey(config.VarMCPConfig),
			map[bool]string{true: "added where there were none", false: "all removed or disabled"}[has], errNeedsRestart)
	}
	if err := statelessProblem(s, false, up); err != nil {
		return nil, err
	}
	return up, nil
}

func enabledCount(c *upstream.Config) int {
	n := 0
	for _, sc := range c.Servers {
		if !sc.Disabled {
			n++
		}
	}
	return n
}

// swapIdentities serves s's identities from now on (a.identities, which HTTP authentication and
// the quotas read at each request).
func (r *reloader) swapIdentities(s config.Settings) {
	r.a.gen.Lock()
	r.a.settings.Identities = s.Identities
	r.a.gen.Unlock()
	if r.a.identities != nil {
		r.a.identities.Swap(s.Identities)
	}
}

// Shutdown cancels every execution, the current policy's and those of old ones still draining,
// and waits for them (serve's SIGTERM).
func (r *reloader) Shutdown() {
	r.mu.Lock()
	r.closed = true
	olds := r.old
	eng := r.a.engine
	r.mu.Unlock()
	eng.Shutdown()
	for _, e := range olds {
		e.Shutdown()
	}
	r.draining.Wait()
}

// watch reloads when file changes (watchFile), until ctx ends; why names the file in the log.
func (r *reloader) watch(ctx context.Context, file, why string) error {
	return watchFile(ctx, file, reloadDebounce, func() { _ = r.reload(ctx, why) }, r.log)
}

// watchFile calls changed once file has changed and then been quiet for quiet, until ctx ends. It
// watches the file's directory: an editor that writes a new file and renames it over the old one
// replaces the file a watch of the file itself would be on. Other files of the directory, and
// changes of mode only, are ignored.
func watchFile(ctx context.Context, file string, quiet time.Duration, changed func(), log *slog.Logger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%s: watching %s: %w", config.VarConfig, file, err)
	}
	dir := filepath.Dir(file)
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return fmt.Errorf("%s: watching %s: %w", config.VarConfig, dir, err)
	}
	go func() {
		defer w.Close()
		var debounce *time.Timer
		defer func() {
			if debounce != nil {
				debounce.Stop()
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config file watch", "file", file, "err", err)
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != file || ev.Op == fsnotify.Chmod {
					continue
				}
				if debounce == nil {
					debounce = time.AfterFunc(quiet, changed)
				} else {
					debounce.Reset(quiet)
				}
			}
		}
	}()
	return nil
}

// serverPolicy is what the MCP server's execution tools are built from: the engine and what the
// settings let code do.
func serverPolicy(a *app, eng *engine.Engine) mcp.Options {
	return mcp.Options{
		Engine:             eng,
		Permissions:        a.settings.RunArgs,
		Workspace:          a.settings.Workspace,
		WorkspaceFor:       workspaceFor(a, a.settings),
		Outputs:            outputsLimits(a.settings),
		Network:            networkDescription(a.settings),
		Packages:           a.allow.Description(),
		Tools:              a.tools.Names(),
		DefaultTimeout:     a.settings.DefaultTimeout,
		MaxTimeout:         a.settings.MaxTimeout,
		TypeCheckAll:       a.settings.TypeCheck,
		TypeCheckAvailable: a.checker != nil,
	}
}
