package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/internal/fdset"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/seccomp"
)

// Sandbox is one started container with deno booted into the bootstrap,
// waiting for code. It runs code once.
type Sandbox struct {
	r        *Runner
	id       string
	ctr      *libcontainer.Container
	proc     *libcontainer.Process
	degraded []string
	started  time.Time
	// launcher: started with a WorkDir, deno runs another program there (execute_code), so a
	// heap that ran out may be that program's, not the one conductor sized.
	launcher bool

	toBox   *os.File   // host end of fd 4
	toBoxMu sync.Mutex // one frame at a time on toBox
	calls   atomic.Pointer[calls]
	fromBox *os.File // host end of fd 3
	outR    *os.File // host end of stdout
	errR    *os.File // host end of stderr
	stdout  *cappedBuffer
	stderr  *cappedBuffer
	spill   *spillRun // this run's spill files; nil = no spilling
	readers sync.WaitGroup

	door *egress.Door // the network: StartOptions.Network, else Options.Net
	// outDir is the outputs directory (O_PATH, opened before any code arrived; it pins the
	// tmpfs once the sandbox is gone): collected by Run, closed by Close. nil = none.
	outDir *os.File
	wsHost string   // the host path of this run's workspace, where named workspace files are; "" = none
	files  []string // StartOptions.Files, in the writable directory: removed at Close

	ready         chan struct{}  // closed when the bootstrap says "ready"
	frames        chan frameInfo // "evaluated" and "error" frames, and protocol faults
	evaluated     chan struct{}  // closed on the first "evaluated" frame: the module's work is done
	evaluatedOnce sync.Once

	exited  chan struct{} // closed when deno (the container's init) has exited
	state   *os.ProcessState
	waitErr error
	stopped bool // deno reported a stop instead of an exit and was killed

	ranOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
}

// frameInfo is what the host learned from one frame of the sandbox.
type frameInfo struct {
	typ             string
	err             *ErrorInfo
	result          json.RawMessage // "evaluated": the encoded default export
	resultTruncated bool
	fault           error  // the frame was malformed: the channel is no longer trusted
	ended           string // the host ended the execution (a call's ErrEndExecution): why
}

// StartOptions are per-sandbox choices made before deno boots.
type StartOptions struct {
	// ImportMap is a JSON import map deno starts with (how the admin's
	// package versions win over what code writes); nil = none.
	ImportMap []byte
	// Command, when set, runs as the container's init instead of deno's
	// bootstrap (in-root paths): the sandbox starts it at once, with no boot
	// to wait for and no code to send; Run waits for it to end. Every wall
	// is the same as a run's (namespaces, seccomp, read-only root, cgroup
	// limits, the door).
	Command []string `json:",omitempty"`
	// Env are NAME=value entries added to the sandbox's own environment.
	Env []string `json:",omitempty"`
	// Writable, when set, is a host directory mounted read-write at an
	// in-root mount point (noexec unless Exec); as root, idmapped so its
	// owner's files are the sandbox root's and new files land as the owner.
	Writable *Mount `json:",omitempty"`
	// Files are written into Writable.Host (base names) before the sandbox
	// starts, and removed when it closes.
	Files map[string][]byte `json:",omitempty"`
	// Network, when set, is this sandbox's network policy in place of
	// Options.Net's, through the same door (the runner's resolver, dialer
	// and upstream roots; no secrets): sockets are allowed, only to it.
	Network *egress.Policy `json:",omitempty"`
	// Isolated keeps the runner's shared state out of this sandbox: no
	// dependency cache or Options.Mounts, no workspace (cwd /tmp) and no
	// spilling, no Options.Env or CA bundle variables.
	Isolated bool `json:",omitempty"`
	// WorkspaceOf, when set (an identity's name, [a-z0-9_-]), mounts the host's
	// <workspace>/<WorkspaceOf>/ at the workspace's path in place of the whole workspace,
	// created 0700 and owned as the workspace on first use; its spill files go there. Sandboxes
	// of different identities see only their own files.
	WorkspaceOf string `json:",omitempty"`
	// NoWorkspace leaves the workspace out of this sandbox (cwd /tmp, no spilling).
	NoWorkspace bool `json:",omitempty"`
	// DenoFlags, when not nil, replace the runner's Options.DenoFlags for
	// this sandbox: the launcher of execute_code runs with its own flags
	// (allow-run of one runtime, read/write of its working directory),
	// never the model's choice.
	DenoFlags []string
	// WorkDir, when set, is a per-run writable tmpfs, the cwd of deno.
	WorkDir *WorkDir
	// Boot, when set, is a TypeScript module the bootstrap evaluates while
	// booting, before it says ready: what a run would otherwise wait for
	// (execute_code's launcher starts the runtime's interpreter there, so a
	// pooled sandbox holds it started); what it leaves on globalThis stays
	// for the run. conductor's own fixed code, never the model's.
	Boot string `json:",omitempty"`
}

