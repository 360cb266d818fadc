// Package runtimes is the table of language runtimes execute_code runs a program's files with, as data.
//
// A Runtime is what the sandbox root needs for it (rootfs.Program rows: the interpreter, its
// library closure and data directories), the command line that runs an entrypoint file in the
// per-run working directory, the environment it adds, and whether that directory must allow
// exec. Nothing here is known to package sandbox: the engine hands a runtime's command to a
// launcher (the deno bootstrap with allow-run of that command's program only), which writes the
// files and spawns it.
//
// Rows: "deno" runs javascript and typescript in a child deno with the admin's permission flags
// (MCP_CONDUCTOR_RUN_ARGS: the same deno wall as run_deno_code, plus the OS walls) and read and
// write of its own working directory (config.WorkDir); "python" runs
// CPython from the host (MCP_CONDUCTOR_PYTHON, default the real interpreter behind python3 on the
// server's PATH) with the OS walls only: namespaces, read-only root, seccomp, cgroup limits, the
// network door; "go" runs `go run .` of the working directory with a toolchain from the host
// (MCP_CONDUCTOR_GO, default `go env GOROOT` of the go on the server's PATH): bin/go, the
// compile, link and asm tools and the standard library's sources without tests in the root, and
// a build cache of the common standard packages (GoCacheInRoot), seeded on the host once per
// toolchain (Options.GoCacheDir) and read-only in the root, so a run compiles only its own
// package. The run gets a go.mod (module GoModule) when its files bring none; no module is ever
// downloaded (GOPROXY=off, GOTOOLCHAIN=local), cgo is off, and the working directory is the
// build's temporary directory (the row's Exec flag: go run executes the binary it links).
package runtimes

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/rootfs"
)

// ErrNotInstalled is wrapped by the error for a configured runtime the host does not have.
var ErrNotInstalled = errors.New("runtimes: not installed")

// Language is one language execute_code accepts.
type Language struct {
	Name        string   // "python", "javascript", "typescript"
	Extensions  []string // file extensions of its snippets, the first one its entrypoint's
	DefaultFile string   // the entrypoint's name when the request names none
}

// Runtime is one row: what runs a set of languages.
type Runtime struct {
	Name      string
	Languages []Language
	// Programs are what the root holds for it (nil: deno itself, always there).
	Programs []rootfs.Program
	// Argv runs an entrypoint: Argv then the file's name, relative to the working directory,
	// unless Dir.
	Argv []string
	// Dir: Argv runs the working directory as a whole (Go's `go run .`), no file name follows.
	Dir bool
	// Defaults are files the working directory gets when the request brings none of that name
	// (Go's go.mod).
	Defaults []File
	Env      []string // NAME=value the program gets on top of the sandbox's environment
	// Warm, when set, is a pre-started interpreter: the launcher starts it while its sandbox
	// boots (so a pooled sandbox holds it started, with the same environment and working
	// directory as Argv's), and a run sends it the entrypoint's name as one line on stdin; it
	// then runs that file as Argv would, with stdin at end of file.
	Warm []string
	// Exec: the working directory must allow exec (a runtime that builds and runs binaries).
	Exec    bool
	Version string // e.g. "Python 3.11.7"
	// CAVars are the variables that name the CA bundle to it (Python's OpenSSL: SSL_CERT_FILE);
	// the sandbox sets them (sandbox.Options.CABundleEnv) to the root's bundle, or to the copy
	// that also holds the network door's CA.
	CAVars []string
}

// pythonWarm is Python's pre-started interpreter's program (Runtime.Warm).
//
//go:embed warm.py
var pythonWarm string

// PythonRunner is run_python_code's runner: the program the interpreter runs for it (the user's
// code is main.py beside it), which writes the value of the code's last expression, or its error,
// as JSON.
//
//go:embed pyrun.py
var PythonRunner string

// PythonFactory is run_python_code's mcpFactory client, which the runner loads beside it when
// the server has upstreams (see pyfactory.py).
//
//go:embed pyfactory.py
var PythonFactory string

// File is a file of the working directory.
type File struct{ Name, Content string }

