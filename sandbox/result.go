package sandbox

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/quota"
)

// Status is the outcome of one execution.
type Status string

// Statuses. A V8 heap exhaustion and a cgroup OOM kill are both StatusOOM.
const (
	StatusSuccess   Status = "success"
	StatusError     Status = "error"
	StatusTimeout   Status = "timeout"
	StatusOOM       Status = "oom"
	StatusKilled    Status = "killed"
	StatusCancelled Status = "cancelled"
)

// Error types, as reported in ErrorInfo.Type.
const (
	ErrorSyntax     = "syntax"
	ErrorRuntime    = "runtime"
	ErrorPermission = "permission"
	ErrorDependency = "dependency"
	ErrorTimeout    = "timeout"
	ErrorOOM        = "oom"
	ErrorKilled     = "killed"
	ErrorCancelled  = "cancelled"
	ErrorInternal   = "internal"
	ErrorQuota      = "quota" // the workspace is at its quota; the run was refused
	// Refusals before a run: the request itself (bad input, a language the server does not
	// offer) or the server having no slot free.
	ErrorInvalidRequest = "invalid_request"
	ErrorBusy           = "busy"
	// ErrorType: the code does not type-check (run_deno_code with type-checking); it did not run.
	ErrorType = "type"
)

// Limits a run can hit, as reported in Result.LimitHit.
const (
	LimitTimeout = "timeout"
	LimitMemory  = "memory"
	LimitPids    = "pids"
	// LimitWorkspaceQuota: the run was refused, the workspace being full.
	LimitWorkspaceQuota = "workspaceQuota"
)

// UndefinedJSON is ReturnValue when the code's value is undefined: it returned nothing.
const UndefinedJSON = `{"$type":"undefined"}`

// ErrorInfo describes why a run did not succeed.
type ErrorInfo struct {
	Type    string `json:"type"`
	Name    string `json:"name,omitempty"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`   // 1-based, in the user's code
	Column  int    `json:"column,omitempty"` // 1-based, in UTF-16 code units as V8 counts
	Stack   string `json:"stack,omitempty"`
	// Cause is the original text when conductor reworded the message (deno's permission
	// refusal, whose advice — run again with a flag — the agent cannot follow; a connection
	// the network door refused, which code sees only as reset or unresolved).
	Cause string `json:"cause,omitempty"`
}

// Result is the outcome of one execution; `conductor exec --json` prints it.
type Result struct {
	Status          Status          `json:"status"`
	ExitCode        *int            `json:"exitCode"`
	Signal          string          `json:"signal"`
	Stdout          string          `json:"stdout"`
	Stderr          string          `json:"stderr"`
	StdoutTruncated bool            `json:"stdoutTruncated"`
	StderrTruncated bool            `json:"stderrTruncated"`
	StdoutBytes     int64           `json:"stdoutBytes"`
	StderrBytes     int64           `json:"stderrBytes"`
	StdoutFile      string          `json:"stdoutFile,omitempty"` // the full stdout, in the workspace, when the inline copy was cut
	StderrFile      string          `json:"stderrFile,omitempty"`
	OutputNote      string          `json:"outputNote,omitempty"` // why output could not be kept in full, if so
	DurationMs      float64         `json:"durationMs"`           // the call's time, without QueuedMs
	QueuedMs        float64         `json:"queuedMs"`             // the wait for an execution slot (MCP_CONDUCTOR_MAX_CONCURRENCY)
	CPUMs           float64         `json:"cpuMs"`
	MemoryPeakBytes int64           `json:"memoryPeakBytes"`
	ReturnValue     json.RawMessage `json:"returnValue"`
	ReturnTruncated bool            `json:"returnValueTruncated"`
	Calls           int             `json:"mcpCalls"` // mcpFactory calls the code made
	// CallDetails are the calls' server, tool, time, outcome and approval
	// (at most MaxCallDetails; CallDetailsDropped more not listed).
	CallDetails        []CallDetail `json:"mcpCallDetails,omitempty"`
	CallDetailsDropped int          `json:"mcpCallDetailsDropped,omitempty"`
	// PendingStopped: the code left work pending after its result (timers,
	// unawaited promises) that had not finished AfterResultGrace later; the
	// run ended there and the result is the value.
	PendingStopped bool `json:"pendingWorkStopped,omitempty"`
	// Network is what the door decided (Options.Net): each connection and
	// refused lookup, with the reason of a refusal and the bytes moved;
	// at most egress.DefaultDoorMaxRecords, NetworkDropped more not kept.
	Network        []egress.Record `json:"network,omitempty"`
	NetworkDropped int             `json:"networkDropped,omitempty"`
	// Outputs are the files the run left in its outputs directory (Options.Outputs) and
	// the workspace files it named, collected by the host when the run ended (package outputs).
	Outputs  []outputs.File `json:"outputs,omitempty"`
	LimitHit string         `json:"limitHit"`
	Degraded []string       `json:"degraded"`
	Error    *ErrorInfo     `json:"error"`
	// StartWait is how long the execution waited for its sandbox (a pooled one, the next to
	// boot, or a cold start), for metrics and the audit log; not part of the tool's result.
	StartWait time.Duration `json:"-"`
}

