//go:build cgo && seccomp

package seccomp

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPolicyLoaded loads the real policy (through libcontainer's loader)
// plus the arch guard into a helper process and checks the outcome of
// each probe syscall there.
func TestPolicyLoaded(t *testing.T) {
	for _, network := range []bool{false, true} {
		name := "network=" + boolEnv(network)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := NewCache().Policy(Options{Network: network})
			if err != nil {
				t.Fatal(err)
			}
			boundary, err := enosysBoundary(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range probes() {
				if p.want != resKilled {
					names = append(names, p.name)
				}
			}
			got := probeResults(t, loadBoth, network, names)
			for _, p := range probes() {
				if p.want == resKilled {
					continue
				}
				t.Run(p.name, func(t *testing.T) {
					want := p.expected(network, boundary)
					if !matches(want, got[p.name]) {
						t.Errorf("got %s, want %s", got[p.name], want)
					}
				})
			}
		})
	}
}

// TestProbesDifferWithoutFilter runs the harmless probes with no filter at
// all and checks their outcome differs from the expected one, so that each
// expectation above can only be met because of the filter. It needs root,
// since as an ordinary user the kernel itself answers EPERM to several.
func TestProbesDifferWithoutFilter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the unfiltered outcomes are only distinctive as root")
	}
	var names []string
	for _, p := range probes() {
		if p.control {
			names = append(names, p.name)
		}
	}
	got := probeResults(t, loadNone, false, names)
	for _, p := range probes() {
		if !p.control {
			continue
		}
		want := p.expected(false, 1<<20)
		if matches(want, got[p.name]) {
			t.Errorf("%s: %s even without a filter; the probe cannot show the filter's effect", p.name, got[p.name])
		}
	}
}

// TestForeignABIKillsProcess: an x32 or i386 syscall kills the whole
// process with SIGSYS as soon as the arch guard is loaded, with or without
// the policy; without any filter the same syscall returns normally.
func TestForeignABIKillsProcess(t *testing.T) {
	var kills []string
	for _, p := range probes() {
		if p.want == resKilled {
			kills = append(kills, p.name)
		}
	}
	if len(kills) == 0 {
		t.Skip("no foreign ABI on this architecture")
	}
	for _, name := range kills {
		for _, load := range []string{loadGuard, loadBoth} {
			t.Run(name+"/"+load, func(t *testing.T) {
				t.Parallel()
				res := runHelper(t, 10*time.Second, envHelper+"=probe", envLoad+"="+load, probesEnv(name))
				if res.timedOut || !res.status.Signaled() || res.status.Signal() != unix.SIGSYS {
					t.Fatalf("status %v (timedOut=%v), want the process killed by SIGSYS\nstdout: %s\nstderr: %s",
						res.status, res.timedOut, res.stdout, res.stderr)
				}
			})
		}
		t.Run(name+"/none", func(t *testing.T) {
			t.Parallel()
			got := probeResults(t, loadNone, false, []string{name})
			if got[name] == "" {
				t.Fatalf("no outcome for %s", name)
			}
			t.Logf("without a filter: %s", got[name])
		})
	}
}

// TestPolicyAloneOnlyKillsThread documents why LoadArchGuard exists: with
// libcontainer's filter alone, an x32 syscall kills only the calling thread
// (libseccomp's KILL_THREAD bad-arch action) and the multi-threaded process
// lingers instead of dying.
func TestPolicyAloneOnlyKillsThread(t *testing.T) {
	const name = "x32 getpid"
	if _, ok := probeByName(name); !ok {
		t.Skip("no x32 ABI on this architecture")
	}
	res := runHelper(t, 1500*time.Millisecond, envHelper+"=probe", envLoad+"="+loadPolicy, probesEnv(name))
	if res.status.Signaled() && res.status.Signal() == unix.SIGSYS {
		t.Fatalf("the policy alone killed the whole process; LoadArchGuard may no longer be needed (status %v)", res.status)
	}
	if !res.timedOut && strings.Contains(res.stdout, name) {
		t.Fatalf("the x32 syscall returned (%s); want the calling thread killed", strings.TrimSpace(res.stdout))
	}
	t.Logf("policy alone: status %v, timedOut=%v (thread killed, process left behind)", res.status, res.timedOut)
}