// Program is the program Argv starts (the launcher's only allow-run grant).
func (r *Runtime) Program() string { return r.Argv[0] }

// Set is the runtimes this server offers.
type Set struct {
	Runtimes []*Runtime
}

// Options are what Resolve needs from the settings and the host.
type Options struct {
	DenoPath  string   // deno's in-root path
	DenoFlags []string // the admin's permission flags (MCP_CONDUCTOR_RUN_ARGS)
	Memory    int64    // the sandbox's memory limit, for the child deno's heap limit
	Python    string   // config.Settings.Python
	Go        string   // config.Settings.Go
	// GoCacheDir is the host directory that keeps Go's seeded build caches (built there the
	// first time); "" builds none, and the Go row's root then lacks its cache (for listing).
	GoCacheDir string
	// CABundle is the host's CA bundle ("" = none): a runtime that verifies TLS with it gets it
	// in the root, at its host path.
	CABundle string
	LookPath func(string) (string, error)
}

// denoRunFlags are the fixed flags of a child deno: as run_deno_code's (no remote code, the
// dependency cache only, no project files).
var denoRunFlags = []string{"run", "--no-prompt", "--cached-only", "--no-remote", "--no-config", "--no-lock"}

// childHeadroom is what the launcher deno and V8's non-heap memory need beside a child deno's
// heap.
const childHeadroom = 256 << 20

// Resolve returns the runtimes to offer. A configured Python that does not work is an error
// wrapping ErrNotInstalled naming it; an unconfigured one that is absent is simply not offered.
func Resolve(ctx context.Context, o Options) (*Set, error) {
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	argv := append([]string{o.DenoPath}, denoRunFlags...)
	if o.Memory > 0 {
		argv = append(argv, fmt.Sprintf("--v8-flags=--max-old-space-size=%d", max(32, (o.Memory-childHeadroom)>>20)))
	}
	// The program's own working directory is its to read and write, as it is Python's.
	flags := config.GrantPath(o.DenoFlags, "read", config.WorkDir)
	argv = append(argv, config.GrantPath(flags, "write", config.WorkDir)...)
	s := &Set{Runtimes: []*Runtime{{
		Name: "deno",
		Languages: []Language{
			{Name: "javascript", Extensions: []string{".js", ".mjs"}, DefaultFile: "main.js"},
			{Name: "typescript", Extensions: []string{".ts"}, DefaultFile: "main.ts"},
		},
		Argv: argv,
	}}}
	py, err := resolvePython(ctx, o)
	if err != nil {
		return nil, err
	}
	if py != nil {
		s.Runtimes = append(s.Runtimes, py)
	}
	g, err := resolveGo(ctx, o)
	if err != nil {
		return nil, err
	}
	if g != nil {
		s.Runtimes = append(s.Runtimes, g)
	}
	return s, nil
}

// Programs are the root's programs for the runtimes.
func (s *Set) Programs() []rootfs.Program {
	var out []rootfs.Program
	for _, r := range s.Runtimes {
		out = append(out, r.Programs...)
	}
	return out
}