// v8OOMMarkers are what deno prints when V8's heap limit is reached.
var v8OOMMarkers = []string{
	"JavaScript heap out of memory",
	"Fatal JavaScript out of memory",
	"Fatal process out of memory",
	"Reached heap limit",
}

// facts is what the world says about one finished run, gathered by
// (*Sandbox).gatherFacts; verdict decides the run's outcome from them alone.
type facts struct {
	// killedFor: the host killed the sandbox for the timeout or a
	// cancellation ("" = neither). settled: the host ended it
	// AfterResultGrace after the module's result, with work still pending.
	killedFor Status
	settled   bool
	elapsed   time.Duration // the run's time, for the timeout's message
	// quota is the workspace quota's refusal before the run; the other
	// facts are then zero: nothing ran.
	quota error
	// frames are the bootstrap's frames and the channel's events, in the
	// order they arrived.
	frames []frameInfo
	// exit is deno's wait status; haveExit is false when there is none.
	exit     syscall.WaitStatus
	haveExit bool
	stopped  bool   // deno stopped under a tracer instead of exiting, and was killed
	stderr   string // the inline stderr, for V8's heap-exhaustion report and deno's pids advice
	cgroup   cgroupEvents
	network  []egress.Record // the door's records; nil without a door
	// What the messages name: the sandbox's memory and pids limits (0 =
	// unknown), and whether the heap was the sandbox's own deno's.
	memoryLimit int64
	pidsLimit   int64
	ownHeap     bool
}

// gatherFacts reads what verdict needs after deno has exited (or was
// killed): the frames that arrived, deno's exit status, the cgroups' limit
// events and the door's records, and fills the parts of res that are
// measurements rather than decisions (output, spill files, times, memory
// peak, network list). It must run before the cgroups are destroyed.
func (sb *Sandbox) gatherFacts(res *Result, killedFor Status, settled bool, elapsed time.Duration) facts {
	f := facts{
		killedFor: killedFor, settled: settled, elapsed: elapsed, stopped: sb.stopped,
		memoryLimit: sb.r.opts.Limits.Memory, pidsLimit: sb.r.opts.Limits.Pids, ownHeap: !sb.launcher,
	}
	res.DurationMs = Millis(elapsed)
	res.Stdout, res.StdoutTruncated, res.StdoutBytes = sb.stdout.Result()
	res.Stderr, res.StderrTruncated, res.StderrBytes = sb.stderr.Result()
	f.stderr = res.Stderr
	var notes []string
	for _, st := range []struct {
		name string
		buf  *cappedBuffer
		file *string
	}{{"stdout", sb.stdout, &res.StdoutFile}, {"stderr", sb.stderr, &res.StderrFile}} {
		path, cut, err := st.buf.Spill()
		*st.file = path
		switch {
		case err != nil:
			notes = append(notes, st.name+" could not be saved in full: "+err.Error())
		case cut:
			notes = append(notes, fmt.Sprintf("%s file was cut at the spill limit (%d bytes per run, stdout and stderr together; the admin sets it with MCP_CONDUCTOR_SPILL_MAX)", st.name, sb.r.opts.SpillMax))
		}
	}
	if sb.spill != nil {
		sb.spill.finish()
	}
	res.OutputNote = strings.Join(notes, "; ")
	if res.Degraded == nil {
		res.Degraded = []string{}
	}
	if st := sb.state; st != nil {
		res.CPUMs = Millis(st.UserTime() + st.SystemTime())
	}
	f.cgroup = sb.cgroupEvents()
	res.MemoryPeakBytes = f.cgroup.memoryPeak
	for done := false; !done; {
		select {
		case fr := <-sb.frames:
			f.frames = append(f.frames, fr)
		default:
			done = true
		}
	}
	f.exit, f.haveExit = waitStatus(sb.state)
	if sb.door != nil {
		// The door records a refusal before it resets the connection, so
		// the record of the failure the code saw is here.
		res.Network, res.NetworkDropped = sb.door.Records()
		f.network = res.Network
	}
	return f
}

