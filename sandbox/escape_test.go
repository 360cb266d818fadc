package sandbox

import (
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"golang.org/x/sys/unix"
)

// probeProgram is the escape suite's in-sandbox half; see its header.
//
//go:embed testdata/escape/probe.ts
var probeProgram string

// sentinelVar is set in the test's own environment before any sandbox starts:
// no sandbox may ever see it.
const sentinelVar = "CONDUCTOR_SENTINEL_SECRET"

// escapeReport is what probe.ts prints. Sys maps probe names to syscall
// outcomes: >= 0 is success (the value returned), < 0 is -errno.
type escapeReport struct {
	Mode    string            `json:"mode"`
	Network bool              `json:"network"`
	Sys     map[string]int64  `json:"sys"`
	Errors  map[string]string `json:"errors"` // probe groups that threw

	// 1
	Status    string `json:"status"` // /proc/self/status
	UIDMap    string `json:"uidMap"`
	GIDMap    string `json:"gidMap"`
	Setgroups string `json:"setgroups"`
	Limits    string `json:"limits"`
	// 2
	Namespaces map[string]string `json:"namespaces"` // /proc/self/ns/* links
	// 7
	NetDev             string `json:"netDev"`
	DenoConnectTestNet string `json:"denoConnectTestNet"`
	DenoConnectHost    string `json:"denoConnectHost"`
	OwnLoopback        string `json:"ownLoopback"`
	// 8
	FDs     map[string]string `json:"fds"` // fd -> readlink
	NetUnix string            `json:"netUnix"`
	Env     map[string]string `json:"env"`
	Environ string            `json:"environ"`
	// 9
	CwdAtStart     string           `json:"cwdAtStart"`
	DenoCwd        string           `json:"denoCwd"`
	CwdAfterDotDot string           `json:"cwdAfterDotDot"`
	DotDotIsRoot   bool             `json:"dotDotIsRoot"`
	ProcSelfRoot   string           `json:"procSelfRoot"`
	ProcSelfCwd    string           `json:"procSelfCwd"`
	HostPaths      map[string]int64 `json:"hostPaths"`
	RootEntries    []string         `json:"rootEntries"`
	EtcEntries     []string         `json:"etcEntries"`
	Mountinfo      string           `json:"mountinfo"`
	// 10
	ExeLink string `json:"exeLink"`
	// 11
	TmpMarkerAtStart bool             `json:"tmpMarkerAtStart"`
	DevMarkerAtStart bool             `json:"devMarkerAtStart"`
	DevMarkerWritten int64            `json:"devMarkerWritten"`
	Creates          map[string]int64 `json:"creates"` // dir -> outcome of creating a file in it
	Mkdirs           map[string]int64 `json:"mkdirs"`
	Writes           map[string]int64 `json:"writes"`  // existing file -> open(O_WRONLY)
	Unlinks          map[string]int64 `json:"unlinks"` // "unlink f" / "rename f" -> outcome
	CopyMode         string           `json:"copyMode"`
	Loader           string           `json:"loader"`
	ExecTmp          spawnReport      `json:"execTmp"`
	ExecRootControl  spawnReport      `json:"execRootControl"`
	ExecLoaderCtl    spawnReport      `json:"execViaLoaderControl"`
	ExecTmpViaLoader spawnReport      `json:"execTmpViaLoader"`
	DlopenTmp        string           `json:"dlopenTmp"`
	DevCreate        int64            `json:"devCreate"`
	ExecDev          spawnReport      `json:"execDev"`
	// 12
	ProcWrites  map[string]int64                      `json:"procWrites"`
	OOMScoreAdj string                                `json:"oomScoreAdj"`
	Masked      map[string]map[string]json.RawMessage `json:"masked"`
	SysPaths    map[string]int64                      `json:"sysPaths"`
	ProcCgroup  string                                `json:"procCgroup"`
	Kallsyms    []string                              `json:"kallsyms"`
	Iomem       []string                              `json:"iomem"`
	Restricted  map[string]int64                      `json:"procRestricted"` // opened: bytes read
	// 13
	ChildView   string `json:"childView"` // the child's own JSON line
	ChildPid    int    `json:"childPid"`
	ProcPids    []int  `json:"procPids"`
	ChildStatus struct {
		Success bool   `json:"success"`
		Signal  string `json:"signal"`
	} `json:"childStatus"`
	// 18
	Nodename string `json:"nodename"`
	// 19
	Dev map[string]devEntry `json:"dev"`

	// Hostile mode (10). Attempts: target -> -errno of open(O_WRONLY), or
	// 1000000+n when it opened and n bytes were written.
	Passes   int               `json:"passes"`
	Attempts map[string]int64  `json:"attempts"`
	Opened   map[string]string `json:"opened"` // target -> readlink, for those that opened

	// Links mode (22): what planting links in the workspace did, by name.
	Links map[string]int64 `json:"links"`
}

type spawnReport struct {
	Spawned bool   `json:"spawned"`
	Code    int    `json:"code"`
	Stdout  string `json:"stdout"`
	Stderr  string `json:"stderr"`
	Error   string `json:"error"`
}

type devEntry struct {
	Type     string `json:"type"`
	Rdev     uint64 `json:"rdev"`
	Link     string `json:"link"`
	Resolves bool   `json:"resolves"`
}

// sysOutcome names a syscall outcome: "OK" or the errno's name.
func sysOutcome(v int64) string {
	if v >= 0 {
		return "OK"
	}
	if name := unix.ErrnoName(unix.Errno(-v)); name != "" {
		return name
	}
	return fmt.Sprintf("errno(%d)", -v)
}

// escapeSyscalls are the syscall numbers probe.ts uses, for this architecture.
func escapeSyscalls() map[string]uintptr {
	return map[string]uintptr{
		"read": unix.SYS_READ, "write": unix.SYS_WRITE, "openat": unix.SYS_OPENAT, "close": unix.SYS_CLOSE,
		"unlinkat": unix.SYS_UNLINKAT, "mkdirat": unix.SYS_MKDIRAT, "mknodat": unix.SYS_MKNODAT,
		"getcwd": unix.SYS_GETCWD, "chdir": unix.SYS_CHDIR, "uname": unix.SYS_UNAME,
		"mmap": unix.SYS_MMAP, "munmap": unix.SYS_MUNMAP, "mprotect": unix.SYS_MPROTECT,
		"prctl": unix.SYS_PRCTL, "setgroups": unix.SYS_SETGROUPS, "setuid": unix.SYS_SETUID, "capset": unix.SYS_CAPSET,
		"renameat2": unix.SYS_RENAMEAT2, "symlinkat": unix.SYS_SYMLINKAT, "linkat": unix.SYS_LINKAT, "fcntl": unix.SYS_FCNTL, "kill": unix.SYS_KILL,
		"getpid": unix.SYS_GETPID, "gettid": unix.SYS_GETTID, "getsid": unix.SYS_GETSID, "getpgid": unix.SYS_GETPGID, "setsid": unix.SYS_SETSID,
		"ioctl":  unix.SYS_IOCTL,
		"socket": unix.SYS_SOCKET, "connect": unix.SYS_CONNECT, "sendto": unix.SYS_SENDTO,
		"unshare": unix.SYS_UNSHARE, "clone": unix.SYS_CLONE, "clone3": unix.SYS_CLONE3, "setns": unix.SYS_SETNS,
		"mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2, "fsopen": unix.SYS_FSOPEN, "fspick": unix.SYS_FSPICK,
		"fsmount": unix.SYS_FSMOUNT, "move_mount": unix.SYS_MOVE_MOUNT, "mount_setattr": unix.SYS_MOUNT_SETATTR,
		"open_tree": unix.SYS_OPEN_TREE, "pivot_root": unix.SYS_PIVOT_ROOT, "chroot": unix.SYS_CHROOT,
		"io_uring_setup": unix.SYS_IO_URING_SETUP, "io_uring_enter": unix.SYS_IO_URING_ENTER,
		"io_uring_register": unix.SYS_IO_URING_REGISTER,
		"bpf":               unix.SYS_BPF, "perf_event_open": unix.SYS_PERF_EVENT_OPEN, "userfaultfd": unix.SYS_USERFAULTFD,
		"keyctl": unix.SYS_KEYCTL, "add_key": unix.SYS_ADD_KEY, "request_key": unix.SYS_REQUEST_KEY,
		"kexec_load": unix.SYS_KEXEC_LOAD, "kexec_file_load": unix.SYS_KEXEC_FILE_LOAD,
		"memfd_create": unix.SYS_MEMFD_CREATE, "seccomp": unix.SYS_SECCOMP, "personality": unix.SYS_PERSONALITY,
		"name_to_handle_at": unix.SYS_NAME_TO_HANDLE_AT, "open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
		"vmsplice":   unix.SYS_VMSPLICE,
		"exit_group": unix.SYS_EXIT_GROUP,
		"ptrace":     unix.SYS_PTRACE, "process_vm_readv": unix.SYS_PROCESS_VM_READV,
		"process_vm_writev": unix.SYS_PROCESS_VM_WRITEV, "pidfd_open": unix.SYS_PIDFD_OPEN,
		"pidfd_getfd": unix.SYS_PIDFD_GETFD,
		"sethostname": unix.SYS_SETHOSTNAME, "setdomainname": unix.SYS_SETDOMAINNAME,
		"settimeofday": unix.SYS_SETTIMEOFDAY, "clock_settime": unix.SYS_CLOCK_SETTIME, "adjtimex": unix.SYS_ADJTIMEX,
		"reboot": unix.SYS_REBOOT, "init_module": unix.SYS_INIT_MODULE, "finit_module": unix.SYS_FINIT_MODULE,
		"delete_module": unix.SYS_DELETE_MODULE, "swapon": unix.SYS_SWAPON, "swapoff": unix.SYS_SWAPOFF,
		"acct": unix.SYS_ACCT, "syslog": unix.SYS_SYSLOG, "quotactl": unix.SYS_QUOTACTL,
	}
}

