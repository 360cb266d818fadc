package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/identity"
)

// Prefix starts the name of every conductor environment variable.
const Prefix = "MCP_CONDUCTOR_"

// The variables Load reads.
const (
	VarRunArgs         = Prefix + "RUN_ARGS"
	VarMemory          = Prefix + "MEMORY"
	VarPids            = Prefix + "PIDS"
	VarCPUs            = Prefix + "CPUS"
	VarMaxOutput       = Prefix + "MAX_OUTPUT"
	VarDefaultTimeout  = Prefix + "DEFAULT_TIMEOUT"
	VarMaxTimeout      = Prefix + "MAX_TIMEOUT"
	VarAllowDegraded   = Prefix + "ALLOW_DEGRADED"
	VarStateDir        = Prefix + "STATE_DIR"
	VarDataDir         = Prefix + "DATA_DIR"
	VarCgroupParent    = Prefix + "CGROUP_PARENT"
	VarWorkspace       = Prefix + "WORKSPACE"
	VarAllowedPackages = Prefix + "ALLOWED_PACKAGES"
	VarMaxConcurrency  = Prefix + "MAX_CONCURRENCY"
	VarMaxQueue        = Prefix + "MAX_QUEUE"
	VarHTTPToken       = Prefix + "HTTP_TOKEN"
	VarMaxCode         = Prefix + "MAX_CODE"
	VarMCPConfig       = Prefix + "MCP_CONFIG"
	VarPoolSize        = Prefix + "POOL_SIZE"
	VarPoolMax         = Prefix + "POOL_MAX"

	VarSpillMax            = Prefix + "SPILL_MAX"
	VarSpillTotal          = Prefix + "SPILL_TOTAL"
	VarWorkspaceQuota      = Prefix + "WORKSPACE_QUOTA"
	VarHTTPInsecureNoAuth  = Prefix + "HTTP_INSECURE_NO_AUTH"
	VarHTTPMaxConns        = Prefix + "HTTP_MAX_CONNS"
	VarHTTPMaxConnsPerIP   = Prefix + "HTTP_MAX_CONNS_PER_IP"
	VarHTTPMaxSessions     = Prefix + "HTTP_MAX_SESSIONS"
	VarMCPMaxRequest       = Prefix + "MCP_MAX_REQUEST"
	VarMCPMaxInFlight      = Prefix + "MCP_MAX_INFLIGHT"
	VarMCPMaxInFlightTotal = Prefix + "MCP_MAX_INFLIGHT_TOTAL"
	VarNetPrivate          = Prefix + "NET_PRIVATE"
	VarNetSecrets          = Prefix + "NET_SECRETS"
	VarTools               = Prefix + "TOOLS"
	VarPython              = Prefix + "PYTHON"
	VarGo                  = Prefix + "GO"
	VarSnippets            = Prefix + "SNIPPETS"
	VarPlaybooks           = Prefix + "PLAYBOOKS"
	VarPlaybooksWritable   = Prefix + "PLAYBOOKS_WRITABLE"
	VarTypeCheck           = Prefix + "TYPECHECK"
	VarAudit               = Prefix + "AUDIT"
	VarAuditCode           = Prefix + "AUDIT_CODE"
	VarMetricsAddr         = Prefix + "METRICS_ADDR"
	VarHTTPStateless       = Prefix + "HTTP_STATELESS"
	VarOutputsInline       = Prefix + "OUTPUTS_INLINE"
	VarOutputsStoreSize    = Prefix + "OUTPUTS_STORE_SIZE"
	VarOutputsRetention    = Prefix + "OUTPUTS_RETENTION"
	VarOutputsSize         = Prefix + "OUTPUTS_SIZE"
	VarOutputsFiles        = Prefix + "OUTPUTS_FILES"
	VarOutputsFileSize     = Prefix + "OUTPUTS_FILE_SIZE"
)

// The MCP_CONDUCTOR_AUDIT values that are streams, not files.
const (
	AuditStderr = "stderr"
	AuditStdout = "stdout"
)

// PythonOff is the MCP_CONDUCTOR_PYTHON value that offers no Python.
const PythonOff = "off"

// GoOff is the MCP_CONDUCTOR_GO value that offers no Go.
const GoOff = "off"

// WorkDir is the in-root mount point of execute_code's per-run working
// directory (a size-capped tmpfs, the program's cwd). It is under
// conductor's own /conductor so that it never looks like a host path.
const WorkDir = "/conductor/work"

// OutputsDir is the in-root mount point of a run's outputs directory (a size-capped tmpfs per
// run, MCP_CONDUCTOR_OUTPUTS_SIZE): what code leaves there is collected by the host when the run
// ends (package outputs). OutputsEnv names it in the sandbox's environment.
const (
	OutputsDir = "/outputs"
	OutputsEnv = "CONDUCTOR_OUTPUTS"
	// DisplayModule is the root's module that defines code's display() global (package
	// sandbox's display.js, next to its bootstrap): execute_code's deno preloads it.
	DisplayModule = "/conductor/display.js"
)

// PyPackagesDir is where, in every sandbox, the admin's pypi: packages are: the allowlist's
// cache view's site-packages (pip install --target), read-only in runs, writable only in the
// install sandbox; Python code finds it on sys.path.
const PyPackagesDir = "/conductor/pypi"

// TypeScriptDir is where, in the type checker's sandbox, TypeScript's compiler and the
// declarations it checks against are (the host's <data dir>/typescript, mounted read-only;
// `make build` fetches them). Every root has the mount point.
const TypeScriptDir = "/conductor/typescript"

// ToolsDir is the directory of the sandbox root that holds the admin's
// tools (MCP_CONDUCTOR_TOOLS): each at ToolsDir/<name>, where code's PATH
// finds it. deno is there too.
const ToolsDir = "/usr/bin"