// verdict decides a run's outcome from its facts alone (no I/O): it sets
// res's Status, LimitHit, Error, ExitCode, Signal, PendingStopped and return
// value, and rewords what an agent cannot act on (deno's permission and pids
// advice, a connection the door refused, a missing program).
func verdict(f facts, res *Result) {
	if f.quota != nil {
		res.Status, res.LimitHit = StatusError, LimitWorkspaceQuota
		res.Error = &ErrorInfo{Type: ErrorQuota, Message: f.quota.Error()}
		return
	}
	// The first fault, end or error frame explains the run; the value is
	// the "evaluated" frame's.
	var frame *frameInfo
	evaluated := false
	for i := range f.frames {
		fr := &f.frames[i]
		switch {
		case fr.fault != nil && frame == nil:
			frame = &frameInfo{fault: fr.fault}
		case fr.ended != "" && frame == nil:
			frame = &frameInfo{ended: fr.ended}
		case fr.typ == "error" && frame == nil:
			frame = fr
		case fr.typ == "evaluated":
			evaluated = true
			res.ReturnValue, res.ReturnTruncated = fr.result, fr.resultTruncated
		}
	}

	signaled := f.haveExit && f.exit.Signaled()
	if f.haveExit && f.exit.Exited() {
		code := f.exit.ExitStatus()
		res.ExitCode = &code
	}
	if signaled {
		res.Signal = signalName(f.exit.Signal())
	}
	heapOOM := containsAny(f.stderr, v8OOMMarkers)

	switch {
	case f.killedFor == StatusTimeout:
		res.Status, res.LimitHit = StatusTimeout, LimitTimeout
		res.Error = &ErrorInfo{Type: ErrorTimeout, Message: "execution timed out after " + time.Duration(f.elapsed.Milliseconds()*int64(time.Millisecond)).String() + "; every process of the sandbox was killed"}
	case f.killedFor == StatusCancelled:
		res.Status = StatusCancelled
		res.Error = &ErrorInfo{Type: ErrorCancelled, Message: "execution was cancelled; every process of the sandbox was killed"}
	case heapOOM || (f.cgroup.oomKills > 0 && (signaled || !evaluated)):
		res.Status, res.LimitHit = StatusOOM, LimitMemory
		res.Error = &ErrorInfo{Type: ErrorOOM, Message: oomMessage(heapOOM, f.memoryLimit, f.ownHeap)}
	case frame != nil && frame.fault != nil:
		res.Status = StatusError
		res.Error = &ErrorInfo{Type: ErrorInternal, Message: "the sandbox broke the channel protocol: " + frame.fault.Error()}
	case frame != nil && frame.ended != "":
		res.Status = StatusKilled
		res.Error = &ErrorInfo{Type: ErrorKilled, Message: "the execution was ended by the host: " + frame.ended}
	case frame != nil && frame.err != nil:
		res.Status = StatusError
		info := *frame.err
		info.Type = classify(info)
		if info.Type == ErrorPermission {
			if msg, ok := rewordPermission(info.Message); ok {
				info.Message, info.Cause = msg, info.Message
			}
		}
		if prog, ok := missingProgram(info); ok {
			info.Message += " (" + prog + " is not in the sandbox: it holds deno and the CLI tools the admin lists in MCP_CONDUCTOR_TOOLS; only the admin can add one)"
		}
		if info.Type == ErrorSyntax && strings.HasPrefix(info.Message, "SyntaxError: ") {
			// deno reports a module that does not parse as a TypeError
			// wrapping the SyntaxError; report the SyntaxError itself.
			info.Name = "SyntaxError"
			info.Message = strings.TrimPrefix(info.Message, "SyntaxError: ")
			info.Stack = strings.TrimPrefix(info.Stack, "TypeError: ")
		}
		res.Error = &info
	case f.settled:
		// Ended by the host after the result: neither a crash nor a signal
		// of the code's making.
		res.Status, res.PendingStopped, res.Signal = StatusSuccess, true, ""
	case f.stopped:
		res.Status = StatusKilled
		res.Error = &ErrorInfo{Type: ErrorKilled, Message: "deno stopped under a tracer; the sandbox was killed"}
	case signaled:
		res.Status = StatusKilled
		res.Error = &ErrorInfo{Type: ErrorKilled, Message: "deno was killed by " + res.Signal}
		if f.exit.Signal() == syscall.SIGSYS {
			res.Error.Message += " (a forbidden system call)"
		}
	case res.ExitCode != nil && *res.ExitCode == 0:
		res.Status = StatusSuccess
	default:
		res.Status = StatusError
		msg := "deno exited with an error"
		if res.ExitCode != nil {
			msg = "deno exited with code " + strconv.Itoa(*res.ExitCode)
		}
		res.Error = &ErrorInfo{Type: ErrorRuntime, Message: msg}
	}
	if res.LimitHit == "" && f.cgroup.pidsMax > 0 {
		res.LimitHit = LimitPids
		if res.Error != nil {
			res.Error.Message += " (" + pidsLimitNote(f.pidsLimit) + ")"
		}
	}
	res.Stderr = rewordPidsAdvice(f.stderr, f.pidsLimit)
	if e := res.Error; e != nil && res.Status == StatusError && e.Cause == "" {
		if msg, ok := rewordNetwork(*e, f.network); ok {
			e.Message, e.Cause = msg, e.Message
		}
	}
}