// escapeEnv is what the probes' assertions share: the reports of the runs
// made once up front, and the host-side facts they are checked against.
type escapeEnv struct {
	r, rNet       *Runner
	main, net     *escapeReport // the main probe program, without and with network
	hostile       *escapeReport
	hostileRes    *Result
	sentinel      string
	exe           string
	exeHashBefore string
	accepted      *atomic.Int64 // connections the host's loopback listeners accepted
	hostPort      int
	hostPort6     int
	hostPaths     []string
	hostAbstract  string // name of the host's abstract unix socket (without the leading NUL)
	params        map[string]any
	outputs       []string // every byte of output of every run, to grep for the sentinel
}

// variants returns the main reports, labelled, for probes that must hold
// whatever the network policy.
func (e *escapeEnv) variants() []struct {
	name string
	rep  *escapeReport
} {
	return []struct {
		name string
		rep  *escapeReport
	}{{"default", e.main}, {"network", e.net}}
}

// TestEscapeSuite runs the probes of shared/notes/security-probes.md inside
// real sandboxes with deno's permission layer fully open (--allow-all, FFI
// included): every wall asserted here is the OS's, not deno's.
//
// Layout: the non-fatal probes run in one program (testdata/escape/probe.ts)
// twice, without and with network (the seccomp policy differs; the network
// namespace must hold on its own), and once more in a hostile mode that
// writes to every /proc/*/exe and /proc/*/fd/* it can open. The probes whose
// expected outcome is a SIGSYS kill of the whole process each get a sandbox
// of their own. Each subtest then asserts specific errnos and outcomes.
func TestEscapeSuite(t *testing.T) {
	t0 := time.Now()
	e := &escapeEnv{}

	// The sentinel must be in the environment of the process that starts
	// the sandboxes (this one) before any of them starts.
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	e.sentinel = "sentinel-" + hex.EncodeToString(rnd[:])
	t.Setenv(sentinelVar, e.sentinel)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.exe = exe
	e.exeHashBefore = fileSHA256(t, exe)

	// Listeners on the host's loopback: no sandbox may reach them.
	e.accepted = &atomic.Int64{}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("host loopback listener: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptCount(ln, e.accepted)
	e.hostPort = ln.Addr().(*net.TCPAddr).Port
	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		t.Cleanup(func() { ln6.Close() })
		go acceptCount(ln6, e.accepted)
		e.hostPort6 = ln6.Addr().(*net.TCPAddr).Port
	}

	// An abstract unix socket on the host: reachable only from the host's
	// network namespace.
	e.hostAbstract = "conductor-escape-" + hex.EncodeToString(rnd[:6])
	lnu, err := net.Listen("unix", "@"+e.hostAbstract)
	if err != nil {
		t.Fatalf("host abstract unix listener: %v", err)
	}
	t.Cleanup(func() { lnu.Close() })
	go acceptCount(lnu, e.accepted)

	e.r = newTestRunner(t, func(o *Options) { o.DenoFlags = []string{"--allow-all"} })
	e.rNet = newTestRunner(t, func(o *Options) {
		o.DenoFlags = []string{"--allow-all"}
		o.Network = true
	})

	wd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	e.hostPaths = uniqPaths([]string{
		"/home", "/root", "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/work", "/work/main",
		"/run", "/run/conductor", "/var", "/var/run/docker.sock", "/boot", "/opt", "/srv", "/mnt", "/media",
		"/sys", "/bin/sh", "/usr/bin/env", "/etc/conductor", "/var/lib/conductor",
		filepath.Dir(exe), exe, wd, home,
		e.r.opts.StateDir, e.r.stateDir, e.rNet.opts.StateDir,
		e.r.opts.Root.Path, filepath.Dir(e.r.opts.Root.Path),
	})

	loaders := []string{"/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-x86-64.so.2"}
	e.params = map[string]any{
		"nr": escapeSyscalls(), "hostPort": e.hostPort, "hostPort6": e.hostPort6,
		"hostPaths": e.hostPaths, "loaders": loaders, "maskedPaths": maskedPaths,
		"hostAbstract": e.hostAbstract, "hostPid": os.Getpid(),
	}

	// The shared runs. Order matters for probe 11: the hostile run, on the
	// same runner, checks that the main run's /tmp and /dev markers are gone.
	e.main = e.runReport(t, e.r, "main", false)
	e.net = e.runReport(t, e.rNet, "main", true)
	e.hostileRes = e.run(t, e.r, "hostile", false, 20*time.Second)
	e.hostile = parseReport(t, e.hostileRes)

	type probe struct {
		name string
		// skip, if set, says where a probe that applies is covered
		// instead, or why it does not apply to this design yet.
		skip  string
		check func(t *testing.T, e *escapeEnv)
	}
	probes := []probe{
		{name: "01 no privileges", check: probeNoPrivileges},
		{name: "02 namespaces and mounts", check: probeNamespaces},
		{name: "03 kernel attack surface", check: probeKernelSurface},
		{name: "04 foreign ABIs x32", check: fatalProbe("x32")},
		{name: "04 foreign ABIs x32 from a worker thread", check: fatalProbe("x32-worker")},
		{name: "04 foreign ABIs i386 int 0x80", check: fatalProbe("int80")},
		{name: "05 terminal", check: probeTerminal},
		{name: "06 socket families", check: probeSocketFamilies},
		{name: "07 network", check: probeNetwork},
		{name: "08 fds and environment", check: probeFDsAndEnv},
		{name: "09 root and host paths", check: probeRootAndHostPaths},
		{name: "10 exe overwrite", check: probeExeOverwrite},
		{name: "11 writable paths and noexec", check: probeWritable},
		{name: "12 proc and sys", check: probeProcSys},
		{name: "13 other processes", check: probeOtherProcesses},
		{name: "14 fork bomb", skip: "covered by TestHostileRuns/process_bomb (sandbox_test.go): pids.max hit, limitHit=pids"},
		{name: "15 memory bomb", skip: "covered by TestHostileRuns/2_GiB_of_ArrayBuffers and /2_GiB_of_JS_heap (sandbox_test.go): status oom"},
		{name: "16 infinite loop", skip: "covered by TestHostileRuns/infinite_loop and /timer_keeps_running (sandbox_test.go): status timeout"},
		{name: "17 server SIGKILL", skip: "covered by TestServerKilledMidRun (cmd/conductor/main_test.go): no sandbox process 1 s after the server's SIGKILL"},
		{name: "18 host administration", check: probeHostAdmin},
		{name: "19 dev", check: probeDev},
		{name: "20 degraded host", skip: "covered by TestRootless (rootless_test.go): refusal without MCP_CONDUCTOR_ALLOW_DEGRADED, degraded listed in every result"},
		{name: "21 output flood", skip: "covered by TestHostileRuns/1_GB_to_stdout (sandbox_test.go): capped at DefaultMaxOutput, truncated=true"},
		{name: "22 workspace links", check: probeWorkspaceLinks},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			if p.skip != "" {
				t.Skip(p.skip)
			}
			p.check(t, e)
		})
	}

	// Across every run: the sentinel never showed up, the host listeners
	// accepted nothing.
	t.Run("sentinel never seen", func(t *testing.T) {
		for i, out := range e.outputs {
			if strings.Contains(out, e.sentinel) || strings.Contains(out, sentinelVar) {
				t.Errorf("run %d output contains the host's sentinel variable", i)
			}
		}
	})
	t.Logf("escape suite: %d sandbox runs, %s", len(e.outputs), time.Since(t0).Round(time.Millisecond))
}

