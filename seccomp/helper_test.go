//go:build cgo && seccomp

package seccomp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	libctrseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// The tests re-execute the test binary as a helper process: the helper
// loads the real policy with libcontainer's loader (and/or the arch guard)
// into itself and then either runs syscall probes or execs deno. The
// environment variables below select what the helper does.
const (
	envHelper  = "CONDUCTOR_SECCOMP_HELPER"  // "probe", "exec" or "guard"
	envLoad    = "CONDUCTOR_SECCOMP_LOAD"    // "none", "policy", "guard" or "both"
	envNetwork = "CONDUCTOR_SECCOMP_NETWORK" // "1" selects Options{Network: true}
	envProbes  = "CONDUCTOR_SECCOMP_PROBES"  // JSON array of probe names
	envExec    = "CONDUCTOR_SECCOMP_EXEC"    // JSON execSpec for the "exec" helper
)

// What the helper loads before it probes or execs.
const (
	loadNone   = "none"
	loadPolicy = "policy"
	loadGuard  = "guard"
	loadBoth   = "both"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envHelper); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain runs in the re-executed child. It never returns to the test
// framework: the exit code is the child's.
func helperMain(mode string) int {
	// Both the policy (loaded by libcontainer without TSYNC) and the probes
	// must run on this one OS thread.
	runtime.LockOSThread()
	opts := Options{Network: os.Getenv(envNetwork) == "1"}
	load := func() error { return loadFilters(os.Getenv(envLoad), opts) }
	var err error
	switch mode {
	case "probe":
		if err = load(); err == nil {
			var names []string
			if err = json.Unmarshal([]byte(os.Getenv(envProbes)), &names); err == nil {
				return runProbes(names)
			}
		}
	case "exec":
		err = execDeno(os.Getenv(envExec), load)
	case "guard":
		if err = guardHelper(); err == nil {
			return 0
		}
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	fmt.Fprintln(os.Stderr, "helper:", err)
	return 2
}

// loadFilters installs what load names, in the order conductor init does:
// the arch guard first, then the policy through libcontainer's loader just
// as `runc init` does (no_new_privs set first).
func loadFilters(load string, opts Options) error {
	withGuard := load == loadGuard || load == loadBoth
	withPolicy := load == loadPolicy || load == loadBoth
	if !withGuard && !withPolicy && load != loadNone {
		return fmt.Errorf("bad %s=%q", envLoad, load)
	}
	if withGuard {
		if err := LoadArchGuard(); err != nil {
			return err
		}
	}
	if !withPolicy {
		return nil
	}
	cfg, err := NewCache().Policy(opts)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, err := libctrseccomp.InitSeccomp(cfg); err != nil {
		return fmt.Errorf("InitSeccomp: %w", err)
	}
	return nil
}

// helperResult is what the parent learns about a finished helper.
type helperResult struct {
	stdout, stderr string
	status         syscall.WaitStatus
	timedOut       bool
}

// runHelper re-executes the test binary in helper mode with env added and
// waits for it (at most timeout).
func runHelper(t *testing.T, timeout time.Duration, env ...string) helperResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := helperResult{stdout: stdout.String(), stderr: stderr.String(), timedOut: ctx.Err() != nil}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
	default:
		t.Fatalf("start helper: %v", err)
	}
	res.status = cmd.ProcessState.Sys().(syscall.WaitStatus)
	return res
}

// probeResults runs the named probes in one helper and decodes its report.
func probeResults(t *testing.T, load string, network bool, names []string) map[string]string {
	t.Helper()
	res := runHelper(t, 10*time.Second,
		envHelper+"=probe", envLoad+"="+load, envNetwork+"="+boolEnv(network), probesEnv(names...))
	if res.timedOut || !res.status.Exited() || res.status.ExitStatus() != 0 {
		t.Fatalf("probe helper (load=%s network=%v) failed: status %v timedOut=%v\nstderr:\n%s",
			load, network, res.status, res.timedOut, res.stderr)
	}
	got := map[string]string{}
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("decode probe report %q: %v", res.stdout, err)
	}
	return got
}

// probesEnv is the environment entry that selects probes for a helper.
func probesEnv(names ...string) string {
	b, _ := json.Marshal(names)
	return envProbes + "=" + string(b)
}

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