// oomMessage says which memory limit a run hit, its size, and who sets it: heap when V8 reported
// its heap exhausted, else the sandbox's cgroup limit (memory bytes; 0 = none known). ownHeap: the
// heap was the sandbox's own deno's, whose limit conductor sets (a launcher's program, a deno of
// its own among them, has its runtime's default).
func oomMessage(heap bool, memory int64, ownHeap bool) string {
	admin := "; only the server's admin can raise it, with " + config.VarMemory
	switch {
	case memory <= 0 && heap:
		return "out of memory: the JavaScript heap limit was reached"
	case memory <= 0:
		return "out of memory: the sandbox was killed for its memory use"
	case heap && ownHeap:
		return fmt.Sprintf("out of memory: the JavaScript heap reached its limit of %s (set from the sandbox's memory limit of %s%s)",
			quota.FormatSize(oldSpaceMiB(memory)<<20), quota.FormatSize(memory), admin)
	case heap:
		return fmt.Sprintf("out of memory: a JavaScript heap limit was reached (the sandbox's memory limit is %s%s)", quota.FormatSize(memory), admin)
	}
	return fmt.Sprintf("out of memory: the sandbox reached its memory limit of %s and was killed%s", quota.FormatSize(memory), admin)
}

// pidsLimitNote says that the sandbox's process/thread limit (pids; 0 = not known) was reached and who sets it.
func pidsLimitNote(pids int64) string {
	if pids <= 0 {
		return "the sandbox's process/thread limit was reached"
	}
	return fmt.Sprintf("the sandbox's limit of %d processes and threads was reached; only the server's admin can raise it, with %s", pids, config.VarPids)
}