// devMountReadOnly reports whether the sandbox configuration mounts /dev
// read-only (and checks the flags every configuration must have).
func devMountReadOnly(t *testing.T) bool {
	t.Helper()
	for _, m := range buildConfig(containerSpec{}).Mounts {
		if m.Destination == "/dev" {
			if m.Flags&(unix.MS_NOEXEC|unix.MS_NOSUID) != unix.MS_NOEXEC|unix.MS_NOSUID {
				t.Errorf("/dev mount flags %#x lack noexec or nosuid", m.Flags)
			}
			return m.Flags&unix.MS_RDONLY != 0
		}
	}
	t.Fatalf("the sandbox configuration has no /dev mount")
	return false
}

func acceptCount(ln net.Listener, n *atomic.Int64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n.Add(1)
		c.Close()
	}
}

func uniqPaths(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && s != "/" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// run runs probe.ts in mode on r.
func (e *escapeEnv) run(t *testing.T, r *Runner, mode string, network bool, timeout time.Duration) *Result {
	t.Helper()
	return e.runWith(t, r, mode, network, nil, timeout)
}

// runWith is run with more parameters for probe.ts (extra wins).
func (e *escapeEnv) runWith(t *testing.T, r *Runner, mode string, network bool, extra map[string]any, timeout time.Duration) *Result {
	t.Helper()
	params := map[string]any{"mode": mode, "network": network}
	for k, v := range e.params {
		params[k] = v
	}
	for k, v := range extra {
		params[k] = v
	}
	pj, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	res := runCode(t, r, "const PARAMS = "+string(pj)+";\n"+probeProgram, timeout)
	e.outputs = append(e.outputs, res.Stdout+res.Stderr)
	t.Logf("run %s (network=%v): status %s in %.0f ms", mode, network, res.Status, res.DurationMs)
	return res
}

func (e *escapeEnv) runReport(t *testing.T, r *Runner, mode string, network bool) *escapeReport {
	t.Helper()
	res := e.run(t, r, mode, network, 30*time.Second)
	if res.Status != StatusSuccess {
		t.Fatalf("probe run %s (network=%v) did not succeed: %s %+v\nstdout: %s\nstderr: %s", mode, network, res.Status, res.Error, lastLines(res.Stdout, 10), lastLines(res.Stderr, 20))
	}
	return parseReport(t, res)
}

// parseReport finds the report line in a run's stdout.
func parseReport(t *testing.T, res *Result) *escapeReport {
	t.Helper()
	for _, line := range strings.Split(res.Stdout, "\n") {
		if rest, ok := strings.CutPrefix(line, "ESCAPE-REPORT "); ok {
			var rep escapeReport
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatalf("bad report: %v", err)
			}
			for g, msg := range rep.Errors {
				t.Errorf("probe group %s threw inside the sandbox: %s", g, msg)
			}
			return &rep
		}
	}
	t.Fatalf("no report in output (status %s, error %+v)\nstdout: %s\nstderr: %s", res.Status, res.Error, lastLines(res.Stdout, 10), lastLines(res.Stderr, 20))
	return nil
}

// expectSys asserts the outcome of named syscall probes: each must be one
// of the listed outcomes ("OK" or errno names).
func expectSys(t *testing.T, label string, rep *escapeReport, want map[string][]string) {
	t.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, ok := rep.Sys[n]
		if !ok {
			t.Errorf("[%s] %s: not probed", label, n)
			continue
		}
		got := sysOutcome(v)
		if !slices.Contains(want[n], got) {
			t.Errorf("[%s] %s = %s, want %s", label, n, got, strings.Join(want[n], " or "))
			continue
		}
		t.Logf("[%s] %s -> %s", label, n, got)
	}
}

// expectOutcomes asserts a map of path -> outcome.
func expectOutcomes(t *testing.T, label string, got map[string]int64, want map[string][]string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := got[k]
		if !ok {
			t.Errorf("[%s] %s: not probed", label, k)
			continue
		}
		if o := sysOutcome(v); !slices.Contains(want[k], o) {
			t.Errorf("[%s] %s = %s, want %s", label, k, o, strings.Join(want[k], " or "))
		} else {
			t.Logf("[%s] %s -> %s", label, k, o)
		}
	}
}

func anyOf(names ...string) []string { return names }

// wantSandboxGroups is the Groups line of /proc/self/status the sandbox's
// process must show. As root the sandbox drops every supplementary group.
// Rootless it cannot: the kernel denies setgroups in a user namespace an
// unprivileged process mapped (/proc/<pid>/setgroups "deny"), so the
// caller's own groups stay, seen inside as the one mapped id (the caller's
// gid -> 0) or the overflow gid — and none is added. (Found in a rootless
// user session in the cgroup v2 VM; CI's rootless phase clears the groups.)
func wantSandboxGroups(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		return ""
	}
	gids, err := os.Getgroups()
	if err != nil {
		t.Fatalf("getgroups: %v", err)
	}
	overflow := "65534"
	if b, err := os.ReadFile("/proc/sys/kernel/overflowgid"); err == nil {
		overflow = strings.TrimSpace(string(b))
	}
	var inside []int
	for _, g := range gids {
		if g == os.Getegid() {
			inside = append(inside, 0)
			continue
		}
		n, _ := strconv.Atoi(overflow)
		inside = append(inside, n)
	}
	var out []string
	for _, g := range inside {
		out = append(out, strconv.Itoa(g))
	}
	return sortedIDs(strings.Join(out, " "))
}

// sortedIDs sorts a space-separated list of ids numerically (the kernel
// lists groups in host-id order, not in the order of their ids inside).
func sortedIDs(list string) string {
	f := strings.Fields(list)
	slices.SortFunc(f, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return strings.Join(f, " ")
}

// ---------------------------------------------------------------------------
// The probes.

// 1: no_new_privs, seccomp (the policy and the arch guard), no capabilities,
// a one-id user mapping to an unprivileged host id.
func probeNoPrivileges(t *testing.T, e *escapeEnv) {
	for _, v := range e.variants() {
		fields := map[string]string{}
		for _, line := range strings.Split(v.rep.Status, "\n") {
			if k, val, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(val)
			}
		}
		want := map[string]string{
			"NoNewPrivs": "1", "Seccomp": "2",
			"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "CapPrm": "0000000000000000",
			"CapInh": "0000000000000000", "CapAmb": "0000000000000000",
		}
		for k, w := range want {
			if fields[k] != w {
				t.Errorf("[%s] /proc/self/status %s = %q, want %q", v.name, k, fields[k], w)
			}
		}
		for _, line := range strings.Split(v.rep.Limits, "\n") {
			if strings.HasPrefix(line, "Max core file size") {
				if f := strings.Fields(line); len(f) < 6 || f[4] != "0" || f[5] != "0" {
					t.Errorf("[%s] %q: want soft and hard limit 0", v.name, line)
				}
			}
		}
		if want := wantSandboxGroups(t); sortedIDs(fields["Groups"]) != want {
			t.Errorf("[%s] supplementary groups %q, want %q (none as root; rootless, the caller's own, mapped: they cannot be dropped)",
				v.name, fields["Groups"], want)
		}
		if n, err := strconv.Atoi(fields["Seccomp_filters"]); err != nil || n < 2 {
			t.Errorf("[%s] Seccomp_filters = %q, want >= 2 (arch guard + policy)", v.name, fields["Seccomp_filters"])
		}
		o := escapeOptions(e, v.name)
		wantUID, wantGID := fmt.Sprintf("0 %d 1", o.HostUID), fmt.Sprintf("0 %d 1", o.HostGID)
		if got := strings.Join(strings.Fields(v.rep.UIDMap), " "); got != wantUID {
			t.Errorf("[%s] uid_map = %q, want %q (one id, unprivileged host uid)", v.name, got, wantUID)
		}
		if got := strings.Join(strings.Fields(v.rep.GIDMap), " "); got != wantGID {
			t.Errorf("[%s] gid_map = %q, want %q", v.name, got, wantGID)
		}
		eperm := anyOf("EPERM")
		expectSys(t, v.name, v.rep, map[string][]string{
			"prctl(PR_SET_DUMPABLE, 1)": eperm, "prctl(PR_SET_PTRACER, ANY)": eperm,
			"prctl(PR_CAPBSET_READ, 0)": eperm, "prctl(PR_CAP_AMBIENT, RAISE)": eperm, "prctl(PR_SET_MM)": eperm,
			"setgroups(0)": eperm, "setuid(0)": eperm, "capset": eperm,
		})
		t.Logf("[%s] NoNewPrivs=%s Seccomp=%s Seccomp_filters=%s CapEff=%s CapBnd=%s uid_map=%q setgroups=%q",
			v.name, fields["NoNewPrivs"], fields["Seccomp"], fields["Seccomp_filters"], fields["CapEff"], fields["CapBnd"],
			strings.Join(strings.Fields(v.rep.UIDMap), " "), strings.TrimSpace(v.rep.Setgroups))
	}
}

