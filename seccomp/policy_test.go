//go:build cgo && seccomp

package seccomp

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	libctrseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// enosysBoundary mirrors libcontainer's patchbpf (findLastSyscalls): the
// highest syscall number, on the config's architecture, among the names
// the config mentions (with any action) and libseccomp resolves. libcontainer
// prepends a stub that returns ENOSYS for every larger number.
func enosysBoundary(cfg *configs.Seccomp) (int, error) {
	if len(cfg.Architectures) != 1 {
		return 0, fmt.Errorf("want one architecture, got %v", cfg.Architectures)
	}
	maxNr := -1
	for _, s := range cfg.Syscalls {
		nr, ok, err := syscallNumber(s.Name, cfg.Architectures[0])
		if err != nil {
			return 0, err
		}
		if ok && nr > maxNr {
			maxNr = nr
		}
	}
	return maxNr, nil
}

// testArchs are all supported architectures, built with the libseccomp
// tables for that architecture (which need not be the host's).
var testArchs = []arch{archAMD64, archARM64}

func mustBuild(t *testing.T, o Options, a arch) *configs.Seccomp {
	t.Helper()
	cfg, err := build(o, a)
	if err != nil {
		t.Fatalf("build(%+v, %s): %v", o, a.goarch, err)
	}
	return cfg
}

func nativeArch(t *testing.T) arch {
	t.Helper()
	a, err := archFor(runtime.GOARCH)
	if err != nil {
		t.Skipf("no policy for %s: %v", runtime.GOARCH, err)
	}
	return a
}

// verdictOf reports what cfg does with syscall name when called with
// arguments that match no argument condition: "allow", "allow-if" (allowed
// only for some arguments), an errno name, or "" if the name is unknown.
func verdictOf(t *testing.T, cfg *configs.Seccomp, name string) string {
	t.Helper()
	// libcontainer ignores names the linked libseccomp cannot resolve.
	nr, ok, err := syscallNumber(name, cfg.Architectures[0])
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	var named []*configs.Syscall
	for _, s := range cfg.Syscalls {
		if s.Name == name {
			named = append(named, s)
		}
	}
	for _, s := range named {
		if s.Action == configs.Allow {
			if len(s.Args) == 0 {
				return "allow"
			}
			return "allow-if"
		}
	}
	if len(named) > 0 {
		return unix.ErrnoName(unix.Errno(*named[0].ErrnoRet))
	}
	b, err := enosysBoundary(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if nr > b {
		return "ENOSYS"
	}
	return "EPERM"
}

func TestPolicyShape(t *testing.T) {
	a := nativeArch(t)
	wantArch, err := libctrseccomp.ConvertStringToArch(a.ociName)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{}, {Network: true}} {
		t.Run(fmt.Sprintf("network=%v", o.Network), func(t *testing.T) {
			cfg, err := NewCache().Policy(o)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DefaultAction != configs.Errno || cfg.DefaultErrnoRet == nil || *cfg.DefaultErrnoRet != uint(unix.EPERM) {
				t.Errorf("default = %v/%v, want Errno/EPERM", cfg.DefaultAction, cfg.DefaultErrnoRet)
			}
			if !slices.Equal(cfg.Architectures, []string{wantArch}) {
				t.Errorf("Architectures = %v, want [%s] (native only)", cfg.Architectures, wantArch)
			}
			if len(cfg.Flags) != 0 || cfg.ListenerPath != "" {
				t.Errorf("unexpected flags %v / listener %q", cfg.Flags, cfg.ListenerPath)
			}
			b, err := enosysBoundary(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d rules, ENOSYS above syscall %d", len(cfg.Syscalls), b)
		})
	}
}

// TestPolicyBuildsForEveryArch resolves every required name with libseccomp
// for each architecture: a name placed in the wrong table fails here.
func TestPolicyBuildsForEveryArch(t *testing.T) {
	for _, a := range testArchs {
		for _, o := range []Options{{}, {Network: true}} {
			t.Run(fmt.Sprintf("%s/network=%v", a.goarch, o.Network), func(t *testing.T) {
				cfg := mustBuild(t, o, a)
				b, err := enosysBoundary(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if b < unix.SYS_CLONE3 {
					t.Errorf("ENOSYS boundary %d is below clone3: new syscalls would pass untested", b)
				}
			})
		}
	}
}

func TestUnsupportedArch(t *testing.T) {
	_, err := archFor("riscv64")
	if !errors.Is(err, ErrUnsupportedArch) {
		t.Fatalf("archFor(riscv64) = %v, want ErrUnsupportedArch", err)
	}
}

// TestTableHygiene: a syscall has one verdict (except allow-if plus
// ignore-if, for the complementary arguments), rules are not repeated, and
// only allow and ignore rules carry argument conditions; ignore rules must.
func TestTableHygiene(t *testing.T) {
	for _, a := range testArchs {
		t.Run(a.goarch, func(t *testing.T) {
			verdicts := map[string]verdict{}
			seen := map[string]bool{}
			for _, r := range a.rules() {
				if r.verdict == ignore && r.when == nil {
					t.Errorf("%s: an ignore rule needs an argument condition", r.name)
				}
				if r.verdict != ignore {
					if v, ok := verdicts[r.name]; ok && v != r.verdict {
						t.Errorf("%s has verdicts %v and %v", r.name, v, r.verdict)
					}
					verdicts[r.name] = r.verdict
				}
				key := r.name
				if r.when != nil {
					key = fmt.Sprintf("%s/%+v", r.name, *r.when)
				}
				if seen[key] {
					t.Errorf("duplicate rule %s", key)
				}
				seen[key] = true
				if r.when != nil && r.verdict != allow && r.verdict != ignore {
					t.Errorf("%s: argument conditions only make sense on allow and ignore rules", r.name)
				}
				if r.scope != always && r.verdict != allow {
					t.Errorf("%s: variant-specific rules must be allow rules", r.name)
				}
			}
		})
	}
}

// mustBlock lists what seccomp.md says the best profiles block; each must
// be denied (EPERM), except the ones with a userspace fallback (ENOSYS).
var mustBlock = map[string]string{
	"keyctl": "EPERM", "add_key": "EPERM", "request_key": "EPERM", "userfaultfd": "EPERM",
	"kexec_load": "EPERM", "kexec_file_load": "EPERM", "bpf": "EPERM", "perf_event_open": "EPERM",
	"ptrace": "EPERM", "process_vm_readv": "EPERM", "process_vm_writev": "EPERM",
	"mount": "EPERM", "umount2": "EPERM", "fsopen": "EPERM", "fsconfig": "EPERM", "fsmount": "EPERM",
	"open_tree": "EPERM", "move_mount": "EPERM", "mount_setattr": "EPERM", "pivot_root": "EPERM",
	"unshare": "EPERM", "setns": "EPERM", "quotactl": "EPERM", "syslog": "EPERM",
	"sethostname": "EPERM", "setdomainname": "EPERM", "settimeofday": "EPERM", "clock_settime": "EPERM",
	"init_module": "EPERM", "finit_module": "EPERM", "delete_module": "EPERM", "reboot": "EPERM",
	"swapon": "EPERM", "swapoff": "EPERM", "acct": "EPERM", "memfd_create": "EPERM",
	"lsm_get_self_attr": "EPERM", "lsm_set_self_attr": "EPERM", "lsm_list_modules": "EPERM",
	"io_uring_setup": "ENOSYS", "io_uring_enter": "ENOSYS", "io_uring_register": "ENOSYS",
	"clone3": "ENOSYS",
	// Not in the notes' list but equally dangerous.
	"open_by_handle_at": "EPERM", "name_to_handle_at": "EPERM", "seccomp": "EPERM",
	"pidfd_getfd": "EPERM", "chroot": "EPERM",
	"execveat": "EPERM", "setuid": "EPERM", "capset": "EPERM", "mincore": "EPERM",
	"iopl": "EPERM", "ioperm": "EPERM", "modify_ldt": "EPERM", "tkill": "EPERM",
	// Issue 9, finding 1: file capabilities and ACLs through xattrs, mknod,
	// and openat2 (its mode is out of the filter's reach; userspace falls
	// back to openat on ENOSYS).
	"setxattr": "EPERM", "lsetxattr": "EPERM", "fsetxattr": "EPERM",
	"removexattr": "EPERM", "lremovexattr": "EPERM", "fremovexattr": "EPERM",
	"mknod": "EPERM", "mknodat": "EPERM", "openat2": "ENOSYS",
}

func TestMustBlock(t *testing.T) {
	for _, a := range testArchs {
		for _, o := range []Options{{}, {Network: true}} {
			cfg := mustBuild(t, o, a)
			for name, want := range mustBlock {
				t.Run(fmt.Sprintf("%s/network=%v/%s", a.goarch, o.Network, name), func(t *testing.T) {
					got := verdictOf(t, cfg, name)
					switch {
					case got == "":
						// Unknown to this libseccomp or absent on this arch:
						// above the boundary (ENOSYS) or nonexistent.
						t.Skipf("%s unknown to libseccomp for %s", name, a.goarch)
					case got != want:
						t.Errorf("%s: %s, want %s", name, got, want)
					}
				})
			}
		}
	}
}

// TestNetworkVariant: the two variants differ by exactly the network calls.
func TestNetworkVariant(t *testing.T) {
	want := []string{"accept", "accept4", "bind", "connect", "getpeername", "getsockname",
		"getsockopt", "listen", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg",
		"setsockopt", "shutdown"}
	for _, a := range testArchs {
		t.Run(a.goarch, func(t *testing.T) {
			off, on := mustBuild(t, Options{}, a), mustBuild(t, Options{Network: true}, a)
			names := func(c *configs.Seccomp) map[string]bool {
				m := map[string]bool{}
				for _, s := range c.Syscalls {
					m[s.Name] = true
				}
				return m
			}
			offNames, onNames := names(off), names(on)
			var extra []string
			for n := range onNames {
				if !offNames[n] {
					extra = append(extra, n)
				}
			}
			for n := range offNames {
				if !onNames[n] {
					t.Errorf("%s is in the no-network policy only", n)
				}
			}
			slices.Sort(extra)
			if !slices.Equal(extra, want) {
				t.Errorf("network adds %v, want %v", extra, want)
			}
			for _, n := range want {
				if got := verdictOf(t, off, n); got != "EPERM" {
					t.Errorf("without network %s: %s, want EPERM", n, got)
				}
				if got := verdictOf(t, on, n); got != "allow" {
					t.Errorf("with network %s: %s, want allow", n, got)
				}
			}
			// send(2) and recv(2) on socketpairs work in both variants;
			// without network sendto must not carry an address.
			for _, tc := range []struct {
				cfg        *configs.Seccomp
				name, want string
			}{
				{off, "sendto", "allow-if"}, {on, "sendto", "allow"},
				{off, "recvfrom", "allow"}, {on, "recvfrom", "allow"},
			} {
				if got := verdictOf(t, tc.cfg, tc.name); got != tc.want {
					t.Errorf("%s (network=%v): %s, want %s", tc.name, tc.cfg == on, got, tc.want)
				}
			}
		})
	}
}

// TestNoGapBelowBoundary: every syscall libseccomp knows between the highest
// allowed one and the ENOSYS boundary is classified explicitly, so a new
// syscall with an ENOSYS fallback in glibc cannot end up with EPERM by
// accident. A newer libseccomp that knows more syscalls makes this fail
// until the new ones are classified in table.go.
func TestNoGapBelowBoundary(t *testing.T) {
	for _, a := range testArchs {
		t.Run(a.goarch, func(t *testing.T) {
			cfg := mustBuild(t, Options{Network: true}, a)
			scmpArch := cfg.Architectures[0]
			b, err := enosysBoundary(cfg)
			if err != nil {
				t.Fatal(err)
			}
			maxAllowed := -1
			named := map[int]bool{}
			for _, s := range cfg.Syscalls {
				nr, ok, err := syscallNumber(s.Name, scmpArch)
				if err != nil || !ok {
					continue
				}
				named[nr] = true
				if s.Action == configs.Allow && nr > maxAllowed {
					maxAllowed = nr
				}
			}
			for nr := maxAllowed + 1; nr <= b; nr++ {
				if named[nr] {
					continue
				}
				if name, err := syscallName(nr, scmpArch); err == nil {
					t.Errorf("syscall %d (%s) lies between the highest allowed syscall (%d) and the ENOSYS boundary (%d) but is not classified",
						nr, name, maxAllowed, b)
				}
			}
		})
	}
}

// TestArgumentRules pins the argument conditions, including the full-width
// comparisons that keep TIOCSTI|1<<32 out (CVE-2019-10063 class).
func TestArgumentRules(t *testing.T) {
	type cond struct {
		index           uint
		op              configs.Operator
		value, valueTwo uint64
		ignore          bool // the rule's action is errno 0 rather than allow
	}
	eq := func(i uint, v uint64) cond { return cond{index: i, op: configs.EqualTo, value: v} }
	masked := func(i uint, mask, v uint64) cond {
		return cond{index: i, op: configs.MaskEqualTo, value: mask, valueTwo: v}
	}
	// Mode rules: no S_ISUID|S_ISGID (06000), and for chmod no S_IWOTH
	// either (06002); O_CREAT|__O_TMPFILE is 0x400040 on both architectures.
	chmod := func(i uint) []cond { return []cond{masked(i, 0o6002, 0)} }
	create := func(flags, mode uint) []cond {
		return []cond{masked(flags, 0x400040, 0), masked(mode, 0o6000, 0)}
	}
	tests := []struct {
		name string
		want []cond
	}{
		{"ioctl", []cond{eq(1, unix.TCGETS), eq(1, unix.TIOCGWINSZ), eq(1, 0x541B), eq(1, 0x5421), eq(1, 0x5451), eq(1, 0x5450)}},
		{"clone", []cond{{index: 0, op: configs.MaskEqualTo, value: 0x7E020000, valueTwo: 0}}},
		{"socket", []cond{eq(0, unix.AF_UNIX), eq(0, unix.AF_INET), eq(0, unix.AF_INET6)}},
		{"socketpair", []cond{eq(0, unix.AF_UNIX)}},
		{"prctl", []cond{eq(0, unix.PR_SET_NAME), eq(0, unix.PR_GET_NAME), eq(0, 0x53564d41), eq(0, unix.PR_GET_DUMPABLE)}},
		{"prlimit64", []cond{eq(0, 0)}},
		{"sendto", []cond{eq(4, 0)}}, // no destination address without network
		{"fchmod", chmod(1)}, {"fchmodat", chmod(2)}, {"chmod", chmod(1)},
		{"openat", create(2, 3)}, {"open", create(1, 2)},
		{"creat", []cond{masked(1, 0o6000, 0)}},
		{"mkdirat", []cond{masked(2, 0o6000, 0)}}, {"mkdir", []cond{masked(1, 0o6000, 0)}},
		{"umask", []cond{masked(0, 0o2, 0o2), {index: 0, op: configs.MaskEqualTo, value: 0o2, valueTwo: 0, ignore: true}}},
		{"fchmodat2", chmod(2)}, // in the config even where libseccomp does not know it
	}
	cfg := mustBuild(t, Options{}, archAMD64)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []cond
			for _, s := range cfg.Syscalls {
				if s.Name != tt.name {
					continue
				}
				ignored := s.Action == configs.Errno && s.ErrnoRet != nil && *s.ErrnoRet == 0
				if (s.Action != configs.Allow && !ignored) || len(s.Args) != 1 {
					t.Fatalf("%s rule = %+v, want one allow (or errno 0) rule per condition", tt.name, s)
				}
				a := s.Args[0]
				got = append(got, cond{a.Index, a.Op, a.Value, a.ValueTwo, ignored})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s conditions = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
}

func TestPolicyReturnsIndependentCopies(t *testing.T) {
	c := NewCache()
	p1, err := c.Policy(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := mustBuild(t, Options{}, nativeArch(t))
	if !reflect.DeepEqual(p1, want) {
		t.Fatal("cached policy differs from a fresh build")
	}
	// Scribble over everything reachable from p1.
	p1.DefaultAction = configs.Allow
	*p1.DefaultErrnoRet = 0
	p1.Architectures[0] = "x32"
	for _, s := range p1.Syscalls {
		s.Name, s.Action = "read", configs.Allow
		if s.ErrnoRet != nil {
			*s.ErrnoRet = 0
		}
		for _, a := range s.Args {
			a.Value, a.ValueTwo = 0, 0
		}
	}
	p1.Syscalls = p1.Syscalls[:1]
	p2, err := c.Policy(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p2, want) {
		t.Fatal("modifying a returned policy changed the cache")
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	var zero Cache // the zero value must work too
	for _, c := range []*Cache{NewCache(), &zero} {
		want := map[Options]*configs.Seccomp{
			{}:              mustBuild(t, Options{}, nativeArch(t)),
			{Network: true}: mustBuild(t, Options{Network: true}, nativeArch(t)),
		}
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := Options{Network: i%2 == 0}
				got, err := c.Policy(o)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want[o]) {
					errs <- fmt.Errorf("Policy(%+v) differs from a fresh build", o)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// TestUnknownSyscallNames: an allowed syscall the linked libseccomp cannot
// resolve fails the build (libcontainer would drop it silently), unless it
// is marked optional; unknown denied names are harmless.
func TestUnknownSyscallNames(t *testing.T) {
	tests := []struct {
		name    string
		extra   rule
		wantErr error
	}{
		{"required allow", rule{name: "no_such_syscall", verdict: allow}, ErrUnknownSyscall},
		{"optional allow", rule{name: "no_such_syscall", verdict: allow, optional: true}, nil},
		{"deny", rule{name: "no_such_syscall", verdict: deny}, nil},
		{"enosys", rule{name: "no_such_syscall", verdict: enosys}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := archAMD64
			a.extra = append(slices.Clip(a.extra), tt.extra)
			_, err := build(Options{}, a)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("build = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
