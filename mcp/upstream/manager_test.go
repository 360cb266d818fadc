package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func toolNames(tools []*mcp.Tool) []string {
	var out []string
	for _, t := range tools {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out
}

func (m *Manager) connectsOf(name string) int {
	u, _ := m.get(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.connects
}

func (m *Manager) childPid(name string) int {
	u, _ := m.get(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sess == nil || u.sess.child == nil {
		return 0
	}
	return u.sess.child.pid
}

func statusOf(m *Manager, name string) Status {
	for _, s := range m.Status(context.Background()) {
		if s.Name == name {
			return s
		}
	}
	return Status{}
}

func callPid(t *testing.T, m *Manager, server string) int {
	t.Helper()
	res, err := m.CallTool(context.Background(), server, "pid", nil)
	if err != nil {
		t.Fatalf("pid: %v", err)
	}
	pid := structuredInt(res, "n")
	if pid <= 0 {
		t.Fatalf("pid: bad result %+v", res)
	}
	return pid
}

// A stdio go-sdk server: tools, a tool error, resources, prompts, counts,
// and one long-lived session whose state survives across calls.
func TestHelperStdio(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newTestManager(t, Options{}, helperStdio(t, "helper"))

	if st := statusOf(m, "helper"); st.State != StateIdle || st.Tools != -1 || st.Transport != TransportStdio {
		t.Fatalf("before any call: %+v", st)
	}
	tools, err := m.ListTools(ctx, "helper")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"counter", "crash", "cwd", "echo", "env", "fail", "pid", "sleep", "spawn"}
	if got := toolNames(tools); !slices.Equal(got, want) {
		t.Fatalf("tools: got %v, want %v", got, want)
	}
	res, err := m.CallTool(ctx, "helper", "echo", map[string]any{"text": "héllo"})
	if err != nil || res.IsError || structuredString(res, "s") != "héllo" {
		t.Fatalf("echo: %v %+v", err, res)
	}
	res, err = m.CallTool(ctx, "helper", "fail", nil)
	if err != nil {
		t.Fatalf("a tool error must be a result, not a Go error: %v", err)
	}
	if !res.IsError || !strings.Contains(textOf(res), "the tool failed on purpose") {
		t.Fatalf("fail: want IsError with the message, got %+v", res)
	}
	// Schema-invalid arguments are a tool error too.
	res, err = m.CallTool(ctx, "helper", "echo", map[string]any{"text": 5})
	if err != nil || !res.IsError {
		t.Fatalf("echo with a number: want IsError, got %v %+v", err, res)
	}
	// An unknown tool is a protocol error: the session stays.
	_, err = m.CallTool(ctx, "helper", "nope", nil)
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown tool: want a protocol error naming it, got %v", err)
	}
	for i := 1; i <= 3; i++ {
		res, err := m.CallTool(ctx, "helper", "counter", nil)
		if err != nil || structuredInt(res, "n") != i {
			t.Fatalf("counter call %d: got %v %+v (state lost between calls?)", i, err, res)
		}
	}
	resources, err := m.ListResources(ctx, "helper")
	if err != nil || len(resources) != 1 || resources[0].URI != "helper://hello" {
		t.Fatalf("resources: %v %+v", err, resources)
	}
	rr, err := m.ReadResource(ctx, "helper", "helper://hello")
	if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "hello from helper" {
		t.Fatalf("read: %v %+v", err, rr)
	}
	prompts, err := m.ListPrompts(ctx, "helper")
	if err != nil || len(prompts) != 1 || prompts[0].Name != "greet" {
		t.Fatalf("prompts: %v %+v", err, prompts)
	}
	gp, err := m.GetPrompt(ctx, "helper", "greet", map[string]string{"who": "world"})
	if err != nil || len(gp.Messages) != 1 || gp.Messages[0].Content.(*mcp.TextContent).Text != "hello world" {
		t.Fatalf("get prompt: %v %+v", err, gp)
	}
	st := statusOf(m, "helper")
	if st.State != StateConnected || st.Tools != len(want) || st.Resources != 1 || st.Prompts != 1 || st.LastError != "" {
		t.Fatalf("status: %+v", st)
	}
	if n := m.connectsOf("helper"); n != 1 {
		t.Fatalf("%d connection attempts, want 1 long-lived session", n)
	}
}

// A call past CallTimeout fails with ErrTimeout; the session survives.
func TestCallTimeout(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{CallTimeout: 300 * time.Millisecond}, helperStdio(t, "helper"))
	pid := callPid(t, m, "helper")
	start := time.Now()
	_, err := m.CallTool(context.Background(), "helper", "sleep", map[string]any{"ms": 5000})
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Fatalf("the timeout took %s, want about 300ms", took)
	}
	if !strings.Contains(err.Error(), `"sleep"`) || !strings.Contains(err.Error(), "300ms") {
		t.Fatalf("message should name the tool and the limit: %v", err)
	}
	if got := callPid(t, m, "helper"); got != pid {
		t.Fatalf("after a timeout the session was replaced (pid %d → %d)", pid, got)
	}
	// A caller's own cancellation is not a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = m.CallTool(ctx, "helper", "sleep", map[string]any{"ms": 5000})
	if errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: want context.DeadlineExceeded without ErrTimeout, got %v", err)
	}
	if n := m.connectsOf("helper"); n != 1 {
		t.Fatalf("%d connects, want 1", n)
	}
}