// escapeOptions returns the options of the runner a probe variant ran under.
func escapeOptions(e *escapeEnv, variant string) Options {
	if variant == "network" {
		return e.rNet.opts
	}
	return e.r.opts
}

// 2: no new namespaces, no mounts, no pivot_root.
func probeNamespaces(t *testing.T, e *escapeEnv) {
	eperm := anyOf("EPERM")
	want := map[string][]string{
		"unshare(NEWUSER|NEWNS)": eperm,
		"clone(NEWUSER|FS)":      eperm,
		// clone3 gets ENOSYS so that glibc falls back to clone, where the
		// namespace flags are checked.
		"clone3":                    anyOf("ENOSYS"),
		"setns(net)":                eperm,
		"setns(user)":               eperm,
		"mount(tmpfs on /tmp)":      eperm,
		"mount(bind / on /tmp)":     eperm,
		"umount2(/proc/timer_list)": eperm,
		"umount2(/proc/sys)":        eperm,
		"fsopen(tmpfs)":             eperm,
		"fspick(/)":                 eperm,
		"fsmount":                   eperm,
		"move_mount":                eperm,
		"mount_setattr(/)":          eperm,
		"open_tree(/, CLONE)":       eperm,
		"pivot_root(/tmp,/tmp)":     eperm,
		"chroot(/tmp)":              eperm,
	}
	for _, ns := range []string{"NEWUSER", "NEWNS", "NEWNET", "NEWPID", "NEWIPC", "NEWUTS", "NEWCGROUP", "NEWTIME"} {
		want["unshare("+ns+")"] = eperm
		if ns != "NEWTIME" {
			want["clone("+ns+"|THREAD)"] = eperm
		}
	}
	for _, v := range e.variants() {
		expectSys(t, v.name, v.rep, want)
		// Every namespace but time is the sandbox's own (the design does
		// not unshare time: it only offsets CLOCK_MONOTONIC/BOOTTIME).
		for ns, inside := range v.rep.Namespaces {
			host, err := os.Readlink("/proc/self/ns/" + ns)
			if err != nil {
				continue // this kernel lacks the namespace
			}
			shared := inside == host
			if shared != (ns == "time") {
				t.Errorf("[%s] %s namespace: sandbox %s, host %s (shared=%v)", v.name, ns, inside, host, shared)
			}
		}
		if len(v.rep.Namespaces) != 8 {
			t.Errorf("[%s] namespaces probed: %v", v.name, v.rep.Namespaces)
		}
		t.Logf("[%s] namespaces: %v", v.name, v.rep.Namespaces)
	}
}

// 3: io_uring, bpf, perf, userfaultfd, keys, kexec and friends.
func probeKernelSurface(t *testing.T, e *escapeEnv) {
	eperm := anyOf("EPERM")
	want := map[string][]string{
		"io_uring_setup":    anyOf("ENOSYS"),
		"io_uring_enter":    anyOf("ENOSYS"),
		"io_uring_register": anyOf("ENOSYS"),
		"bpf(MAP_CREATE)":   eperm, "bpf(PROG_LOAD)": eperm,
		"perf_event_open": eperm, "userfaultfd": eperm,
		"keyctl(GET_KEYRING_ID)": eperm, "add_key(user)": eperm, "request_key(user)": eperm,
		"kexec_load": eperm, "kexec_file_load": eperm,
		"memfd_create": eperm, "seccomp(GET_ACTION_AVAIL)": eperm, "personality(query)": eperm,
		"name_to_handle_at(/)": eperm, "open_by_handle_at": eperm, "vmsplice": eperm,
		"mknodat(/tmp/null, chr 1:3)": eperm,
		// Newer than the policy: EPERM where the linked libseccomp knows
		// the name, ENOSYS above the policy's highest syscall.
		"setxattrat": anyOf("EPERM", "ENOSYS"), "removexattrat": anyOf("EPERM", "ENOSYS"),
		"open_tree_attr": anyOf("EPERM", "ENOSYS"), "file_setattr": anyOf("EPERM", "ENOSYS"),
		"syscall 999": anyOf("ENOSYS"),
	}
	for _, v := range e.variants() {
		expectSys(t, v.name, v.rep, want)
	}
}

// 4: foreign-ABI syscalls end the whole process with SIGSYS, in a sandbox of
// their own, well before the run's timeout (a KILL_THREAD would hang deno).
func fatalProbe(mode string) func(t *testing.T, e *escapeEnv) {
	return func(t *testing.T, e *escapeEnv) {
		if runtime.GOARCH != "amd64" {
			t.Skipf("x32 and i386 ABIs exist on amd64 only (GOARCH=%s)", runtime.GOARCH)
		}
		const timeout = 20 * time.Second
		t0 := time.Now()
		res := e.run(t, e.r, mode, false, timeout)
		took := time.Since(t0)
		if res.Status != StatusKilled || res.Signal != "SIGSYS" {
			t.Fatalf("status %s signal %q (error %+v), want killed by SIGSYS\nstdout: %s\nstderr: %s",
				res.Status, res.Signal, res.Error, lastLines(res.Stdout, 5), lastLines(res.Stderr, 5))
		}
		if strings.Contains(res.Stdout, "SURVIVED") {
			t.Errorf("the process ran on after the foreign-ABI syscall: %s", res.Stdout)
		}
		before := map[string]string{"x32": "before x32 syscall", "int80": "before int 0x80", "x32-worker": "worker before x32 syscall: thread "}[mode]
		if !strings.Contains(res.Stdout, before) {
			t.Errorf("the probe did not reach its syscall (stdout %q)", res.Stdout)
		}
		if took > timeout/2 {
			t.Errorf("the kill took %s: the process hung before dying", took)
		}
		if res.Error == nil || !strings.Contains(res.Error.Message, "forbidden system call") {
			t.Errorf("result error %+v does not name a forbidden system call", res.Error)
		}
		t.Logf("%s: status=%s signal=%s after %s", mode, res.Status, res.Signal, took.Round(time.Millisecond))
	}
}

// 5: no terminal injection, no controlling terminal, own session.
func probeTerminal(t *testing.T, e *escapeEnv) {
	want := map[string][]string{
		"ioctl(0, TIOCSTI)":       anyOf("EPERM"),
		"ioctl(0, TIOCSTI|1<<32)": anyOf("EPERM"),
		"ioctl(1, TIOCSTI)":       anyOf("EPERM"),
		"ioctl(0, TIOCLINUX)":     anyOf("EPERM"),
		"ioctl(0, TIOCSCTTY)":     anyOf("EPERM"),
		// Control: an allowed ioctl reaches the kernel, which says stdin
		// (/dev/null) is no terminal; so the EPERMs above are the filter's.
		"ioctl(0, TCGETS)": anyOf("ENOTTY"),
		"open(/dev/tty)":   anyOf("ENXIO"),
		"setsid":           anyOf("EPERM"),
	}
	for _, v := range e.variants() {
		expectSys(t, v.name, v.rep, want)
		pid, sid, pgid := v.rep.Sys["getpid"], v.rep.Sys["getsid(0)"], v.rep.Sys["getpgid(0)"]
		if pid != 1 || sid != pid || pgid != pid {
			t.Errorf("[%s] getpid=%d getsid=%d getpgid=%d, want deno as pid 1 leading its own session and group", v.name, pid, sid, pgid)
		}
		t.Logf("[%s] pid=%d sid=%d pgid=%d", v.name, pid, sid, pgid)
	}
}

// 6: only AF_UNIX/AF_INET/AF_INET6 sockets; no raw IP without CAP_NET_RAW.
func probeSocketFamilies(t *testing.T, e *escapeEnv) {
	eperm := anyOf("EPERM")
	want := map[string][]string{
		"socket(AF_NETLINK)": eperm, "socket(AF_PACKET)": eperm, "socket(AF_VSOCK)": eperm,
		"socket(AF_ALG)": eperm, "socket(AF_KEY)": eperm, "socket(AF_BLUETOOTH)": eperm, "socket(AF_XDP)": eperm,
		"socket(AF_INET raw)": eperm, "socket(AF_INET6 raw)": eperm, "socket(AF_NETLINK|1<<32)": eperm,
		// ICMP "ping" sockets: the family is allowed, but a fresh network
		// namespace's net.ipv4.ping_group_range admits no group.
		"socket(AF_INET ping)": anyOf("EACCES"),
		// Controls: the allowed families work.
		"socket(AF_UNIX stream)": anyOf("OK"), "socket(AF_INET stream)": anyOf("OK"),
	}
	for _, v := range e.variants() {
		expectSys(t, v.name, v.rep, want)
	}
}

// 7: loopback only, nothing routable, the host's loopback unreachable; the
// network namespace holds even when seccomp allows network calls.
func probeNetwork(t *testing.T, e *escapeEnv) {
	for _, v := range e.variants() {
		var ifaces []string
		for _, line := range strings.Split(v.rep.NetDev, "\n") {
			if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
				ifaces = append(ifaces, strings.TrimSpace(name))
			}
		}
		if !slices.Equal(ifaces, []string{"lo"}) {
			t.Errorf("[%s] interfaces in /proc/net/dev = %v, want only lo", v.name, ifaces)
		}
	}
	// Without network the filter denies connect and addressed sendto.
	def := map[string][]string{
		"connect(192.0.2.1:80)":              anyOf("EPERM"),
		"connect(host 127.0.0.1 listener)":   anyOf("EPERM"),
		"connect([2001:db8::1]:80)":          anyOf("EPERM"),
		"sendto(udp 192.0.2.1:53)":           anyOf("EPERM"),
		"connect(host abstract unix socket)": anyOf("EPERM"),
	}
	// With network, the empty namespace is the wall: no route anywhere but
	// lo, and lo is the sandbox's own, where nothing listens.
	withNet := map[string][]string{
		"connect(192.0.2.1:80)":            anyOf("ENETUNREACH"),
		"connect(host 127.0.0.1 listener)": anyOf("ECONNREFUSED"),
		"connect([2001:db8::1]:80)":        anyOf("ENETUNREACH"),
		"sendto(udp 192.0.2.1:53)":         anyOf("ENETUNREACH"),
		// Abstract unix sockets are per network namespace.
		"connect(host abstract unix socket)": anyOf("ECONNREFUSED"),
	}
	if e.hostPort6 != 0 {
		def["connect(host [::1] listener)"] = anyOf("EPERM")
		withNet["connect(host [::1] listener)"] = anyOf("ECONNREFUSED")
	}
	expectSys(t, "default", e.main, def)
	expectSys(t, "network", e.net, withNet)

	// deno's own API, with --allow-all.
	checks := []struct {
		label, got, want string
	}{
		{"default Deno.connect(192.0.2.1:80)", e.main.DenoConnectTestNet, "(os error 1)"},
		{"default Deno.connect(host 127.0.0.1 listener)", e.main.DenoConnectHost, "(os error 1)"},
		{"network Deno.connect(192.0.2.1:80)", e.net.DenoConnectTestNet, "(os error 101)"},
		{"network Deno.connect(host 127.0.0.1 listener)", e.net.DenoConnectHost, "(os error 111)"},
		{"default Deno.listen on the sandbox's loopback", e.main.OwnLoopback, "(os error 1)"},
		// The sandbox's loopback is its own: it can listen on the very
		// port the host's listener holds, and connect to itself there.
		{"network Deno.listen on the sandbox's loopback", e.net.OwnLoopback, "listened and connected"},
	}
	for _, c := range checks {
		if !strings.Contains(c.got, c.want) {
			t.Errorf("%s = %q, want it to contain %q", c.label, c.got, c.want)
		} else {
			t.Logf("%s -> %s", c.label, c.got)
		}
	}
	if n := e.accepted.Load(); n != 0 {
		t.Errorf("the host's loopback and abstract-socket listeners accepted %d connections from sandboxes", n)
	}
}

// fdTargetOK matches what an fd of deno may point to: its stdio and channel
// pipes, its event loop, its AF_UNIX socketpair, and in-sandbox paths.
var fdTargetOK = regexp.MustCompile(`^(pipe:\[\d+\]|socket:\[\d+\]|anon_inode:\[(eventpoll|eventfd|timerfd|signalfd|pidfd)\]|anon_inode:inotify|/dev/(null|urandom|random)|/proc/(self|1|thread-self)(/.*)?)$`)

// 8: only the fds the design hands in, plus deno's own; no host variable.
func probeFDsAndEnv(t *testing.T, e *escapeEnv) {
	wantEnv := map[string]string{}
	// The sandbox's own variables and, as data, the root's programs' (Options.Env, the
	// tools' CA bundle variables).
	own := append(sandboxEnv(e.r.opts.Root.DenoDir, ""), e.r.opts.Env...)
	for _, kv := range append(own, caBundleEnv(e.r.opts, false, "")...) {
		k, v, _ := strings.Cut(kv, "=")
		wantEnv[k] = v
	}
	if e.r.opts.Outputs.TotalBytes > 0 {
		wantEnv[config.OutputsEnv] = config.OutputsDir // the run's outputs directory
	}
	for _, v := range e.variants() {
		rep := v.rep
		fds := make([]int, 0, len(rep.FDs))
		for k := range rep.FDs {
			n, _ := strconv.Atoi(k)
			fds = append(fds, n)
		}
		sort.Ints(fds)
		var desc []string
		for _, fd := range fds {
			desc = append(desc, fmt.Sprintf("%d=%s", fd, rep.FDs[strconv.Itoa(fd)]))
		}
		t.Logf("[%s] fds: %s", v.name, strings.Join(desc, " "))
		if rep.FDs["0"] != "/dev/null" {
			t.Errorf("[%s] fd 0 = %q, want /dev/null", v.name, rep.FDs["0"])
		}
		for _, fd := range []string{"1", "2", "3", "4"} {
			if !strings.HasPrefix(rep.FDs[fd], "pipe:[") {
				t.Errorf("[%s] fd %s = %q, want the pipe the host handed in", v.name, fd, rep.FDs[fd])
			}
		}
		// The socket inodes must all be AF_UNIX sockets of the sandbox's
		// own namespace, i.e. listed in its /proc/net/unix.
		unixInodes := map[string]bool{}
		for _, line := range strings.Split(rep.NetUnix, "\n")[1:] {
			if f := strings.Fields(line); len(f) >= 7 {
				unixInodes[f[6]] = true
			}
		}
		hostMarkers := []string{e.r.opts.StateDir, e.rNet.opts.StateDir, e.r.opts.Root.Path, filepath.Dir(e.exe), "/work", "/run/conductor"}
		for _, fd := range fds {
			target := rep.FDs[strconv.Itoa(fd)]
			if strings.HasPrefix(target, "ERROR") {
				continue // the directory handle of the listing itself, closed by the time of readlink
			}
			if !fdTargetOK.MatchString(target) {
				t.Errorf("[%s] fd %d points to %q: not a pipe, socket, event fd or in-sandbox path", v.name, fd, target)
			}
			for _, m := range hostMarkers {
				if strings.Contains(target, m) {
					t.Errorf("[%s] fd %d points to a host path: %q", v.name, fd, target)
				}
			}
			if ino, ok := strings.CutPrefix(target, "socket:["); ok {
				ino = strings.TrimSuffix(ino, "]")
				if !unixInodes[ino] {
					t.Errorf("[%s] fd %d is socket %s, which is not an AF_UNIX socket of the sandbox (a socket from the host?)", v.name, fd, ino)
				}
			}
		}

		// The environment is exactly the documented one.
		if len(rep.Env) != len(wantEnv) {
			t.Errorf("[%s] environment has %d variables, want %d: %v", v.name, len(rep.Env), len(wantEnv), rep.Env)
		}
		for k, w := range wantEnv {
			if rep.Env[k] != w {
				t.Errorf("[%s] env %s = %q, want %q", v.name, k, rep.Env[k], w)
			}
		}
		for k := range rep.Env {
			if _, ok := wantEnv[k]; !ok {
				t.Errorf("[%s] env has undocumented variable %s", v.name, k)
			}
		}
		if _, ok := rep.Env[sentinelVar]; ok || strings.Contains(rep.Environ, e.sentinel) {
			t.Errorf("[%s] the host's %s reached the sandbox", v.name, sentinelVar)
		}
	}
}

