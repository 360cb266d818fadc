package sandbox

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/cgroups"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/leftovers"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/seccomp"
	"github.com/conductor-sandbox/conductor/tools"
)

// Test binaries start sandboxes too: libcontainer re-executes them as init.
func init() { MaybeInit() }

// unavailable fails the test on CI and skips it elsewhere, with the reason.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	testenv.Unavailable(t, format, args...)
}

// denoPath finds the deno the tests use.
func denoPath(t testing.TB) string { return testenv.Deno(t) }

var (
	rootOnce  sync.Once
	rootDir   string
	rootVal   *rootfs.Root
	rootErr   error
	rootTools *tools.Set // the CLI tools in the test root
	// rootPrograms are the test root's programs (the CLI tools and the runtimes), with the data
	// each brings (e.g. Debian's matplotlib its /etc/matplotlibrc).
	rootPrograms []rootfs.Program
)

// hostTools are the CLI tools of the test root: git and curl where the host has them, as an
// admin's MCP_CONDUCTOR_TOOLS=git,curl would add them, so every sandbox test (the escape suite
// among them) runs with programs beyond deno in the root.
func hostTools() []string {
	var out []string
	for _, n := range []string{"git", "curl"} {
		if _, err := exec.LookPath(n); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// hostPython is the distribution's Python of the test root, as MCP_CONDUCTOR_PYTHON would add
// it, where the host has one ("off" elsewhere): the escape suite runs with an interpreter and
// its standard library in the root, and execute_code's working directory mount point.
// (Not the python3 on PATH: pyenv's lives under /root, a host path the suite requires absent.)
func hostPython() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return config.PythonOff
}

// testRoot builds one root per test binary in a private store. Its runtimes are resolved as
// conductor does, so the go on PATH (MCP_CONDUCTOR_GO unset) adds its toolchain: bin/go, the
// compiler and linker, the standard library's sources (not its seeded build cache, data like them).
func testRoot(t testing.TB) *rootfs.Root {
	t.Helper()
	deno := denoPath(t)
	rootOnce.Do(func() {
		rootDir, rootErr = os.MkdirTemp("", "conductor-test-rootfs-")
		if rootErr != nil {
			return
		}
		_ = os.Chmod(rootDir, 0o755)
		if rootTools, rootErr = tools.Resolve(context.Background(), hostTools(), tools.Options{}); rootErr != nil {
			return
		}
		var rs *runtimes.Set
		if rs, rootErr = runtimes.Resolve(context.Background(), runtimes.Options{DenoPath: "/usr/bin/deno", Python: hostPython()}); rootErr != nil {
			return
		}
		rootPrograms = append(rootTools.Programs(), rs.Programs()...)
		rootVal, rootErr = rootfs.NewStore(rootDir).Ensure(context.Background(), rootfs.Options{
			Deno:        deno,
			Programs:    rootPrograms,
			Bootstrap:   BootstrapFiles(),
			MountPoints: []string{config.WorkDir},
		})
	})
	if rootErr != nil {
		t.Fatalf("build test root: %v", rootErr)
	}
	return rootVal
}

// TestMain removes the shared test root when the package's tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	if rootDir != "" {
		_ = os.RemoveAll(rootDir)
	}
	os.Exit(code)
}

// testHost sets up cgroups the way the binary does (cgroups.Start: in a
// delegated cgroup v2 subtree the test process moves into the server leaf).
func testHost(t testing.TB) (*cgroups.Host, error) {
	t.Helper()
	return cgroups.Start(context.Background(), cgroups.Options{Prefix: IDPrefix, Delegated: os.Getenv("MCP_CONDUCTOR_CGROUP_PARENT")})
}

// testOptions returns runner options for this host, with small limits.
func testOptions(t testing.TB) Options {
	t.Helper()
	root := testRoot(t)
	host, err := testHost(t)
	if err != nil {
		unavailable(t, "cgroup setup: %v", err)
	}
	o := Options{
		StateDir: t.TempDir(),
		Root:     root,
		Cgroups:  host,
		Seccomp:  seccomp.NewCache(),
		Limits:   cgroups.Limits{Memory: 512 << 20, Pids: cgroups.DefaultPids(runtime.NumCPU())},
		// The tools' CA bundle variables, as conductor sets them.
		CABundle:    rootTools.CABundle,
		CABundleEnv: rootTools.CAVars(),
		// Every run has an outputs directory, as conductor's runs do by default.
		Outputs: outputs.Limits{TotalBytes: 4 << 20},
	}
	if missing := host.Missing(o.Limits); len(missing) > 0 {
		unavailable(t, "limits not enforceable here: %v", missing)
	}
	return o
}

// newTestRunner starts a runner and checks, at cleanup, that it left nothing.
func newTestRunner(t testing.TB, mutate func(*Options)) *Runner {
	t.Helper()
	o := testOptions(t)
	if mutate != nil {
		mutate(&o)
	}
	r, err := New(context.Background(), o)
	if err != nil {
		unavailable(t, "runner: %v", err)
	}
	t.Cleanup(func() {
		instance := r.Instance()
		if err := r.Close(); err != nil {
			t.Errorf("runner close: %v", err)
		}
		assertNoLeftovers(t, o.StateDir, instance)
	})
	return r
}

// assertNoLeftovers checks that no state dir, cgroup or process of instance remains.
func assertNoLeftovers(t testing.TB, stateDir, instance string) {
	t.Helper()
	if entries, _ := os.ReadDir(stateDir); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state dir %s not empty: %v", stateDir, names)
	}
	if dirs := cgroupDirsWith(instance); len(dirs) > 0 {
		t.Errorf("cgroups left behind: %v", dirs)
	}
	if pids := processesIn(instance); len(pids) > 0 {
		t.Errorf("processes left behind: %v", pids)
	}
}

// cgroupDirsWith lists cgroup directories whose name contains marker.
func cgroupDirsWith(marker string) []string { return leftovers.CgroupDirs(marker) }

// processesIn lists live pids whose cgroup path mentions marker.
func processesIn(marker string) []int { return leftovers.Processes(marker) }

// runCode runs code in a fresh sandbox with a timeout.
func runCode(t testing.TB, r *Runner, code string, timeout time.Duration) *Result {
	t.Helper()
	res, err := r.Run(context.Background(), Job{Code: code, Timeout: timeout})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}