// The server exits in the middle of a call: that call is ErrUnavailable and
// is not retried (it may have had effects); the next call reconnects.
func TestCrashMidCall(t *testing.T) {
	t.Parallel()
	markers := t.TempDir()
	h := &recordHandler{}
	m := newTestManager(t, Options{Logger: slog.New(h)}, helperStdio(t, "helper", "HELPER_MARKER_DIR="+markers))
	pid := callPid(t, m, "helper")
	_, err := m.CallTool(context.Background(), "helper", "crash", nil)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrCrashed) {
		t.Fatalf("crash: want ErrUnavailable and ErrCrashed, got %v", err)
	}
	// How it ended, and where to look — never what it printed (issue 9,
	// finding 5: stderr may carry secrets in forms redaction misses).
	if want := `MCP server "helper" exited (exit status 7) during tools/call "crash"; see the server log`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	entries, _ := os.ReadDir(markers)
	if len(entries) != 1 {
		t.Fatalf("the crashing tool ran %d times, want once (no retry of a delivered call)", len(entries))
	}
	st := statusOf(m, "helper")
	if st.State != StateFailed || !strings.Contains(st.LastError, "exit status 7") || st.LastErrorAt.IsZero() {
		t.Fatalf("status after the crash: %+v", st)
	}
	if strings.Contains(st.LastError, "crashing on purpose") {
		t.Errorf("Status.LastError quotes the upstream's stderr: %q", st.LastError)
	}
	// The admin's log has the exit, at warn, with the last stderr lines.
	var exit map[string]any
	testenv.WaitFor(t, "the log record of the exit", 2*time.Second, func() bool {
		exit = h.find("upstream MCP server process exited", "pid", int64(pid))
		return exit != nil
	})
	if exit == nil || exit["level"] != slog.LevelWarn || exit["status"] != "exit status 7" || !strings.Contains(exit["stderr"].(string), "helper: crashing on purpose") {
		t.Errorf("log record of the exit: %v", exit)
	}
	waitGone(t, pid, time.Second)
	if got := callPid(t, m, "helper"); got == pid {
		t.Fatal("same pid after a crash")
	}
	if st := statusOf(m, "helper"); st.State != StateConnected {
		t.Fatalf("status after reconnecting: %+v", st)
	}
	if n := m.connectsOf("helper"); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
}

// Several callers had requests the server had read when it crashed: each
// gets ErrCrashed (any of them may be the cause; mcpFactory ends each
// one's execution), and the next call is served by a new process.
func TestCrashFailsEveryReadRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	markers := t.TempDir()
	m := newTestManager(t, Options{}, helperStdio(t, "helper", "HELPER_MARKER_DIR="+markers))
	pid := callPid(t, m, "helper")
	sleeping := make(chan error, 1)
	go func() {
		_, err := m.CallTool(ctx, "helper", "sleep", map[string]any{"ms": 10000})
		sleeping <- err
	}()
	waitSleeping(t, markers) // the sleep is read and running
	_, err := m.CallTool(ctx, "helper", "crash", nil)
	if !errors.Is(err, ErrCrashed) {
		t.Fatalf("crash: want ErrCrashed, got %v", err)
	}
	select {
	case err := <-sleeping:
		if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), `during tools/call "sleep"`) {
			t.Fatalf("the sleep in flight: want ErrCrashed, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sleep in flight did not fail with the crash")
	}
	if got := callPid(t, m, "helper"); got == pid {
		t.Fatal("same pid after a crash")
	}
}

// The process dies while idle: once it is gone, calls find the session
// broken, share one reconnect, and succeed.
func TestBrokenSessionReconnectsOnce(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{}, helperStdio(t, "helper"))
	pid := callPid(t, m, "helper")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait until the manager has seen it go (a dying process can still
	// swallow what is written to its stdin; such calls are not retried).
	testenv.WaitFor(t, "the manager to notice the process died", 2*time.Second, func() bool { return statusOf(m, "helper").State == StateFailed })
	if st := statusOf(m, "helper"); !strings.Contains(st.LastError, "killed") {
		t.Errorf("LastError %q does not say the process was killed", st.LastError)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			res, err := m.CallTool(context.Background(), "helper", "echo", map[string]any{"text": "x"})
			if err == nil && structuredString(res, "s") != "x" {
				err = errors.New("bad echo result")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call after the process died: %v", err)
		}
	}
	if n := m.connectsOf("helper"); n != 2 {
		t.Fatalf("%d connects, want 2 (one shared reconnect)", n)
	}
	if got := callPid(t, m, "helper"); got == pid {
		t.Fatal("same pid")
	}
}