// Settings are the admin's settings after validation.
type Settings struct {
	// Identities are the config file's "identities" (nil when none): HTTP clients authenticate
	// as one of them, each with its quotas.
	Identities *identity.Set
	// RunArgs are the validated deno permission flags with leading dashes,
	// e.g. ["--allow-read=/data", "--allow-net=api.example.com"]; nil grants
	// no permissions.
	RunArgs []string
	// AllowAll is set when RunArgs contains --allow-all. It is accepted,
	// but the caller should warn.
	AllowAll bool
	// Network is set when a flag grants network access (allow-net or
	// allow-all) and no bare deny-net takes it away again. The sandbox then
	// needs network system calls.
	Network bool
	// NetHosts are the allow-net values when network access is limited to
	// a list. nil with Network set means all hosts (bare allow-net or
	// allow-all); nil without Network means none.
	NetHosts []string
	// NetDeny are the deny-net values (with Network): deno refuses them and
	// so does the network door, even where allow-net or allow-all would
	// allow them.
	NetDeny []string
	// RunAny is set when code may run any program the root holds: a bare
	// allow-run, or allow-all.
	RunAny bool
	// AllowRun is the allow-run list (nil without one).
	AllowRun []string
	// Tools are the admin's CLI tools (MCP_CONDUCTOR_TOOLS) as given: names
	// looked up on the server's PATH at start, or absolute paths; package
	// tools resolves them. Each is at ToolsDir/<base name> in the sandbox.
	Tools []string
	// Memory is the memory limit in bytes; default 512 MiB.
	Memory int64
	// Pids is the process limit; 0 means the platform default chosen by
	// the caller.
	Pids int64
	// CPUs is the CPU quota in cores; 0 means no quota.
	CPUs float64
	// MaxOutput is the byte limit for each of stdout and stderr; default
	// 1 MiB.
	MaxOutput int64
	// DefaultTimeout applies when a request names none; default 30 s.
	// It is never above MaxTimeout.
	DefaultTimeout time.Duration
	// MaxTimeout caps the timeout a request may ask for; default 300 s.
	MaxTimeout time.Duration
	// AllowDegraded lets conductor run when some hardening is unavailable.
	AllowDegraded bool
	// TypeCheck: every run_deno_code call is type-checked before it runs (package typecheck);
	// the server refuses to start when it cannot type-check.
	TypeCheck bool
	// StateDir is an absolute directory for conductor's state; "" means
	// the caller decides.
	StateDir string
	// DataDir holds deno, the sandbox roots and the dependency cache; "" = conductor chooses
	// (the checkout's .build/, else /var/lib/conductor or ~/.local/share/conductor).
	DataDir string
	// CgroupParent is the delegated cgroup (path below the cgroup2 mount)
	// to create sandboxes under, for rootless use; "" means the caller
	// decides.
	CgroupParent string
	// Workspace is an existing directory, given by its real path (no
	// symbolic links), or "".
	Workspace string
	// AllowedPackages is the admin's package allowlist, unparsed (package
	// deps parses and checks it), e.g. "npm:zod@^3,npm:axios@^1".
	AllowedPackages string
	// MaxConcurrency is how many executions run at once; default 2.
	MaxConcurrency int
	// MaxQueue is how many more wait for a slot before "busy"; default 16.
	MaxQueue int
	// HTTPToken, when set, is the bearer token HTTP clients must send.
	HTTPToken string
	// MaxCode is the largest deno_code accepted, in bytes; default 1 MiB.
	MaxCode int64
	// MCPConfig is the upstream MCP servers file; "" = the default path.
	MCPConfig string
	// Python is the interpreter execute_code runs Python with: "" = the
	// one behind python3 on the server's PATH when there is one (else no
	// Python), PythonOff = none, or an absolute path that must exist.
	Python string
	// Go is the GOROOT execute_code runs Go with: "" = `go env GOROOT` of
	// the go on the server's PATH when there is one (else no Go), GoOff =
	// none, or an absolute path of a GOROOT that must work.
	Go string
	// Snippets is a directory of named snippets for execute_code; "" = none.
	Snippets string
	// Playbooks is the directory of playbooks (package playbook); "" = none.
	Playbooks string
	// PlaybooksWritable lets clients save playbooks (save_playbook). Only with Playbooks.
	PlaybooksWritable bool
	// PoolSize is how many pre-started sandboxes `serve` keeps ready; 0 = off.
	PoolSize int
	// PoolMax is how many the pool may grow to while requests wait for boots; 0 = automatic
	// (PoolLimit). At least PoolSize when set.
	PoolMax int

	// SpillMax bounds the bytes one run spills to the workspace's
	// .conductor/output (stdout and stderr together) when its inline output
	// is cut; 0 = no spilling. Default 16 MiB.
	SpillMax int64
	// SpillTotal bounds all spill files together; the oldest are removed
	// first, never the newest run's. Default 256 MiB; at least SpillMax.
	SpillTotal int64
	// WorkspaceQuota is the most bytes the workspace may hold; 0 = no quota.
	// Only with Workspace.
	WorkspaceQuota int64
	// OutputsSize is the size of a run's outputs directory (OutputsDir, a tmpfs), and so the
	// most bytes collected from it; 0 = no outputs directory. Default 32 MiB.
	OutputsSize int64
	// OutputsFiles is the most files collected from it. Default 32.
	OutputsFiles int
	// OutputsFileSize is the most bytes of one collected file; at most OutputsSize. 0 (the
	// default) = OutputsSize.
	OutputsFileSize int64
	// HTTPInsecureNoAuth serves HTTP with no token at all (single-user
	// machines); without it and without HTTPToken, serve makes a token.
	HTTPInsecureNoAuth bool
	// HTTPStateless serves streamable HTTP without MCP sessions (the go-sdk's
	// stateless mode): every POST stands alone, so any replica behind a plain
	// load balancer serves any request. No server-to-client requests (approvals).
	HTTPStateless bool
	// HTTPMaxConns caps open HTTP connections; default 256.
	HTTPMaxConns int
	// HTTPMaxConnsPerIP caps open HTTP connections from one source
	// address; default 32.
	HTTPMaxConnsPerIP int
	// HTTPMaxSessions caps live MCP sessions per token (per client
	// identity); default 16. Idle sessions expire.
	HTTPMaxSessions int
	// MetricsAddr is where `conductor serve` serves /metrics, /healthz and /readyz without a
	// token (HOST:PORT with a literal IP or localhost, or :PORT for 127.0.0.1); "" = not served
	// on a listener of their own.
	MetricsAddr string
	// MCPMaxRequest bounds one mcpFactory call's request (its encoded
	// parameters), in bytes; default 1 MiB.
	MCPMaxRequest int64
	// MCPMaxInFlight bounds the request bytes of one execution's calls in
	// flight at once; default 8 MiB.
	MCPMaxInFlight int64
	// MCPMaxInFlightTotal bounds them across all executions; default 64 MiB.
	MCPMaxInFlightTotal int64
	// NetPrivate are the non-public ranges (loopback, RFC 1918, link-local,
	// CGNAT, ...) a run may reach through a name, or with any-public
	// network through an IP literal; nil = none (IP-literal allow-net
	// entries are always reachable).
	NetPrivate []netip.Prefix
	// NetSecrets are the secrets code may send to listed hosts without
	// seeing them (the door substitutes them); nil = none. Each Value comes
	// from the server's environment variable of the secret's name.
	NetSecrets []NetSecret
	// Audit is where the audit log goes (package audit): an absolute file path, AuditStderr or
	// AuditStdout (only with serve --http); "" = no audit log.
	Audit string
	// ConfigFile is MCP_CONDUCTOR_CONFIG: the config file the settings were read from, "" = none.
	ConfigFile string
	// AuditCode writes the code itself in the audit log's execution lines (else only its
	// sha256 and size). Only with Audit.
	AuditCode bool
	// OutputsInline is the most bytes of one image a tool result carries inline (image content);
	// larger ones are resource links. The images of one result together get at most
	// OutputsInlineTotal.
	OutputsInline int64
	// OutputsStoreSize caps the bytes of outputs kept per identity for resources/read; the
	// oldest are removed first.
	OutputsStoreSize int64
	// OutputsRetention is how long an output is kept for resources/read.
	OutputsRetention time.Duration
}

// OutputsInlineTotal is the most bytes of images one tool result carries inline: four images
// at the per-image cap.
func (s Settings) OutputsInlineTotal() int64 { return 4 * s.OutputsInline }

// MCPConfigFile is the upstream MCP servers file conductor reads: MCPConfig when set (explicit: a
// missing file is then an error), else ~/.mcp-conductor/mcp-config.json; "" when there is no home
// directory (a system service without User=): no default file, and so no upstream servers.
func (s Settings) MCPConfigFile() (path string, explicit bool) {
	if s.MCPConfig != "" {
		return s.MCPConfig, true
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", false
	}
	return filepath.Join(home, ".mcp-conductor", "mcp-config.json"), false
}

// NetSecret is one entry of MCP_CONDUCTOR_NET_SECRETS.
type NetSecret struct {
	Name  string   // environment variable: code sees a placeholder there
	Hosts []string // DNS names the value may be sent to
	Value string   // from the server's environment; never printed
}

// String names the secret and its hosts, never the value.
func (n NetSecret) String() string { return n.Name + "=" + strings.Join(n.Hosts, ",") }

// Defaults.
const (
	DefaultMemory         = 512 << 20
	DefaultMaxOutput      = 1 << 20
	DefaultDefaultTimeout = 30000 * time.Millisecond
	DefaultMaxTimeout     = 300000 * time.Millisecond
	DefaultMaxConcurrency = 2
	DefaultMaxQueue       = 16
	DefaultMaxCode        = 1 << 20
	DefaultPoolSize       = 2

	DefaultSpillMax            = 16 << 20
	DefaultOutputsSize         = 32 << 20
	DefaultOutputsFiles        = 32
	DefaultSpillTotal          = 256 << 20
	DefaultHTTPMaxConns        = 256
	DefaultHTTPMaxConnsPerIP   = 32
	DefaultHTTPMaxSessions     = 16
	DefaultMCPMaxRequest       = 1 << 20
	DefaultMCPMaxInFlight      = 8 << 20
	DefaultMCPMaxInFlightTotal = 64 << 20
	DefaultOutputsInline       = 1 << 20
	DefaultOutputsStoreSize    = 256 << 20
	DefaultOutputsRetention    = time.Hour
)

// Limits.
const (
	minMemory, maxMemory       = 64 << 20, 64 << 30
	minPids, maxPids           = 16, 65536
	minCPUs, maxCPUs           = 0.01, 1024.0
	minMaxOutput, maxMaxOutput = 1 << 10, 1 << 30
	minTimeoutMS, maxTimeoutMS = 100, 86400000
)

// defaults returns the settings used when no variable is set.
func defaults() Settings {
	return Settings{
		Memory:         DefaultMemory,
		MaxOutput:      DefaultMaxOutput,
		DefaultTimeout: DefaultDefaultTimeout,
		MaxTimeout:     DefaultMaxTimeout,
		MaxConcurrency: DefaultMaxConcurrency,
		MaxQueue:       DefaultMaxQueue,
		MaxCode:        DefaultMaxCode,
		PoolSize:       DefaultPoolSize,

		SpillMax:            DefaultSpillMax,
		OutputsInline:       DefaultOutputsInline,
		OutputsStoreSize:    DefaultOutputsStoreSize,
		OutputsRetention:    DefaultOutputsRetention,
		OutputsSize:         DefaultOutputsSize,
		OutputsFiles:        DefaultOutputsFiles,
		SpillTotal:          DefaultSpillTotal,
		HTTPMaxConns:        DefaultHTTPMaxConns,
		HTTPMaxConnsPerIP:   DefaultHTTPMaxConnsPerIP,
		HTTPMaxSessions:     DefaultHTTPMaxSessions,
		MCPMaxRequest:       DefaultMCPMaxRequest,
		MCPMaxInFlight:      DefaultMCPMaxInFlight,
		MCPMaxInFlightTotal: DefaultMCPMaxInFlightTotal,
	}
}

// LookupFunc looks up an environment variable, like os.LookupEnv.
type LookupFunc func(string) (string, bool)

// Variable documents one environment variable.
type Variable struct {
	Name        string // e.g. "MCP_CONDUCTOR_MEMORY"
	Default     string // the effective default, written as a value; "" if unset means "not set"
	Allowed     string // what values are accepted
	Description string // what it does
}

// ErrInvalid is wrapped by every *Error, so errors.Is(err, ErrInvalid)
// tells a bad setting from other failures.
var ErrInvalid = errors.New("invalid setting")