// denoPidsAdvice is what deno prints when it cannot start its threads: advice for a container
// runtime's flag, which neither the code nor the agent can act on. Its two lines are matched
// each on its own: processes that fail together write to one stderr, and another's lines can
// come between them.
const (
	denoPidsAdvice1 = "This usually happens when running in a container with a low"
	denoPidsAdvice2 = "PID limit. Try increasing the limit (e.g. --pids-limit="
	denoPidsAdvice  = denoPidsAdvice1 + "\n" + denoPidsAdvice2 + "40)."
)

// rewordPidsAdvice replaces deno's advice in stderr with the sandbox's limit and who sets it.
func rewordPidsAdvice(stderr string, pids int64) string {
	if !strings.Contains(stderr, denoPidsAdvice2) {
		return stderr
	}
	note := pidsLimitNote(pids)
	note = strings.ToUpper(note[:1]) + note[1:] + "."
	lines := strings.SplitAfter(stderr, "\n")
	out := lines[:0]
	for _, l := range lines {
		body, nl := strings.CutSuffix(l, "\n")
		switch {
		case body == denoPidsAdvice1:
			continue
		case strings.HasPrefix(body, denoPidsAdvice2):
			l = note
			if nl {
				l += "\n"
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// permissionGrant names, per deno permission, the setting that grants it and an example.
var permissionGrant = map[string]string{
	"net":    "allow-net in MCP_CONDUCTOR_RUN_ARGS",
	"read":   "allow-read in MCP_CONDUCTOR_RUN_ARGS",
	"write":  "allow-write in MCP_CONDUCTOR_RUN_ARGS",
	"env":    "allow-env in MCP_CONDUCTOR_RUN_ARGS",
	"run":    "allow-run in MCP_CONDUCTOR_RUN_ARGS, and MCP_CONDUCTOR_TOOLS for the program itself",
	"sys":    "allow-sys in MCP_CONDUCTOR_RUN_ARGS",
	"ffi":    "allow-ffi in MCP_CONDUCTOR_RUN_ARGS",
	"import": "allow-import in MCP_CONDUCTOR_RUN_ARGS",
}

// rewordPermission turns deno's refusal, `Requires net access to "x:443", run again with the
// --allow-net flag` (advice an agent cannot follow), into what was refused and who can grant
// it. ok is false for any other message, which is kept as it is. The message comes from the
// sandbox: only deno's exact shape is reworded, and the target is kept as deno quoted it.
func rewordPermission(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "Requires ")
	if !ok {
		return "", false
	}
	kind, rest, ok := strings.Cut(rest, " access")
	grant := permissionGrant[kind]
	if !ok || grant == "" {
		return "", false
	}
	target, advice, ok := strings.Cut(rest, ", run again with the --allow-"+kind+" flag")
	if !ok || strings.TrimSpace(advice) != "" {
		return "", false
	}
	what := kind + " access"
	if t, ok := strings.CutPrefix(target, " to "); ok {
		what += " to " + t
	} else if target != "" {
		return "", false
	}
	return fmt.Sprintf("%s was refused: this server does not grant it, and only its admin can (%s)", what, grant), true
}

// networkFailureMarks are in the message of a connection that failed, as deno (fetch, Deno.connect),
// node:net and Python word it. Behind the door a refused destination is a reset connection, and a
// name the policy does not allow does not resolve.
var networkFailureMarks = []string{
	"fetch failed", "error sending request", "tcp connect error",
	"Connection refused", "Connection reset", "connection reset", "connection refused",
	"os error 104", "os error 111", "Errno 104", "Errno 111",
	"ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN",
	"dns error", "failed to lookup address", "Name or service not known", "Temporary failure in name resolution",
	"nodename nor servname",
}

// networkErrorNames are deno's error classes of a failed connection.
var networkErrorNames = map[string]bool{"ConnectionRefused": true, "ConnectionReset": true, "ConnectionAborted": true}

// rewordNetwork says why a connection failed when the door refused it: code sees only a reset
// connection (fetch's "fetch failed", "Connection reset by peer"), or a name that does not
// resolve; the door's record (recs, the run's network list) has the reason. The record is the
// last refusal for the host:port the message names (a URL, node's "connect ECONNRESET ip:port"),
// or, when it names none, the run's last refusal; a named destination whose last record was
// allowed, or that has none (an IPv6 literal, which the door does not take), keeps deno's message.
// A policy refusal is said as one, with the reason naming who can change it; a destination the
// policy allows that did not answer (nothing listens, no such name) as a failed connection. ok is
// false when e is no failed connection or nothing the door refused explains it.
func rewordNetwork(e ErrorInfo, recs []egress.Record) (string, bool) {
	if e.Type != ErrorRuntime || (!networkErrorNames[e.Name] && !containsAny(e.Message, networkFailureMarks)) {
		return "", false
	}
	var rec *egress.Record
	others := map[string]bool{} // refused destinations besides rec
	if host, port, named := namedDest(e.Message); named {
		for i := len(recs) - 1; i >= 0; i-- {
			r := &recs[i]
			if strings.EqualFold(strings.TrimSuffix(r.Host, "."), host) && (r.Port == port || r.Port == 0 || port == 0) {
				rec = r
				break
			}
		}
		if rec == nil || rec.Allowed {
			return "", false
		}
	} else {
		for i := len(recs) - 1; i >= 0; i-- {
			if !recs[i].Allowed {
				rec = &recs[i]
				break
			}
		}
		if rec == nil {
			return "", false
		}
	}
	for _, r := range recs {
		if !r.Allowed && (r.Host != rec.Host || r.Port != rec.Port) {
			others[net.JoinHostPort(r.Host, strconv.Itoa(r.Port))] = true
		}
	}
	lead := "connection failed"
	if strings.HasPrefix(e.Message, "fetch failed") || strings.Contains(e.Message, "error sending request") {
		lead = "fetch failed"
	}
	msg := lead + ": " + refusalText(*rec)
	if n := len(others); n > 0 {
		msg += fmt.Sprintf(" (the result's network list has %d other refused destination(s) of this run)", n)
	}
	return msg, true
}

// refusalText says what the door decided about one refused record, and why.
func refusalText(r egress.Record) string {
	dest := r.Host
	if r.Port != 0 {
		dest = net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
	}
	switch reason := r.Reason; {
	case strings.HasPrefix(reason, "cannot connect: "):
		why := strings.TrimPrefix(strings.TrimPrefix(reason, "cannot connect: "), "connect: ")
		return fmt.Sprintf("cannot connect to %s: %s (the server's network policy allows it; the connection itself failed)", dest, why)
	case reason == "connecting timed out":
		return fmt.Sprintf("connecting to %s timed out (the server's network policy allows it; the connection itself failed)", dest)
	case strings.HasPrefix(reason, "cannot resolve the name on the server: "):
		return fmt.Sprintf("the server cannot resolve the name %s: %s (the server's network policy allows it)", r.Host, strings.TrimPrefix(reason, "cannot resolve the name on the server: "))
	case reason == "the name has no addresses":
		return fmt.Sprintf("the name %s has no addresses on the server (the server's network policy allows it)", r.Host)
	case strings.HasPrefix(reason, "DNS lookup refused: "):
		return fmt.Sprintf("the server's network policy refused the name %s (its DNS lookup): %s", r.Host, strings.TrimPrefix(reason, "DNS lookup refused: "))
	case reason == "":
		return "the server's network policy refused " + dest
	default:
		return fmt.Sprintf("the server's network policy refused %s: %s", dest, reason)
	}
}

// destInMessage finds a URL's authority, or what follows node's "connect ECONNRESET ".
var destInMessage = regexp.MustCompile(`(?:\b(https?|wss?)://([^/\s)?#]+)|\b(?:ECONNRESET|ECONNREFUSED) ([^/\s)?#]+))`)

// namedDest is the host and port a failed connection's message names (0 port: the scheme's
// default is unknown, any port matches), lowercased and without IPv6 brackets.
func namedDest(msg string) (host string, port int, ok bool) {
	m := destInMessage.FindStringSubmatch(msg)
	if m == nil {
		return "", 0, false
	}
	authority := m[2]
	if authority == "" {
		authority = m[3]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = authority[at+1:]
	}
	h, p, err := net.SplitHostPort(authority)
	if err != nil {
		h, p = strings.Trim(authority, "[]"), ""
	}
	if p != "" {
		port, _ = strconv.Atoi(p)
	} else {
		switch m[1] {
		case "http", "ws":
			port = 80
		case "https", "wss":
			port = 443
		}
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return h, port, h != ""
}

// missingProgram recognizes the error of starting a program the root does not hold: deno's
// "Failed to spawn 'git': entity not found" (NotFound) and node:child_process's
// "spawn git ENOENT" / "spawnSync git ENOENT". It returns the program's name, quoted and
// shortened: the message comes from the sandbox and is hostile.
func missingProgram(e ErrorInfo) (string, bool) {
	var prog string
	switch {
	case e.Name == "NotFound" && strings.HasPrefix(e.Message, "Failed to spawn '"):
		rest := strings.TrimPrefix(e.Message, "Failed to spawn '")
		name, tail, ok := strings.Cut(rest, "': ")
		if !ok || (tail != "entity not found" && !strings.HasPrefix(tail, "No such file or directory")) {
			return "", false
		}
		prog = name
	case strings.HasSuffix(e.Message, " ENOENT") && (strings.HasPrefix(e.Message, "spawn ") || strings.HasPrefix(e.Message, "spawnSync ")):
		_, rest, _ := strings.Cut(e.Message, " ")
		prog = strings.TrimSuffix(rest, " ENOENT")
	default:
		return "", false
	}
	if prog == "" || strings.ContainsAny(prog, " \n") {
		return "", false
	}
	if len(prog) > 64 {
		prog = prog[:64] + "..."
	}
	return strconv.Quote(prog), true
}

// classify maps an error thrown by the user's code to an error type.
func classify(e ErrorInfo) string {
	switch {
	case e.Name == "SyntaxError" || strings.HasPrefix(e.Message, "SyntaxError:"):
		return ErrorSyntax
	case e.Name == "NotCapable" || e.Name == "PermissionDenied":
		return ErrorPermission
	case strings.Contains(e.Message, "--cached-only is specified") ||
		strings.Contains(e.Message, "Module not found") ||
		strings.Contains(e.Message, "Relative import path") ||
		strings.Contains(e.Message, "Import \"") ||
		strings.Contains(e.Message, "--no-remote"):
		return ErrorDependency
	}
	return ErrorRuntime
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func signalName(s syscall.Signal) string {
	if name := unixSignalName(s); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(int(s))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cgroupEvents is what the sandbox's cgroups say about limits hit.
type cgroupEvents struct {
	memoryPeak int64
	oomKills   int64
	pidsMax    int64
}

// cgroupEvents reads peak memory, OOM kills and pids-limit hits from the
// container's cgroups, before they are destroyed. A v1 hierarchy named after
// the controller wins; a hybrid host also lists its controller-less cgroup v2
// directory under "", which is used only for controllers v1 does not have.
func (sb *Sandbox) cgroupEvents() cgroupEvents {
	var ev cgroupEvents
	st, err := sb.ctr.State()
	if err != nil {
		return ev
	}
	paths := st.CgroupPaths
	unified, hasUnified := paths[""]
	if p, ok := paths["memory"]; ok {
		ev.memoryPeak = readInt(filepath.Join(p, "memory.max_usage_in_bytes"))
		ev.oomKills = readKey(filepath.Join(p, "memory.oom_control"), "oom_kill")
	} else if hasUnified {
		ev.memoryPeak = readInt(filepath.Join(unified, "memory.peak"))
		ev.oomKills = readKey(filepath.Join(unified, "memory.events"), "oom_kill")
	}
	if p, ok := paths["pids"]; ok {
		ev.pidsMax = readKey(filepath.Join(p, "pids.events"), "max")
	} else if hasUnified {
		ev.pidsMax = readKey(filepath.Join(unified, "pids.events"), "max")
	}
	return ev
}

func readInt(file string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// readKey reads "key value" lines (memory.events, pids.events, oom_control).
func readKey(file, key string) int64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