// The server exits without reading a request that is already in its stdin
// pipe: the request never reached it, so it is sent again on a new session.
func TestRequestUnreadByDyingServerIsRetried(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{}, ServerConfig{Name: "raw", Transport: TransportStdio, Command: helperExe(t),
		Env: map[string]string{helperEnv: "raw"}})
	pid := callPid(t, m, "raw")
	if _, err := m.CallTool(context.Background(), "raw", "leave", nil); err != nil {
		t.Fatal(err)
	}
	// Sent while the server sleeps without reading, then exits.
	start := time.Now()
	got := callPid(t, m, "raw")
	if got == pid {
		t.Fatal("answered by the old process")
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("answered in %s: the request did not wait for the old process to go", took)
	}
	if n := m.connectsOf("raw"); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
}

// The write-side path: the session is still registered as live, but the
// process is gone — the request cannot be written, so it is sent again on a
// new session.
func TestUndeliveredRequestIsRetried(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{}, helperStdio(t, "helper"))
	callPid(t, m, "helper")
	u := m.ups["helper"]
	u.mu.Lock()
	s := u.sess
	u.mu.Unlock()
	// Close our end of the pipe underneath the session: the next write fails
	// with "file already closed" before anything reaches the server.
	s.child.stdin.Close()
	res, err := m.CallTool(context.Background(), "helper", "counter", nil)
	if err != nil || structuredInt(res, "n") != 1 {
		t.Fatalf("want the call retried on a fresh session (counter 1), got %v %+v", err, res)
	}
	if n := m.connectsOf("helper"); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
}

// A server that stops reading its stdin while alive: a request larger than
// the pipe cannot be written; the call times out instead of hanging, and
// the stuck server is replaced.
func TestStuckStdinTimesOut(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{CallTimeout: 300 * time.Millisecond}, ServerConfig{Name: "raw", Transport: TransportStdio,
		Command: helperExe(t), Env: map[string]string{helperEnv: "raw"}})
	pid := callPid(t, m, "raw")
	if _, err := m.CallTool(context.Background(), "raw", "deaf", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := m.CallTool(context.Background(), "raw", "pid", map[string]any{"pad": strings.Repeat("x", 1<<20)})
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the call took %s", took)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	waitGone(t, pid, 3*time.Second) // the stuck server is stopped
	if got := callPid(t, m, "raw"); got == pid {
		t.Fatal("same pid")
	}
}

func TestAllowedTools(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	some := helperStdio(t, "some")
	some.AllowedTools = []string{"echo", "pid", "not-there"}
	none := helperStdio(t, "none")
	none.AllowedTools = []string{}
	m := newTestManager(t, Options{}, some, none)

	_, err := m.CallTool(ctx, "some", "counter", nil)
	if !errors.Is(err, ErrToolNotAllowed) || !strings.Contains(err.Error(), "echo, pid, not-there") {
		t.Fatalf("counter: want ErrToolNotAllowed listing the allowed tools, got %v", err)
	}
	if n := m.connectsOf("some"); n != 0 {
		t.Fatalf("a refused call connected (%d)", n)
	}
	tools, err := m.ListTools(ctx, "some")
	if err != nil {
		t.Fatal(err)
	}
	if got := toolNames(tools); !slices.Equal(got, []string{"echo", "pid"}) {
		t.Fatalf("listed %v, want [echo pid]", got)
	}
	if st := statusOf(m, "some"); st.Tools != 2 {
		t.Fatalf("status counts %d tools, want 2 (after allowedTools)", st.Tools)
	}
	if _, err := m.CallTool(ctx, "some", "echo", map[string]any{"text": "ok"}); err != nil {
		t.Fatal(err)
	}
	tools, err = m.ListTools(ctx, "none")
	if err != nil || len(tools) != 0 {
		t.Fatalf("allowedTools []: want no tools, got %v %v", err, toolNames(tools))
	}
	if _, err := m.CallTool(ctx, "none", "echo", nil); !errors.Is(err, ErrToolNotAllowed) || !strings.Contains(err.Error(), "allowedTools is empty") {
		t.Fatalf("allowedTools []: want ErrToolNotAllowed, got %v", err)
	}
}

