package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/egress"
)

// exited and killedBy are deno's wait statuses: an exit with code, a death by sig.
func exited(code int) syscall.WaitStatus             { return syscall.WaitStatus(code << 8) }
func killedBy(sig syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(sig) }

// errorFrame is the bootstrap's "error" frame of an uncaught error.
func errorFrame(name, msg string) frameInfo {
	return frameInfo{typ: "error", err: &ErrorInfo{Name: name, Message: msg, Stack: name + ": " + msg + "\n    at file:///main.ts:1:7"}}
}

// evaluatedFrame is the bootstrap's "evaluated" frame carrying the module's value.
func evaluatedFrame(value string) frameInfo {
	return frameInfo{typ: "evaluated", result: json.RawMessage(value)}
}

// TestVerdict: the pure verdict turns a run's facts (no sandbox, no I/O) into
// its status, the limit hit, the error's type and a message that says what
// happened and who can change it.
func TestVerdict(t *testing.T) {
	const (
		mib        = int64(1) << 20
		memory     = 512 * mib
		pids       = int64(64)
		permission = `Requires net access to "example.com:443", run again with the --allow-net flag`
		fetchReset = "fetch failed: error sending request for url (http://blocked.test/): client error (Connect): tcp connect error: Connection reset by peer (os error 104)"
		notListed  = "not in the server's allow-net (MCP_CONDUCTOR_RUN_ARGS); only the admin can add it"
	)
	base := func(mut func(*facts)) facts {
		f := facts{elapsed: 1200 * time.Millisecond, memoryLimit: memory, pidsLimit: pids, ownHeap: true}
		if mut != nil {
			mut(&f)
		}
		return f
	}
	tests := []struct {
		name      string
		facts     facts
		status    Status
		limitHit  string
		errType   string   // "" = no error
		errName   string   // checked when set
		message   []string // substrings of the error's message
		notInMsg  []string // substrings the message must not have
		cause     string   // the error's Cause, when conductor reworded the message
		exitCode  *int     // nil = not checked
		signal    string
		pending   bool
		value     string // the return value, when set
		stderr    string // the result's stderr, when set
		notStderr string
	}{
		{
			name: "success with a value",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{evaluatedFrame(`42`)}
				f.exit, f.haveExit = exited(0), true
			}),
			status: StatusSuccess, exitCode: new(0), value: `42`,
		},
		{
			name: "syntax error reported by deno as a TypeError",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("TypeError", "SyntaxError: Unexpected token '}' at file:///main.ts:3:1")}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorSyntax, errName: "SyntaxError",
			message:  []string{"Unexpected token '}'"},
			notInMsg: []string{"SyntaxError: "},
		},
		{
			name: "runtime error",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("Error", "boom")}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorRuntime, errName: "Error", message: []string{"boom"}, exitCode: new(1),
		},
		{
			name: "dependency not in the cache",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("TypeError", `Module not found "npm:left-pad"`)}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorDependency, message: []string{"Module not found"},
		},
		{
			name: "permission refusal reworded",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("NotCapable", permission)}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorPermission,
			message:  []string{`net access to "example.com:443" was refused`, "only its admin can", "allow-net in MCP_CONDUCTOR_RUN_ARGS"},
			notInMsg: []string{"run again"},
			cause:    permission,
		},
		{
			name: "permission refusal of another shape kept",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("PermissionDenied", "Permission denied (os error 13)")}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorPermission, message: []string{"Permission denied (os error 13)"},
		},
		{
			name: "OOM kill by the cgroup",
			facts: base(func(f *facts) {
				f.exit, f.haveExit = killedBy(syscall.SIGKILL), true
				f.cgroup = cgroupEvents{oomKills: 1, memoryPeak: memory}
			}),
			status: StatusOOM, limitHit: LimitMemory, errType: ErrorOOM, signal: "SIGKILL",
			message: []string{"reached its memory limit of 512 MiB", config.VarMemory},
		},
		{
			name: "OOM kill of a child after the module's value: not the run's outcome",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{evaluatedFrame(`"done"`)}
				f.exit, f.haveExit = exited(0), true
				f.cgroup = cgroupEvents{oomKills: 1}
			}),
			status: StatusSuccess, value: `"done"`,
		},
		{
			name: "V8 heap exhausted",
			facts: base(func(f *facts) {
				f.exit, f.haveExit = killedBy(syscall.SIGTRAP), true
				f.stderr = "\n<--- Last few GCs --->\n\n#\n# Fatal JavaScript out of memory: Reached heap limit\n#\n"
			}),
			status: StatusOOM, limitHit: LimitMemory, errType: ErrorOOM, signal: "SIGTRAP",
			message: []string{"the JavaScript heap reached its limit of", "memory limit of 512 MiB", config.VarMemory},
		},
		{
			name: "V8 heap exhausted in a launcher's program",
			facts: base(func(f *facts) {
				f.ownHeap = false
				f.exit, f.haveExit = exited(134), true
				f.stderr = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
			}),
			status: StatusOOM, limitHit: LimitMemory, errType: ErrorOOM,
			message: []string{"a JavaScript heap limit was reached"},
		},
		{
			name: "pids limit hit: deno's container advice replaced",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("Error", "Resource temporarily unavailable (os error 11)")}
				f.exit, f.haveExit = exited(1), true
				f.cgroup = cgroupEvents{pidsMax: 3}
				f.stderr = "thread 'main' panicked\n" + denoPidsAdvice + "\n"
			}),
			status: StatusError, limitHit: LimitPids, errType: ErrorRuntime,
			message:   []string{"Resource temporarily unavailable", "limit of 64 processes and threads was reached", config.VarPids},
			stderr:    "The sandbox's limit of 64 processes and threads",
			notStderr: "--pids-limit",
		},
		{
			name: "timeout",
			facts: base(func(f *facts) {
				f.killedFor, f.elapsed = StatusTimeout, 5*time.Second+400*time.Microsecond
				f.exit, f.haveExit = killedBy(syscall.SIGKILL), true
				f.frames = []frameInfo{errorFrame("Error", "late")}
			}),
			status: StatusTimeout, limitHit: LimitTimeout, errType: ErrorTimeout, signal: "SIGKILL",
			message: []string{"timed out after 5s;", "every process of the sandbox was killed"}, notInMsg: []string{"late"},
		},
		{
			name: "timeout with the pids limit hit on the way keeps limitHit timeout",
			facts: base(func(f *facts) {
				f.killedFor = StatusTimeout
				f.cgroup = cgroupEvents{pidsMax: 1}
			}),
			status: StatusTimeout, limitHit: LimitTimeout, errType: ErrorTimeout, notInMsg: []string{"processes and threads"},
		},
		{
			name: "cancelled",
			facts: base(func(f *facts) {
				f.killedFor = StatusCancelled
				f.exit, f.haveExit = killedBy(syscall.SIGKILL), true
			}),
			status: StatusCancelled, errType: ErrorCancelled, signal: "SIGKILL", message: []string{"cancelled"},
		},
		{
			name: "killed by a signal",
			facts: base(func(f *facts) {
				f.exit, f.haveExit = killedBy(syscall.SIGKILL), true
			}),
			status: StatusKilled, errType: ErrorKilled, signal: "SIGKILL", message: []string{"deno was killed by SIGKILL"},
			notInMsg: []string{"forbidden"},
		},
		{
			name: "killed by seccomp",
			facts: base(func(f *facts) {
				f.exit, f.haveExit = killedBy(syscall.SIGSYS), true
			}),
			status: StatusKilled, errType: ErrorKilled, signal: "SIGSYS", message: []string{"killed by SIGSYS (a forbidden system call)"},
		},
		{
			name: "stopped under a tracer",
			facts: base(func(f *facts) {
				f.stopped = true
				f.exit, f.haveExit = killedBy(syscall.SIGKILL), true
			}),
			status: StatusKilled, errType: ErrorKilled, signal: "SIGKILL", message: []string{"stopped under a tracer"},
		},
		{
			name: "network refusal explained by the door's record",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("TypeError", fetchReset)}
				f.exit, f.haveExit = exited(1), true
				f.network = []egress.Record{
					{Host: "127.0.0.1", Port: 8080, Allowed: true},
					{Host: "blocked.test", Port: 80, Reason: notListed},
				}
			}),
			status: StatusError, errType: ErrorRuntime,
			message:  []string{"fetch failed: the server's network policy refused blocked.test:80: " + notListed},
			notInMsg: []string{"os error 104"},
			cause:    fetchReset,
		},
		{
			name: "failed connection the door allowed keeps deno's message",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("TypeError", fetchReset)}
				f.exit, f.haveExit = exited(1), true
				f.network = []egress.Record{{Host: "blocked.test", Port: 80, Allowed: true}}
			}),
			status: StatusError, errType: ErrorRuntime, message: []string{fetchReset},
		},
		{
			name: "failed connection without a door keeps deno's message",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("TypeError", fetchReset)}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorRuntime, message: []string{fetchReset},
		},
		{
			name: "missing program",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("NotFound", "Failed to spawn 'git': entity not found")}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorRuntime, errName: "NotFound",
			message: []string{`"git" is not in the sandbox`, "MCP_CONDUCTOR_TOOLS", "only the admin can add one"},
		},
		{
			name:   "workspace quota refusal before the run",
			facts:  facts{quota: errors.New("the workspace is at its quota of 10 MiB (10 MiB used); only the server's admin can raise it, with MCP_CONDUCTOR_WORKSPACE_QUOTA")},
			status: StatusError, limitHit: LimitWorkspaceQuota, errType: ErrorQuota,
			message: []string{"at its quota of 10 MiB", "MCP_CONDUCTOR_WORKSPACE_QUOTA"},
		},
		{
			name: "pending work stopped after the result",
			facts: base(func(f *facts) {
				f.settled = true
				f.frames = []frameInfo{evaluatedFrame(`{"ok":true}`)}
				f.exit, f.haveExit = killedBy(syscall.SIGKILL), true
			}),
			status: StatusSuccess, pending: true, signal: "", value: `{"ok":true}`,
		},
		{
			name: "channel protocol fault wins over a later error frame",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{{fault: errors.New("frame of 70000000 bytes over the limit")}, errorFrame("Error", "boom")}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorInternal,
			message: []string{"the sandbox broke the channel protocol: frame of 70000000 bytes"}, notInMsg: []string{"boom"},
		},
		{
			name: "an error frame wins over a later protocol fault",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{errorFrame("Error", "boom"), {fault: errors.New("garbage after the error")}}
				f.exit, f.haveExit = exited(1), true
			}),
			status: StatusError, errType: ErrorRuntime, message: []string{"boom"}, notInMsg: []string{"garbage"},
		},
		{
			name: "ended by the host",
			facts: base(func(f *facts) {
				f.frames = []frameInfo{{ended: "the code made more than 100 mcpFactory calls"}}
				f.exit, f.haveExit = killedBy(syscall.SIGKILL), true
			}),
			status: StatusKilled, errType: ErrorKilled, signal: "SIGKILL", message: []string{"ended by the host: the code made more than 100 mcpFactory calls"},
		},
		{
			name: "nonzero exit without an error frame",
			facts: base(func(f *facts) {
				f.exit, f.haveExit = exited(3), true
			}),
			status: StatusError, errType: ErrorRuntime, exitCode: new(3), message: []string{"deno exited with code 3"},
		},
		{
			name:   "no exit status at all",
			facts:  base(nil),
			status: StatusError, errType: ErrorRuntime, message: []string{"deno exited with an error"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := &Result{Degraded: []string{}, Stderr: tc.facts.stderr}
			verdict(tc.facts, res)
			if res.Status != tc.status {
				t.Errorf("status = %q, want %q", res.Status, tc.status)
			}
			if res.LimitHit != tc.limitHit {
				t.Errorf("limitHit = %q, want %q", res.LimitHit, tc.limitHit)
			}
			if res.PendingStopped != tc.pending {
				t.Errorf("pendingWorkStopped = %v, want %v", res.PendingStopped, tc.pending)
			}
			if res.Signal != tc.signal {
				t.Errorf("signal = %q, want %q", res.Signal, tc.signal)
			}
			if tc.exitCode != nil && (res.ExitCode == nil || *res.ExitCode != *tc.exitCode) {
				t.Errorf("exitCode = %s, want %d", fmtCode(res.ExitCode), *tc.exitCode)
			}
			if tc.value != "" && string(res.ReturnValue) != tc.value {
				t.Errorf("returnValue = %s, want %s", res.ReturnValue, tc.value)
			}
			if tc.stderr != "" && !strings.Contains(res.Stderr, tc.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", res.Stderr, tc.stderr)
			}
			if tc.notStderr != "" && strings.Contains(res.Stderr, tc.notStderr) {
				t.Errorf("stderr = %q still has %q", res.Stderr, tc.notStderr)
			}
			if tc.errType == "" {
				if res.Error != nil {
					t.Fatalf("error = %+v, want none", res.Error)
				}
				return
			}
			if res.Error == nil {
				t.Fatalf("no error, want type %q", tc.errType)
			}
			e := res.Error
			if e.Type != tc.errType {
				t.Errorf("error type = %q, want %q (message %q)", e.Type, tc.errType, e.Message)
			}
			if tc.errName != "" && e.Name != tc.errName {
				t.Errorf("error name = %q, want %q", e.Name, tc.errName)
			}
			for _, s := range tc.message {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q lacks %q", e.Message, s)
				}
			}
			for _, s := range tc.notInMsg {
				if strings.Contains(e.Message, s) {
					t.Errorf("message %q has %q", e.Message, s)
				}
			}
			if e.Cause != tc.cause {
				t.Errorf("cause = %q, want %q", e.Cause, tc.cause)
			}
		})
	}
}

// TestVerdictPure: verdict reads nothing but its facts — the same facts give
// the same result, and the facts' frames and records are not changed.
func TestVerdictPure(t *testing.T) {
	f := facts{
		frames:   []frameInfo{errorFrame("TypeError", "fetch failed"), evaluatedFrame(`1`)},
		exit:     exited(1),
		haveExit: true,
		network:  []egress.Record{{Host: "blocked.test", Port: 443, Reason: "not listed"}},
		cgroup:   cgroupEvents{pidsMax: 1},
		stderr:   denoPidsAdvice,
	}
	a, b := &Result{}, &Result{}
	verdict(f, a)
	verdict(f, b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("two verdicts of the same facts differ:\n%s\n%s", ja, jb)
	}
	if f.frames[0].err.Message != "fetch failed" || f.frames[0].err.Type != "" {
		t.Errorf("verdict changed the error frame it was given: %+v", *f.frames[0].err)
	}
	if a.Error == nil || !strings.HasPrefix(a.Error.Message, "fetch failed: the server's network policy refused blocked.test:443") {
		t.Errorf("message = %+v, want the door's refusal", a.Error)
	}
}

func fmtCode(c *int) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprint(*c)
}
