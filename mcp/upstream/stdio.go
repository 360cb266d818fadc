package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/internal/fdset"
)

// baseEnvVars are the only variables of conductor's own environment a stdio
// upstream inherits (when set); the server's "env" is merged over them.
// Everything else — MCP_CONDUCTOR_HTTP_TOKEN, cloud credentials, other
// servers' secrets — stays out.
var baseEnvVars = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// defaultPath is PATH for an upstream when conductor itself has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// childEnv builds a stdio upstream's environment: baseEnvVars from lookup,
// then the server's env over them. Sorted, for a stable result.
func childEnv(serverEnv map[string]string, lookup func(string) (string, bool)) []string {
	env := map[string]string{}
	for _, k := range baseEnvVars {
		if v, ok := lookup(k); ok {
			env[k] = v
		}
	}
	if env["PATH"] == "" {
		env["PATH"] = defaultPath
	}
	for k, v := range serverEnv {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPath resolves command the way the upstream's own PATH would (not
// conductor's): a name with a slash is used as is (relative to dir), a bare
// name is searched in pathList. Empty PATH entries are skipped, so the
// current directory is never searched implicitly.
func lookPath(command, pathList, dir string) (string, error) {
	isExec := func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			return fmt.Errorf("%s is a directory", p)
		}
		if st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", p)
		}
		return nil
	}
	if strings.Contains(command, "/") {
		p := command
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if err := isExec(p); err != nil {
			return "", err
		}
		return command, nil
	}
	for _, d := range filepath.SplitList(pathList) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, command)
		if isExec(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH (%s)", command, pathList)
}

// The spawner starts every upstream process from one goroutine locked to
// its OS thread for the life of the process. Pdeathsig is delivered when the
// *thread* that created the child exits (golang/go#27505), and Go ends a
// thread whenever a goroutine locked to it returns without unlocking — which
// libcontainer code in this process does on purpose. A thread that is never
// unlocked and never returns lives exactly as long as conductor, so
// Pdeathsig means "conductor died".
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked, on purpose
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.done
}

// child is a running stdio upstream: the leader of its own process group.
type child struct {
	name  string
	pid   int
	cmd   *exec.Cmd
	stdin *os.File // our end
	grace time.Duration

	exited  chan struct{} // the leader has exited (it may not be reaped yet)
	settled chan struct{} // the group is dead and consumed is final
	reaped  chan struct{} // cmd.Wait returned; the pid is free
	state   *os.ProcessState

	// How much of what we wrote to stdin the process read: written counts
	// the bytes written (under stdinMu, so a snapshot never sees half a
	// write); once the group is dead, consumed = written - bytes still in
	// the pipe. A request written after the point the process stopped
	// reading never reached it.
	stdinMu       sync.Mutex
	written       atomic.Int64
	consumed      int64
	consumedKnown bool
	stdoutEOF     atomic.Bool

	sigMu   sync.Mutex
	reaping bool // set (under sigMu) before the leader is reaped: no signal after

	stopOnce sync.Once
	stopping atomic.Bool // stop was called: an exit from now on is expected
	stderr   *stderrTail
	log      *slog.Logger
}

// startChild starts the stdio upstream cfg. onExit runs once the process
// has been reaped.
func startChild(cfg *ServerConfig, lookup func(string) (string, bool), grace time.Duration, log *slog.Logger, onExit func()) (c *child, stdout *os.File, err error) {
	env := childEnv(cfg.Env, lookup)
	path, err := lookPath(cfg.Command, envValue(env, "PATH"), cfg.Cwd)
	if err != nil {
		return nil, nil, err
	}
	// One owner per fd (internal/fdset): fds owns every pipe end until it is
	// handed on — the child's ends to the child (the parent's copies closed
	// once it started), ours to c, the caller and the stderr copier.
	var fds fdset.Set
	defer fds.Close()
	inR, inW, err := fds.Pipe()
	if err != nil {
		return nil, nil, err
	}
	outR, outW, err := fds.Pipe()
	if err != nil {
		return nil, nil, err
	}
	errR, errW, err := fds.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   append([]string{cfg.Command}, cfg.Args...),
		Env:    env,
		Dir:    cfg.Cwd,
		Stdin:  inR,
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			// Its own process group, so Close can end whatever it started
			// (npx → sh → node) with one signal.
			Setpgid: true,
			// The backstop when conductor dies without Close (see spawner).
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = spawn(cmd)
	_ = fds.CloseFiles(inR, outW, errW) // the child has its copies now (or never will)
	if err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", cfg.Command, err)
	}
	// Ours: stdin to c (stop closes it), stdout to the caller (the
	// transport's reader closes it), stderr to its copier (run closes it).
	fds.Release()
	c = &child{
		name:    cfg.Name,
		pid:     cmd.Process.Pid,
		cmd:     cmd,
		stdin:   inW,
		grace:   grace,
		exited:  make(chan struct{}),
		settled: make(chan struct{}),
		reaped:  make(chan struct{}),
		stderr:  newStderrTail(cfg.Name, log, cfg.secrets),
		log:     log,
	}
	go c.stderr.run(errR)
	go c.wait(onExit)
	return c, outR, nil
}