// Error reports one bad variable.
type Error struct {
	Var     string // the variable's name
	Value   string // the value as given ("" when hidden)
	Allowed string // what would have been accepted
	Err     error  // what is wrong with Value
	// File is the config file the value came from ("" = the environment).
	File string

	hidden bool // Value is a secret and is not shown
}

// Error renders the problem on one line, e.g.
//
//	MCP_CONDUCTOR_MEMORY="12Q": not a size: unknown suffix "Q"; allowed: bytes with optional K, M, G suffix (binary), between 64M and 64G
//
// The value is quoted with Go escapes, so newlines and control bytes in it
// cannot break the line. Several problems in Err are joined with "; ".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Var)
	if e.File != "" {
		b.WriteString(" (key " + FileKey(e.Var) + " in " + e.File + ")")
	}
	if e.hidden {
		b.WriteString(" (value hidden)")
	} else {
		b.WriteString("=" + strconv.Quote(e.Value))
	}
	b.WriteString(": ")
	b.WriteString(oneLine(e.Err))
	if e.Allowed != "" {
		b.WriteString("; allowed: " + e.Allowed)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// oneLine renders err, flattening errors.Join trees with "; ".
func oneLine(err error) string {
	if err == nil {
		return "invalid"
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range j.Unwrap() {
			parts = append(parts, oneLine(e))
		}
		return strings.Join(parts, "; ")
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// setting is one row of the variable table. To add a variable, add a row
// with a parse function that validates the value and stores it in Settings
// (and, if it depends on another variable, a check).
type setting struct {
	Variable
	secret bool                              // never echo the value in errors
	parse  func(v string, s *Settings) error // v is non-empty
	// parseEnv is parse for a variable that names others to read.
	parseEnv func(v string, s *Settings, lookup LookupFunc) error
	// list: the config file may give the value as an array of strings (the items joined).
	list bool
}

var table = []setting{
	{
		Variable: Variable{
			Name:    VarRunArgs,
			Default: "",
			Allowed: runArgsAllowed(),
			Description: "Deno permissions granted to all code, written without dashes and separated by commas, " +
				"e.g. allow-read=/srv/ws,allow-net=api.example.com:443,deno.land. " +
				"A comma-separated item without \"=\" that is not a flag name adds one more value to the flag before it. " +
				"Unset means no permissions. allow-import is refused: code imports only the admin's allowed packages.",
		},
		parse: func(v string, s *Settings) error {
			r, err := parseRunArgs(v)
			if err != nil {
				return err
			}
			s.RunArgs, s.AllowAll, s.Network, s.NetHosts, s.NetDeny = r.args, r.allowAll, r.network, r.netHosts, r.netDeny
			s.RunAny, s.AllowRun = r.runAny, r.run
			return nil
		},
		list: true,
	},
	{
		Variable: Variable{
			Name:        VarMemory,
			Default:     formatSize(DefaultMemory),
			Allowed:     sizeAllowed(minMemory, maxMemory),
			Description: "Memory limit of each sandbox.",
		},
		parse: sizeIn(minMemory, maxMemory, func(s *Settings, n int64) { s.Memory = n }),
	},
	{
		Variable: Variable{
			Name:        VarPids,
			Default:     "",
			Allowed:     fmt.Sprintf("a whole number between %d and %d", minPids, maxPids),
			Description: "Maximum number of processes and threads in each sandbox. Unset: the platform default.",
		},
		parse: func(v string, s *Settings) error {
			n, err := wholeIn(v, minPids, maxPids)
			if err != nil {
				return err
			}
			s.Pids = n
			return nil
		},
	},
	{
		Variable: Variable{
			Name:        VarCPUs,
			Default:     "0",
			Allowed:     fmt.Sprintf("0 (no quota) or a decimal number of cores between %g and %g, e.g. 1.5", minCPUs, maxCPUs),
			Description: "CPU quota of each sandbox, in cores.",
		},
		parse: parseCPUs,
	},
	{
		Variable: Variable{
			Name:        VarMaxOutput,
			Default:     formatSize(DefaultMaxOutput),
			Allowed:     sizeAllowed(minMaxOutput, maxMaxOutput),
			Description: "Most bytes kept of each of stdout and stderr per run; the rest is cut off.",
		},
		parse: sizeIn(minMaxOutput, maxMaxOutput, func(s *Settings, n int64) { s.MaxOutput = n }),
	},
	{
		Variable: Variable{
			Name:    VarDefaultTimeout,
			Default: msString(DefaultDefaultTimeout),
			Allowed: timeoutAllowed() + ", at most " + VarMaxTimeout,
			Description: "Timeout in milliseconds for a run that does not ask for one. " +
				"When unset and " + VarMaxTimeout + " is lower than the default, it equals " + VarMaxTimeout + ".",
		},
		parse: millisIn(func(s *Settings, d time.Duration) { s.DefaultTimeout = d }),
	},
	{
		Variable: Variable{
			Name:        VarMaxTimeout,
			Default:     msString(DefaultMaxTimeout),
			Allowed:     timeoutAllowed(),
			Description: "Longest timeout in milliseconds a run may ask for.",
		},
		parse: millisIn(func(s *Settings, d time.Duration) { s.MaxTimeout = d }),
	},
	{
		Variable: Variable{
			Name:        VarAllowDegraded,
			Default:     "false",
			Allowed:     "1, 0, true, false, yes or no (any case)",
			Description: "Run even when some sandbox hardening is unavailable on this host, instead of refusing to start.",
		},
		parse: boolInto(func(s *Settings, b bool) { s.AllowDegraded = b }),
	},
	{
		Variable: Variable{
			Name:        VarStateDir,
			Default:     "",
			Allowed:     "an absolute, clean directory path other than /, using letters, digits and - _ . / + @",
			Description: "Directory for conductor's state. Unset: conductor chooses.",
		},
		parse: func(v string, s *Settings) error {
			if err := checkDirPath(v); err != nil {
				return err
			}
			s.StateDir = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:        VarDataDir,
			Default:     "",
			Allowed:     "an absolute, clean directory path other than /, using letters, digits and - _ . / + @",
			Description: "Directory for deno, the sandbox roots and the dependency cache. Unset: the checkout's .build/ next to the binary, else /var/lib/conductor (root) or ~/.local/share/conductor.",
		},
		parse: func(v string, s *Settings) error {
			if err := checkDirPath(v); err != nil {
				return err
			}
			s.DataDir = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:    VarCgroupParent,
			Default: "",
			Allowed: "a clean cgroup path (no . or .. elements) using letters, digits and - _ . / + @ :, either absolute below the " +
				"cgroup mount (e.g. /user.slice/user-1000.slice/user@1000.service/app.slice, or /conductor-alice on v1) or relative, " +
				"meaning below conductor's own cgroup in each hierarchy",
			Description: "Delegated cgroup to create sandboxes under, for rootless use. Unset: conductor chooses.",
		},
		parse: parseCgroupParent,
	},
	{
		Variable: Variable{
			Name:    VarWorkspace,
			Default: "",
			Allowed: "the absolute path of an existing directory other than /, with no symbolic links in it, " +
				"using letters, digits and - _ . / + @",
			Description: "Directory shared with the sandboxes as the workspace. Unset: none.",
		},
		parse: parseWorkspace,
	},
	{
		Variable: Variable{
			Name:    VarAllowedPackages,
			Default: "",
			Allowed: "comma-separated npm: or jsr: specifiers, each with the version the admin pins, e.g. npm:zod@^3,npm:axios@^1,jsr:@std/path@^1",
			Description: "Packages code may import. A package named without a version gets this version; a different version is refused. " +
				"They are fetched into the dependency cache at start (and by `conductor deps install`).",
		},
		parse: func(v string, s *Settings) error {
			if c, ok := badByte(v, func(c byte) bool {
				return c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != '`' && c != '$' && c != ';'
			}); ok {
				return fmt.Errorf("contains %s", c)
			}
			s.AllowedPackages = v
			return nil
		},
		list: true,
	},
	{
		Variable: Variable{
			Name:        VarMaxConcurrency,
			Default:     strconv.Itoa(DefaultMaxConcurrency),
			Allowed:     "an integer from 1 to 256",
			Description: "Executions that run at the same time; more wait in a queue.",
		},
		parse: intIn(1, 256, func(s *Settings, n int) { s.MaxConcurrency = n }),
	},
	{
		Variable: Variable{
			Name:        VarMaxQueue,
			Default:     strconv.Itoa(DefaultMaxQueue),
			Allowed:     "an integer from 0 to 10000",
			Description: "Executions that may wait for a free slot; beyond that a call fails at once with a \"busy\" error.",
		},
		parse: intIn(0, 10000, func(s *Settings, n int) { s.MaxQueue = n }),
	},
	{
		Variable: Variable{
			Name:        VarHTTPToken,
			Default:     "",
			Allowed:     "16 to 4096 printable ASCII characters without spaces",
			Description: "HTTP clients must send Authorization: Bearer <token>; others get 401. Unset: `serve --http` generates one at each start, in <state dir>/http-<port>.token (0600).",
		},
		secret: true,
		parse: func(v string, s *Settings) error {
			if len(v) < 16 || len(v) > 4096 {
				return fmt.Errorf("is %d characters long", len(v))
			}
			if _, ok := badByte(v, func(c byte) bool { return c > ' ' && c < 0x7f }); ok {
				return errors.New("contains a space or a non-printable character")
			}
			s.HTTPToken = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:        VarMaxCode,
			Default:     formatSize(DefaultMaxCode),
			Allowed:     sizeAllowed(1<<10, 64<<20),
			Description: "Largest deno_code accepted per call; for execute_code, the largest entrypoint and additional files together.",
		},
		parse: sizeIn(1<<10, 64<<20, func(s *Settings, n int64) { s.MaxCode = n }),
	},
	{
		Variable: Variable{
			Name:        VarMCPConfig,
			Default:     "",
			Allowed:     "the path of a JSON file in the mcpServers format",
			Description: "Upstream MCP servers code can reach through mcpFactory. Unset: ~/.mcp-conductor/mcp-config.json.",
		},
		parse: func(v string, s *Settings) error {
			if strings.ContainsAny(v, "\x00\n") {
				return errors.New("contains a NUL or newline")
			}
			s.MCPConfig = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:    VarPython,
			Default: "",
			Allowed: "an absolute clean path of a Python 3 interpreter (a venv's bin/python brings the venv's site-packages), or " + PythonOff,
			Description: "The Python execute_code runs (python -E -s -B, its standard library read-only in the sandbox's root; with a venv, " +
				"the venv's site-packages too). Unset: the interpreter behind python3 on the server's PATH, if any (else Python is not offered). " +
				"A configured interpreter that does not work stops conductor at start. " + PythonOff + ": no Python.",
		},
		parse: func(v string, s *Settings) error {
			if v != PythonOff {
				if err := absClean(v, "\x00\n,"); err != nil {
					return err
				}
			}
			s.Python = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:    VarGo,
			Default: "",
			Allowed: "an absolute clean path of a Go toolchain's GOROOT (with bin/go), or " + GoOff,
			Description: "The Go toolchain execute_code runs Go with (go run, no network, no module downloads, standard library only). " +
				"Its compiler, linker and standard library sources go into the sandbox's root read-only, with a build cache of the common " +
				"standard packages built once when the root is built. Unset: `go env GOROOT` of the go on the server's PATH, if any " +
				"(else Go is not offered). A configured GOROOT that does not work stops conductor at start. " + GoOff + ": no Go. " +
				"Go builds need memory and threads: with " + VarMemory + " below 512 MiB or " + VarPids + " below 64, go run may fail.",
		},
		parse: func(v string, s *Settings) error {
			if v != GoOff {
				if err := absClean(v, "\x00\n,"); err != nil {
					return err
				}
			}
			s.Go = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:    VarTypeCheck,
			Default: "false",
			Allowed: "1, 0, true, false, yes or no (any case)",
			Description: "Type-check every run_deno_code call before it runs, against deno's declarations, mcpFactory's and the upstreams' " +
				"(in a sandbox; a type error is returned with its line and column and nothing runs). The server refuses to start " +
				"when it cannot type-check. When off, a call can still ask for it with typecheck: true.",
		},
		parse: boolInto(func(s *Settings, b bool) { s.TypeCheck = b }),
	},
	{
		Variable: Variable{
			Name:    VarSnippets,
			Default: "",
			Allowed: "an absolute clean path of a directory",
			Description: "Named snippets for execute_code's snippet_name: each regular file (.py, .go, .js, .mjs, .ts; at most 1 MiB) is a snippet " +
				"named by its base name without the extension, listed as an MCP prompt; the directory is re-read when it changes. " +
				"Other files, links and larger files are skipped with a log line.",
		},
		parse: func(v string, s *Settings) error {
			if err := absClean(v, "\x00\n"); err != nil {
				return err
			}
			s.Snippets = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:    VarPlaybooks,
			Default: "",
			Allowed: "an absolute clean path of an existing directory",
			Description: "Playbooks: saved, reusable TypeScript (NAME.ts with a JSON front-matter: name, description, inputs) that code runs " +
				"with `await playbooks.run(name, args)`, listed by list_playbooks and as MCP resources playbook://NAME; re-read when it changes. " +
				"Bad files are skipped with a log line and reported by doctor. A directory that cannot be read stops serve at start.",
		},
		parse: func(v string, s *Settings) error {
			if err := absClean(v, "\x00\n"); err != nil {
				return err
			}
			s.Playbooks = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:    VarPlaybooksWritable,
			Default: "false",
			Allowed: "1, 0, true, false, yes or no (any case); needs " + VarPlaybooks,
			Description: "Let MCP clients save playbooks with save_playbook (atomic writes; overwriting needs overwrite: true). " +
				"Off: save_playbook is not offered. A directory serve cannot write stops it at start.",
		},
		parse: boolInto(func(s *Settings, b bool) { s.PlaybooksWritable = b }),
	},
	{
		Variable: Variable{
			Name:        VarPoolSize,
			Default:     strconv.Itoa(DefaultPoolSize),
			Allowed:     "an integer from 0 to 64",
			Description: "Sandboxes `conductor serve` keeps started and booted, waiting for code (each is used once); 0 turns the pool off.",
		},
		parse: intIn(0, 64, func(s *Settings, n int) { s.PoolSize = n }),
	},
	{
		Variable: Variable{
			Name:    VarPoolMax,
			Default: "",
			Allowed: "an integer from 1 to 64, at least " + VarPoolSize,
			Description: "Sandboxes the pool may grow to while requests arrive faster than " + VarPoolSize + " booted ones serve them " +
				"(each waiting request raises the pool by one; every 5 s without a wait lowers it by one, back to " + VarPoolSize + "). " +
				"Unset: the number of CPUs, but no more than fit in one sandbox's memory limit (" + VarMemory + ") at " +
				fmt.Sprint(PoolSandboxMiB) + " MiB per booted sandbox, and never below " + VarPoolSize + ".",
		},
		parse: intIn(1, 64, func(s *Settings, n int) { s.PoolMax = n }),
	},
	{
		Variable: Variable{
			Name:    VarSpillMax,
			Default: formatSize(DefaultSpillMax),
			Allowed: "0 (no spilling) or " + sizeAllowed(64<<10, 4<<30),
			Description: "Most bytes of one run's full output (stdout and stderr together) written to the workspace's " +
				".conductor/output when the inline output is cut. Only with " + VarWorkspace + ".",
		},
		parse: sizeOrZeroIn(64<<10, 4<<30, func(s *Settings, n int64) { s.SpillMax = n }),
	},
	{
		Variable: Variable{
			Name:    VarSpillTotal,
			Default: formatSize(DefaultSpillTotal),
			Allowed: sizeAllowed(1<<20, 1<<40) + ", at least " + VarSpillMax,
			Description: "Most bytes all spilled output files may take together; when a run's spill pushes past it, " +
				"the oldest files are removed first (never the newest run's).",
		},
		parse: sizeIn(1<<20, 1<<40, func(s *Settings, n int64) { s.SpillTotal = n }),
	},
	{
		Variable: Variable{
			Name:    VarOutputsSize,
			Default: formatSize(DefaultOutputsSize),
			Allowed: "0 (no outputs directory) or " + sizeAllowed(64<<10, 1<<30),
			Description: "Size of each run's outputs directory (" + OutputsDir + ", a tmpfs; " + OutputsEnv + " names it): the files code leaves " +
				"there are returned with the result (images as images, other files as resources), at most this many bytes together. " +
				"0 gives runs no outputs directory.",
		},
		parse: sizeOrZeroIn(64<<10, 1<<30, func(s *Settings, n int64) { s.OutputsSize = n }),
	},
	{
		Variable: Variable{
			Name:        VarOutputsFiles,
			Default:     strconv.Itoa(DefaultOutputsFiles),
			Allowed:     "an integer from 1 to 1024",
			Description: "Most files returned from a run's outputs directory (the host reads at most four times as many directory entries).",
		},
		parse: intIn(1, 1024, func(s *Settings, n int) { s.OutputsFiles = n }),
	},
	{
		Variable: Variable{
			Name:        VarOutputsFileSize,
			Default:     "",
			Allowed:     sizeAllowed(1<<10, 1<<30) + ", at most " + VarOutputsSize,
			Description: "Most bytes of one file returned from a run's outputs directory; a larger one is reported as skipped with its size. Unset: " + VarOutputsSize + ".",
		},
		parse: sizeIn(1<<10, 1<<30, func(s *Settings, n int64) { s.OutputsFileSize = n }),
	},
	{
		Variable: Variable{
			Name:    VarWorkspaceQuota,
			Default: "",
			Allowed: sizeAllowed(1<<20, 64<<40) + "; needs " + VarWorkspace,
			Description: "Most bytes the workspace may hold. Enforced while code writes where the host allows it " +
				"(a project quota), otherwise checked before each run; `conductor doctor` says which.",
		},
		parse: sizeIn(1<<20, 64<<40, func(s *Settings, n int64) { s.WorkspaceQuota = n }),
	},
	{
		Variable: Variable{
			Name:    VarHTTPInsecureNoAuth,
			Default: "false",
			Allowed: "1, 0, true, false, yes or no (any case); not together with " + VarHTTPToken,
			Description: "Serve HTTP with no token at all: anyone who can connect runs code with the admin's permissions " +
				"and upstream credentials. Only for single-user machines. Unset: a token is required (one is generated when " +
				VarHTTPToken + " is unset).",
		},
		parse: boolInto(func(s *Settings, b bool) { s.HTTPInsecureNoAuth = b }),
	},
	{
		Variable: Variable{
			Name:        VarHTTPMaxConns,
			Default:     strconv.Itoa(DefaultHTTPMaxConns),
			Allowed:     "an integer from 1 to 65536",
			Description: "Open HTTP connections at once; over it, the oldest connection that has not yet sent the token is closed to make room (a new one is closed only when all are authenticated).",
		},
		parse: intIn(1, 65536, func(s *Settings, n int) { s.HTTPMaxConns = n }),
	},
	{
		Variable: Variable{
			Name:        VarHTTPMaxConnsPerIP,
			Default:     strconv.Itoa(DefaultHTTPMaxConnsPerIP),
			Allowed:     "an integer from 1 to 65536",
			Description: "Open HTTP connections from one source address; over it, as for " + VarHTTPMaxConns + ", within that address.",
		},
		parse: intIn(1, 65536, func(s *Settings, n int) { s.HTTPMaxConnsPerIP = n }),
	},
	{
		Variable: Variable{
			Name:        VarHTTPMaxSessions,
			Default:     strconv.Itoa(DefaultHTTPMaxSessions),
			Allowed:     "an integer from 1 to 10000",
			Description: "Live MCP sessions per token; a new session beyond it is refused. Idle sessions expire.",
		},
		parse: intIn(1, 10000, func(s *Settings, n int) { s.HTTPMaxSessions = n }),
	},
	{
		Variable: Variable{
			Name:    VarHTTPStateless,
			Default: "false",
			Allowed: "1, 0, true, false, yes or no (any case); only for `serve --http`, and not with an upstream that has requireApproval",
			Description: "Serve streamable HTTP statelessly: no MCP session, each POST is answered on its own, so any replica behind a plain " +
				"load balancer (a Kubernetes Service) serves any request. The server cannot ask the client anything " +
				"(approvals by elicitation), GET streams and list_changed notifications are off (405); progress " +
				"notifications still arrive on the POST's own stream. serve refuses to start with it on stdio or with " +
				"requireApproval in " + VarMCPConfig + ".",
		},
		parse: boolInto(func(s *Settings, b bool) { s.HTTPStateless = b }),
	},
	{
		Variable: Variable{
			Name:    VarOutputsInline,
			Default: formatSize(DefaultOutputsInline),
			Allowed: sizeAllowed(1<<10, 16<<20),
			Description: "Most bytes of one image (PNG, JPEG, GIF, WebP, SVG) a run's result carries inline as MCP image content; " +
				"the images of one result together at most four times this. Larger ones are resource links read with resources/read.",
		},
		parse: sizeIn(1<<10, 16<<20, func(s *Settings, n int64) { s.OutputsInline = n }),
	},
	{
		Variable: Variable{
			Name:    VarOutputsStoreSize,
			Default: formatSize(DefaultOutputsStoreSize),
			Allowed: sizeAllowed(1<<20, 64<<30),
			Description: "Most bytes of run outputs kept per client identity for resources/read (in the state directory); the oldest " +
				"are removed first to make room, and one output larger than this is not kept (the result says so).",
		},
		parse: sizeIn(1<<20, 64<<30, func(s *Settings, n int64) { s.OutputsStoreSize = n }),
	},
	{
		Variable: Variable{
			Name:    VarOutputsRetention,
			Default: "1h",
			Allowed: "a duration such as 90s, 30m or 2h, between 1s and 168h",
			Description: "How long run outputs are kept for resources/read; then they are removed and a read says they expired. " +
				"Nothing is kept across a restart.",
		},
		parse: durationIn(time.Second, 168*time.Hour, func(s *Settings, d time.Duration) { s.OutputsRetention = d }),
	},
	{
		Variable: Variable{
			Name:    VarMetricsAddr,
			Default: "",
			Allowed: "HOST:PORT with a literal IP address or localhost as HOST (e.g. 127.0.0.1:9464, [::1]:9464), or :PORT for 127.0.0.1; PORT from 1 to 65535",
			Description: "Serve Prometheus metrics (/metrics), /healthz and /readyz WITHOUT a token on this address of their own, in stdio and HTTP mode " +
				"alike (for a scraper; bind it to loopback or a network only the scraper reaches). Unset: only `serve --http`'s " +
				"listener serves them, /metrics behind its token. An address that cannot be bound stops serve at start.",
		},
		parse: parseMetricsAddr,
	},
	{
		Variable: Variable{
			Name:        VarMCPMaxRequest,
			Default:     formatSize(DefaultMCPMaxRequest),
			Allowed:     sizeAllowed(1<<10, 64<<20),
			Description: "Largest request (encoded parameters) of one mcpFactory call; a larger one fails without reaching the upstream.",
		},
		parse: sizeIn(1<<10, 64<<20, func(s *Settings, n int64) { s.MCPMaxRequest = n }),
	},
	{
		Variable: Variable{
			Name:        VarMCPMaxInFlight,
			Default:     formatSize(DefaultMCPMaxInFlight),
			Allowed:     sizeAllowed(1<<10, 1<<30) + ", at least " + VarMCPMaxRequest,
			Description: "Request bytes of one execution's mcpFactory calls in flight at once; a call over it fails at once.",
		},
		parse: sizeIn(1<<10, 1<<30, func(s *Settings, n int64) { s.MCPMaxInFlight = n }),
	},
	{
		Variable: Variable{
			Name:        VarMCPMaxInFlightTotal,
			Default:     formatSize(DefaultMCPMaxInFlightTotal),
			Allowed:     sizeAllowed(1<<10, 16<<30) + ", at least " + VarMCPMaxInFlight,
			Description: "Request bytes of all executions' mcpFactory calls in flight at once; a call over it fails at once.",
		},
		parse: sizeIn(1<<10, 16<<30, func(s *Settings, n int64) { s.MCPMaxInFlightTotal = n }),
	},
	{
		Variable: Variable{
			Name:    VarNetPrivate,
			Default: "",
			Allowed: "comma-separated CIDRs (IPv4 or IPv6, e.g. 10.0.0.0/8,127.0.0.1/32), at most 64, no host bits set; needs network in " + VarRunArgs,
			Description: "Non-public ranges (loopback, private, link-local, CGNAT, metadata) that code may reach through an allow-net name " +
				"resolving into them (or, with bare allow-net or allow-all, through an IP literal). Unset: such addresses only through " +
				"IP-literal allow-net entries; a name resolving to one is refused (DNS rebinding).",
		},
		parse: parseNetPrivate,
		list:  true,
	},
	{
		Variable: Variable{
			Name:    VarNetSecrets,
			Default: "",
			Allowed: "NAME=host[,host...] entries separated by ';' (e.g. GITHUB_TOKEN=api.github.com;OPENAI_API_KEY=api.openai.com), " +
				"at most 32; each NAME an environment variable of the server's holding the value (8 bytes to 8 KiB, set and non-empty), " +
				"each host a DNS name allow-net lets code reach; needs network in " + VarRunArgs,
			Description: "Secrets code can use without seeing them: code reads NAME as an opaque placeholder; the network door puts the real " +
				"value in place of the placeholder only in the headers of HTTPS requests to the listed hosts (TLS terminated with a " +
				"per-server CA only sandboxes trust; the host's certificate verified normally), and turns it back into the placeholder " +
				"in their answers. Sent anywhere else, the placeholder stays a placeholder.",
		},
		parseEnv: parseNetSecrets,
		list:     true,
	},
	{
		Variable: Variable{
			Name:    VarTools,
			Default: "",
			Allowed: "comma-separated program names (letters, digits and . _ + -, not starting with - or .) looked up on the server's PATH " +
				"at start, or absolute clean paths; at most 64, no two with the same base name, not deno; each must be listed in " +
				VarRunArgs + "'s allow-run too (unless allow-run is bare or allow-all is given)",
			Description: "CLI tools code may run with Deno.Command, e.g. git,curl,jq,/opt/bin/gh. Each is copied into the sandbox's read-only root " +
				"at " + ToolsDir + "/<name> with its shared libraries and what it needs (git: its exec-path helpers and templates; every tool: the " +
				"host's CA bundle, named by SSL_CERT_FILE, GIT_SSL_CAINFO and CURL_CA_BUNDLE). A tool that is not installed stops conductor at " +
				"start. HOME is /tmp, a per-run tmpfs. Conversely, every allow-run entry other than deno must be listed here.",
		},
		parse: parseTools,
		list:  true,
	},
	{
		Variable: Variable{
			Name:    VarAudit,
			Default: "",
			Allowed: "an absolute clean path of a file in an existing directory, " + AuditStderr + ", or " + AuditStdout + " (only with serve --http)",
			Description: "The audit log: one JSON line per execution (who, which session and tool, the code's sha256 and size, status, " +
				"times, CPU, memory, network and upstream calls) and per upstream MCP call (README: Audit log). A file is appended to " +
				"(created with mode 0600) and reopened on SIGHUP (logrotate); a file serve cannot open stops it at start, and so does " +
				AuditStdout + " on stdio, where stdout is the MCP channel. Lines never block an execution: when the destination is too " +
				"slow they are dropped, counted and reported. Unset: no audit log.",
		},
		parse: func(v string, s *Settings) error {
			if v != AuditStderr && v != AuditStdout {
				if err := absClean(v, "\x00\n"); err != nil {
					return err
				}
				if v == "/" {
					return errors.New("must name a file, not / itself")
				}
			}
			s.Audit = v
			return nil
		},
	},
	{
		Variable: Variable{
			Name:        VarAuditCode,
			Default:     "false",
			Allowed:     "1, 0, true, false, yes or no (any case); needs " + VarAudit,
			Description: "Write the code itself in the audit log's execution lines. Off: only its sha256 and size.",
		},
		parse: boolInto(func(s *Settings, b bool) { s.AuditCode = b }),
	},
	{
		Variable: Variable{
			Name:    VarConfig,
			Default: "",
			Allowed: "an absolute clean path of a JSON file (TOML when it ends in .toml) of at most 1 MiB: one object whose keys are these " +
				"variables' names without " + Prefix + ", lower-case (e.g. {\"pool_size\": 4, \"run_args\": [\"allow-env=HOME\"]}); " +
				"values are strings, numbers, booleans or, for lists, arrays of strings; unknown or repeated keys are errors; " +
				"the key \"" + KeyIdentities + "\" is reserved",
			Description: "A config file holding the same settings as the variables; a variable that is set (non-empty) overrides the " +
				"file. serve re-reads it (and the environment) on SIGHUP and when the file changes (README: Config file and reload). " +
				"A broken file stops serve at start; doctor names the file, its errors and each setting's source.",
		},
		parse: func(v string, s *Settings) error {
			if err := absClean(v, "\x00\n"); err != nil {
				return err
			}
			s.ConfigFile = v
			return nil
		},
	},
}

// parseTools parses MCP_CONDUCTOR_TOOLS: syntax only; package tools finds
// each one on the host when the server starts.
func parseTools(v string, s *Settings) error {
	items := strings.Split(v, ",")
	if len(items) > 64 {
		return fmt.Errorf("%d tools, at most 64", len(items))
	}
	var errs []error
	seen := map[string]int{}
	for i, it := range items {
		if it == "" {
			errs = append(errs, fmt.Errorf("item %d is empty (a leading, trailing or doubled comma)", i+1))
			continue
		}
		if err := checkProgram(it); err != nil {
			errs = append(errs, fmt.Errorf("item %d: %w", i+1, err))
			continue
		}
		name := path.Base(it)
		if name == "deno" {
			errs = append(errs, fmt.Errorf("item %d %q: deno is always in the sandbox; list only other tools", i+1, it))
			continue
		}
		if j, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("item %d %q: item %d is also named %s, and both would be %s/%s in the sandbox", i+1, it, j, name, ToolsDir, name))
			continue
		}
		seen[name] = i + 1
		s.Tools = append(s.Tools, it)
	}
	return errors.Join(errs...)
}

// ToolName is the name a tool entry has in the sandbox: its base name,
// at ToolsDir/<name>.
func ToolName(entry string) string { return path.Base(entry) }

// checkTools keeps MCP_CONDUCTOR_TOOLS and allow-run consistent: a tool
// code is not allowed to run is useless, and an allowed program that is
// not in the root cannot run.
func checkTools(s *Settings, set map[string]string, bad map[string]bool) *Error {
	if bad[VarTools] || bad[VarRunArgs] {
		return nil
	}
	tools := map[string]bool{"deno": true}
	for _, t := range s.Tools {
		tools[ToolName(t)] = true
	}
	granted := map[string]bool{}
	var errs []error
	for _, r := range s.AllowRun {
		name, inRoot := r, true
		if strings.HasPrefix(r, "/") {
			name, inRoot = path.Base(r), path.Dir(r) == ToolsDir
		}
		switch {
		case !inRoot:
			errs = append(errs, fmt.Errorf("allow-run lists %s, but tools are at %s/<name> in the sandbox: write allow-run=%s and list %s in %s",
				r, ToolsDir, name, r, VarTools))
		case !tools[name]:
			errs = append(errs, fmt.Errorf("allow-run lists %s, which is not in the sandbox: add it to %s", r, VarTools))
		default:
			granted[name] = true
		}
	}
	if !s.RunAny {
		for _, t := range s.Tools {
			if !granted[ToolName(t)] {
				errs = append(errs, fmt.Errorf("%s lists %s, but %s does not allow running it: list it in allow-run too (allow-run=%s)",
					VarTools, t, VarRunArgs, ToolName(t)))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	v, val := VarTools, set[VarTools]
	if _, ok := set[VarTools]; !ok {
		v, val = VarRunArgs, set[VarRunArgs]
	}
	return &Error{Var: v, Value: val, Allowed: "every tool in " + VarTools + " also in " + VarRunArgs + "'s allow-run, and every allow-run program in " + VarTools + " (or deno)",
		Err: errors.Join(errs...)}
}

// parseNetSecrets parses MCP_CONDUCTOR_NET_SECRETS and reads each value
// from the server's environment. Names and hosts are checked in full by
// package egress (egress.NewSecrets) when the server starts.
func parseNetSecrets(v string, s *Settings, lookup LookupFunc) error {
	entries := strings.Split(v, ";")
	if len(entries) > 32 {
		return fmt.Errorf("%d secrets, at most 32", len(entries))
	}
	var errs []error
	seen := map[string]bool{}
	for i, e := range entries {
		name, hosts, ok := strings.Cut(e, "=")
		if !ok || name == "" || hosts == "" {
			errs = append(errs, fmt.Errorf("entry %d %q: not NAME=host[,host...]", i+1, e))
			continue
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("entry %d: %s is given twice", i+1, name))
			continue
		}
		seen[name] = true
		ns := NetSecret{Name: name}
		for _, h := range strings.Split(hosts, ",") {
			h = strings.TrimSuffix(strings.ToLower(h), ".")
			if h == "" || strings.ContainsAny(h, ":/@ ") {
				errs = append(errs, fmt.Errorf("entry %d (%s): host %q: a DNS name, without port or scheme", i+1, name, h))
				continue
			}
			ns.Hosts = append(ns.Hosts, h)
		}
		val, ok := lookup(name)
		if !ok || val == "" {
			errs = append(errs, fmt.Errorf("entry %d: the server's environment has no %s (set it where the server starts, e.g. an EnvironmentFile)", i+1, name))
			continue
		}
		ns.Value = val
		s.NetSecrets = append(s.NetSecrets, ns)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// parseNetPrivate parses MCP_CONDUCTOR_NET_PRIVATE.
func parseNetPrivate(v string, s *Settings) error {
	items := strings.Split(v, ",")
	if len(items) > 64 {
		return fmt.Errorf("%d ranges, at most 64", len(items))
	}
	var errs []error
	var out []netip.Prefix
	for i, it := range items {
		p, err := netip.ParsePrefix(it)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("item %d %q: not a CIDR", i+1, it))
		case p.Addr().Zone() != "":
			errs = append(errs, fmt.Errorf("item %d %q: zones are not accepted", i+1, it))
		case p.Masked() != p:
			errs = append(errs, fmt.Errorf("item %d %q: host bits set (did you mean %s?)", i+1, it, p.Masked()))
		default:
			out = append(out, p)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.NetPrivate = out
	return nil
}

// intIn parses a decimal integer within [lo, hi].
func intIn(lo, hi int, set func(*Settings, int)) func(string, *Settings) error {
	return func(v string, s *Settings) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is out of range", n)
		}
		set(s, n)
		return nil
	}
}

// checks are validations that involve several variables. They run after
// every variable has been parsed; each gets the variables that were set
// (name to value) and skips itself when one it reads was invalid.
var checks = []func(s *Settings, set map[string]string, bad map[string]bool) *Error{
	checkTimeouts,
	checkAtLeast(VarSpillTotal, VarSpillMax, func(s *Settings) (int64, int64) { return s.SpillTotal, s.SpillMax }),
	checkOutputsFileSize,
	checkAtLeast(VarMCPMaxInFlight, VarMCPMaxRequest, func(s *Settings) (int64, int64) { return s.MCPMaxInFlight, s.MCPMaxRequest }),
	checkAtLeast(VarMCPMaxInFlightTotal, VarMCPMaxInFlight, func(s *Settings) (int64, int64) { return s.MCPMaxInFlightTotal, s.MCPMaxInFlight }),
	checkNeeds(VarWorkspaceQuota, VarWorkspace),
	checkNetPrivate,
	checkNetSecrets,
	checkTools,
	checkPlaybooksWritable,
	checkPoolMax,
	checkAuditCode,
	checkExcludes(VarHTTPInsecureNoAuth, VarHTTPToken, func(s *Settings) bool { return s.HTTPInsecureNoAuth && s.HTTPToken != "" }),
	checkIdentityAuth(VarHTTPToken, func(s *Settings) bool { return s.HTTPToken != "" }),
	checkIdentityAuth(VarHTTPInsecureNoAuth, func(s *Settings) bool { return s.HTTPInsecureNoAuth }),
}

// checkIdentityAuth refuses v (another way to authenticate HTTP clients) when the config file's
// identities have tokens: then each HTTP client sends its identity's token.
func checkIdentityAuth(v string, on func(*Settings) bool) func(*Settings, map[string]string, map[string]bool) *Error {
	return func(s *Settings, set map[string]string, bad map[string]bool) *Error {
		if bad[v] || !on(s) || !s.Identities.HasTokens() {
			return nil
		}
		return &Error{Var: v, Allowed: "not together with identities (key \"" + KeyIdentities + "\" of " + VarConfig + ")",
			Err: errors.New("the config file's identities authenticate HTTP clients, each with its own token: unset " + v +
				" or remove the identities' tokens"), hidden: true}
	}
}

// Variables returns the documented variables, in a stable order, for
// README and doctor output.
func Variables() []Variable {
	vs := make([]Variable, len(table))
	for i, t := range table {
		vs[i] = t.Variable
	}
	return vs
}

// Load reads and validates every variable through lookup (os.LookupEnv
// when nil). A variable that is unset or set to the empty string takes its
// default. Values are not trimmed: leading or trailing whitespace is an
// error. On failure Load returns the zero Settings and one *Error per bad
// variable, all joined with errors.Join.
//
// When MCP_CONDUCTOR_CONFIG names a config file, Load reads it too (ReadFile): the file's values
// are validated exactly as the variables', and a variable set to a non-empty value overrides the
// file's value. A file that cannot be read or decoded fails Load with its *FileError(s).
func Load(lookup LookupFunc) (Settings, error) {
	s, _, err := LoadSources(lookup)
	return s, err
}

// LoadSources is Load, also saying where each setting came from.
func LoadSources(lookup LookupFunc) (Settings, Sources, error) {
	return load(table, checks, lookup)
}

func load(tab []setting, cks []func(*Settings, map[string]string, map[string]bool) *Error, lookup LookupFunc) (Settings, Sources, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var file map[string]string
	var fileName string
	if p, ok := lookup(VarConfig); ok && p != "" && slices.ContainsFunc(tab, func(t setting) bool { return t.Name == VarConfig }) {
		if err := absClean(p, "\x00\n"); err == nil {
			f, err := ReadFile(p)
			if err != nil {
				return Settings{}, nil, err
			}
			file, fileName = f, p
		} // else the row reports the bad path
	}
	s := defaults()
	src := Sources{}
	if v, ok := file[KeyIdentities]; ok {
		set, err := identity.Parse([]byte(v))
		if err != nil { // DecodeFile validated it
			return Settings{}, nil, &FileError{Path: fileName, Key: KeyIdentities, Err: err}
		}
		s.Identities = set
		src[KeyIdentities] = Source{From: SourceFile, Value: v}
	}
	set := map[string]string{}
	bad := map[string]bool{}
	var errs []error
	for _, t := range tab {
		v, ok := lookup(t.Name)
		from := ""
		if !ok || v == "" {
			v, ok = file[t.Name]
			from = fileName
		}
		if !ok || v == "" {
			continue
		}
		var err error
		if strings.TrimSpace(v) != v {
			err = errors.New("leading or trailing whitespace")
		} else if t.parseEnv != nil {
			err = t.parseEnv(v, &s, lookup)
		} else {
			err = t.parse(v, &s)
		}
		if err != nil {
			e := &Error{Var: t.Name, Value: v, Allowed: t.Allowed, Err: err, File: from}
			if t.secret {
				e.Value, e.hidden = "", true
			}
			errs = append(errs, e)
			bad[t.Name] = true
			continue
		}
		set[t.Name] = v
		src[t.Name] = Source{From: SourceEnv, Value: v}
		if from != "" {
			src[t.Name] = Source{From: SourceFile, Value: v}
		}
	}
	for _, c := range cks {
		if e := c(&s, set, bad); e != nil {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return Settings{}, nil, errors.Join(errs...)
	}
	return s, src, nil
}

// UnknownVariables returns the names in environ ("NAME=value" entries, as
// from os.Environ) that start with Prefix but are not conductor variables,
// sorted; typically typos that would otherwise be silently ignored.
func UnknownVariables(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, Prefix) {
			continue
		}
		known := slices.ContainsFunc(table, func(t setting) bool { return t.Name == name })
		if !known && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// UnknownVariableProblems words UnknownVariables for the admin: each name, that it is ignored,
// and the known variable it most likely means, if one is close.
func UnknownVariableProblems(environ []string) []string {
	var out []string
	for _, name := range UnknownVariables(environ) {
		msg := fmt.Sprintf("%s is not a conductor variable, so it is ignored", name)
		if s := Suggest(name); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		out = append(out, msg)
	}
	return out
}

// Suggest returns the known variable closest to name (an edit distance of at most a third of
// its length, compared without the prefix and case-insensitively), or "" when none is close.
func Suggest(name string) string {
	want := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(name), Prefix))
	best, bestD := "", 0
	for _, t := range table {
		cand := strings.TrimPrefix(t.Name, Prefix)
		d := editDistance(want, cand)
		if best == "" || d < bestD {
			best, bestD = t.Name, d
		}
	}
	limit := max(1, len(want)/3)
	if want == "" || bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, over bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func checkTimeouts(s *Settings, set map[string]string, bad map[string]bool) *Error {
	if bad[VarDefaultTimeout] || bad[VarMaxTimeout] || s.DefaultTimeout <= s.MaxTimeout {
		return nil
	}
	v, given := set[VarDefaultTimeout]
	if !given {
		s.DefaultTimeout = s.MaxTimeout
		return nil
	}
	return &Error{
		Var:     VarDefaultTimeout,
		Value:   v,
		Allowed: fmt.Sprintf("at most %s (%s)", VarMaxTimeout, msString(s.MaxTimeout)),
		Err:     errors.New("longer than the maximum timeout"),
	}
}

func runArgsAllowed() string {
	var b strings.Builder
	b.WriteString("comma-separated deno permission flags without leading dashes: allow-all")
	for _, name := range permOrder[1:] {
		fmt.Fprintf(&b, ", %s[=%s,...]", name, kindExample(permFlags[name]))
	}
	b.WriteString("; an item without \"=\" that is not a flag name adds a value to the flag before it")
	return b.String()
}

func kindExample(k valueKind) string {
	switch k {
	case kindPath:
		return "/abs/path"
	case kindHost:
		return "host[:port]"
	case kindEnv:
		return "NAME"
	case kindSys:
		return "api"
	case kindRun:
		return "program"
	}
	return ""
}

func sizeAllowed(lo, hi int64) string {
	return fmt.Sprintf("bytes with optional K, M, G suffix (binary), between %s and %s", formatSize(lo), formatSize(hi))
}

func timeoutAllowed() string {
	return fmt.Sprintf("whole milliseconds between %d and %d", minTimeoutMS, maxTimeoutMS)
}

func msString(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func sizeIn(lo, hi int64, store func(*Settings, int64)) func(string, *Settings) error {
	return func(v string, s *Settings) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		if n < lo || n > hi {
			return fmt.Errorf("%s is out of range", formatSize(n))
		}
		store(s, n)
		return nil
	}
}

// durationIn parses a Go duration ("90s", "2h") within [lo, hi].
func durationIn(lo, hi time.Duration, store func(*Settings, time.Duration)) func(string, *Settings) error {
	return func(v string, s *Settings) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration such as 90s, 30m or 2h")
		}
		if d < lo || d > hi {
			return fmt.Errorf("%s is out of range", d)
		}
		store(s, d)
		return nil
	}
}

func millisIn(store func(*Settings, time.Duration)) func(string, *Settings) error {
	return func(v string, s *Settings) error {
		n, err := wholeIn(v, minTimeoutMS, maxTimeoutMS)
		if err != nil {
			return err
		}
		store(s, time.Duration(n)*time.Millisecond)
		return nil
	}
}

// wholeIn parses a plain decimal number (digits only) within [lo, hi].
func wholeIn(v string, lo, hi int64) (int64, error) {
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, errors.New("not a whole number")
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errors.New("out of range")
	}
	return n, nil
}