// 9: the root is the sandbox's; no host path is there.
func probeRootAndHostPaths(t *testing.T, e *escapeEnv) {
	for _, v := range e.variants() {
		rep := v.rep
		if rep.CwdAtStart != "/tmp" || rep.DenoCwd != "/tmp" {
			t.Errorf("[%s] getcwd = %q, Deno.cwd = %q, want /tmp", v.name, rep.CwdAtStart, rep.DenoCwd)
		}
		if rep.CwdAfterDotDot != "/" || !rep.DotDotIsRoot {
			t.Errorf("[%s] after chdir(\"..\") x32 getcwd = %q (/../../.. is / : %v), want / ", v.name, rep.CwdAfterDotDot, rep.DotDotIsRoot)
		}
		if rep.ProcSelfRoot != "/" || rep.ProcSelfCwd != "/tmp" {
			t.Errorf("[%s] /proc/self/root -> %q, /proc/self/cwd -> %q, want / and /tmp", v.name, rep.ProcSelfRoot, rep.ProcSelfCwd)
		}
		want := map[string][]string{}
		for _, p := range e.hostPaths {
			want[p] = anyOf("ENOENT")
		}
		expectOutcomes(t, v.name+" host path", rep.HostPaths, want)
		wantRoot := []string{"conductor", "deno-dir", "dev", "etc", "lib", "lib64", "outputs", "proc", "tmp", "usr"}
		if !slices.Equal(rep.RootEntries, wantRoot) {
			t.Errorf("[%s] / holds %v, want exactly %v", v.name, rep.RootEntries, wantRoot)
		}
		wantEtc := []string{"group", "hosts", "nsswitch.conf", "passwd", "resolv.conf"}
		if rest, ok := strings.CutPrefix(rootTools.CABundle, "/etc/"); ok {
			// The CLI tools' CA bundle (helpers_test.go), e.g. /etc/ssl/certs/...
			wantEtc = append(wantEtc, strings.Split(rest, "/")[0])
		}
		for _, prog := range rootPrograms {
			// What a program of the root brings into /etc as its data (Debian's matplotlib reads
			// its configuration from /etc/matplotlibrc only).
			for _, d := range prog.Data {
				if rest, ok := strings.CutPrefix(d, "/etc/"); ok && !slices.Contains(wantEtc, strings.Split(rest, "/")[0]) {
					wantEtc = append(wantEtc, strings.Split(rest, "/")[0])
				}
			}
		}
		slices.Sort(wantEtc)
		if !slices.Equal(rep.EtcEntries, wantEtc) {
			t.Errorf("[%s] /etc holds %v, want exactly %v", v.name, rep.EtcEntries, wantEtc)
		}
		t.Logf("[%s] cwd=%s after ..=%s root=%v etc=%v", v.name, rep.CwdAtStart, rep.CwdAfterDotDot, rep.RootEntries, rep.EtcEntries)
		// Not a wall, but worth knowing: a bind mount's root field in
		// mountinfo names its source path on the host.
		for _, line := range strings.Split(rep.Mountinfo, "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == "/" {
				t.Logf("[%s] note: /proc/self/mountinfo shows the root's host path %q (a name only: the path is not reachable)", v.name, f[3])
			}
		}
	}
}

// 10: no process of the sandbox can open an exe for writing, and the host
// binary is unchanged after a run that tried every /proc/*/exe and fd.
func probeExeOverwrite(t *testing.T, e *escapeEnv) {
	// Which of these the kernel says depends on the order of its checks: the
	// root's files are owned by an id unmapped in the sandbox (EACCES before
	// the read-only mount's EROFS); a running binary is ETXTBSY.
	denied := anyOf("EACCES", "EROFS", "ETXTBSY")
	want := map[string][]string{
		"open(/proc/self/exe, O_WRONLY)":               denied,
		"open(/proc/self/exe, O_RDWR)":                 denied,
		"open(/proc/self/exe, O_WRONLY|O_TRUNC)":       denied,
		"open(/proc/1/exe, O_WRONLY)":                  denied,
		"open(/usr/bin/deno, O_WRONLY)":                denied,
		"reopen(/proc/self/fd/<O_PATH exe>, O_WRONLY)": denied,
	}
	for _, v := range e.variants() {
		expectSys(t, v.name, v.rep, want)
		if v.rep.ExeLink != "/usr/bin/deno" {
			t.Errorf("[%s] /proc/self/exe -> %q, want /usr/bin/deno", v.name, v.rep.ExeLink)
		}
	}

	h := e.hostile
	res := e.hostileRes
	// The hostile run leaves its own channel (fd 3, 4) alone: junk there
	// ends the execution at once by design, which TestHostileChannel covers.
	// Every other write it tries must fail, and the run must finish.
	if res.Status != StatusSuccess {
		t.Errorf("hostile run: status %s error %+v, want it to finish and report", res.Status, res.Error)
	}
	var exeTargets, fdOpened, fdDenied int
	byOutcome := map[string]int{}
	examples := map[string][]string{}
	targets := make([]string, 0, len(h.Attempts))
	for target := range h.Attempts {
		targets = append(targets, target)
	}
	sort.Strings(targets)
	for _, target := range targets {
		v := h.Attempts[target]
		o := sysOutcome(v)
		if v >= 1000000 {
			o = "OPENED"
		}
		byOutcome[o]++
		if len(examples[o]) < 4 {
			examples[o] = append(examples[o], target)
		}
		switch {
		case strings.HasSuffix(target, "/exe"):
			exeTargets++
			if v >= 0 {
				t.Errorf("hostile run opened %s (-> %s) for writing", target, h.Opened[target])
			}
		case strings.Contains(target, "/map_files/"):
			if v >= 0 {
				t.Errorf("hostile run opened %s (-> %s) for writing", target, h.Opened[target])
			}
		case v >= 0:
			fdOpened++
			// Reopening an fd for writing is fine only for pipes and the
			// in-sandbox null device: never a file, least of all a host one.
			if link := h.Opened[target]; !regexp.MustCompile(`^(pipe:\[\d+\]|/dev/null)$`).MatchString(link) {
				t.Errorf("hostile run opened %s -> %q for writing", target, link)
			}
		default:
			fdDenied++
		}
	}
	for _, pid := range []int{1, h.ChildPid} {
		if _, ok := h.Attempts[fmt.Sprintf("/proc/%d/exe", pid)]; !ok || pid == 0 {
			t.Errorf("hostile run did not try /proc/%d/exe (deno is 1, its child %d)", pid, h.ChildPid)
		}
	}
	t.Logf("hostile run: %d passes, %d targets (%d exe), outcomes %v; fds reopened for writing: %d (pipes/null only), denied: %d",
		h.Passes, len(h.Attempts), exeTargets, byOutcome, fdOpened, fdDenied)
	t.Logf("hostile run, examples by outcome: %v", examples)
	if after := fileSHA256(t, e.exe); after != e.exeHashBefore {
		t.Errorf("the host binary %s changed during the suite: sha256 %s -> %s", e.exe, e.exeHashBefore, after)
	} else {
		t.Logf("host binary %s sha256 unchanged: %s", e.exe, after)
	}
}

