package sandbox

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

func TestRunOutcomes(t *testing.T) {
	r := newTestRunner(t, nil)
	tests := []struct {
		name      string
		code      string
		status    Status
		errType   string
		stdout    string
		stderr    string
		inMessage string
		inStack   string
	}{
		{name: "hello", code: "console.log(1+1)", status: StatusSuccess, stdout: "2\n"},
		{name: "typescript", code: "const n: number = 40;\nfunction add(a: number, b: number): number { return a + b }\nconsole.log(add(n, 2))", status: StatusSuccess, stdout: "42\n"},
		{name: "streams kept apart, blank lines kept", code: "console.log('a'); console.error('e1'); console.log(''); console.log('b'); console.error('')", status: StatusSuccess, stdout: "a\n\nb\n", stderr: "e1\n\n"},
		{name: "top-level await", code: "await new Promise(r => setTimeout(r, 20)); console.log('later')", status: StatusSuccess, stdout: "later\n"},
		{name: "thrown error has the user's line", code: "const a = 1;\n\nthrow new Error('boom')", status: StatusError, errType: ErrorRuntime, inMessage: "boom", inStack: "main.ts:3:7"},
		{name: "syntax error", code: "const x = 1;\nlet y = ;", status: StatusError, errType: ErrorSyntax, inMessage: "main.ts:2:9"},
		{name: "unhandled rejection", code: "setTimeout(() => Promise.reject(new TypeError('late')), 1)", status: StatusError, errType: ErrorRuntime, inMessage: "late"},
		{name: "permission denied by deno", code: "await Deno.readTextFile('/etc/passwd')", status: StatusError, errType: ErrorPermission, inMessage: `read access to "/etc/passwd" was refused: this server does not grant it, and only its admin can`},
		{name: "uncached package", code: "import { z } from 'npm:zod@3';\nconsole.log(z)", status: StatusError, errType: ErrorDependency},
		{name: "remote import refused", code: "await import('https://example.com/x.ts')", status: StatusError, errType: ErrorDependency},
		{name: "exit code", code: "Deno.exit(3)", status: StatusError, errType: ErrorRuntime, inMessage: "code 3"},
		{name: "explicit exit 0", code: "console.log('bye'); Deno.exit(0)", status: StatusSuccess, stdout: "bye\n"},
		{name: "long program: abbreviated module URL in stacks is still main.ts", code: "// " + strings.Repeat("x", 5000) + "\nnull.boom", status: StatusError, errType: ErrorRuntime, inStack: "main.ts:2:"},
		{name: "channel not reachable from user code", code: "await Deno.readTextFile('/proc/self/fd/4')", status: StatusError, errType: ErrorPermission},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runCode(t, r, tc.code, 20*time.Second)
			if res.Status != tc.status {
				t.Fatalf("status = %s, want %s; error=%+v stderr=%q", res.Status, tc.status, res.Error, res.Stderr)
			}
			if tc.stdout != "" && res.Stdout != tc.stdout {
				t.Errorf("stdout = %q, want %q", res.Stdout, tc.stdout)
			}
			if tc.stderr != "" && res.Stderr != tc.stderr {
				t.Errorf("stderr = %q, want %q", res.Stderr, tc.stderr)
			}
			if tc.status == StatusSuccess {
				if res.Error != nil || res.ExitCode == nil || *res.ExitCode != 0 {
					t.Errorf("success with error %+v exit %v", res.Error, res.ExitCode)
				}
				return
			}
			if res.Error == nil {
				t.Fatalf("no error info")
			}
			if tc.errType != "" && res.Error.Type != tc.errType {
				t.Errorf("error type = %q, want %q (%+v)", res.Error.Type, tc.errType, res.Error)
			}
			if tc.inMessage != "" && !strings.Contains(res.Error.Message+res.Error.Stack, tc.inMessage) {
				t.Errorf("error %q / stack %q does not mention %q", res.Error.Message, res.Error.Stack, tc.inMessage)
			}
			if tc.inStack != "" && !strings.Contains(res.Error.Stack, tc.inStack) {
				t.Errorf("stack %q does not contain %q", res.Error.Stack, tc.inStack)
			}
			if strings.Contains(res.Error.Stack, "data:") || strings.Contains(res.Error.Stack, "bootstrap.js") {
				t.Errorf("stack leaks the bootstrap: %q", res.Error.Stack)
			}
		})
	}
}