// WorkDir is a per-run working directory: a size-capped tmpfs at Path
// (a mount point the root holds), noexec unless Exec.
type WorkDir struct {
	Path string
	Size int64
	Exec bool
}

// Key identifies what a sandbox is started with: sandboxes started with
// equal keys are interchangeable (package pool keys its sandboxes by it).
func (so StartOptions) Key() string {
	b, _ := json.Marshal(so)
	return string(b)
}

// Mount is a host directory bound at an in-root path (a mount point the
// root holds).
type Mount struct {
	Host string // absolute host path
	Path string // absolute in-root path
	// Exec lets code map its files executable (Python's compiled extension
	// modules); otherwise the mount is noexec.
	Exec bool
}

// Start creates a container and boots deno into the bootstrap. On any error
// everything created so far is removed.
func (r *Runner) Start(ctx context.Context) (*Sandbox, error) {
	return r.StartWith(ctx, StartOptions{})
}

// StartWith is Start with per-sandbox options.
func (r *Runner) StartWith(ctx context.Context, so StartOptions) (_ *Sandbox, retErr error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	id := fmt.Sprintf("%s-%d", r.instance, r.seq.Add(1))
	cg, degraded, err := r.opts.Cgroups.Config(id, r.opts.Limits, r.opts.AllowDegraded)
	if err != nil {
		return nil, err
	}
	policy, err := r.opts.Seccomp.Policy(seccomp.Options{Network: r.opts.Network || so.Network != nil})
	if err != nil {
		return nil, fmt.Errorf("%w: seccomp policy: %w", ErrStart, err)
	}
	spec := containerSpec{
		rootfs:   r.opts.Root.Path,
		devNodes: r.opts.Root.DevNodes,
		tmpSize:  r.opts.TmpSize,
		uid:      r.opts.HostUID,
		gid:      r.opts.HostGID,
		rootless: r.rootless,
		cgroup:   cg,
		seccomp:  policy,
		hostname: r.opts.Root.Hostname,
		workDir:  so.WorkDir,
	}
	if len(so.Command) == 0 {
		spec.outputsSize = r.opts.Outputs.TotalBytes
	}
	if !so.Isolated {
		if r.opts.DepsCache != "" {
			spec.binds = append(spec.binds, bindMount{src: r.opts.DepsCache, dst: r.opts.Root.DenoDir})
		}
		for _, m := range r.opts.Mounts {
			spec.binds = append(spec.binds, bindMount{src: m.Host, dst: m.Path, exec: m.Exec})
		}
	}
	if r.opts.Net.secretsCA() != nil && so.Network == nil {
		spec.trustSrc, spec.trustDir = filepath.Join(r.stateDir, trustDirName), r.opts.Root.TrustDir
	}
	ws := r.ws
	if so.Isolated || so.NoWorkspace {
		ws = nil
	}
	if ws != nil && so.WorkspaceOf != "" {
		if ws, err = r.workspaceOf(so.WorkspaceOf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStart, err)
		}
		spec.wsDest = r.ws.path
	}
	if ws != nil {
		spec.workspace = ws.path
		if !r.rootless {
			spec.wsOwner = &[2]int{ws.uid, ws.gid}
		}
	}
	if err := checkStartOptions(so); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	if w := so.Writable; w != nil {
		b := bindMount{src: w.Host, dst: w.Path, writable: true, exec: w.Exec}
		if !r.rootless {
			st, err := os.Stat(w.Host)
			if err != nil {
				return nil, fmt.Errorf("%w: writable directory: %w", ErrStart, err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			b.owner = &[2]int{int(sys.Uid), int(sys.Gid)}
		}
		spec.binds = append(spec.binds, b)
	}
	var spill *spillRun
	if ws != nil && ws.spillMax > 0 {
		spill = ws.newRun()
	}
	ctr, err := libcontainer.Create(r.stateDir, id, buildConfig(spec))
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrStart, id, err)
	}
	sb := &Sandbox{
		r: r, id: id, ctr: ctr, degraded: degraded, started: time.Now(), launcher: so.WorkDir != nil,
		spill:     spill,
		wsHost:    wsHostPath(ws),
		stdout:    r.capture(spill, "stdout"),
		stderr:    r.capture(spill, "stderr"),
		ready:     make(chan struct{}),
		frames:    make(chan frameInfo, 4),
		evaluated: make(chan struct{}),
		exited:    make(chan struct{}),
	}
	defer func() {
		if retErr != nil {
			sb.Close()
		}
	}()
	if err := sb.start(ctx, so); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStart, id, err)
	}
	if len(so.Command) > 0 {
		return sb, nil // the command runs at once; there is no bootstrap to wait for
	}
	if so.Boot != "" {
		// Small (conductor's own module), so it fits the pipe's buffer;
		// if deno died first, the write fails and exited says why below.
		if err := sb.sendFrame(bootFrame{Type: "boot", Code: so.Boot}); err != nil {
			sb.r.log.Debug("boot frame not sent", "sandbox", id, "err", err)
		}
	}
	select {
	case <-sb.ready:
		return sb, nil
	case <-sb.exited:
		sb.waitReaders() // all of what deno wrote before it died
		out, _, _ := sb.stderr.Result()
		return nil, fmt.Errorf("%w: deno exited while booting (%s): %s", ErrStart, describeExit(sb.state), lastLines(out, 5))
	case <-time.After(r.opts.StartTimeout):
		return nil, fmt.Errorf("%w: deno did not boot within %s", ErrStart, r.opts.StartTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// capture returns the buffer for one output stream, spilling to the
// workspace when the run may (spill != nil).
func (r *Runner) capture(spill *spillRun, stream string) *cappedBuffer {
	b := newCappedBuffer(r.opts.MaxOutput)
	if spill != nil {
		b.withSpill(func() (*os.File, string, error) { return spill.open(stream) }, spill.take)
	}
	return b
}

// start wires the pipes, starts the container's init and execs deno.
func (sb *Sandbox) start(ctx context.Context, so StartOptions) error {
	o := sb.r.opts
	// One owner per fd (internal/fdset): fds owns every pipe end until it is
	// handed on — the child's ends to the container's init (the parent's
	// copies closed once it started), the host's to sb and its readers — so
	// an early return closes exactly what was opened.
	var fds fdset.Set
	defer fds.Close()
	// Pipes: fd 3 sandbox->host, fd 4 host->sandbox, and stdout/stderr.
	resR, resW, err := fds.Pipe()
	if err != nil {
		return err
	}
	codeR, codeW, err := fds.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := fds.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := fds.Pipe()
	if err != nil {
		return err
	}
	childEnds := []*os.File{resW, codeR, outW, errW}
	// deno reopens the channel through /proc/self/fd, which checks the pipe
	// inode's owner: give the sandbox's mapped host uid the two channel ends.
	for _, f := range []*os.File{resW, codeR} {
		if err := f.Chown(o.HostUID, o.HostGID); err != nil && !sb.r.rootless {
			return fmt.Errorf("chown channel pipe: %w", err)
		}
		_ = f.Chmod(0o600)
	}

	door := sb.r.doorFor(so)
	flags := o.DenoFlags
	if so.DenoFlags != nil {
		flags = so.DenoFlags
	}
	if door != nil && len(so.Command) == 0 {
		// Deno.resolveDns asks deno's permission for the nameserver: the
		// door's own responder, which answers only what the policy allows.
		flags = config.GrantPath(flags, "net", egress.ResolverAddr)
	}
	env := sandboxEnv(o.Root.DenoDir, o.NPMRegistry)
	trusted := door != nil && so.Network == nil && door.Secrets != nil
	if !so.Isolated {
		env = append(env, o.Env...)
		env = append(env, caBundleEnv(o, trusted, o.Root.TrustDir)...)
	}
	if trusted {
		// Code sees placeholders, and may read them; deno and node
		// clients trust the door's CA on top of their own roots.
		env = append(env, door.Secrets.Env()...)
		env = append(env, "DENO_CERT="+path.Join(o.Root.TrustDir, CACertName))
		for _, n := range door.Secrets.Names() {
			flags = config.GrantPath(flags, "env", n)
		}
	}
	args := denoArgs(o.Root.DenoPath, path.Join(o.Root.BootstrapDir, BootstrapName), flags, o.Limits.Memory, so.ImportMap)
	if so.Boot != "" {
		args = append(args, bootArg) // the bootstrap reads a boot frame first
	}
	for name, data := range so.Files {
		host := filepath.Join(so.Writable.Host, name)
		sb.files = append(sb.files, host)
		if err := os.WriteFile(host, data, 0o644); err != nil {
			return fmt.Errorf("files: %w", err)
		}
	}
	if len(so.Command) > 0 {
		args = so.Command
	}
	env = append(env, so.Env...)
	if len(so.Command) == 0 && o.Outputs.TotalBytes > 0 {
		env = append(env, config.OutputsEnv+"="+config.OutputsDir)
	}
	// The run's working directory: a launcher's, else the workspace, shared with the host, where
	// relative paths of the code's land; else /tmp.
	cwd := "/tmp"
	switch {
	case so.WorkDir != nil:
		cwd = so.WorkDir.Path
	case !so.Isolated && !so.NoWorkspace && o.Workspace != "":
		cwd = o.Workspace
	}
	sb.proc = &libcontainer.Process{
		Args:       args,
		Env:        env,
		Cwd:        cwd,
		Stdout:     outW,
		Stderr:     errW,
		ExtraFiles: []*os.File{resW, codeR},
		Init:       true,
	}

	// The parent-death signal follows the OS thread that forked the init
	// (golang/go#27505), so that thread stays locked, and alive, until deno
	// has exited.
	startErr := make(chan error, 1)
	go sb.supervise(startErr)
	err = <-startErr
	_ = fds.CloseFiles(childEnds...) // the child holds its own copies now (or never will)
	if err != nil {
		return err
	}
	if len(so.Command) == 0 && o.Outputs.TotalBytes > 0 {
		// The init exists and its root is set up; no code has arrived yet, so the path is the
		// tmpfs the config mounted, not something code made.
		pid, err := sb.proc.Pid()
		if err != nil {
			return fmt.Errorf("outputs: %w", err)
		}
		if sb.outDir, err = outputs.OpenDir(fmt.Sprintf("/proc/%d/root%s", pid, config.OutputsDir)); err != nil {
			return err
		}
	}
	if door != nil {
		if err := sb.startDoor(ctx, door); err != nil {
			return err
		}
	}
	// The host's ends: toBox to sb (Run and Close close it), fromBox, outR
	// and errR to the readers below, which close them when their stream ends
	// (waitReaders closes them under a reader that outlives readerGrace, to
	// end its read: *os.File's Close is safe to repeat).
	fds.Release()
	sb.toBox, sb.fromBox = codeW, resR
	sb.outR, sb.errR = outR, errR
	sb.readers.Add(3)
	go func() { defer sb.readers.Done(); drain(sb.stdout, outR); outR.Close() }()
	go func() { defer sb.readers.Done(); drain(sb.stderr, errR); errR.Close() }()
	go func() { defer sb.readers.Done(); sb.readFrames() }()
	if err := sb.ctr.Exec(); err != nil {
		return fmt.Errorf("exec deno: %w", err)
	}
	return nil
}

// doorFor is the network of a sandbox: StartOptions.Network through the
// same door when set, else Options.Net (nil = none).
func (r *Runner) doorFor(so StartOptions) *NetOptions {
	if so.Network == nil {
		return r.opts.Net
	}
	n := &NetOptions{Policy: *so.Network}
	if r.opts.Net != nil {
		n.Resolver, n.Dial, n.UpstreamRoots = r.opts.Net.Resolver, r.opts.Net.Dial, r.opts.Net.UpstreamRoots
	}
	return n
}

// startDoor wires the sandbox's network namespace to the door before deno
// runs anything (the container's init waits for Exec).
func (sb *Sandbox) startDoor(ctx context.Context, n *NetOptions) error {
	pid, err := sb.proc.Pid()
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	sb.door, err = egress.StartDoor(ctx, egress.DoorOptions{
		NetNS:    fmt.Sprintf("/proc/%d/ns/net", pid),
		Policy:   n.Policy,
		MaxConns: n.MaxConns,
		MaxBytes: n.MaxBytes,
		Resolver: n.Resolver,
		Dial:     n.Dial,
		Secrets:  n.Secrets,

		UpstreamRoots: n.UpstreamRoots,
		Logger:        sb.r.log,
	})
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// supervise starts the container on a locked OS thread and waits for its init.
func (sb *Sandbox) supervise(startErr chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := sb.ctr.Start(sb.proc); err != nil {
		startErr <- err
		close(sb.exited)
		return
	}
	startErr <- nil
	sb.state, sb.waitErr = sb.proc.Wait()
	if ws, ok := waitStatus(sb.state); ok && !ws.Exited() && !ws.Signaled() {
		// A stop, not an exit: deno became traced by this process (the
		// seccomp policy forbids ptrace, so only if that wall failed). Kill
		// the sandbox and reap it, so nothing waits on a stopped process.
		sb.stopped = true
		sb.kill()
		if pid, err := sb.proc.Pid(); err == nil {
			var reaped unix.WaitStatus
			_, _ = unix.Wait4(pid, &reaped, 0, nil)
		}
	}
	close(sb.exited)
}

// readFrames reads the sandbox's frames until the channel closes. A malformed
// frame ends trust in the channel: it is reported once and the rest drained.
func (sb *Sandbox) readFrames() {
	defer sb.fromBox.Close()
	readyClosed := false
	for {
		body, err := readFrame(sb.fromBox, maxFrameBytes)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				sb.pushFrame(frameInfo{fault: err})
				drain(io.Discard, sb.fromBox)
			}
			return
		}
		var msg struct {
			Type            string          `json:"type"`
			Error           *ErrorInfo      `json:"error"`
			Result          json.RawMessage `json:"result"`
			ResultTruncated bool            `json:"resultTruncated"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			sb.pushFrame(frameInfo{fault: fmt.Errorf("malformed frame: %w", err)})
			drain(io.Discard, sb.fromBox)
			return
		}
		switch msg.Type {
		case "ready":
			if !readyClosed {
				close(sb.ready)
				readyClosed = true
			}
		case "evaluated", "error":
			sb.pushFrame(frameInfo{typ: msg.Type, err: msg.Error, result: msg.Result, resultTruncated: msg.ResultTruncated})
			if msg.Type == "evaluated" {
				sb.evaluatedOnce.Do(func() { close(sb.evaluated) })
			}
		case "call":
			c := sb.calls.Load()
			if c == nil {
				sb.pushFrame(frameInfo{fault: errors.New("a call before the run frame")})
				drain(io.Discard, sb.fromBox)
				return
			}
			if err := c.handle(body); err != nil {
				sb.pushFrame(frameInfo{fault: err})
				drain(io.Discard, sb.fromBox)
				return
			}
		default:
			sb.pushFrame(frameInfo{fault: fmt.Errorf("unknown frame type %q", msg.Type)})
			drain(io.Discard, sb.fromBox)
			return
		}
	}
}

// pushFrame records a frame without ever blocking the reader: only the first
// few matter, and a sandbox flooding frames must not stall the host. A fault
// ends the execution at once: the host no longer answers on that channel,
// so nothing the code awaits there could ever settle.
func (sb *Sandbox) pushFrame(f frameInfo) {
	if f.fault != nil || f.ended != "" {
		defer sb.kill()
	}
	select {
	case sb.frames <- f:
	default:
	}
}

// bootArg is the bootstrap's argument that makes it read a boot frame
// (StartOptions.Boot) before it says ready.
const bootArg = "--boot"

// bootFrame carries StartOptions.Boot.
type bootFrame struct {
	Type string `json:"type"`
	Code string `json:"code"`
}

// runFrame is what the host sends the bootstrap.
type runFrame struct {
	Type        string          `json:"type"`
	Code        string          `json:"code"`
	Globals     json.RawMessage `json:"globals,omitempty"`
	ResultLimit int             `json:"resultLimit"`
	MCP         bool            `json:"mcp"`                 // define mcpFactory
	Playbooks   bool            `json:"playbooks,omitempty"` // define playbooks
}

// sendFrame writes one frame to the sandbox, never interleaved with another.
func (sb *Sandbox) sendFrame(v any) error {
	sb.toBoxMu.Lock()
	defer sb.toBoxMu.Unlock()
	return writeFrame(sb.toBox, v)
}

// Run sends the job to the booted sandbox and waits until deno exits, the
// timeout passes, or ctx is cancelled. It can be called once; the sandbox
// must be closed afterwards.
func (sb *Sandbox) Run(ctx context.Context, job Job) *Result {
	res := &Result{Status: StatusError, Degraded: sb.degraded}
	ran := false
	sb.ranOnce.Do(func() { ran = true })
	if !ran {
		res.Error = &ErrorInfo{Type: ErrorInternal, Message: "sandbox already used: sandboxes run code once"}
		return res
	}
	if len(job.Code) > maxCodeBytes {
		res.Error = &ErrorInfo{Type: ErrorInternal, Message: fmt.Sprintf("%v: %d bytes, limit %d", ErrCodeTooLarge, len(job.Code), maxCodeBytes)}
		return res
	}
	if q := sb.r.quota; q != nil {
		if err := q.Check(ctx); err != nil {
			verdict(facts{quota: err}, res)
			if res.Degraded == nil {
				res.Degraded = []string{}
			}
			return res
		}
	}
	limit := job.ResultLimit
	if limit <= 0 {
		limit = DefaultResultLimit
	}
	limit = min(limit, maxResultLimit)
	frame := runFrame{Type: "run", Code: job.Code, Globals: job.Globals, ResultLimit: limit,
		MCP: Serves(job.Calls, GlobalMCPFactory), Playbooks: Serves(job.Calls, GlobalPlaybooks)}
	c := newCalls(ctx, job.Calls, job.CallLimits, sb.sendFrame, func(reason string) { sb.pushFrame(frameInfo{ended: reason}) })
	sb.calls.Store(c)
	if job.OnOutput != nil {
		sb.stdout.setObserver(func(b []byte) { job.OnOutput("stdout", b) })
		sb.stderr.setObserver(func(b []byte) { job.OnOutput("stderr", b) })
	}
	t0 := time.Now()
	go func() {
		// A large program can exceed the pipe buffer; deno may also die
		// before reading it. Either way this goroutine ends: the write
		// fails with EPIPE once the sandbox is gone.
		_ = sb.sendFrame(frame)
	}()

	killedFor, settled := sb.await(ctx, job.Timeout)
	if killedFor != "" || settled {
		sb.kill()
		<-sb.exited
	}
	elapsed := time.Since(t0)
	res.Calls, res.CallDetails, res.CallDetailsDropped = c.stop() // calls still in flight fail: the execution is over
	sb.toBoxMu.Lock()
	sb.toBox.Close()
	sb.toBoxMu.Unlock()
	sb.waitReaders()
	verdict(sb.gatherFacts(res, killedFor, settled, elapsed), res)
	res.Outputs = sb.collectOutputs()
	return res
}

// collectOutputs collects the outputs directory and the workspace files it names, once every
// process of the sandbox is gone (deno, the pid namespace's init, has exited).
func (sb *Sandbox) collectOutputs() []outputs.File {
	if sb.outDir == nil {
		return nil
	}
	<-sb.exited
	files, err := outputs.Collect(sb.outDir, sb.r.opts.Outputs)
	if err != nil {
		sb.r.log.Warn("outputs not collected", "sandbox", sb.id, "err", err)
		return []outputs.File{{Name: ".", Skipped: fmt.Sprintf("the outputs directory could not be read: %v", err)}}
	}
	return append(files, outputs.Workspace(sb.outDir, sb.wsHost)...)
}

// wsHostPath is the host path of a sandbox's workspace ("" = none).
func wsHostPath(ws *workspace) string {
	if ws == nil {
		return ""
	}
	return ws.path
}

// AfterResultGrace is how long work the code left pending after its result
// (timers, unawaited promises, open handles) may go on before the run ends
// anyway: the result is the value, and the slot is not held for the rest.
const AfterResultGrace = time.Second

// await waits until deno exits, the timeout passes or ctx ends (killedFor
// says which of the last two), or until AfterResultGrace after the module's
// result arrived with deno still running (settled).
func (sb *Sandbox) await(ctx context.Context, timeout time.Duration) (killedFor Status, settled bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	evaluated := sb.evaluated
	var grace <-chan time.Time
	for {
		select {
		case <-sb.exited:
			return "", false
		case <-evaluated:
			evaluated = nil
			g := time.NewTimer(AfterResultGrace)
			defer g.Stop()
			grace = g.C
		case <-grace:
			return "", true
		case <-timer.C:
			return StatusTimeout, false
		case <-ctx.Done():
			return StatusCancelled, false
		}
	}
}

// readerGrace bounds how long output may keep arriving after deno exited:
// every process of the sandbox is dead by then, so the pipes normally close
// at once; if something still holds them, the host stops reading.
const readerGrace = 5 * time.Second

// waitReaders waits for the output and channel readers to finish, closing
// the host ends if they do not within readerGrace.
func (sb *Sandbox) waitReaders() {
	done := make(chan struct{})
	go func() { sb.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(readerGrace):
		closeAll(sb.outR, sb.errR, sb.fromBox)
		<-done
	}
}

// Exited is closed once deno, the sandbox's init, has exited: the sandbox
// has finished its run (or died) and holds no more CPU.
func (sb *Sandbox) Exited() <-chan struct{} { return sb.exited }

// kill ends every process in the sandbox: SIGKILL to the init of a pid
// namespace takes the whole namespace with it.
func (sb *Sandbox) kill() {
	if err := sb.ctr.Signal(unix.SIGKILL); err != nil && sb.proc != nil {
		_ = sb.proc.Signal(unix.SIGKILL)
	}
}

// Close kills whatever still runs and removes the container, its cgroups and
// its state directory. It is safe to call more than once.
func (sb *Sandbox) Close() error {
	sb.closeOnce.Do(func() {
		if sb.proc != nil {
			select {
			case <-sb.exited:
			default:
				sb.kill()
				select {
				case <-sb.exited:
				case <-time.After(10 * time.Second):
					sb.closeErr = errors.New("sandbox init did not exit after SIGKILL")
				}
			}
		}
		if sb.toBox != nil {
			sb.toBox.Close()
		}
		if sb.door != nil {
			_ = sb.door.Close()
		}
		if sb.outDir != nil {
			sb.outDir.Close()
		}
		for _, f := range sb.files {
			_ = os.Remove(f)
		}
		sb.endSpill()
		if err := sb.ctr.Destroy(); err != nil && sb.closeErr == nil {
			sb.closeErr = fmt.Errorf("destroy %s: %w", sb.id, err)
		}
	})
	return sb.closeErr
}

// endSpill closes the run's spill files and lets trimming count them. It
// is safe to call more than once.
func (sb *Sandbox) endSpill() {
	sb.stdout.Spill()
	sb.stderr.Spill()
	if sb.spill != nil {
		sb.spill.finish()
	}
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// waitStatus extracts the wait status of an exited process.
func waitStatus(st *os.ProcessState) (syscall.WaitStatus, bool) {
	if st == nil {
		return 0, false
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ws, ok
}

func describeExit(st *os.ProcessState) string {
	if st == nil {
		return "no exit status"
	}
	return st.String()
}