// 11: nothing persistent is writable; /tmp (and /dev) are per-run and noexec.
func probeWritable(t *testing.T, e *escapeEnv) {
	// /dev is the root's own /dev bound onto itself. Whether it is writable
	// follows the sandbox's own mount flags, so the expectation is read from
	// the configuration the sandboxes are built from.
	devRO := devMountReadOnly(t)
	devWant := anyOf("OK")
	if devRO {
		devWant = anyOf("EROFS")
	}
	t.Logf("/dev mounted read-only by configuration: %v", devRO)
	for _, v := range e.variants() {
		rep := v.rep
		ro := anyOf("EROFS")
		expectOutcomes(t, v.name+" create file in", rep.Creates, map[string][]string{
			"/": ro, "/usr": ro, "/usr/bin": ro, "/usr/lib": ro, "/lib": ro, "/lib64": ro, "/etc": ro,
			"/conductor": ro, "/deno-dir": ro,
			// procfs has no create operation: the lookup of a new name fails.
			"/proc": anyOf("ENOENT"), "/proc/self": anyOf("ENOENT"),
			// /tmp is a per-run tmpfs, gone after the run; /dev is the
			// root's, writable only if its configuration says so.
			"/tmp": anyOf("OK"), "/dev": devWant,
		})
		expectOutcomes(t, v.name+" mkdir in", rep.Mkdirs, map[string][]string{
			"/": ro, "/usr/bin": ro, "/deno-dir": ro, "/etc": ro, "/dev": devWant, "/tmp": anyOf("OK"),
		})
		// Existing files: the owner is unmapped, so permission fails first.
		// Rootless, the sandbox's root owns the root's files (they map to it),
		// so the running deno answers ETXTBSY instead of EACCES; still denied.
		denied := anyOf("EACCES", "EROFS", "ETXTBSY")
		want := map[string][]string{}
		for f := range rep.Writes {
			want[f] = denied
		}
		if len(want) < 6 {
			t.Errorf("[%s] only %d existing files probed for writing", v.name, len(want))
		}
		expectOutcomes(t, v.name+" open existing O_WRONLY", rep.Writes, want)
		want = map[string][]string{}
		for k := range rep.Unlinks {
			want[k] = ro
		}
		if len(want) < 10 {
			t.Errorf("[%s] only %d unlink/rename probes", v.name, len(want))
		}
		expectOutcomes(t, v.name, rep.Unlinks, want)
		expectSys(t, v.name, rep, map[string][]string{"mknodat(/dev/conductor-null, chr 1:3)": anyOf("EPERM")})

		// noexec on /tmp: direct exec, the dynamic-loader trick, mmap/mprotect.
		if rep.CopyMode != "755" {
			t.Errorf("[%s] copy in /tmp has mode %s, want 755 (the exec probe needs the x bits)", v.name, rep.CopyMode)
		}
		if !rep.ExecRootControl.Spawned || rep.ExecRootControl.Code != 0 {
			t.Errorf("[%s] control: %s --version from the root failed: %+v", v.name, rep.Loader, rep.ExecRootControl)
		}
		if !rep.ExecLoaderCtl.Spawned || rep.ExecLoaderCtl.Code != 0 || !strings.Contains(rep.ExecLoaderCtl.Stdout, "GNU C Library") {
			t.Errorf("[%s] control: %s <root's libc> failed: %+v", v.name, rep.Loader, rep.ExecLoaderCtl)
		}
		if rep.ExecTmp.Spawned || !strings.Contains(rep.ExecTmp.Error, "os error 13") {
			t.Errorf("[%s] exec of an executable file in /tmp = %+v, want EACCES (os error 13)", v.name, rep.ExecTmp)
		}
		if !rep.ExecTmpViaLoader.Spawned || rep.ExecTmpViaLoader.Code == 0 || !strings.Contains(rep.ExecTmpViaLoader.Stderr, "failed to map segment") {
			t.Errorf("[%s] %s /tmp/<copy> = %+v, want the loader to fail mapping it", v.name, rep.Loader, rep.ExecTmpViaLoader)
		}
		if !strings.Contains(rep.DlopenTmp, "failed to map segment") {
			t.Errorf("[%s] Deno.dlopen of a library copied to /tmp = %q, want a failure to map it", v.name, rep.DlopenTmp)
		} else {
			t.Logf("[%s] Deno.dlopen(/tmp copy) -> %s", v.name, rep.DlopenTmp)
		}
		expectSys(t, v.name, rep, map[string][]string{
			"mmap(/tmp file, PROT_EXEC)":        anyOf("EPERM"),
			"mprotect(/tmp mapping, PROT_EXEC)": anyOf("EACCES"),
		})
		switch {
		case devRO && sysOutcome(rep.DevCreate) != "EROFS":
			t.Errorf("[%s] creating an executable in the read-only /dev: %s, want EROFS", v.name, sysOutcome(rep.DevCreate))
		case devRO:
		case rep.DevCreate < 0:
			t.Errorf("[%s] could not create a file in the writable /dev: %s", v.name, sysOutcome(rep.DevCreate))
		case rep.ExecDev.Spawned || !strings.Contains(rep.ExecDev.Error, "os error 13"):
			t.Errorf("[%s] exec of an executable file in /dev = %+v, want EACCES (os error 13)", v.name, rep.ExecDev)
		}
		t.Logf("[%s] exec /tmp: %s; via loader: exit %d %q; exec /dev: %s", v.name, rep.ExecTmp.Error,
			rep.ExecTmpViaLoader.Code, strings.TrimSpace(rep.ExecTmpViaLoader.Stderr), rep.ExecDev.Error)
	}
	// Persistence: the hostile run, on the same runner after the main run,
	// must not find the main run's markers.
	if e.main.TmpMarkerAtStart || e.net.TmpMarkerAtStart || e.main.DevMarkerAtStart {
		t.Errorf("a marker existed before any run wrote one")
	}
	if o := sysOutcome(e.main.DevMarkerWritten); !slices.Contains(devWant, o) {
		t.Errorf("main run's /dev marker: %s, want %s", o, devWant[0])
	}
	if e.hostile.TmpMarkerAtStart || e.hostile.DevMarkerAtStart {
		t.Errorf("run N+1 saw run N's marker: /tmp %v, /dev %v", e.hostile.TmpMarkerAtStart, e.hostile.DevMarkerAtStart)
	}
}