// allowedResources / allowedPrompts (issue 9, finding 7): with allowedTools
// set and neither list, resources and prompts are neither listed nor read,
// and the server is not contacted; with patterns, exactly the matching ones
// pass; with no allowlist at all, everything does.
func TestAllowedResourcesAndPrompts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	toolsOnly := helperStdio(t, "tools_only")
	toolsOnly.AllowedTools = []string{"echo"}
	matching := helperStdio(t, "matching")
	matching.AllowedTools = []string{"echo"}
	matching.AllowedResources = []string{"helper://h*"}
	matching.AllowedPrompts = []string{"gr*t"}
	other := helperStdio(t, "other")
	other.AllowedResources = []string{"file:///*"}
	other.AllowedPrompts = []string{}
	m := newTestManager(t, Options{}, toolsOnly, matching, other, helperStdio(t, "open"))

	res, err := m.ListResources(ctx, "tools_only")
	if err != nil || len(res) != 0 {
		t.Fatalf("tools_only resources: %v %v", res, err)
	}
	prompts, err := m.ListPrompts(ctx, "tools_only")
	if err != nil || len(prompts) != 0 {
		t.Fatalf("tools_only prompts: %v %v", prompts, err)
	}
	_, err = m.ReadResource(ctx, "tools_only", "helper://hello")
	if !errors.Is(err, ErrResourceNotAllowed) || !strings.Contains(err.Error(), "allowedTools is set and allowedResources is not") {
		t.Fatalf("tools_only read: %v", err)
	}
	_, err = m.GetPrompt(ctx, "tools_only", "greet", map[string]string{"who": "x"})
	if !errors.Is(err, ErrPromptNotAllowed) || !strings.Contains(err.Error(), "allowedTools is set and allowedPrompts is not") {
		t.Fatalf("tools_only prompt: %v", err)
	}
	if n := m.connectsOf("tools_only"); n != 0 {
		t.Fatalf("refused resource and prompt requests connected to the server (%d)", n)
	}
	if st := statusOf(m, "tools_only"); st.Resources != 0 || st.Prompts != 0 {
		t.Fatalf("tools_only status: %+v", st)
	}

	for _, c := range []struct {
		server            string
		resources, prompt []string // listed
	}{
		{"matching", []string{"helper://hello"}, []string{"greet"}},
		{"other", []string{}, []string{}},
		{"open", []string{"helper://hello"}, []string{"greet"}},
	} {
		res, err := m.ListResources(ctx, c.server)
		if err != nil {
			t.Fatal(err)
		}
		var uris []string
		for _, r := range res {
			uris = append(uris, r.URI)
		}
		prompts, err := m.ListPrompts(ctx, c.server)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range prompts {
			names = append(names, p.Name)
		}
		if !slices.Equal(uris, c.resources) && !(len(uris) == 0 && len(c.resources) == 0) {
			t.Errorf("%s: resources %v, want %v", c.server, uris, c.resources)
		}
		if !slices.Equal(names, c.prompt) && !(len(names) == 0 && len(c.prompt) == 0) {
			t.Errorf("%s: prompts %v, want %v", c.server, names, c.prompt)
		}
		_, rerr := m.ReadResource(ctx, c.server, "helper://hello")
		_, perr := m.GetPrompt(ctx, c.server, "greet", map[string]string{"who": "x"})
		if (rerr == nil) != (len(c.resources) > 0) || (perr == nil) != (len(c.prompt) > 0) {
			t.Errorf("%s: read %v, get %v", c.server, rerr, perr)
		}
	}
	_, err = m.ReadResource(ctx, "other", "helper://hello")
	if !errors.Is(err, ErrResourceNotAllowed) || !strings.Contains(err.Error(), "allowedResources: file:///*") {
		t.Errorf("other read: %v", err)
	}
	_, err = m.GetPrompt(ctx, "other", "greet", nil)
	if !errors.Is(err, ErrPromptNotAllowed) || !strings.Contains(err.Error(), "allowedPrompts is empty") {
		t.Errorf("other prompt: %v", err)
	}
}

func TestDisabledAndUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	off := helperStdio(t, "off")
	off.Disabled = true
	m := newTestManager(t, Options{}, helperStdio(t, "on"), off)
	if got := m.Names(); !slices.Equal(got, []string{"on"}) {
		t.Fatalf("Names: %v", got)
	}
	st := m.Status(ctx)
	if len(st) != 2 || st[0].Name != "off" || st[0].State != StateDisabled || st[1].State != StateIdle {
		t.Fatalf("status: %+v", st)
	}
	_, err := m.CallTool(ctx, "off", "echo", nil)
	if !errors.Is(err, ErrUnknownServer) || !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("disabled: %v", err)
	}
	_, err = m.ListTools(ctx, "ghost")
	var e *Error
	if !errors.Is(err, ErrUnknownServer) || errors.Is(err, ErrDisabled) || !errors.As(err, &e) || e.Server != "ghost" || !strings.Contains(err.Error(), "configured: on") {
		t.Fatalf("unknown: %v", err)
	}
	m.ConnectAll(ctx)
	if s := statusOf(m, "off"); s.State != StateDisabled {
		t.Fatalf("ConnectAll touched a disabled server: %+v", s)
	}
	if n := m.connectsOf("off"); n != 0 {
		t.Fatal("disabled server connected")
	}
}