func parseCPUs(v string, s *Settings) error {
	intPart, frac, hasDot := strings.Cut(v, ".")
	ok := intPart != "" && !(hasDot && frac == "")
	for _, part := range []string{intPart, frac} {
		for i := 0; ok && i < len(part); i++ {
			ok = isDigit(part[i])
		}
	}
	if !ok {
		return errors.New("not a decimal number")
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return errors.New("not a decimal number")
	}
	if f != 0 && (f < minCPUs || f > maxCPUs) {
		return errors.New("out of range")
	}
	s.CPUs = f
	return nil
}

// checkDirPath accepts an absolute, clean path other than "/" made of
// pathByte characters.
func checkDirPath(v string) error {
	if err := checkAbsPath(v); err != nil {
		return err
	}
	if v == "/" {
		return errors.New("must not be / itself")
	}
	return nil
}

func parseCgroupParent(v string, s *Settings) error {
	if v == "/" {
		return errors.New("must name a cgroup below the root, not / itself")
	}
	if c, ok := badByte(v, func(c byte) bool { return pathByte(c) || c == ':' }); ok {
		return fmt.Errorf("contains %s", c)
	}
	if slices.Contains(strings.Split(v, "/"), "..") {
		return errors.New(`contains a ".." element`)
	}
	if c := path.Clean(v); c != v {
		return fmt.Errorf("not a clean path; write %q", c)
	}
	if v == "/sys/fs/cgroup" || strings.HasPrefix(v, "/sys/fs/cgroup/") {
		return fmt.Errorf("give the path below the cgroup2 mount, without /sys/fs/cgroup: %q", strings.TrimPrefix(v, "/sys/fs/cgroup"))
	}
	s.CgroupParent = v
	return nil
}

