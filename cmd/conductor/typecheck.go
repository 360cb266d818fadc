package main

import (
	"context"
	"fmt"
	"path/filepath"

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
	r, err := sandbox.New(ctx, typecheck.RunnerOptions(a.runnerO, dir))
	if err != nil {
		if on {
			return fmt.Errorf("%s=1: the type checker's sandboxes: %w", config.VarTypeCheck, err)
		}
		a.log.Warn("no type checker: its sandboxes cannot be made", "err", err)
		return nil
	}
	a.checkRunner = r
	a.checker = typecheck.New(typecheck.Options{
		Runner:     r,
		MCPFactory: a.engineO.Calls != nil,
		Logger:     a.log.With("component", "typecheck"),
	})
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
		_ = a.checker.Close()
	}
	if a.checkRunner != nil {
		return a.checkRunner.Close()
	}
	return nil
}
