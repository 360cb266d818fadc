package sandbox

import (
	"context"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/conductor-sandbox/conductor/cgroups"
	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/quota"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/seccomp"
	"golang.org/x/sys/unix"
)

// Bootstrap is the program every sandbox boots into; the rootfs places it at
// /conductor/bootstrap.js.
//
//go:embed bootstrap.js
var Bootstrap []byte

// BootstrapName is the bootstrap's file name under the root's bootstrap dir.
const BootstrapName = "bootstrap.js"

// Display is the module that defines code's display() global (files returned through the
// outputs directory); the bootstrap imports it, and execute_code's deno preloads it from
// config.DisplayModule, the root's bootstrap dir.
//
//go:embed display.js
var Display []byte

// DisplayName is Display's file name next to the bootstrap.
const DisplayName = "display.js"

// BootstrapFiles are the files the root holds in its bootstrap dir (rootfs.Options.Bootstrap).
func BootstrapFiles() map[string][]byte {
	return map[string][]byte{BootstrapName: Bootstrap, DisplayName: Display}
}

// IDPrefix starts the name of every container, state directory and cgroup
// conductor creates, so a sweep can recognise its own leftovers.
const IDPrefix = "conductor-"

// Defaults.
const (
	DefaultMaxOutput    = 1 << 20
	DefaultTmpSize      = 64 << 20
	DefaultStartTimeout = 30 * time.Second
	// nobodyID is the host uid/gid a root-run sandbox maps its root to by default.
	nobodyID = 65534
	// maxCodeBytes bounds the code the host will send into a sandbox.
	maxCodeBytes = 64 << 20
	// maxFrameBytes bounds one frame from the sandbox: the result plus room.
	maxFrameBytes = maxResultLimit + 1<<20
	// maxResultLimit is the largest ResultLimit a job may ask for.
	maxResultLimit = 16 << 20
)

// Sentinel errors callers branch on.
var (
	ErrUnenforceable = cgroups.ErrUnenforceable
	ErrClosed        = errors.New("sandbox runner is closed")
	ErrCodeTooLarge  = errors.New("code too large")
	ErrStart         = errors.New("sandbox failed to start")
)

// Options configure a Runner. Root, Cgroups and Seccomp are required.
type Options struct {
	StateDir      string         // parent of per-instance state directories
	Root          *rootfs.Root   // the read-only root
	Cgroups       *cgroups.Host  // detected cgroup setup
	Seccomp       *seccomp.Cache // compiled-once policies
	Limits        cgroups.Limits // memory, pids, CPU
	AllowDegraded bool           // run even when a limit cannot be enforced
	DenoFlags     []string       // validated deno permission flags, with "--"
	// Network allows the network system calls. Without Net the sandbox's
	// namespace stays empty (only its own lo): nothing is reachable.
	Network bool
	// Net, when set, gives every run sandbox a door (egress.StartDoor)
	// enforcing the policy below deno, wired before deno starts; it implies
	// Network. Rootless, the door is wired through egress's helper.
	Net *NetOptions
	// Outputs are the limits of every run sandbox's outputs directory (config.OutputsDir, a
	// tmpfs of Outputs.TotalBytes, named by config.OutputsEnv), which the host collects into
	// Result.Outputs when the run ends (package outputs); TotalBytes 0 = no outputs directory.
	Outputs   outputs.Limits
	MaxOutput int64  // bytes kept per stream; 0 = DefaultMaxOutput
	TmpSize   int64  // bytes of /tmp; 0 = DefaultTmpSize
	DepsCache string // host dir mounted read-only as DENO_DIR; "" = the root's empty one
	// Mounts are more host directories of the dependency cache bound
	// read-only into run sandboxes (the Python packages at
	// config.PyPackagesDir); install sandboxes mount only their own.
	Mounts     []Mount
	Workspace  string // host dir mounted read-write at the same path; "" = none (the root must have the mount point)
	SpillMax   int64  // bytes one run may spill to the workspace, both streams together; 0 = no spilling
	SpillTotal int64  // bytes all spill files may hold; the oldest go first; 0 = DefaultSpillTotal
	// WorkspaceQuota bounds the bytes the workspace holds (0 = none): by a
	// project quota where the host can, else checked before each run.
	WorkspaceQuota int64
	NPMRegistry    string // NPM_CONFIG_REGISTRY for deno, installing and running alike; "" = deno's default
	// Env are extra NAME=value entries of run sandboxes' environment, as
	// data from what the root holds (e.g. the CLI tools' CA bundle
	// variables); deno passes them on to the programs code starts. They may
	// not replace a variable the sandbox sets itself (PATH, HOME, DENO_*, ...).
	Env []string
	// CABundle is the in-root path of the CA bundle the root's programs
	// other than deno use (the CLI tools'), and CABundleEnv the variables
	// that name it to them (SSL_CERT_FILE, GIT_SSL_CAINFO, ...). With the
	// door's secrets CA they name a copy with that CA appended instead
	// (Root.TrustDir/CABundleName), so the tools trust the door where it
	// stands in for a secret host, as deno does through DENO_CERT.
	CABundle     string
	CABundleEnv  []string
	HostUID      int           // host uid the sandbox's root maps to; 0 = default
	HostGID      int           // host gid likewise
	StartTimeout time.Duration // bound on booting deno; 0 = DefaultStartTimeout
	Logger       *slog.Logger
}