func parseWorkspace(v string, s *Settings) error {
	if err := checkDirPath(v); err != nil {
		return err
	}
	fi, err := os.Stat(v)
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("does not exist")
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	real, err := filepath.EvalSymlinks(v)
	if err != nil {
		return err
	}
	if real != v {
		return fmt.Errorf("goes through a symbolic link (it resolves to %q); give the real path", real)
	}
	s.Workspace = v
	return nil
}

// boolInto parses a yes/no value.
// parseMetricsAddr is MCP_CONDUCTOR_METRICS_ADDR: a port, and a literal IP or localhost (no
// name to resolve: what is bound is what the admin wrote).
func parseMetricsAddr(v string, s *Settings) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("not HOST:PORT: %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host %q is neither a literal IP address nor localhost", host)
		}
	}
	s.MetricsAddr = v
	return nil
}

func boolInto(set func(*Settings, bool)) func(string, *Settings) error {
	return func(v string, s *Settings) error {
		switch strings.ToLower(v) {
		case "1", "true", "yes":
			set(s, true)
		case "0", "false", "no":
			set(s, false)
		default:
			return errors.New("not a yes/no value")
		}
		return nil
	}
}

// sizeOrZeroIn is sizeIn that also accepts 0 (meaning "off").
func sizeOrZeroIn(lo, hi int64, store func(*Settings, int64)) func(string, *Settings) error {
	inRange := sizeIn(lo, hi, store)
	return func(v string, s *Settings) error {
		if n, err := ParseSize(v); err == nil && n == 0 {
			store(s, 0)
			return nil
		}
		return inRange(v, s)
	}
}

