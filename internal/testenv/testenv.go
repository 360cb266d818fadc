// Package testenv is what every test package shares about its environment:
// where deno is, and how a test that cannot run here says so — it fails on
// CI (CI=true), where every prerequisite must be present, and skips with the
// reason elsewhere. It imports nothing of conductor's, so any package's tests
// can use it.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// Unavailable fails tb on CI and skips it elsewhere, with the reason.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("cannot run: "+format, args...)
	}
	tb.Skipf("skipped: "+format, args...)
}

// KernelLacks skips tb, on CI too, because this host's kernel was built
// without a feature the test exercises (e.g. filesystem quota formats). Use
// it only when the kernel itself has been shown to lack the feature (the
// same operation works without it) and conductor detects the lack and
// falls back in a way another test covers: a missing package or privilege
// is Unavailable, never this.
func KernelLacks(tb testing.TB, format string, args ...any) {
	tb.Helper()
	tb.Skipf("this kernel lacks: "+format, args...)
}

// RepoRoot is the checkout's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Deno returns the deno the tests use: CONDUCTOR_DENO, else the checkout's
// .build/deno (`make build` fetches it).
func Deno(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv("CONDUCTOR_DENO")
	if p == "" {
		p = filepath.Join(RepoRoot(), ".build", "deno")
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		Unavailable(tb, "no deno executable at %s (run `make build` or set CONDUCTOR_DENO): %v", p, err)
	}
	return p
}

// TimeScaleVar multiplies the time limits tests give runs, for hosts that are
// slow for a known reason (make test-vm sets it under TCG emulation, where
// everything runs ~50x slower). Limits only: no test asserts a speed.
const TimeScaleVar = "CONDUCTOR_TEST_TIME_SCALE"

// Scale is d multiplied by CONDUCTOR_TEST_TIME_SCALE (a number >= 1; unset
// or invalid is 1).
func Scale(d time.Duration) time.Duration {
	f, err := strconv.ParseFloat(os.Getenv(TimeScaleVar), 64)
	if err != nil || f < 1 {
		return d
	}
	return time.Duration(float64(d) * f)
}