// wait waits for the leader to exit without reaping it, ends the rest of its
// process group (the zombie leader keeps the group id from being reused),
// then reaps it.
func (c *child) wait(onExit func()) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, c.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	c.sigMu.Lock()
	_ = unix.Kill(-c.pid, unix.SIGKILL)
	c.reaping = true
	c.sigMu.Unlock()
	c.snapshotConsumed()
	close(c.settled)
	close(c.exited)
	_ = c.cmd.Wait()
	c.state = c.cmd.ProcessState
	close(c.reaped)
	c.logExit()
	if onExit != nil {
		onExit()
	}
}

// logExit records how the process ended, with the last lines of its
// stderr, in the admin's log: at debug when conductor stopped it and it
// ended quietly (exit 0, or the signal conductor sent), else at warn. This log is the only place those lines go —
// never an error a sandbox or an MCP client sees (they may hold secrets in
// forms redaction cannot recognise).
func (c *child) logExit() {
	t := time.NewTimer(500 * time.Millisecond)
	select { // the stderr copier ends soon after the group is gone
	case <-c.stderr.done:
	case <-t.C:
	}
	t.Stop()
	level, msg := slog.LevelWarn, "upstream MCP server process exited"
	if c.stopping.Load() && c.state != nil && (c.state.Success() || !c.state.Exited()) {
		// Stopped by conductor, and it went quietly (exit 0 or our signal).
		level, msg = slog.LevelDebug, "upstream MCP server process stopped"
	}
	c.log.Log(context.Background(), level, msg, "server", c.name, "pid", c.pid,
		"status", c.exitDescription(), "stderr", c.stderr.tail())
}

// snapshotConsumed records how much of stdin the (now dead) group read.
func (c *child) snapshotConsumed() {
	c.stdinMu.Lock()
	defer c.stdinMu.Unlock()
	sc, err := c.stdin.SyscallConn()
	if err != nil {
		return
	}
	unread, ierr := 0, error(nil)
	if err := sc.Control(func(fd uintptr) { unread, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil || ierr != nil {
		return // stdin already closed: unknown
	}
	c.consumed = c.written.Load() - int64(unread)
	c.consumedKnown = true
}

// unreadSince reports whether the process certainly read nothing written
// after mark (a value of written), i.e. a request sent after mark never
// reached it. It waits up to d for the process group to be dead.
func (c *child) unreadSince(mark int64, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.settled:
	case <-t.C:
		return false
	}
	c.stdinMu.Lock()
	defer c.stdinMu.Unlock()
	return c.consumedKnown && c.consumed <= mark
}

// signalGroup signals the whole process group while the leader is unreaped.
func (c *child) signalGroup(sig unix.Signal) {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if !c.reaping {
		_ = unix.Kill(-c.pid, sig)
	}
}

// stop ends the process: stdin is closed (the MCP way to ask a stdio server
// to exit), then after grace SIGTERM to the group, after grace again SIGKILL.
// It returns at once; the escalation runs in the background and ends when
// the process is reaped.
func (c *child) stop() {
	c.stopping.Store(true)
	c.stopOnce.Do(func() {
		if c.stdoutEOF.Load() {
			// The process is gone or going; let the exit waiter measure how
			// much of stdin it read before the pipe is closed.
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-c.settled:
			case <-t.C:
			}
			t.Stop()
		}
		c.stdin.Close() // not under stdinMu: it must interrupt a blocked write
		go func() {
			t := time.NewTimer(c.grace)
			defer t.Stop()
			select {
			case <-c.exited:
				return
			case <-t.C:
			}
			c.signalGroup(unix.SIGTERM)
			t.Reset(c.grace)
			select {
			case <-c.exited:
				return
			case <-t.C:
			}
			c.signalGroup(unix.SIGKILL)
		}()
	})
}

// kill ends the process group now.
func (c *child) kill() {
	c.stop()
	c.signalGroup(unix.SIGKILL)
}

// exitDescription says how the process ended, once it has been reaped.
func (c *child) exitDescription() string {
	select {
	case <-c.reaped:
	default:
		return "still running"
	}
	if c.state == nil {
		return "ended"
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	return c.state.String()
}

// describeExit waits up to d for the process to be reaped and says how it
// ended ("exit status 7", "killed by signal killed"). It never quotes the
// process's stderr: that goes to the admin's log only (logExit).
func (c *child) describeExit(d time.Duration) string {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.reaped:
	case <-t.C:
	}
	return c.exitDescription()
}