// 12: /proc's dangerous files read-only or masked; no /sys.
func probeProcSys(t *testing.T, e *escapeEnv) {
	for _, v := range e.variants() {
		rep := v.rep
		denied := anyOf("EROFS", "EACCES")
		want := map[string][]string{
			"/proc/sys/kernel/core_pattern":  denied,
			"/proc/sysrq-trigger":            denied,
			"/proc/sys/kernel/hostname":      denied,
			"/proc/sys/net/ipv4/ip_forward":  denied,
			"/proc/sys/vm/overcommit_memory": denied,
		}
		for p := range want {
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				want[p] = anyOf("ENOENT") // this kernel has no such file (e.g. no CONFIG_MAGIC_SYSRQ)
			}
		}
		expectOutcomes(t, v.name+" open O_WRONLY", rep.ProcWrites, want)
		expectSys(t, v.name, rep, map[string][]string{
			"write(/proc/self/oom_score_adj, -1000)": anyOf("EACCES"),
		})
		if rep.OOMScoreAdj != "1000" {
			t.Errorf("[%s] oom_score_adj = %q, want 1000", v.name, rep.OOMScoreAdj)
		}
		for _, p := range maskedPaths {
			m, ok := rep.Masked[p]
			if !ok {
				t.Errorf("[%s] masked path %s not probed", v.name, p)
				continue
			}
			if _, isDir := m["dir"]; isDir {
				var entries []string
				_ = json.Unmarshal(m["entries"], &entries)
				if len(entries) != 0 {
					t.Errorf("[%s] masked directory %s lists %v", v.name, p, entries)
				}
				t.Logf("[%s] %s: empty directory", v.name, p)
				continue
			}
			var open int64
			_ = json.Unmarshal(m["open"], &open)
			if open < 0 {
				if o := sysOutcome(open); o != "ENOENT" && o != "EACCES" && o != "EPERM" {
					t.Errorf("[%s] masked %s: open = %s", v.name, p, o)
				}
				t.Logf("[%s] %s: open -> %s", v.name, p, sysOutcome(open))
				continue
			}
			var n int64
			_ = json.Unmarshal(m["read"], &n)
			if n != 0 {
				t.Errorf("[%s] masked %s: read %d bytes (%s), want 0", v.name, p, n, sysOutcome(n))
			}
			t.Logf("[%s] %s: opened, read %d bytes", v.name, p, n)
		}
		expectOutcomes(t, v.name, rep.SysPaths, map[string][]string{
			"/sys": anyOf("ENOENT"), "/sys/fs/cgroup": anyOf("ENOENT"), "/sys/kernel": anyOf("ENOENT"),
		})
		// No kernel addresses: every listed address reads as zero.
		if len(v.rep.Kallsyms) < 2 {
			t.Errorf("[%s] /proc/kallsyms: %q", v.name, v.rep.Kallsyms)
		}
		for _, line := range v.rep.Kallsyms {
			if f := strings.Fields(line); len(f) >= 3 && strings.Trim(f[0], "0") != "" {
				t.Errorf("[%s] /proc/kallsyms shows a kernel address: %q", v.name, line)
				break
			}
		}
		for _, line := range v.rep.Iomem {
			if a, _, ok := strings.Cut(strings.TrimSpace(line), " : "); ok && strings.Trim(a, "0-") != "" {
				t.Errorf("[%s] /proc/iomem shows a physical address: %q", v.name, line)
				break
			}
		}
		wantR := map[string][]string{}
		for f := range v.rep.Restricted {
			wantR[f] = anyOf("EACCES")
			if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) && f != "/proc/self/stack" {
				wantR[f] = anyOf("ENOENT")
			}
		}
		expectOutcomes(t, v.name+" read root-only", v.rep.Restricted, wantR)
		// The cgroup namespace hides the host's cgroup paths.
		for _, line := range strings.Split(strings.TrimSpace(rep.ProcCgroup), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || parts[2] != "/" {
				t.Errorf("[%s] /proc/self/cgroup line %q: want the namespace root /", v.name, line)
			}
		}
		// Mount points: exactly the design's.
		var points []string
		for _, line := range strings.Split(strings.TrimSpace(rep.Mountinfo), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				points = append(points, f[4])
			}
		}
		sort.Strings(points)
		wantPoints := []string{"/", "/dev", "/dev/full", "/dev/null", "/dev/random", "/dev/tty", "/dev/urandom", "/dev/zero", "/proc", "/tmp",
			config.OutputsDir} // the run's outputs directory, a per-run tmpfs like /tmp
		for _, p := range append(slices.Clone(readonlyPaths), maskedPaths...) {
			if _, err := os.Stat(p); err == nil { // paths this kernel lacks are skipped by libcontainer
				wantPoints = append(wantPoints, p)
			}
		}
		sort.Strings(wantPoints)
		if !slices.Equal(points, wantPoints) {
			t.Errorf("[%s] mount points %v\nwant %v", v.name, points, wantPoints)
		}
	}
}

// 13: no tracing or memory access to other processes; a private pid space.
func probeOtherProcesses(t *testing.T, e *escapeEnv) {
	eperm := anyOf("EPERM")
	want := map[string][]string{
		"ptrace(TRACEME)":         eperm,
		"ptrace(ATTACH, 1)":       eperm,
		"ptrace via nr|1<<32":     eperm,
		"process_vm_readv(1)":     eperm,
		"process_vm_writev(1)":    eperm,
		"ptrace(ATTACH, child)":   eperm,
		"process_vm_readv(child)": eperm,
		"pidfd_getfd(child, 0)":   eperm,
		// The host's pids do not exist inside the pid namespace.
		"kill(host test pid, 0)":            anyOf("ESRCH"),
		"pidfd_open(host test pid)":         anyOf("ESRCH"),
		"fcntl(1, F_SETOWN, host test pid)": anyOf("ESRCH"),
		// The child's exe is the same read-only deno.
		"open(/proc/child/exe, O_WRONLY)": anyOf("EACCES", "EROFS", "ETXTBSY"),
	}
	if os.Getpid() <= 1000 {
		// Pids this small could exist inside the sandbox too.
		delete(want, "kill(host test pid, 0)")
		delete(want, "pidfd_open(host test pid)")
		delete(want, "fcntl(1, F_SETOWN, host test pid)")
	}
	for _, v := range e.variants() {
		rep := v.rep
		expectSys(t, v.name, rep, want)
		t.Logf("[%s] open(/proc/child/mem, O_RDWR) -> %s", v.name, sysOutcome(rep.Sys["open(/proc/child/mem, O_RDWR)"]))
		if !slices.Equal(rep.ProcPids, []int{1, rep.ChildPid}) {
			t.Errorf("[%s] /proc lists pids %v, want [1 %d] (deno and the child it spawned)", v.name, rep.ProcPids, rep.ChildPid)
		}
		var cv struct {
			Pid   int      `json:"pid"`
			Procs []string `json:"procs"`
		}
		if err := json.Unmarshal([]byte(rep.ChildView), &cv); err != nil {
			t.Errorf("[%s] child's view %q: %v", v.name, rep.ChildView, err)
		} else if cv.Pid != rep.ChildPid || !slices.Equal(cv.Procs, []string{"1", strconv.Itoa(rep.ChildPid)}) {
			t.Errorf("[%s] the child (pid %d) sees /proc pids %v, want [1 %d]", v.name, cv.Pid, cv.Procs, rep.ChildPid)
		}
		if rep.ChildStatus.Signal != "SIGKILL" {
			t.Errorf("[%s] child status %+v, want killed by SIGKILL", v.name, rep.ChildStatus)
		}
		t.Logf("[%s] /proc pids %v; child %d saw %v", v.name, rep.ProcPids, rep.ChildPid, cv.Procs)
	}
}

// 18: no host administration.
func probeHostAdmin(t *testing.T, e *escapeEnv) {
	eperm := anyOf("EPERM")
	want := map[string][]string{
		"sethostname": eperm, "setdomainname": eperm, "settimeofday(NULL, NULL)": eperm,
		"clock_settime(REALTIME, NULL)": eperm, "adjtimex(read)": eperm,
		"reboot(CAD_OFF, bad magic)": eperm, "init_module": eperm, "finit_module": eperm,
		"delete_module": eperm, "swapon": eperm, "swapoff": eperm, "acct(NULL)": eperm,
		"syslog(SIZE_BUFFER)": eperm, "quotactl": eperm,
	}
	for _, v := range e.variants() {
		expectSys(t, v.name, v.rep, want)
		if v.rep.Nodename != "sandbox" {
			t.Errorf("[%s] uname nodename = %q, want sandbox", v.name, v.rep.Nodename)
		}
	}
	if h, _ := os.Hostname(); h == "pwned" {
		t.Errorf("the host's hostname was changed")
	}
}

// 19: /dev is exactly the root's: the six devices and the descriptor
// symlinks. Nothing of libcontainer's own /dev setup (/dev/ptmx, /dev/core
// on hosts whose kernel has /proc/kcore) may appear.
func probeDev(t *testing.T, e *escapeEnv) {
	want := map[string]devEntry{
		"null":    {Type: "char", Rdev: unix.Mkdev(1, 3), Resolves: true},
		"zero":    {Type: "char", Rdev: unix.Mkdev(1, 5), Resolves: true},
		"full":    {Type: "char", Rdev: unix.Mkdev(1, 7), Resolves: true},
		"random":  {Type: "char", Rdev: unix.Mkdev(1, 8), Resolves: true},
		"urandom": {Type: "char", Rdev: unix.Mkdev(1, 9), Resolves: true},
		"tty":     {Type: "char", Rdev: unix.Mkdev(5, 0), Resolves: true},
		// The root's symlinks.
		"fd":     {Type: "symlink", Link: "../proc/self/fd", Resolves: true},
		"stdin":  {Type: "symlink", Link: "../proc/self/fd/0", Resolves: true},
		"stdout": {Type: "symlink", Link: "../proc/self/fd/1", Resolves: true},
		"stderr": {Type: "symlink", Link: "../proc/self/fd/2", Resolves: true},
	}
	for _, v := range e.variants() {
		var names []string
		for n := range v.rep.Dev {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("[%s] /dev: %v", v.name, names)
		for _, n := range names {
			w, ok := want[n]
			if !ok {
				t.Errorf("[%s] unexpected /dev/%s: %+v", v.name, n, v.rep.Dev[n])
				continue
			}
			got := v.rep.Dev[n]
			if got.Type == "symlink" {
				got.Rdev = 0
			}
			if got != w {
				t.Errorf("[%s] /dev/%s = %+v, want %+v", v.name, n, got, w)
			}
		}
		for n := range want {
			if _, ok := v.rep.Dev[n]; !ok {
				t.Errorf("[%s] /dev/%s missing", v.name, n)
			}
		}
	}
}