// checkAtLeast requires the size named big to be at least the one named
// small (each as set, or its default).
func checkAtLeast(big, small string, get func(*Settings) (int64, int64)) func(*Settings, map[string]string, map[string]bool) *Error {
	return func(s *Settings, set map[string]string, bad map[string]bool) *Error {
		b, sm := get(s)
		if bad[big] || bad[small] || b >= sm {
			return nil
		}
		name, value := big, set[big]
		if _, given := set[big]; !given {
			name, value = small, set[small]
		}
		return &Error{
			Var: name, Value: value,
			Allowed: fmt.Sprintf("%s (%s) at least %s (%s)", big, formatSize(b), small, formatSize(sm)),
			Err:     fmt.Errorf("%s would be smaller than %s", big, small),
		}
	}
}

// checkNeeds refuses the variable named v when the one it needs is unset.
func checkNeeds(v, needs string) func(*Settings, map[string]string, map[string]bool) *Error {
	return func(s *Settings, set map[string]string, bad map[string]bool) *Error {
		value, given := set[v]
		if !given || bad[needs] {
			return nil
		}
		if _, ok := set[needs]; ok {
			return nil
		}
		return &Error{Var: v, Value: value, Allowed: "only together with " + needs, Err: fmt.Errorf("%s is not set", needs)}
	}
}

// checkExcludes refuses the variable named v when conflict reports that it
// contradicts the one named other.
func checkExcludes(v, other string, conflict func(*Settings) bool) func(*Settings, map[string]string, map[string]bool) *Error {
	return func(s *Settings, set map[string]string, bad map[string]bool) *Error {
		if bad[v] || bad[other] || !conflict(s) {
			return nil
		}
		return &Error{Var: v, Value: set[v], Allowed: "not together with " + other, Err: fmt.Errorf("%s is set too", other)}
	}
}

// checkPlaybooksWritable refuses PLAYBOOKS_WRITABLE without PLAYBOOKS: there is nothing to write to.
func checkPlaybooksWritable(s *Settings, set map[string]string, bad map[string]bool) *Error {
	if !s.PlaybooksWritable || bad[VarPlaybooks] || s.Playbooks != "" {
		return nil
	}
	return &Error{Var: VarPlaybooksWritable, Value: set[VarPlaybooksWritable], Allowed: "only with " + VarPlaybooks,
		Err: fmt.Errorf("%s is not set", VarPlaybooks)}
}

// checkAuditCode refuses AUDIT_CODE without AUDIT: there is no log to write the code in.
func checkAuditCode(s *Settings, set map[string]string, bad map[string]bool) *Error {
	if !s.AuditCode || bad[VarAudit] || s.Audit != "" {
		return nil
	}
	return &Error{Var: VarAuditCode, Value: set[VarAuditCode], Allowed: "only with " + VarAudit,
		Err: fmt.Errorf("%s is not set", VarAudit)}
}