// stdioTransport connects to a freshly started child; it is the stdio
// transport of one session.
type stdioTransport struct {
	u *upstream
	s *session
}

func (t *stdioTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	u := t.u
	u.m.children.Add(1)
	c, stdout, err := startChild(&u.cfg, u.m.lookupEnv, u.m.opts.StopGrace, u.log, u.m.children.Done)
	if err != nil {
		u.m.children.Done()
		return nil, err
	}
	t.s.child = c
	u.mu.Lock()
	u.stderr = c.stderr
	u.mu.Unlock()
	go func() {
		<-c.exited
		t.s.markDead(errors.New("the upstream process exited"))
	}()
	return (&mcp.IOTransport{
		Reader: readCloser{newLineGuard(&stdoutReader{f: stdout, s: t.s, c: c}, maxLineBytes), stdout},
		Writer: &stdinWriter{c: c, timeout: u.m.opts.CallTimeout},
	}).Connect(ctx)
}

// stdoutReader marks the session dead when the child's stdout ends.
type stdoutReader struct {
	f *os.File
	s *session
	c *child
}

func (r *stdoutReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err != nil {
		r.c.stdoutEOF.Store(true)
		r.s.markDead(fmt.Errorf("the upstream's stdout ended: %w", err))
	}
	return n, err
}

func (r *stdoutReader) Close() error { return r.f.Close() }

// stdinWriter flags failed writes as never delivered (the process is gone)
// and stops the process on Close.
type stdinWriter struct {
	c       *child
	timeout time.Duration
}

func (w *stdinWriter) Write(p []byte) (int, error) {
	w.c.stdinMu.Lock()
	// A stuck server with a full pipe must not hold the writer (and the
	// connection's write lock) forever; the request was not delivered whole.
	_ = w.c.stdin.SetWriteDeadline(time.Now().Add(w.timeout))
	n, err := w.c.stdin.Write(p)
	w.c.written.Add(int64(n))
	w.c.stdinMu.Unlock()
	if err != nil {
		return n, &notSentError{err}
	}
	return n, nil
}

func (w *stdinWriter) Close() error {
	w.c.stop()
	return nil
}

// notSentError marks a request that never reached the upstream.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return "request not delivered: " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// stderrTail copies a child's stderr to the debug log, one record per line,
// bounded (lines cut at maxStderrLine bytes, at most stderrBurst lines at
// once and stderrPerSecond after that), and keeps the last lines for the
// log record of the process's exit (never for errors).
type stderrTail struct {
	name    string
	log     *slog.Logger
	secrets []string

	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

const (
	maxStderrLine   = 1024
	stderrTailLines = 8
	stderrBurst     = 200
	stderrPerSecond = 20
)

func newStderrTail(name string, log *slog.Logger, secrets []string) *stderrTail {
	return &stderrTail{name: name, log: log, secrets: secrets, done: make(chan struct{})}
}

func (s *stderrTail) run(r io.ReadCloser) {
	defer close(s.done)
	defer r.Close()
	br := bufio.NewReaderSize(r, maxStderrLine)
	tokens, last, dropped := float64(stderrBurst), time.Now(), 0
	for {
		line, err := br.ReadSlice('\n')
		// Copy before reading on: ReadSlice's result is overwritten.
		text := strings.TrimRight(string(bytes.ToValidUTF8(line, []byte("?"))), "\r\n")
		if err == bufio.ErrBufferFull {
			text += " …[line cut]"
			// Discard the rest of the over-long line.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
		}
		if len(line) > 0 {
			text = redact(text, s.secrets)
			s.mu.Lock()
			s.lines = append(s.lines, text)
			if len(s.lines) > stderrTailLines {
				s.lines = s.lines[len(s.lines)-stderrTailLines:]
			}
			s.mu.Unlock()
			now := time.Now()
			tokens = min(float64(stderrBurst), tokens+now.Sub(last).Seconds()*stderrPerSecond)
			last = now
			if tokens >= 1 {
				tokens--
				if dropped > 0 {
					s.log.Debug("upstream stderr lines dropped (rate limit)", "server", s.name, "lines", dropped)
					dropped = 0
				}
				s.log.Debug("upstream stderr", "server", s.name, "line", text)
			} else {
				dropped++
			}
		}
		if err != nil {
			if dropped > 0 {
				s.log.Debug("upstream stderr lines dropped (rate limit)", "server", s.name, "lines", dropped)
			}
			return
		}
	}
}

// tail returns the last stderr lines, joined by " | ".
func (s *stderrTail) tail() string { return strings.Join(s.lastLines(), " | ") }

// lastLines returns the last non-blank stderr lines.
func (s *stderrTail) lastLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keep []string
	for _, l := range s.lines {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	return keep
}

// readCloser pairs a reader with the closer of what it reads.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }
