//go:build seccomp

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The pod, as far as its seccomp wall goes (issue 17, "The pod, for real", first half): conductor
// doctor under the essential rule of the container runtime's default seccomp profile.

// podRule is one rule of a seccomp profile, as data.
type podRule struct {
	syscall string
	mask    uint64 // clone: the rule applies when arg 0 has any of these bits; 0 = always
	errno   syscall.Errno
}

// namespaceFlags are the clone flags that create namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// runtimeDefaultNoSysAdmin is the essential rule of containerd's default seccomp profile
// (contrib/seccomp, also CRI-O's and Docker's) for a container without CAP_SYS_ADMIN, which is
// every container Kubernetes runs with RuntimeDefault and no added capability: clone is allowed
// only when arg 0 has none of the namespace flags; unshare, setns, mount and umount2 are in no
// allow rule (the profile's default action, EPERM); clone3 fails with ENOSYS so that callers fall
// back to clone. Everything else that profile allows or denies does not decide whether conductor
// can build its walls, and is left out: what is not listed here is allowed.
var runtimeDefaultNoSysAdmin = []podRule{
	{"clone", namespaceFlags, syscall.EPERM},
	{"clone3", 0, syscall.ENOSYS},
	{"unshare", 0, syscall.EPERM},
	{"setns", 0, syscall.EPERM},
	{"mount", 0, syscall.EPERM},
	{"umount2", 0, syscall.EPERM},
}

// podExecEnv makes the test binary a launcher: it loads runtimeDefaultNoSysAdmin (with
// no_new_privs, as a pod with allowPrivilegeEscalation false has), then execs argv from
// podArgvEnv. Only init can do it before the runtime starts other work.
const (
	podExecEnv  = "CONDUCTOR_TEST_POD_SECCOMP"
	podArgvEnv  = "CONDUCTOR_TEST_POD_ARGV"
	podDelimter = "\x1f"
)

func init() {
	if os.Getenv(podExecEnv) != "1" {
		return
	}
	argv := strings.Split(os.Getenv(podArgvEnv), podDelimter)
	if err := loadPodSeccomp(runtimeDefaultNoSysAdmin); err != nil {
		fmt.Fprintln(os.Stderr, "pod seccomp:", err)
		os.Exit(120)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, podExecEnv+"=") && !strings.HasPrefix(kv, podArgvEnv+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(argv[0], argv, env)
	fmt.Fprintln(os.Stderr, "pod exec:", err)
	os.Exit(121)
}

// loadPodSeccomp loads rules on every thread of this process (NewFilter sets TSYNC), default
// allow, with no_new_privs (NewFilter's default too).
func loadPodSeccomp(rules []podRule) error {
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return err
	}
	defer f.Release()
	for _, r := range rules {
		nr, err := libseccomp.GetSyscallFromName(r.syscall)
		if err != nil {
			return fmt.Errorf("%s: %w", r.syscall, err)
		}
		act := libseccomp.ActErrno.SetReturnCode(int16(r.errno))
		if r.mask == 0 {
			if err := f.AddRule(nr, act); err != nil {
				return fmt.Errorf("%s: %w", r.syscall, err)
			}
			continue
		}
		// "any of the bits": one rule per bit (libseccomp compares masked values for equality).
		for bit := uint64(1); bit != 0; bit <<= 1 {
			if r.mask&bit == 0 {
				continue
			}
			c, err := libseccomp.MakeCondition(0, libseccomp.CompareMaskedEqual, bit, bit)
			if err != nil {
				return err
			}
			if err := f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
				return fmt.Errorf("%s: %w", r.syscall, err)
			}
		}
	}
	return f.Load()
}

// TestPodSeccompDiagnosis: `conductor doctor --json` in a process under the runtime's default
// seccomp rule (a pod's RuntimeDefault, no CAP_SYS_ADMIN) fails its "user namespaces" check,
// saying a seccomp filter refuses it and that the fix is the container's
// securityContext.seccompProfile (Unconfined or a Localhost profile), as the Deployment sets; the
// same doctor without the filter (the Deployment's Unconfined) creates the user namespace.
// Not covered here: runc's masked /proc paths, the read-only cgroup mount, a non-root pod user
// (a libcontainer container configured as a pod; see the report of issue 17).
func TestPodSeccompDiagnosis(t *testing.T) {
	bin := binary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		filter  bool
		wantOK  bool
		wantIn  []string // in the check's detail and fix
		wantOut []string // not there
	}{
		{"RuntimeDefault", true, false,
			[]string{"cannot create a user namespace", "operation not permitted", "seccomp filter",
				"securityContext.seccompProfile", "Unconfined", "Localhost", "deploy/kubernetes/deployment.yaml"}, nil},
		{"Unconfined", false, true, []string{"available"}, []string{"seccomp"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			argv := []string{bin, "doctor", "--json", "-upstreams=false"}
			cmd := exec.Command(argv[0], argv[1:]...)
			if c.filter {
				cmd = exec.Command(self, "-test.run=^$")
				cmd.Env = append(os.Environ(), podExecEnv+"=1", podArgvEnv+"="+strings.Join(argv, podDelimter))
			} else {
				cmd.Env = os.Environ()
			}
			cmd.Env = append(cmd.Env, "MCP_CONDUCTOR_STATE_DIR="+t.TempDir())
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, _ := cmd.Output() // doctor exits 1 when a check fails; the JSON says which
			var rep doctorReport
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("doctor --json: %v\nstdout:\n%s\nstderr:\n%s", err, out, &stderr)
			}
			var got *check
			for i := range rep.Checks {
				if rep.Checks[i].Name == "user namespaces" {
					got = &rep.Checks[i]
				}
			}
			if got == nil {
				t.Fatalf("no user namespaces check in %s", out)
			}
			text := got.Detail + " | " + got.Fix
			t.Logf("user namespaces: ok=%v %s", got.OK, text)
			if got.OK != c.wantOK {
				t.Errorf("user namespaces ok = %v, want %v: %s", got.OK, c.wantOK, text)
			}
			for _, w := range c.wantIn {
				if !strings.Contains(text, w) {
					t.Errorf("user namespaces check lacks %q: %s", w, text)
				}
			}
			for _, w := range c.wantOut {
				if strings.Contains(text, w) {
					t.Errorf("user namespaces check has %q: %s", w, text)
				}
			}
			if c.filter && rep.OK {
				t.Error("doctor reports ok under the runtime's default seccomp rule")
			}
		})
	}
}