// Servers that cannot start — exits at once, no such command, never answers
// — fail on their own; the others work.
func TestFailingServersDoNotAffectOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	failing := helperStdio(t, "failing")
	failing.Env[helperEnv] = "fail"
	silent := helperStdio(t, "silent")
	silent.Env[helperEnv] = "silent"
	missing := ServerConfig{Name: "missing", Transport: TransportStdio, Command: "no-such-mcp-server-binary"}
	m := newTestManager(t, Options{ConnectTimeout: time.Second}, failing, silent, missing, helperStdio(t, "good"))

	start := time.Now()
	done := make(chan struct{})
	go func() {
		m.ConnectAll(ctx)
		close(done)
	}()
	// "silent" takes ConnectTimeout to fail: it is seen connecting meanwhile.
	deadline := time.Now().Add(time.Second)
	for statusOf(m, "silent").State != StateConnecting && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := statusOf(m, "silent"); st.State != StateConnecting {
		t.Errorf("silent during ConnectAll: %+v", st)
	}
	<-done
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("ConnectAll took %s (not parallel, or the timeout was not applied)", took)
	}
	good := statusOf(m, "good")
	if good.State != StateConnected || good.Tools != 9 || good.Resources != 1 || good.Prompts != 1 {
		t.Fatalf("good: %+v", good)
	}
	// Backoff: the first failure may be retried at once; after the second a
	// call is refused without starting a process.
	if _, err := m.CallTool(ctx, "failing", "echo", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("failing, second attempt: %v", err)
	}
	before := m.connectsOf("failing")
	_, err := m.CallTool(ctx, "failing", "echo", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "next connection attempt in") || !strings.Contains(err.Error(), "see the server log") {
		t.Fatalf("during backoff: %v", err)
	}
	if strings.Contains(err.Error(), "HELPER_TOKEN") {
		t.Fatalf("the error quotes the upstream's stderr: %v", err)
	}
	if m.connectsOf("failing") != before {
		t.Fatal("a call during the backoff started a new attempt")
	}
	for name, want := range map[string][]string{
		"failing": {"exit status 3", "see the server log"},
		"silent":  {"no answer to initialize within 1s"},
		"missing": {`"no-such-mcp-server-binary" not found in PATH`},
	} {
		st := statusOf(m, name)
		if strings.Contains(st.LastError, "HELPER_TOKEN") {
			t.Errorf("%s: LastError quotes the upstream's stderr: %q", name, st.LastError)
		}
		if st.State != StateFailed {
			t.Errorf("%s: state %q, want failed", name, st.State)
		}
		for _, w := range want {
			if !strings.Contains(st.LastError, w) {
				t.Errorf("%s: LastError %q lacks %q", name, st.LastError, w)
			}
		}
		_, err := m.CallTool(ctx, name, "echo", nil)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: want ErrUnavailable, got %v", name, err)
		}
	}
	if _, err := m.CallTool(ctx, "good", "echo", map[string]any{"text": "fine"}); err != nil {
		t.Fatalf("good: %v", err)
	}
}

// The stdio environment: the minimal base plus the server's env; nothing
// else of conductor's. cwd is applied.
func TestStdioEnvironmentAndCwd(t *testing.T) {
	t.Setenv("MCP_CONDUCTOR_HTTP_TOKEN", "must-not-leak-1")
	t.Setenv("SOME_CLOUD_SECRET", "must-not-leak-2")
	t.Setenv("LANG", "C.UTF-8")
	dir := t.TempDir()
	exe := helperExe(t)
	cfg, err := ParseConfig("test.json", []byte(`{"mcpServers": {"h": {
		"command": "`+exe+`", "cwd": "`+dir+`",
		"env": {"`+helperEnv+`": "server", "TOKEN": "${MY_TOKEN}", "LANG": "en_US.UTF-8"}}}}`),
		mapEnv(map[string]string{"MY_TOKEN": "tok-123"}))
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(cfg, Options{Logger: testLogger(t), StopGrace: 300 * time.Millisecond})
	defer m.Close()
	res, err := m.CallTool(context.Background(), "h", "env", nil)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(structuredString(res, "s"), "\n")
	slices.Sort(env)
	var names []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	for _, kv := range []string{"TOKEN=tok-123", "LANG=en_US.UTF-8", "PATH=" + os.Getenv("PATH"), helperEnv + "=server"} {
		if !slices.Contains(env, kv) {
			t.Errorf("env lacks %s: %v", kv, env)
		}
	}
	allowed := append(slices.Clone(baseEnvVars), "TOKEN", helperEnv)
	for _, n := range names {
		if !slices.Contains(allowed, n) {
			t.Errorf("unexpected variable %s in the upstream's environment", n)
		}
	}
	if strings.Contains(structuredString(res, "s"), "must-not-leak") {
		t.Fatal("conductor's secrets reached the upstream")
	}
	res, err = m.CallTool(context.Background(), "h", "cwd", nil)
	if err != nil || structuredString(res, "s") != dir {
		t.Fatalf("cwd: %v %q, want %q", err, structuredString(res, "s"), dir)
	}
}

func TestStreamableHTTPHeadersAndRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := helperHTTP(t, false, "s3cret-token")
	// A server we can "restart": one listener (re-binding a port races with
	// other tests), whose handler is replaced by a fresh server that, like a
	// restarted one, has forgotten every session.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var current atomic.Pointer[http.Handler]
	restart := func() {
		srv := helperServer()
		var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		current.Store(&h)
	}
	restart()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) })}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	m := newTestManager(t, Options{},
		ServerConfig{Name: "auth", Transport: TransportStreamableHTTP, URL: ts.URL, Headers: map[string]string{"Authorization": "Bearer s3cret-token"}},
		ServerConfig{Name: "noauth", Transport: TransportStreamableHTTP, URL: ts.URL, Headers: map[string]string{"Authorization": "Bearer wrong"}},
		ServerConfig{Name: "restart", Transport: TransportStreamableHTTP, URL: "http://" + addr},
	)
	res, err := m.CallTool(ctx, "auth", "echo", map[string]any{"text": "over http"})
	if err != nil || structuredString(res, "s") != "over http" {
		t.Fatalf("auth echo: %v %+v", err, res)
	}
	if tools, err := m.ListTools(ctx, "auth"); err != nil || len(tools) != 9 {
		t.Fatalf("auth tools: %v %d", err, len(tools))
	}
	_, err = m.CallTool(ctx, "noauth", "echo", map[string]any{"text": "x"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("wrong token: want ErrUnavailable saying Unauthorized, got %v", err)
	}

	for i := 1; i <= 2; i++ {
		res, err := m.CallTool(ctx, "restart", "counter", nil)
		if err != nil || structuredInt(res, "n") != i {
			t.Fatalf("counter %d: %v %+v", i, err, res)
		}
	}
	// Restart the server: it forgets the session (404). The call is sent
	// again on a new session and runs once: the new counter says 1.
	restart()
	res, err = m.CallTool(ctx, "restart", "counter", nil)
	if err != nil || structuredInt(res, "n") != 1 {
		t.Fatalf("after a restart: %v %+v", err, res)
	}
	if n := m.connectsOf("restart"); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
	// Down: nothing listens; ErrUnavailable.
	hs.Close()
	_, err = m.CallTool(ctx, "restart", "counter", nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("server down: %v", err)
	}
}

// The configured headers may carry credentials: a redirect to another
// origin is refused; one within the origin is followed.
func TestRedirects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var leaked sync.Map
	srv := helperServer()
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			leaked.Store(a, true)
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(other.Close)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/elsewhere":
			http.Redirect(w, r, other.URL+"/mcp", http.StatusTemporaryRedirect)
		case "/old":
			http.Redirect(w, r, "/mcp", http.StatusTemporaryRedirect)
		default:
			mcpHandler.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(origin.Close)
	hdr := map[string]string{"Authorization": "Bearer do-not-forward"}
	m := newTestManager(t, Options{},
		ServerConfig{Name: "away", Transport: TransportStreamableHTTP, URL: origin.URL + "/elsewhere", Headers: hdr},
		ServerConfig{Name: "moved", Transport: TransportStreamableHTTP, URL: origin.URL + "/old", Headers: hdr})
	_, err := m.CallTool(ctx, "away", "echo", map[string]any{"text": "x"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "redirect to another origin") {
		t.Fatalf("cross-origin redirect: %v", err)
	}
	leaked.Range(func(k, _ any) bool {
		t.Errorf("header sent to another origin: %v", k)
		return true
	})
	if res, err := m.CallTool(ctx, "moved", "echo", map[string]any{"text": "y"}); err != nil || structuredString(res, "s") != "y" {
		t.Fatalf("same-origin redirect: %v", err)
	}
}

