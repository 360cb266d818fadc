package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/tools"
)

// newCodeEngine is an engine whose root holds the host's Python (the interpreter behind python3)
// and the working directory's mount point, as conductor builds it.
func newCodeEngine(t *testing.T) *Engine {
	t.Helper()
	ca := tools.HostCABundle()
	rs, err := runtimes.Resolve(context.Background(), runtimes.Options{DenoPath: "/usr/bin/deno", Memory: 512 << 20, CABundle: ca})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := rs.Language("python"); !ok {
		testenv.Unavailable(t, "no python3 on PATH: the Python runtime cannot be tested here")
	}
	r := sandboxtest.RunnerWithRoot(t, func(o *rootfs.Options) {
		o.Programs = rs.Programs()
		o.MountPoints = []string{config.WorkDir}
	}, func(o *sandbox.Options) {
		// As conductor names the bundle the runtimes brought (cmd/conductor caBundle).
		if ca != "" {
			o.CABundle, o.CABundleEnv = ca, rs.CAVars()
		}
	})
	return newEngine(t, func(o *Options) {
		o.Sandboxes = r
		o.Runtimes = rs
		o.MaxTimeout = testenv.Scale(120 * time.Second) // the hostile rows scale their limits on slow hosts
	})
}

// codeCase is one row of TestExecuteCode.
type codeCase struct {
	name     string
	req      CodeRequest
	status   sandbox.Status
	exit     int
	stdout   string
	stderr   string
	errorMsg string
}

// TestExecuteCode: each language runs its entrypoint in the working directory with the other
// files beside it; a non-zero exit is an error with the program's exit code and output.
func TestExecuteCode(t *testing.T) {
	e := newCodeEngine(t)
	tests := []codeCase{
		{name: "python hello", req: CodeRequest{Language: "python", Entrypoint: File{Content: "import os; print('hello', os.getcwd())"}}, status: sandbox.StatusSuccess, stdout: "hello " + config.WorkDir + "\n"},
		{name: "python reads a data file and imports a module", req: CodeRequest{Language: "python",
			Entrypoint: File{Content: "import json, util\nprint(util.double(json.load(open('data/x.json'))['n']))"},
			Files:      []File{{Name: "data/x.json", Content: `{"n": 21}`}, {Name: "util.py", Content: "def double(n): return 2 * n"}}},
			status: sandbox.StatusSuccess, stdout: "42\n"},
		{name: "javascript hello", req: CodeRequest{Language: "javascript", Entrypoint: File{Content: "console.log('hello', 6 * 7)"}}, status: sandbox.StatusSuccess, stdout: "hello 42\n"},
		{name: "typescript imports a file", req: CodeRequest{Language: "typescript",
			Entrypoint: File{Name: "app.ts", Content: "import { f } from './lib/util.ts';\nconst n: number = f(21);\nconsole.log(n);"},
			Files:      []File{{Name: "lib/util.ts", Content: "export const f = (n: number): number => n * 2;"}}},
			status: sandbox.StatusSuccess, stdout: "42\n"},
		{name: "typescript reads a data file and writes the working directory", req: CodeRequest{Language: "typescript",
			Entrypoint: File{Content: "const n: number = JSON.parse(Deno.readTextFileSync('data/x.json')).n;\nDeno.writeTextFileSync('out.txt', String(n * 2));\nconsole.log(Deno.readTextFileSync('out.txt'));"},
			Files:      []File{{Name: "data/x.json", Content: `{"n": 21}`}}},
			status: sandbox.StatusSuccess, stdout: "42\n"},
		{name: "javascript has the admin's permissions only beyond it", req: CodeRequest{Language: "javascript", Entrypoint: File{Content: "Deno.readTextFileSync('/etc/passwd')"}},
			status: sandbox.StatusError, exit: 1, stderr: "NotCapable"},
		{name: "python fails", req: CodeRequest{Language: "python", Entrypoint: File{Content: "import sys\nprint('before')\nsys.exit(3)"}},
			status: sandbox.StatusError, exit: 3, stdout: "before\n", errorMsg: "exited with code 3"},
		{name: "python raises", req: CodeRequest{Language: "python", Entrypoint: File{Content: "raise ValueError('boom')"}},
			status: sandbox.StatusError, exit: 1, stderr: "ValueError: boom", errorMsg: "exited with code 1"},
		{name: "typescript throws", req: CodeRequest{Language: "typescript", Entrypoint: File{Content: "throw new Error('boom')"}},
			status: sandbox.StatusError, exit: 1, stderr: "boom", errorMsg: "deno exited with code 1"},
		{name: "python cannot write its own root", req: CodeRequest{Language: "python", Entrypoint: File{Content: "open('/usr/x', 'w')"}},
			status: sandbox.StatusError, exit: 1, stderr: "Read-only file system"},
		{name: "python cannot exec from the working directory", req: CodeRequest{Language: "python",
			Entrypoint: File{Content: "import os, shutil\nshutil.copy(os.path.realpath('/proc/self/exe'), 'py')\nos.chmod('py', 0o755)\nos.execv('./py', ['py', '-c', 'print(1)'])"}},
			status: sandbox.StatusError, exit: 1, stderr: "Permission denied"},
	}
	if tools.HostCABundle() != "" {
		tests = append(tests, codeCase{name: "python's TLS trusts the host's CA bundle", req: CodeRequest{Language: "python",
			Entrypoint: File{Content: "import os, ssl\nprint(ssl.create_default_context().cert_store_stats()['x509_ca'] > 0, os.environ['SSL_CERT_FILE'] == ssl.get_default_verify_paths().cafile)"}},
			status: sandbox.StatusSuccess, stdout: "True True\n"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.ExecuteCode(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status {
				t.Fatalf("status %s, want %s; error %+v stdout %q stderr %q", res.Status, tc.status, res.Error, res.Stdout, res.Stderr)
			}
			if res.ExitCode == nil || *res.ExitCode != tc.exit {
				t.Errorf("exit code %v, want %d", res.ExitCode, tc.exit)
			}
			if tc.stdout != "" && res.Stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", res.Stdout, tc.stdout)
			}
			if !strings.Contains(res.Stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", res.Stderr, tc.stderr)
			}
			if tc.errorMsg != "" && (res.Error == nil || !strings.Contains(res.Error.Message, tc.errorMsg)) {
				t.Errorf("error %+v, want one mentioning %q", res.Error, tc.errorMsg)
			}
		})
	}
}