// checkPoolMax refuses a POOL_MAX below POOL_SIZE: the pool could not keep its size.
func checkPoolMax(s *Settings, set map[string]string, bad map[string]bool) *Error {
	value, given := set[VarPoolMax]
	if !given || bad[VarPoolMax] || bad[VarPoolSize] || s.PoolMax >= s.PoolSize {
		return nil
	}
	return &Error{Var: VarPoolMax, Value: value, Allowed: fmt.Sprintf("at least %s (%d)", VarPoolSize, s.PoolSize),
		Err: fmt.Errorf("%s would be smaller than %s", VarPoolMax, VarPoolSize)}
}

// PoolSandboxMiB is what one booted, waiting sandbox costs in resident memory, in MiB
// (measured: deno booted into the bootstrap, the container's processes; ~40 MB), for
// PoolLimit's memory budget.
const PoolSandboxMiB = 40

// PoolLimit is the most sandboxes the pool may grow to on a host with cpus CPUs: PoolMax when
// set; else cpus, no more than one sandbox's memory limit (Memory) holds at PoolSandboxMiB each
// (the pool's idle sandboxes together never hold more than one run may use), and never below
// PoolSize. 0 when the pool is off.
func (s Settings) PoolLimit(cpus int) int {
	switch {
	case s.PoolSize == 0:
		return 0
	case s.PoolMax > 0:
		return s.PoolMax
	}
	budget := int(s.Memory / (PoolSandboxMiB << 20))
	return max(s.PoolSize, min(cpus, budget))
}

// checkNetSecrets refuses NET_SECRETS when RUN_ARGS grants no network:
// no request could carry them.
func checkNetSecrets(s *Settings, set map[string]string, bad map[string]bool) *Error {
	value, given := set[VarNetSecrets]
	if !given || bad[VarNetSecrets] || bad[VarRunArgs] || s.Network {
		return nil
	}
	return &Error{Var: VarNetSecrets, Value: value, Allowed: "only when " + VarRunArgs + " grants network (allow-net or allow-all)",
		Err: fmt.Errorf("%s grants no network", VarRunArgs)}
}

// checkNetPrivate refuses NET_PRIVATE when RUN_ARGS grants no network: the
// grant would do nothing, and the admin likely forgot allow-net.
func checkNetPrivate(s *Settings, set map[string]string, bad map[string]bool) *Error {
	value, given := set[VarNetPrivate]
	if !given || bad[VarNetPrivate] || bad[VarRunArgs] || s.Network {
		return nil
	}
	return &Error{Var: VarNetPrivate, Value: value, Allowed: "only when " + VarRunArgs + " grants network (allow-net or allow-all)",
		Err: fmt.Errorf("%s grants no network", VarRunArgs)}
}

// absClean checks a setting that names a path: absolute, clean, none of the bytes in bad.
func absClean(v, bad string) error {
	if !path.IsAbs(v) || path.Clean(v) != v || strings.ContainsAny(v, bad) {
		return errors.New("not an absolute clean path")
	}
	return nil
}

// checkOutputsFileSize: a per-file cap over the outputs directory's size could never be reached.
func checkOutputsFileSize(s *Settings, set map[string]string, bad map[string]bool) *Error {
	v, ok := set[VarOutputsFileSize]
	if !ok || bad[VarOutputsFileSize] || bad[VarOutputsSize] || s.OutputsSize == 0 || s.OutputsFileSize <= s.OutputsSize {
		return nil
	}
	return &Error{
		Var: VarOutputsFileSize, Value: v,
		Allowed: fmt.Sprintf("at most %s (%s)", VarOutputsSize, formatSize(s.OutputsSize)),
		Err:     fmt.Errorf("%s would be larger than %s", VarOutputsFileSize, VarOutputsSize),
	}
}

// CodeFlags are the deno permission flags code runs with (run_deno_code's deno and
// execute_code's child deno): the admin's RunArgs, plus what conductor itself grants code —
// writing its outputs directory, when runs have one.
func (s Settings) CodeFlags() []string {
	if s.OutputsSize == 0 {
		return s.RunArgs
	}
	return GrantPath(s.RunArgs, "write", OutputsDir)
}