func TestSSE(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := helperHTTP(t, true, "tok-sse")
	m := newTestManager(t, Options{ConnectTimeout: 5 * time.Second},
		ServerConfig{Name: "legacy", Transport: TransportSSE, URL: ts.URL, Headers: map[string]string{"Authorization": "Bearer tok-sse"}})
	// The SSE stream must outlive the connection attempt's context.
	for i := 1; i <= 3; i++ {
		res, err := m.CallTool(ctx, "legacy", "counter", nil)
		if err != nil || structuredInt(res, "n") != i {
			t.Fatalf("counter %d over SSE: %v %+v", i, err, res)
		}
		time.Sleep(50 * time.Millisecond) // a window for a stream bound to the ended attempt to break, not a wait
	}
	if prompts, err := m.ListPrompts(ctx, "legacy"); err != nil || len(prompts) != 1 {
		t.Fatalf("prompts over SSE: %v %v", err, prompts)
	}
	if st := statusOf(m, "legacy"); st.State != StateConnected || st.Transport != TransportSSE {
		t.Fatalf("status: %+v", st)
	}
}

// ${VAR} values never appear in errors or Status.
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := ParseConfig("test.json", []byte(`{"mcpServers": {"r": {"url": "http://`+addr+`/mcp?key=${KEY}"}}}`),
		mapEnv(map[string]string{"KEY": "query-secret-42"}))
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(cfg, Options{Logger: testLogger(t)})
	defer m.Close()
	_, err = m.CallTool(context.Background(), "r", "x", nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	st := statusOf(m, "r")
	for _, s := range []string{err.Error(), st.LastError} {
		if strings.Contains(s, "query-secret-42") || !strings.Contains(s, "[redacted]") {
			t.Fatalf("secret not redacted: %s", s)
		}
	}
}

// Close ends every stdio upstream and what it started, even one that
// ignores stdin EOF and SIGTERM; calls afterwards fail with ErrClosed.
func TestCloseEndsProcesses(t *testing.T) {
	t.Parallel()
	m := NewManager(&Config{Servers: []ServerConfig{
		helperStdio(t, "plain"),
		helperStdio(t, "stubborn", "HELPER_LINGER=1"),
	}}, Options{Logger: testLogger(t), StopGrace: 200 * time.Millisecond})
	p1 := callPid(t, m, "plain")
	p2 := callPid(t, m, "stubborn")
	res, err := m.CallTool(context.Background(), "stubborn", "spawn", nil)
	grandchild := structuredInt(res, "n")
	if err != nil || grandchild <= 0 {
		t.Fatalf("spawn: %v %+v", err, res)
	}
	if processGone(p1) || processGone(p2) || processGone(grandchild) {
		t.Fatal("processes not running before Close")
	}
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// Close returns after reaping: the leaders are gone at once.
	for _, pid := range []int{p1, p2} {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			t.Errorf("pid %d still exists after Close", pid)
		}
	}
	// The grandchild was killed with the group (its zombie belongs to init).
	waitGone(t, grandchild, time.Second)
	if took > 2*time.Second {
		t.Errorf("Close took %s", took)
	}
	_, err = m.CallTool(context.Background(), "plain", "pid", nil)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if st := statusOf(m, "plain"); st.State != StateClosed {
		t.Fatalf("state after Close: %q", st.State)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Close does not wait for calls in flight: they end (ErrUnavailable,
// ErrClosed) as their upstream is stopped.
func TestCloseDuringCall(t *testing.T) {
	t.Parallel()
	markers := t.TempDir()
	m := NewManager(&Config{Servers: []ServerConfig{helperStdio(t, "helper", "HELPER_LINGER=1", "HELPER_MARKER_DIR="+markers)}},
		Options{Logger: testLogger(t), StopGrace: 200 * time.Millisecond})
	pid := callPid(t, m, "helper")
	errs := make(chan error, 1)
	go func() {
		_, err := m.CallTool(context.Background(), "helper", "sleep", map[string]any{"ms": 30000})
		errs <- err
	}()
	waitSleeping(t, markers) // before: a 100 ms sleep, and Close could come before the call was sent
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %s with a call in flight", took)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrClosed) {
			t.Fatalf("the call in flight: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the call in flight did not end with Close")
	}
	if !processGone(pid) {
		t.Fatal("the upstream runs after Close")
	}
}

// conductor is SIGKILLed (no Close): Pdeathsig ends its stdio upstream —
// one that ignores stdin EOF and SIGTERM — within a second.
func TestParentKilledEndsUpstream(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(helperExe(t))
	cmd.Env = []string{helperEnv + "=parent", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "PID ") {
		t.Fatalf("parent said %q, %v", line, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "PID ")))
	if pid <= 0 || processGone(pid) {
		t.Fatalf("upstream pid %d not running", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, pid, time.Second)
}

// Pdeathsig follows the thread that started the child (golang/go#27505): a
// process started from a goroutine locked to its thread, which then ends
// (and so does the thread), must survive — the spawner thread starts it.
func TestUpstreamSurvivesThreadExit(t *testing.T) {
	t.Parallel()
	cfg := helperStdio(t, "helper", "HELPER_LINGER=1")
	type started struct {
		c   *child
		err error
	}
	ch := make(chan started, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		c, stdout, err := startChild(&cfg, os.LookupEnv, 100*time.Millisecond, testLogger(t), nil)
		if err == nil {
			stdout.Close()
		}
		ch <- started{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer func() {
		r.c.kill()
		<-r.c.reaped
	}()
	// A window for a wrong Pdeathsig to show, not a wait for an event: nothing signals a kill
	// that should not happen.
	time.Sleep(300 * time.Millisecond)
	if processGone(r.c.pid) {
		t.Fatal("the upstream died with the thread that started it")
	}
}

// Every call is logged at debug with server, method, tool, duration and
// outcome; the child's stderr too.
func TestCallLogging(t *testing.T) {
	t.Parallel()
	h := &recordHandler{}
	m := newTestManager(t, Options{Logger: slog.New(h)}, helperStdio(t, "helper"))
	m.CallTool(context.Background(), "helper", "echo", map[string]any{"text": "secret arg"})
	m.CallTool(context.Background(), "helper", "fail", nil)
	m.CallTool(context.Background(), "nobody", "x", nil)
	testenv.WaitFor(t, "a stderr line of the upstream in the log", 2*time.Second, func() bool { return h.find("upstream stderr", "server", "helper") != nil })
	for _, c := range []struct{ name, outcome string }{{"echo", "ok"}, {"fail", "tool_error"}} {
		r := h.find("upstream call", "tool", c.name)
		if r == nil {
			t.Fatalf("no log record for %s", c.name)
		}
		if r["server"] != "helper" || r["method"] != "tools/call" || r["outcome"] != c.outcome {
			t.Errorf("%s: record %v", c.name, r)
		}
		if _, ok := r["duration"].(time.Duration); !ok {
			t.Errorf("%s: no duration in %v", c.name, r)
		}
	}
	if r := h.find("upstream call", "server", "nobody"); r == nil || r["outcome"] != "unknown_server" {
		t.Errorf("unknown server: %v", r)
	}
	if h.contains("secret arg") {
		t.Error("a tool argument was logged")
	}
}

type recordHandler struct {
	mu      sync.Mutex
	records []map[string]any
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message, "level": r.Level}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, m)
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) find(msg, key string, val any) map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r["msg"] == msg && r[key] == val {
			return r
		}
	}
	return nil
}

