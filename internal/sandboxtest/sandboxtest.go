// Package sandboxtest builds real sandbox runners for the tests and
// benchmarks of packages above sandbox: a root in a temporary store, this
// host's cgroups, small limits. When a sandbox cannot run here, it fails the
// test on CI (CI=true) and skips it elsewhere, always saying why.
package sandboxtest

import (
	"context"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/conductor-sandbox/conductor/cgroups"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/seccomp"
	"github.com/conductor-sandbox/conductor/tools"
)

// Unavailable fails tb on CI and skips it elsewhere, with the reason.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	testenv.Unavailable(tb, format, args...)
}

// Deno returns the deno the tests use.
func Deno(tb testing.TB) string { return testenv.Deno(tb) }

// Runner returns a started runner for tb (closed at cleanup), with default
// limits, after mutate has adjusted the options.
func Runner(tb testing.TB, mutate func(*sandbox.Options)) *sandbox.Runner {
	tb.Helper()
	return RunnerWithRoot(tb, nil, mutate)
}

// RunnerWithRoot is Runner whose root options root adjusts first (programs,
// mount points).
func RunnerWithRoot(tb testing.TB, root func(*rootfs.Options), mutate func(*sandbox.Options)) *sandbox.Runner {
	tb.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "conductor-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the sandbox's mapped uid must reach the root
		tb.Fatal(err)
	}
	ro := rootfs.Options{Deno: Deno(tb), Bootstrap: sandbox.BootstrapFiles()}
	if root != nil {
		root(&ro)
	}
	rt, err := rootfs.NewStore(filepath.Join(dir, "rootfs")).Ensure(ctx, ro)
	if err != nil {
		tb.Fatalf("build test root: %v", err)
	}
	// As the binary does: in a delegated cgroup v2 subtree this moves the
	// test process into the server leaf and enables the controllers.
	host, err := cgroups.Start(ctx, cgroups.Options{Prefix: sandbox.IDPrefix, Delegated: os.Getenv("MCP_CONDUCTOR_CGROUP_PARENT")})
	if err != nil {
		Unavailable(tb, "cgroup setup: %v", err)
	}
	o := sandbox.Options{
		StateDir: filepath.Join(dir, "state"),
		Root:     rt,
		Cgroups:  host,
		Seccomp:  seccomp.NewCache(),
		Limits:   cgroups.Limits{Memory: 512 << 20, Pids: cgroups.DefaultPids(runtime.NumCPU())},
	}
	if mutate != nil {
		mutate(&o)
	}
	r, err := sandbox.New(ctx, o)
	if err != nil {
		Unavailable(tb, "runner: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// PythonRunner returns a Python as conductor resolves it (python, or "" for the interpreter behind python3)
// and a runner whose root holds it and the working directory's mount point, as conductor builds
// it; without python3 the test is Unavailable.
func PythonRunner(tb testing.TB, python string) (*runtimes.Set, *sandbox.Runner) {
	tb.Helper()
	ca := tools.HostCABundle()
	ro := runtimes.Options{DenoPath: "/usr/bin/deno", Memory: 512 << 20, CABundle: ca}
	if python != "" {
		ro.Python, ro.Go = python, config.GoOff // a root for that Python only
	}
	rs, err := runtimes.Resolve(context.Background(), ro)
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, ok := rs.Language("python"); !ok {
		Unavailable(tb, "no python3 on PATH: the Python runtime cannot be tested here")
	}
	r := RunnerWithRoot(tb, func(o *rootfs.Options) {
		o.Programs = rs.Programs()
		o.MountPoints = []string{config.WorkDir}
	}, func(o *sandbox.Options) {
		// As conductor names the bundle the runtimes brought (cmd/conductor caBundle).
		if ca != "" {
			o.CABundle, o.CABundleEnv = ca, rs.CAVars()
		}
	})
	return rs, r
}
