package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	return newPythonEngine(t, "", nil)
}

// newPythonEngine is newCodeEngine with the interpreter python ("" = python3 on PATH) and
// mutate applied to the engine's options.
func newPythonEngine(t *testing.T, python string, mutate func(*Options)) *Engine {
	t.Helper()
	rs, r := sandboxtest.PythonRunner(t, python)
	return newEngine(t, func(o *Options) {
		o.Sandboxes = r
		o.Runtimes = rs
		o.MaxTimeout = testenv.Scale(120 * time.Second) // the hostile rows scale their limits on slow hosts
		if mutate != nil {
			mutate(o)
		}
	})
}

// newGoEngine is an engine whose root holds the host's Go toolchain (the go on PATH) with its
// seeded build cache, as conductor builds it. The seed is kept in the user's cache directory, so
// only the first test run on a host builds it (about a minute).
func newGoEngine(t *testing.T) *Engine {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Unavailable(t, "no go on PATH: the Go runtime cannot be tested here")
	}
	seeds := t.TempDir() // no user cache directory (no HOME): this test seeds its own
	if cache, err := os.UserCacheDir(); err == nil {
		seeds = filepath.Join(cache, "conductor-test", "gocache")
	}
	rs, err := runtimes.Resolve(context.Background(), runtimes.Options{
		DenoPath: "/usr/bin/deno", Memory: 512 << 20, Python: config.PythonOff, GoCacheDir: seeds,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := rs.Language("go"); !ok {
		t.Fatal("go is on PATH but the Go runtime was not resolved")
	}
	r := sandboxtest.RunnerWithRoot(t, func(o *rootfs.Options) {
		o.Programs = rs.Programs()
		o.MountPoints = []string{config.WorkDir}
	}, nil)
	return newEngine(t, func(o *Options) {
		o.Sandboxes = r
		o.Runtimes = rs
		o.MaxTimeout = 120 * time.Second
	})
}

// TestExecuteGo: go run of the working directory: hello, the request's other files of package
// main compiled with the entrypoint, a sub-directory package imported through the go.mod the run
// gets, a compile error as the program's failure with the compiler's message and exit code, a
// run-time exit code (go run exits 1 and prints the program's "exit status N"), a read-only root,
// and a package outside the standard library refused without a download.
func TestExecuteGo(t *testing.T) {
	e := newGoEngine(t)
	hello := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\twd, _ := os.Getwd()\n\tfmt.Println(\"hello\", wd)\n}\n"
	tests := []codeCase{
		{name: "hello", req: CodeRequest{Language: "go", Entrypoint: File{Content: hello}}, status: sandbox.StatusSuccess, stdout: "hello " + config.WorkDir + "\n"},
		{name: "a second file of package main, a data file and a sub-package", req: CodeRequest{Language: "go",
			Entrypoint: File{Name: "app.go", Content: "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"program/lib\"\n)\n\nfunc main() {\n\tb, _ := os.ReadFile(\"data/n.txt\")\n\tfmt.Println(double(lib.N), string(b))\n}\n"},
			Files: []File{{Name: "util.go", Content: "package main\n\nfunc double(n int) int { return 2 * n }\n"},
				{Name: "lib/lib.go", Content: "package lib\n\nconst N = 21\n"}, {Name: "data/n.txt", Content: "ok"}}},
			status: sandbox.StatusSuccess, stdout: "42 ok\n"},
		{name: "compile error", req: CodeRequest{Language: "go", Entrypoint: File{Content: "package main\n\nfunc main() {\n\tundefinedThing()\n}\n"}},
			status: sandbox.StatusError, exit: 1, stderr: "undefined: undefinedThing", errorMsg: "go exited with code 1"},
		{name: "exit code", req: CodeRequest{Language: "go", Entrypoint: File{Content: "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Println(\"before\")\n\tos.Exit(3)\n}\n"}},
			status: sandbox.StatusError, exit: 1, stdout: "before\n", stderr: "exit status 3", errorMsg: "go exited with code 1"},
		{name: "no module downloads", req: CodeRequest{Language: "go", Entrypoint: File{Content: "package main\n\nimport _ \"github.com/google/uuid\"\n\nfunc main() {}\n"}},
			status: sandbox.StatusError, exit: 1, stderr: "github.com/google/uuid"},
		{name: "cannot write its own root", req: CodeRequest{Language: "go", Entrypoint: File{Content: "package main\n\nimport \"os\"\n\nfunc main() {\n\tif err := os.WriteFile(\"/usr/local/x\", nil, 0o644); err != nil {\n\t\tpanic(err)\n\t}\n}\n"}},
			status: sandbox.StatusError, exit: 1, stderr: "read-only file system"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Now()
			res, err := e.ExecuteCode(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s in %v", tc.name, res.Status, time.Since(t0).Round(time.Millisecond))
			tc.check(t, res)
		})
	}
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

// check compares a run's outcome with the case's: status, exit code, stdout (when given), a part
// of stderr and of the error's message.
func (tc codeCase) check(t *testing.T, res *Result) {
	t.Helper()
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
		{name: "python's standard library bytecode is valid in the root (no import compiles it again)", req: CodeRequest{Language: "python",
			Entrypoint: File{Content: "import json, os, importlib.util\npyc = importlib.util.cache_from_source(json.__file__)\nwith open(pyc, 'rb') as f:\n    head = f.read(16)\nprint(int.from_bytes(head[8:12], 'little') == int(os.stat(json.__file__).st_mtime))"}},
			status: sandbox.StatusSuccess, stdout: "True\n"},
		{name: "python cannot write its own root", req: CodeRequest{Language: "python", Entrypoint: File{Content: "open('/usr/x', 'w')"}},
			status: sandbox.StatusError, exit: 1, stderr: "Read-only file system"},
		{name: "python cannot exec from the working directory", req: CodeRequest{Language: "python",
			Entrypoint: File{Content: "import os, shutil\nshutil.copy(os.path.realpath('/proc/self/exe'), 'py')\nos.chmod('py', 0o755)\nos.execv('./py', ['py', '-c', 'print(1)'])"}},
			status: sandbox.StatusError, exit: 1, stderr: "Permission denied"},
		{name: "python runs a file named like conductor's runner as its own content, not the runner compiled at boot", req: CodeRequest{Language: "python",
			Entrypoint: File{Name: runtimes.PythonRunnerFile, Content: "print('mine', __name__)"}},
			status: sandbox.StatusSuccess, stdout: "mine __main__\n"},
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
			tc.check(t, res)
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

// syscallProbe is one refused system call of the probes run from Python and Go: its number, its
// integer arguments (the calls are refused before any pointer is read), and the errno expected.
type syscallProbe struct {
	nr   uintptr
	args []int64
	want string
}

// syscallProbes are the seccomp policy's refusals the escape suite checks from deno: new
// namespaces, mounts, ptrace, keys, bpf, perf, io_uring, modules and kexec.
func syscallProbes() map[string]syscallProbe {
	eperm, enosys := "EPERM", "ENOSYS"
	return map[string]syscallProbe{
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
}

// checkProbes runs a syscall probe program in language: it must finish and print, as a JSON
// object, each probe's outcome ("ok" or the errno's name), which must be the one expected.
func checkProbes(t *testing.T, e *Engine, language, code string, probes map[string]syscallProbe) {
	t.Helper()
	res, err := e.ExecuteCode(context.Background(), CodeRequest{Language: language, Entrypoint: File{Content: code}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != sandbox.StatusSuccess {
		t.Fatalf("%s probe did not finish: %s %+v stderr %q", language, res.Status, res.Error, res.Stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("%s probe output %q: %v", language, res.Stdout, err)
	}
	for name, p := range probes {
		if got[name] != p.want {
			t.Errorf("%s from %s: %s, want %s", name, language, got[name], p.want)
		}
	}
}

// TestPythonSyscallProbe: Python calling syscall(2) through ctypes meets the seccomp policy the
// escape suite checks from deno: new namespaces, mounts, ptrace, keys, bpf, perf, io_uring,
// modules and kexec are all refused, and the process survives to report it.
func TestPythonSyscallProbe(t *testing.T) {
	e := newCodeEngine(t)
	probes := syscallProbes()
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
	checkProbes(t, e, "python", code, probes)
}

// TestHostileGo: a Go program meets the same walls as deno in sandbox's TestHostileRuns and as
// Python in TestHostilePython; the go command's own build fits the default limits first.
func TestHostileGo(t *testing.T) {
	e := newGoEngine(t)
	const imports = "package main\n\nimport (\n\t\"bytes\"\n\t\"os\"\n\t\"os/exec\"\n)\n\nvar _, _, _ = bytes.Repeat, os.Exit, exec.Command\n\n"
	tests := []struct {
		name     string
		code     string
		timeout  time.Duration
		status   sandbox.Status
		limitHit string
		check    func(t *testing.T, res *Result)
	}{
		{name: "infinite loop", code: "func main() {\n\tfor {\n\t}\n}\n", timeout: 5 * time.Second, status: sandbox.StatusTimeout, limitHit: sandbox.LimitTimeout},
		{name: "2 GiB", code: "var keep [][]byte\n\nfunc main() {\n\tfor i := 0; i < 32; i++ {\n\t\tb := bytes.Repeat([]byte{1}, 64<<20)\n\t\tkeep = append(keep, b)\n\t}\n}\n",
			timeout: 30 * time.Second, status: sandbox.StatusOOM, limitHit: sandbox.LimitMemory},
		{name: "fork bomb: os/exec of itself", code: "func main() {\n\tfor {\n\t\t_ = exec.Command(os.Args[0]).Start()\n\t}\n}\n", timeout: 20 * time.Second, limitHit: sandbox.LimitPids},
		{name: "1 GB to stdout", code: "func main() {\n\tchunk := bytes.Repeat([]byte(\"x\"), 1<<20)\n\tfor i := 0; i < 1024; i++ {\n\t\tos.Stdout.Write(chunk)\n\t}\n}\n",
			timeout: 120 * time.Second, status: sandbox.StatusSuccess,
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
			res, err := e.ExecuteCode(context.Background(), CodeRequest{Language: "go", Entrypoint: File{Content: imports + tc.code}, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			if tc.status != "" && res.Status != tc.status {
				t.Fatalf("status = %s, want %s; error=%+v stderr=%.300q", res.Status, tc.status, res.Error, res.Stderr)
			}
			if res.LimitHit != tc.limitHit {
				t.Errorf("limitHit = %q, want %q (status %s, error %+v, stderr %.300q)", res.LimitHit, tc.limitHit, res.Status, res.Error, res.Stderr)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

// TestGoSyscallProbe: a Go program calling syscall.Syscall6 and syscall.RawSyscall6 meets the
// seccomp policy the escape suite checks from deno (the same table as TestPythonSyscallProbe),
// and the process survives to report it.
func TestGoSyscallProbe(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		testenv.Unavailable(t, "the probe's syscall numbers are this build's (%s)", runtime.GOARCH)
	}
	e := newGoEngine(t)
	probes := syscallProbes()
	var calls []string
	for name, p := range probes {
		args := make([]string, 6)
		for i := range args {
			args[i] = "0"
			if i < len(p.args) {
				args[i] = fmt.Sprintf("uintptr(%d)", p.args[i])
				if p.args[i] < 0 {
					args[i] = fmt.Sprintf("^uintptr(%d)", -p.args[i]-1)
				}
			}
		}
		calls = append(calls, fmt.Sprintf("\tprobe(%q, %d, %s)", name, p.nr, strings.Join(args, ", ")))
	}
	code := `package main

import (
	"encoding/json"
	"fmt"
	"syscall"
)

var out = map[string]string{}

func name(e syscall.Errno) string {
	switch e {
	case 0:
		return "ok"
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOSYS:
		return "ENOSYS"
	}
	return e.Error()
}

// probe calls nr through both of package syscall's entry points; they must agree.
func probe(label string, nr, a1, a2, a3, a4, a5, a6 uintptr) {
	_, _, e1 := syscall.Syscall6(nr, a1, a2, a3, a4, a5, a6)
	_, _, e2 := syscall.RawSyscall6(nr, a1, a2, a3, a4, a5, a6)
	if e1 != e2 {
		out[label] = name(e1) + " but raw " + name(e2)
		return
	}
	out[label] = name(e1)
}

func main() {
` + strings.Join(calls, "\n") + `
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
`
	checkProbes(t, e, "go", code, probes)
}

// TestPythonAsItsCommandLine: execute_code's Python (a pre-started interpreter that is handed the
// entrypoint) runs a program as `python -E -s -B -u main.py` of the same interpreter does on the
// host: the same stdout, stderr (tracebacks from the file's own frame, a syntax error without
// one, chained exceptions, warnings) and exit status, the host's directory standing for the
// working directory.
func TestPythonAsItsCommandLine(t *testing.T) {
	e := newCodeEngine(t)
	rt, _, _ := e.o.Runtimes.Language("python")
	tests := []struct {
		name  string
		main  string
		files []File
	}{
		{"command line, module and stdin", "import sys, __main__\nprint(sys.argv, sys.path[0], __file__, __name__, __package__, __spec__, __cached__, repr(sys.stdin.read()))\nprint(sorted(globals()), type(__loader__).__name__, __main__.__file__ == __file__)", nil},
		{"a sibling module and __main__ guards", "import util\nif __name__ == '__main__':\n    print(util.f(), util.__name__)", []File{{Name: "util.py", Content: "def f():\n    return __name__ + ' ' + __file__"}}},
		{"pickle and inspect see __main__", "import pickle, inspect\nclass A:\n    pass\ndef g():\n    return 1\nprint(type(pickle.loads(pickle.dumps(A()))).__qualname__, inspect.getsource(g))", nil},
		{"traceback", "def f():\n    raise ValueError('boom')\n\nf()", nil},
		{"traceback through a sibling module", "import util\nutil.f()", []File{{Name: "util.py", Content: "def f():\n    return 1 / 0"}}},
		{"syntax error", "print('never')\nx = (", nil},
		{"chained exceptions", "def g():\n    raise KeyError(1)\ntry:\n    g()\nexcept KeyError as e:\n    raise RuntimeError('wrapped') from e", nil},
		{"warning", "import warnings\nwarnings.warn('careful')\nprint('after')", nil},
		{"exit code", "import sys\nprint('before')\nsys.exit(3)", nil},
		{"exit message", "import sys\nsys.exit('bye')", nil},
		{"atexit handlers", "import atexit\natexit.register(lambda: print('at exit'))\nprint('main')", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := append([]File{{Name: "main.py", Content: tc.main}}, tc.files...)
			for _, f := range files {
				if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(rt.Program(), append(rt.Argv[1:], "main.py")...)
			cmd.Dir = dir
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + dir}, rt.Env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Fatal(err)
			}
			host := func(s string) string { return strings.ReplaceAll(s, dir, config.WorkDir) }
			res, err := e.ExecuteCode(context.Background(), CodeRequest{Language: "python", Entrypoint: File{Name: "main.py", Content: tc.main}, Files: tc.files})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode == nil || *res.ExitCode != cmd.ProcessState.ExitCode() {
				t.Errorf("exit code %v, python on the host %d (error %+v)", res.ExitCode, cmd.ProcessState.ExitCode(), res.Error)
			}
			if res.Stdout != host(stdout.String()) {
				t.Errorf("stdout:\n%s\npython on the host:\n%s", res.Stdout, host(stdout.String()))
			}
			if res.Stderr != host(stderr.String()) {
				t.Errorf("stderr:\n%s\npython on the host:\n%s", res.Stderr, host(stderr.String()))
			}
		})
	}
}