func (h *recordHandler) contains(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		for _, v := range r {
			if str, ok := v.(string); ok && strings.Contains(str, s) {
				return true
			}
		}
	}
	return false
}

// The stderr copier keeps the last lines, cuts long ones, redacts secrets,
// and rate-limits what it logs.
func TestStderrTail(t *testing.T) {
	h := &recordHandler{}
	st := newStderrTail("srv", slog.New(h), []string{"hunter22"})
	var b strings.Builder
	b.WriteString(strings.Repeat("x", 5000) + "\n")
	for i := range 500 {
		b.WriteString("line " + strconv.Itoa(i) + " token=hunter22\n")
	}
	st.run(io.NopCloser(strings.NewReader(b.String())))
	tail := st.tail()
	if !strings.HasPrefix(tail, "line 492 ") || !strings.HasSuffix(tail, "line 499 token=[redacted]") || strings.Count(tail, " | ") != stderrTailLines-1 {
		t.Fatalf("tail: %q", tail)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	logged, dropped := 0, int64(0)
	for _, r := range h.records {
		switch r["msg"] {
		case "upstream stderr":
			logged++
			if l := r["line"].(string); len(l) > maxStderrLine+20 || strings.Contains(l, "hunter22") {
				t.Errorf("logged line %.60q… (%d bytes)", l, len(l))
			}
		case "upstream stderr lines dropped (rate limit)":
			dropped += r["lines"].(int64)
		}
	}
	if logged+int(dropped) != 501 || logged > stderrBurst+stderrPerSecond {
		t.Fatalf("logged %d, dropped %d of 501 lines", logged, dropped)
	}
	if first := h.records[0]["line"].(string); !strings.HasSuffix(first, "…[line cut]") {
		t.Fatalf("the long line was not cut: %.40q", first)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 1: 0, 2: 500 * time.Millisecond, 3: time.Second, 4: 2 * time.Second, 8: 30 * time.Second, 50: 30 * time.Second} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
}