// TestExecuteCodeRefusals: requests that never reach a sandbox.
func TestExecuteCodeRefusals(t *testing.T) {
	e := newEngine(t, func(o *Options) {
		o.Runtimes = &runtimes.Set{Runtimes: []*runtimes.Runtime{{Name: "deno", Argv: []string{"/usr/bin/deno"}, Languages: []runtimes.Language{{Name: "javascript", DefaultFile: "main.js"}}}}}
	})
	tests := []struct {
		name    string
		req     CodeRequest
		sent    error
		mention []string
	}{
		{"language not offered", CodeRequest{Language: "go", Entrypoint: File{Content: "x"}}, ErrLanguage, []string{`"go"`, "javascript", "admin"}},
		{"empty code", CodeRequest{Language: "javascript"}, ErrInvalidRequest, []string{"empty"}},
		{"hostile name", CodeRequest{Language: "javascript", Entrypoint: File{Content: "1"}, Files: []File{{Name: "../../etc/passwd"}}}, ErrFileName, []string{`".."`}},
		{"entrypoint name", CodeRequest{Language: "javascript", Entrypoint: File{Name: "/main.js", Content: "1"}}, ErrFileName, []string{"absolute"}},
		{"timeout", CodeRequest{Language: "javascript", Entrypoint: File{Content: "1"}, Timeout: time.Hour}, ErrInvalidRequest, []string{"3600000 ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.ExecuteCode(context.Background(), tc.req)
			if !errors.Is(err, tc.sent) || res != nil {
				t.Fatalf("ExecuteCode = %v, %v; want %v", res, err, tc.sent)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// TestHostilePython: Python meets the same walls as deno in sandbox's TestHostileRuns.
func TestHostilePython(t *testing.T) {
	e := newCodeEngine(t)
	tests := []struct {
		name     string
		code     string
		timeout  time.Duration
		status   sandbox.Status
		limitHit string
		check    func(t *testing.T, res *Result)
	}{
		{name: "infinite loop", code: "while True: pass", timeout: 1500 * time.Millisecond, status: sandbox.StatusTimeout, limitHit: sandbox.LimitTimeout},
		{name: "2 GiB", code: "a = []\nfor i in range(32): a.append(bytearray(64 << 20))", timeout: 30 * time.Second, status: sandbox.StatusOOM, limitHit: sandbox.LimitMemory},
		{name: "fork bomb", code: "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass", timeout: 20 * time.Second, limitHit: sandbox.LimitPids},
		{name: "1 GB to stdout", code: "import sys\nchunk = b'x' * (1 << 20)\nfor _ in range(1024): sys.stdout.buffer.write(chunk)", timeout: 120 * time.Second, status: sandbox.StatusSuccess,
			check: func(t *testing.T, res *Result) {
				if !res.StdoutTruncated || int64(len(res.Stdout)) != sandbox.DefaultMaxOutput || res.StdoutBytes != 1<<30 {
					t.Errorf("stdout kept %d of %d bytes, truncated=%v; want %d of %d, truncated", len(res.Stdout), res.StdoutBytes, res.StdoutTruncated, sandbox.DefaultMaxOutput, 1<<30)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if tc.limitHit != sandbox.LimitTimeout {
				timeout = testenv.Scale(timeout)
			}
			res, err := e.ExecuteCode(context.Background(), CodeRequest{Language: "python", Entrypoint: File{Content: tc.code}, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			if tc.status != "" && res.Status != tc.status {
				t.Fatalf("status = %s, want %s; error=%+v stderr=%.300q", res.Status, tc.status, res.Error, res.Stderr)
			}
			if res.LimitHit != tc.limitHit {
				t.Errorf("limitHit = %q, want %q (status %s, error %+v)", res.LimitHit, tc.limitHit, res.Status, res.Error)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

// TestPythonSyscallProbe: Python calling syscall(2) through ctypes meets the seccomp policy the
// escape suite checks from deno: new namespaces, mounts, ptrace, keys, bpf, perf, io_uring,
// modules and kexec are all refused, and the process survives to report it.
func TestPythonSyscallProbe(t *testing.T) {
	e := newCodeEngine(t)
	eperm, enosys := "EPERM", "ENOSYS"
	type probe struct {
		nr   uintptr
		args []int64 // integers only: the calls are refused before any pointer is read
		want string
	}
	probes := map[string]probe{
		"unshare(NEWUSER)":       {unix.SYS_UNSHARE, []int64{unix.CLONE_NEWUSER}, eperm},
		"unshare(NEWNS)":         {unix.SYS_UNSHARE, []int64{unix.CLONE_NEWNS}, eperm},
		"unshare(NEWNET)":        {unix.SYS_UNSHARE, []int64{unix.CLONE_NEWNET}, eperm},
		"setns":                  {unix.SYS_SETNS, []int64{0, 0}, eperm},
		"mount":                  {unix.SYS_MOUNT, []int64{0, 0, 0, 0, 0}, eperm},
		"umount2":                {unix.SYS_UMOUNT2, []int64{0, 0}, eperm},
		"pivot_root":             {unix.SYS_PIVOT_ROOT, []int64{0, 0}, eperm},
		"ptrace(TRACEME)":        {unix.SYS_PTRACE, []int64{unix.PTRACE_TRACEME, 0, 0, 0}, eperm},
		"process_vm_readv":       {unix.SYS_PROCESS_VM_READV, []int64{1, 0, 0, 0, 0, 0}, eperm},
		"keyctl(GET_KEYRING_ID)": {unix.SYS_KEYCTL, []int64{0, -1, 0}, eperm},
		"add_key":                {unix.SYS_ADD_KEY, []int64{0, 0, 0, 0, 0}, eperm},
		"bpf(MAP_CREATE)":        {unix.SYS_BPF, []int64{0, 0, 0}, eperm},
		"perf_event_open":        {unix.SYS_PERF_EVENT_OPEN, []int64{0, 0, -1, -1, 0}, eperm},
		"userfaultfd":            {unix.SYS_USERFAULTFD, []int64{0}, eperm},
		"init_module":            {unix.SYS_INIT_MODULE, []int64{0, 0, 0}, eperm},
		"kexec_file_load":        {unix.SYS_KEXEC_FILE_LOAD, []int64{0, 0, 0, 0, 0}, eperm},
		"io_uring_setup":         {unix.SYS_IO_URING_SETUP, []int64{1, 0}, enosys},
		"clone3":                 {unix.SYS_CLONE3, []int64{0, 0}, enosys},
		"syscall 999":            {999, nil, enosys},
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		testenv.Unavailable(t, "the probe's syscall numbers are this build's (%s)", runtime.GOARCH)
	}
	var calls []string
	for name, p := range probes {
		args := ""
		for _, a := range p.args {
			args += fmt.Sprintf(", ctypes.c_long(%d)", a)
		}
		calls = append(calls, fmt.Sprintf("probe(%q, %d%s)", name, p.nr, args))
	}
	code := `import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
def probe(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *args)
    out[name] = "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
` + strings.Join(calls, "\n") + "\nprint(json.dumps(out))\n"
	res, err := e.ExecuteCode(context.Background(), CodeRequest{Language: "python", Entrypoint: File{Content: code}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != sandbox.StatusSuccess {
		t.Fatalf("probe did not finish: %s %+v stderr %q", res.Status, res.Error, res.Stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("probe output %q: %v", res.Stdout, err)
	}
	for name, p := range probes {
		if got[name] != p.want {
			t.Errorf("%s from Python: %s, want %s", name, got[name], p.want)
		}
	}
}
