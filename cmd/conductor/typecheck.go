package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/typecheck"
)

// setupTypeCheck gives the engine a type checker when TypeScript's files are installed
// (<data dir>/typescript, from `make build`). With MCP_CONDUCTOR_TYPECHECK=1 it must work now
// (fail closed): the checker is booted, warm, before the server serves; otherwise it boots at
// the first call that asks, and a server without the files refuses those calls.
func (a *app) setupTypeCheck(ctx context.Context) error {
	on := a.settings.TypeCheck
	dir := filepath.Join(a.layout.dataDir, "typescript")
	if err := typecheck.CheckDir(dir); err != nil {
		if on {
			return fmt.Errorf("%s=1: %w", config.VarTypeCheck, err)
		}
		a.log.Debug("no type checker", "reason", err)
		return nil
	}
	ro := typecheck.RunnerOptions(a.runnerO, dir)
	o := typecheck.Options{
		// The checker's own runner, made when it first boots: at start with the setting on,
		// else at the first call that asks.
		NewRunner: func(ctx context.Context) (*sandbox.Runner, error) { return sandbox.New(ctx, ro) },
		Playbooks: a.playbooks != nil,
		Logger:    a.log.With("component", "typecheck"),
	}
	if a.types != nil { // the upstreams' declarations: servers.<server>.<tool>(args)
		o.MCPFactory, o.Declarations = true, a.types.Declarations
	}
	a.checker = typecheck.New(o)
	if on {
		if err := a.checker.Start(ctx); err != nil {
			return fmt.Errorf("%s=1: the type checker cannot run here: %w", config.VarTypeCheck, err)
		}
	}
	a.engineO.TypeCheck, a.engineO.TypeCheckAll = a.checker, on
	return nil
}

// closeTypeCheck stops the checker and its runner.
func (a *app) closeTypeCheck() error {
	if a.checker != nil {
		return a.checker.Close()
	}
	return nil
}

// typeCheckProof is doctor's check of the type checker: that a sandboxed checker finds a
// known type error. Without TypeScript's files it passes when the setting is off (calls that
// ask are refused) and fails when it is on.
func typeCheckProof(ctx context.Context, s config.Settings, log *slog.Logger) check {
	c := check{Name: "type checker"}
	a, err := newApp(ctx, log)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer a.Close()
	if a.checker == nil {
		c.OK = !s.TypeCheck
		c.Detail = fmt.Sprintf("not installed (%s/typescript): run_deno_code's typecheck: true is refused", a.layout.dataDir)
		c.Fix = "run `make build` (it fetches TypeScript's compiler), then `make install` for an installed server"
		return c
	}
	t0 := time.Now()
	diags, err := a.checker.Check(ctx, "const n: number = \"x\";\nn", "")
	switch {
	case err != nil:
		c.Detail = err.Error()
	case len(diags) != 1 || diags[0].Code != 2322 || diags[0].Line != 1 || diags[0].Column != 7:
		c.Detail = fmt.Sprintf("the checker missed a known type error (TS2322 at 1:7), it reported %v", diags)
	default:
		c.OK = true
		mode := "calls that ask (typecheck: true)"
		if s.TypeCheck {
			mode = "every call (" + config.VarTypeCheck + "=1)"
		}
		c.Detail = fmt.Sprintf("a sandboxed checker found a known type error in %d ms (its boot included); checks %s", time.Since(t0).Milliseconds(), mode)
	}
	if !c.OK {
		c.Fix = "see the detail; " + config.VarMemory + " bounds the checker's memory too"
	}
	return c
}
