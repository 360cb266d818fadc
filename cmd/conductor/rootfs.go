package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/tools"
)

// rootfsOptions are the inputs of the sandbox root: deno, the admin's CLI
// tools (MCP_CONDUCTOR_TOOLS, resolved on this host: a missing one is an
// error naming it), the bootstrap, and a mount point for the workspace at
// its own path. The root follows the settings: serve, exec and `conductor
// rootfs build` all build it from here, so a changed tool list (or a tool
// updated on the host) gives a new root.
//
// The runtimes of execute_code (package runtimes: Python when the host has
// one or MCP_CONDUCTOR_PYTHON names one; Go likewise with MCP_CONDUCTOR_GO,
// its seeded build cache kept in <data dir>/gocache and built there the first
// time) add their programs, and the root gets the mount points of the per-run
// working directory, config.WorkDir, and of the allowlist's pypi: packages,
// config.PyPackagesDir, and of the type checker's TypeScript directory, config.TypeScriptDir.
func rootfsOptions(ctx context.Context, l layout, s config.Settings) (rootfs.Options, *tools.Set, *runtimes.Set, error) {
	ts, err := tools.Resolve(ctx, s.Tools, tools.Options{})
	if err != nil {
		return rootfs.Options{}, nil, nil, err
	}
	ca := ts.CABundle
	if ca == "" {
		ca = tools.HostCABundle()
	}
	rs, err := runtimes.Resolve(ctx, runtimes.Options{
		DenoPath: path.Join(config.ToolsDir, "deno"), DenoFlags: s.CodeFlags(), Memory: s.Memory, Python: s.Python, CABundle: ca,
		Go: s.Go, GoCacheDir: filepath.Join(l.dataDir, "gocache"),
	})
	if err != nil {
		return rootfs.Options{}, nil, nil, err
	}
	o := rootfs.Options{
		Deno:        l.deno,
		Programs:    append(ts.Programs(), rs.Programs()...),
		Bootstrap:   sandbox.BootstrapFiles(),
		MountPoints: []string{config.WorkDir, config.PyPackagesDir, config.TypeScriptDir},
	}
	if s.Workspace != "" {
		o.MountPoints = append(o.MountPoints, s.Workspace)
	}
	return o, ts, rs, nil
}

// caBundle is what run sandboxes name the CA bundle with: the bundle the tools or the runtimes
// brought into the root, and the variables of both.
func caBundle(ts *tools.Set, rs *runtimes.Set) (string, []string) {
	vars := ts.CAVars()
	for _, v := range rs.CAVars() {
		if !slices.Contains(vars, v) {
			vars = append(vars, v)
		}
	}
	if len(vars) == 0 {
		return "", nil
	}
	if ts.CABundle != "" {
		return ts.CABundle, vars
	}
	return tools.HostCABundle(), vars
}

func cmdRootfs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "build" {
		fmt.Fprintln(stderr, "usage: conductor rootfs build")
		return 2
	}
	log := newLogger(slog.LevelInfo)
	s, err := config.Load(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, "conductor rootfs:", err)
		return 1
	}
	l := resolveLayout(s)
	if _, err := os.Stat(l.deno); err != nil {
		fmt.Fprintf(stderr, "conductor rootfs: deno not found at %s: run `make build` (it fetches deno), or put deno there: %v\n", l.deno, err)
		return 1
	}
	t0 := time.Now()
	opts, _, _, err := rootfsOptions(ctx, l, s)
	if err != nil {
		fmt.Fprintln(stderr, "conductor rootfs:", err)
		return 1
	}
	root, err := rootfs.NewStore(l.rootfs).WithLogger(log).Ensure(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "conductor rootfs:", err)
		return 1
	}
	log.Info("sandbox root ready", "path", root.Path, "hash", root.Hash[:12], "took", time.Since(t0).Round(time.Millisecond))
	fmt.Fprintln(stdout, root.Path)
	return 0
}