// CAVars are the runtimes' CA variables, each once.
func (s *Set) CAVars() []string {
	var out []string
	for _, r := range s.Runtimes {
		for _, v := range r.CAVars {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// Language returns the runtime and language named name.
func (s *Set) Language(name string) (*Runtime, Language, bool) {
	for _, r := range s.Runtimes {
		for _, l := range r.Languages {
			if l.Name == name {
				return r, l, true
			}
		}
	}
	return nil, Language{}, false
}

// ByExtension returns the language of a file extension (".py").
func (s *Set) ByExtension(ext string) (Language, bool) {
	for _, r := range s.Runtimes {
		for _, l := range r.Languages {
			if slices.Contains(l.Extensions, ext) {
				return l, true
			}
		}
	}
	return Language{}, false
}

// Names are the languages offered, in table order.
func (s *Set) Names() []string {
	var out []string
	for _, r := range s.Runtimes {
		for _, l := range r.Languages {
			out = append(out, l.Name)
		}
	}
	return out
}

// pythonProbe prints what the root needs of an interpreter: the executable as python sees it,
// its version, the venv it runs in (prefix != base_prefix), the standard library, and the
// site-packages directories.
const pythonProbe = `import sys, sysconfig
p = sysconfig.get_paths()
print(sys.executable)
print("Python " + sys.version.split()[0])
print(sys.prefix if sys.prefix != sys.base_prefix else "")
print(p["stdlib"])
print(p["platstdlib"])
print(p["purelib"])
print(p["platlib"])
`

// stdlibSkipped are entries of the standard library the root leaves out: its own test suite
// (123 MB here), the Tk IDE and demos, pip's bundled wheels, the static library and build files,
// and the base interpreter's site-packages (a venv brings the packages code may use).
var stdlibSkipped = []string{"site-packages", "test", "idlelib", "turtledemo", "tkinter", "ensurepip", "lib2to3"}

// resolvePython finds the Python to offer, or none.
func resolvePython(ctx context.Context, o Options) (*Runtime, error) {
	configured := o.Python != ""
	if o.Python == config.PythonOff {
		return nil, nil
	}
	exe := o.Python
	if !configured {
		p, err := o.LookPath("python3")
		if err != nil {
			return nil, nil // not configured, not installed: not offered
		}
		exe = p
	}
	lines, err := outputLines(ctx, exe, "-E", "-s", "-c", pythonProbe)
	if err != nil || len(lines) < 7 {
		if !configured {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s=%s does not run as a Python 3 interpreter (%v); fix or unset it", ErrNotInstalled, config.VarPython, o.Python, err)
	}
	inRoot, version, venv := lines[0], lines[1], lines[2]
	host, err := filepath.EvalSymlinks(inRoot)
	if err != nil || !filepath.IsAbs(inRoot) {
		return nil, fmt.Errorf("%w: %s: sys.executable %q: %v", ErrNotInstalled, config.VarPython, inRoot, err)
	}
	prog := rootfs.Program{Host: host, Path: filepath.Clean(inRoot)}
	seen := map[string]bool{}
	for _, dir := range lines[3:5] {
		if seen[dir] || dir == "" {
			continue
		}
		seen[dir] = true
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: standard library %s: %v", ErrNotInstalled, config.VarPython, dir, err)
		}
		for _, e := range ents {
			if slices.Contains(stdlibSkipped, e.Name()) || strings.HasPrefix(e.Name(), "config-") {
				continue
			}
			prog.Data = append(prog.Data, filepath.Join(dir, e.Name()))
		}
	}
	var caVars []string
	if o.CABundle != "" {
		prog.Data = append(prog.Data, o.CABundle)
		caVars = []string{"SSL_CERT_FILE"}
	}
	if venv != "" {
		prog.Data = append(prog.Data, filepath.Join(venv, "pyvenv.cfg"))
		for _, dir := range lines[5:7] {
			if !seen[dir] {
				seen[dir] = true
				prog.Data = append(prog.Data, dir)
			}
		}
	}
	return &Runtime{
		Name:      "python",
		Languages: []Language{{Name: "python", Extensions: []string{".py"}, DefaultFile: "main.py"}},
		Programs:  []rootfs.Program{prog},
		// -E: no PYTHON* variables; -s: no user site-packages; -B: no bytecode writes (the
		// root is read-only, the working directory is the program's). Not -I: it would also
		// drop the script's directory from sys.path, and the request's other files are
		// modules the entrypoint imports. -u: output is not buffered, so a run cut by its timeout
		// still shows what it printed.
		Argv:    []string{prog.Path, "-E", "-s", "-B", "-u"},
		Warm:    []string{prog.Path, "-E", "-s", "-B", "-u", "-c", pythonWarm},
		Env:     []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"},
		Version: version,
		CAVars:  caVars,
	}, nil
}

// outputLines runs a host program (at most 10 s) and returns its standard output's lines.
func outputLines(ctx context.Context, prog string, args ...string) ([]string, error) {
	return outputLinesEnv(ctx, nil, prog, args...)
}

// outputLinesEnv is outputLines with env added to the server's environment.
func outputLinesEnv(ctx context.Context, env []string, prog string, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, nil
}