// NetOptions are the network of run sandboxes.
type NetOptions struct {
	Policy   egress.Policy
	MaxConns int   // connections per execution; 0 = egress.DefaultDoorMaxConns
	MaxBytes int64 // bytes per execution, both ways; 0 = egress.DefaultDoorMaxBytes
	// Secrets are the admin's secrets: code sees placeholders in its
	// environment, the door puts the values in requests to their hosts.
	// Sandboxes then trust the door's CA (mounted at Root.TrustDir).
	Secrets *egress.Secrets
	// Resolver and Dial replace the host's resolver and dialer, and
	// UpstreamRoots the roots verifying secret hosts (tests).
	Resolver      func(ctx context.Context, host string) ([]netip.Addr, error)
	Dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	UpstreamRoots *x509.CertPool
}

// Runner starts sandboxes. It owns one instance directory under StateDir,
// locked for its lifetime, which is how a later sweep tells a live server's
// sandboxes from a dead one's.
type Runner struct {
	opts     Options
	ws       *workspace // nil without a workspace
	idWSMu   sync.Mutex
	idWS     map[string]*workspace // identities' workspaces (workspaceOf), by name
	quota    *quota.Quota          // nil without a workspace quota
	log      *slog.Logger
	instance string // e.g. "conductor-7f3a9c"
	stateDir string // StateDir/instance: libcontainer's state root
	lock     *os.File
	seq      atomic.Uint64
	rootless bool
	closed   atomic.Bool
}