func TestResultReportsResources(t *testing.T) {
	r := newTestRunner(t, nil)
	res := runCode(t, r, "let s = 0; for (let i = 0; i < 3e7; i++) s += i; const big = new Uint8Array(64 << 20).fill(1); console.log(s > 0, big[5])", 20*time.Second)
	if res.Status != StatusSuccess {
		t.Fatalf("status %s: %+v", res.Status, res.Error)
	}
	if res.CPUMs <= 0 {
		t.Errorf("cpuMs = %v, want > 0", res.CPUMs)
	}
	if res.MemoryPeakBytes < 64<<20 {
		t.Errorf("memoryPeakBytes = %d, want >= 64 MiB (the program filled 64 MiB)", res.MemoryPeakBytes)
	}
	if res.DurationMs <= 0 {
		t.Errorf("durationMs = %v", res.DurationMs)
	}
	if len(res.Degraded) != 0 {
		t.Errorf("degraded on a host that enforces everything: %v", res.Degraded)
	}
}

func TestHostileRuns(t *testing.T) {
	r := newTestRunner(t, func(o *Options) {
		o.DenoFlags = []string{"--allow-run", "--allow-read"}
	})
	tests := []struct {
		name     string
		code     string
		timeout  time.Duration
		status   Status
		limitHit string
		check    func(t *testing.T, res *Result)
	}{
		{name: "infinite loop", code: "while (true) {}", timeout: 1500 * time.Millisecond, status: StatusTimeout, limitHit: LimitTimeout},
		{name: "timer keeps the module from finishing", code: "await new Promise(() => setInterval(() => {}, 1000))", timeout: 1500 * time.Millisecond, status: StatusTimeout, limitHit: LimitTimeout},
		{name: "2 GiB of ArrayBuffers", code: "const a = []; for (let i = 0; i < 32; i++) a.push(new Uint8Array(64 << 20).fill(i));", timeout: 30 * time.Second, status: StatusOOM, limitHit: LimitMemory},
		{name: "2 GiB of JS heap", code: "const a = []; while (true) a.push({ s: 'x'.repeat(1024) + Math.random() });", timeout: 60 * time.Second, status: StatusOOM, limitHit: LimitMemory},
		{
			name: "process bomb", timeout: 60 * time.Second, limitHit: LimitPids,
			code: `const kids = []; let err = null;
try { for (let i = 0; i < 1000; i++) kids.push(new Deno.Command("/usr/bin/deno", { args: ["eval", "await new Promise(() => {})"], stdout: "null", stderr: "null" }).spawn()); }
catch (e) { err = e; }
console.log("spawned", kids.length, "then", String(err));
for (const k of kids) k.kill("SIGKILL");`,
			check: func(t *testing.T, res *Result) {
				if !strings.Contains(res.Stdout, "spawned") {
					t.Errorf("bomb did not report: stdout %q stderr %q", res.Stdout, res.Stderr)
				}
			},
		},
		{
			name: "1 GB to stdout", timeout: 120 * time.Second, status: StatusSuccess,
			code: "const chunk = new TextEncoder().encode('x'.repeat(1 << 20)); for (let i = 0; i < 1024; i++) { let o = 0; while (o < chunk.length) o += await Deno.stdout.write(chunk.subarray(o)); }",
			check: func(t *testing.T, res *Result) {
				if !res.StdoutTruncated || int64(len(res.Stdout)) != DefaultMaxOutput {
					t.Errorf("stdout kept %d bytes, truncated=%v; want exactly %d kept and truncated", len(res.Stdout), res.StdoutTruncated, DefaultMaxOutput)
				}
				if res.StdoutBytes != 1<<30 {
					t.Errorf("stdoutBytes = %d, want %d", res.StdoutBytes, 1<<30)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			timeout := tc.timeout
			if tc.limitHit != LimitTimeout { // rows that end by a limit other than time get more of it on slow hosts
				timeout = testenv.Scale(timeout)
			}
			res := runCode(t, r, tc.code, timeout)
			if tc.status != "" && res.Status != tc.status {
				t.Fatalf("status = %s, want %s; error=%+v stderr=%q", res.Status, tc.status, res.Error, lastLines(res.Stderr, 5))
			}
			if res.LimitHit != tc.limitHit {
				t.Errorf("limitHit = %q, want %q (status %s, error %+v)", res.LimitHit, tc.limitHit, res.Status, res.Error)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
				t.Errorf("server heap grew by %d MiB during the run", grew>>20)
			}
		})
	}
}

func TestSandboxRunsOnce(t *testing.T) {
	r := newTestRunner(t, nil)
	sb, err := r.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if res := sb.Run(context.Background(), Job{Code: "console.log('first')", Timeout: 10 * time.Second}); res.Status != StatusSuccess {
		t.Fatalf("first run: %s %+v", res.Status, res.Error)
	}
	res := sb.Run(context.Background(), Job{Code: "console.log('second')", Timeout: 10 * time.Second})
	if res.Status == StatusSuccess || res.Error == nil || !strings.Contains(res.Error.Message, "once") {
		t.Fatalf("second run on the same sandbox = %s %+v, want an error saying sandboxes run once", res.Status, res.Error)
	}
}

// TestBoot: a StartOptions.Boot module runs while the sandbox boots, before StartWith returns (its
// timer has fired by then), and what it leaves on globalThis is there for the run; a boot module
// that throws ends the start with deno's exit and its message, and a sandbox without one reads
// no boot frame.
func TestBoot(t *testing.T) {
	r := newTestRunner(t, nil)
	ctx := context.Background()
	boot := "(globalThis as any).booted = await new Promise((ok) => setTimeout(() => ok(performance.now()), 50));"
	sb, err := r.StartWith(ctx, StartOptions{Boot: boot})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	res := sb.Run(ctx, Job{Code: "export default [typeof (globalThis as any).booted, performance.now() > (globalThis as any).booted]", Timeout: 10 * time.Second})
	if res.Status != StatusSuccess || string(res.ReturnValue) != `["number",true]` {
		t.Fatalf("run after boot: %s %s %+v", res.Status, res.ReturnValue, res.Error)
	}
	if _, err := r.StartWith(ctx, StartOptions{Boot: "throw new Error('boot broke')"}); !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), "boot broke") {
		t.Fatalf("start with a throwing boot module = %v, want ErrStart with its message", err)
	}
	plain, err := r.StartWith(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if res := plain.Run(ctx, Job{Code: "export default typeof (globalThis as any).booted", Timeout: 10 * time.Second}); res.Status != StatusSuccess || string(res.ReturnValue) != `"undefined"` {
		t.Fatalf("run without boot: %s %s %+v", res.Status, res.ReturnValue, res.Error)
	}
}