// New checks that the configured limits can be enforced here (fail closed),
// sweeps what dead instances left behind, and claims a fresh instance dir.
func New(ctx context.Context, o Options) (*Runner, error) {
	if o.Root == nil || o.Cgroups == nil || o.Seccomp == nil {
		return nil, errors.New("sandbox: Options.Root, Cgroups and Seccomp are required")
	}
	if o.StateDir == "" || !filepath.IsAbs(o.StateDir) {
		return nil, fmt.Errorf("sandbox: state dir %q must be an absolute path", o.StateDir)
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.TmpSize <= 0 {
		o.TmpSize = DefaultTmpSize
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkEnv(o.Env); err != nil {
		return nil, err
	}
	if err := checkCABundle(o); err != nil {
		return nil, err
	}
	rootless := os.Geteuid() != 0
	if o.Net != nil {
		if err := o.Net.Policy.Validate(); err != nil {
			return nil, fmt.Errorf("sandbox: network policy: %w", err)
		}
		if err := o.Net.Secrets.CheckPolicy(o.Net.Policy); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		o.Network = true
	}
	if o.HostUID == 0 {
		o.HostUID = nobodyID
		if rootless {
			o.HostUID = os.Geteuid()
		}
	}
	if o.HostGID == 0 {
		o.HostGID = nobodyID
		if rootless {
			o.HostGID = os.Getegid()
		}
	}
	dirs := []string{o.Root.Path, o.DepsCache}
	for _, m := range o.Mounts {
		if !filepath.IsAbs(m.Host) || !filepath.IsAbs(m.Path) {
			return nil, fmt.Errorf("sandbox: mount %s at %s: both paths must be absolute", m.Host, m.Path)
		}
		dirs = append(dirs, m.Host)
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if err := checkReachable(dir, o.HostUID, o.HostGID); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	ws, q, err := setupWorkspace(ctx, &o, rootless)
	if err != nil {
		return nil, err
	}
	if missing := o.Cgroups.Missing(o.Limits); len(missing) > 0 && !o.AllowDegraded {
		errs := []error{ErrUnenforceable}
		for _, m := range missing {
			errs = append(errs, m)
		}
		return nil, fmt.Errorf("%w\n(set MCP_CONDUCTOR_ALLOW_DEGRADED=1 to run anyway; every result will list what is not enforced)", errors.Join(errs...))
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: state dir: %w", err)
	}
	r := &Runner{opts: o, log: o.Logger, rootless: rootless, ws: ws, quota: q}
	if removed, err := Sweep(ctx, o.StateDir, o.Cgroups, o.Logger); err != nil {
		r.log.Warn("sweep of stale sandboxes incomplete", "err", err)
	} else if len(removed) > 0 {
		r.log.Info("swept stale sandboxes", "removed", removed)
	}
	if err := r.claimInstance(); err != nil {
		return nil, err
	}
	return r, nil
}

// setupWorkspace checks the workspace and its spill and quota settings, and
// sets the quota up (fail closed: a quota the host enforces but that cannot
// be set is an error).
func setupWorkspace(ctx context.Context, o *Options, rootless bool) (*workspace, *quota.Quota, error) {
	if o.Workspace == "" {
		if o.WorkspaceQuota > 0 {
			return nil, nil, errors.New("sandbox: a workspace quota needs a workspace")
		}
		return nil, nil, nil
	}
	if o.SpillMax < 0 {
		o.SpillMax = 0
	}
	if o.SpillTotal <= 0 {
		o.SpillTotal = DefaultSpillTotal
	}
	if o.SpillTotal < o.SpillMax {
		return nil, nil, fmt.Errorf("sandbox: spill total %d is below the per-run spill limit %d", o.SpillTotal, o.SpillMax)
	}
	st, err := os.Stat(o.Workspace)
	if err != nil || !st.IsDir() {
		return nil, nil, fmt.Errorf("sandbox: workspace %s: not a directory: %v", o.Workspace, err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	ws := makeWorkspace(o.Workspace, int(sys.Uid), int(sys.Gid), !rootless, o.SpillMax, o.SpillTotal, o.Logger)
	if o.WorkspaceQuota <= 0 {
		return ws, nil, nil
	}
	q, err := quota.Setup(ctx, o.Workspace, o.WorkspaceQuota, o.Logger)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	return ws, q, nil
}

// WorkspaceQuota says how the workspace quota is enforced; nil = no quota.
func (r *Runner) WorkspaceQuota() *quota.Quota { return r.quota }

// claimInstance creates and locks this runner's instance directory.
func (r *Runner) claimInstance() error {
	var rnd [4]byte
	if _, err := unix.Getrandom(rnd[:], 0); err != nil {
		return fmt.Errorf("sandbox: instance id: %w", err)
	}
	r.instance = fmt.Sprintf("%s%x", IDPrefix, rnd)
	r.stateDir = filepath.Join(r.opts.StateDir, r.instance)
	if err := os.Mkdir(r.stateDir, 0o700); err != nil {
		return fmt.Errorf("sandbox: instance dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(r.stateDir, lockName), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("sandbox: instance lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("sandbox: instance lock: %w", err)
	}
	_, _ = lock.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	r.lock = lock
	if pem := r.opts.Net.secretsCA(); pem != nil {
		if err := r.writeTrust(pem); err != nil {
			return err
		}
	}
	return nil
}

// trustDirName holds, in the instance directory, what sandboxes trust: the
// door's CA certificate (never its key), mounted read-only at
// Root.TrustDir.
const (
	trustDirName = "trust"
	CACertName   = "ca.pem"
	// CABundleName is, with Options.CABundle, that bundle followed by the
	// door's CA certificate.
	CABundleName = "bundle.pem"
)

func (r *Runner) writeTrust(pem []byte) error {
	dir := filepath.Join(r.stateDir, trustDirName)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("sandbox: trust dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, CACertName), pem, 0o644); err != nil {
		return fmt.Errorf("sandbox: trust dir: %w", err)
	}
	if r.opts.CABundle == "" {
		return nil
	}
	// The root's copy: what the tools read without secrets.
	bundle, err := os.ReadFile(filepath.Join(r.opts.Root.Path, r.opts.CABundle))
	if err != nil {
		return fmt.Errorf("sandbox: CA bundle: %w", err)
	}
	if len(bundle) > 0 && bundle[len(bundle)-1] != '\n' {
		bundle = append(bundle, '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, CABundleName), append(bundle, pem...), 0o644); err != nil {
		return fmt.Errorf("sandbox: trust dir: %w", err)
	}
	return nil
}

// secretsCA is the door CA's certificate sandboxes trust; nil = none.
func (n *NetOptions) secretsCA() []byte {
	if n == nil {
		return nil
	}
	return n.Secrets.CACertPEM()
}

// Instance names this runner's state directory and the prefix of its containers.
func (r *Runner) Instance() string { return r.instance }

// Close releases the runner's instance directory. Sandboxes still open are
// destroyed by their own Close; call it after they finish.
func (r *Runner) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	if r.opts.Net.secretsCA() != nil {
		_ = os.RemoveAll(filepath.Join(r.stateDir, trustDirName))
	}
	err := os.Remove(filepath.Join(r.stateDir, lockName))
	if rmErr := os.Remove(r.stateDir); rmErr != nil && err == nil {
		err = rmErr
	}
	r.lock.Close()
	return err
}

// Job is one piece of code to run, with what the bootstrap needs around it.
type Job struct {
	Code        string          // the module to evaluate; its default export is the result
	Globals     json.RawMessage // a JSON object; each key becomes a read-only global (nil = none)
	Timeout     time.Duration   // wall-clock limit of the execution
	ResultLimit int             // bytes of encoded result; 0 = DefaultResultLimit
	// OnOutput, if set, sees output as it arrives ("stdout" or "stderr",
	// and the chunk, which it must not keep). It runs on the reading
	// goroutine: it must be quick and must not block.
	OnOutput func(stream string, chunk []byte)
	// Calls, if set, answers mcpFactory calls from the code (and makes the
	// bootstrap define mcpFactory); CallLimits bound them.
	Calls      CallHandler
	CallLimits CallLimits
}

// DefaultResultLimit bounds the encoded return value.
const DefaultResultLimit = 256 << 10

// Run starts a sandbox, runs job in it, and destroys it.
func (r *Runner) Run(ctx context.Context, job Job) (*Result, error) {
	t0 := time.Now()
	sb, err := r.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	res := sb.Run(ctx, job)
	res.DurationMs = Millis(time.Since(t0))
	return res, nil
}

// Millis is d in milliseconds, to the microsecond: how results give durations.
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