func TestCancel(t *testing.T) {
	r := newTestRunner(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := r.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	time.AfterFunc(300*time.Millisecond, cancel)
	res := sb.Run(ctx, Job{Code: "while (true) {}", Timeout: 30 * time.Second})
	if res.Status != StatusCancelled || res.Error == nil || res.Error.Type != ErrorCancelled {
		t.Fatalf("status %s error %+v, want cancelled", res.Status, res.Error)
	}
}

func TestUnusedSandboxCloses(t *testing.T) {
	r := newTestRunner(t, nil)
	sb, err := r.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(); err != nil {
		t.Fatalf("close of a booted, never-used sandbox: %v", err)
	}
	if err := sb.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestClosedRunner(t *testing.T) {
	o := testOptions(t)
	r, err := New(context.Background(), o)
	if err != nil {
		unavailable(t, "runner: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	if entries, _ := os.ReadDir(o.StateDir); len(entries) != 0 {
		t.Fatalf("state dir not empty after Close: %d entries", len(entries))
	}
}

// TestServerViewUnchanged guards against the server's own /proc/self view
// being left inside a container (see MaybeInit): after many runs, the main
// thread's mount table is still the host's.
func TestServerViewUnchanged(t *testing.T) {
	before, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRunner(t, nil)
	for i := 0; i < 20; i++ {
		if res := runCode(t, r, "console.log(1)", 10*time.Second); res.Status != StatusSuccess {
			t.Fatalf("run %d: %s %+v", i, res.Status, res.Error)
		}
	}
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if string(before) != string(after) {
		t.Fatalf("the server's /proc/self/mountinfo changed after sandbox runs:\n%s", lastLines(string(after), 8))
	}
}
