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
//
// Outputs: the child deno is given the flags of code (config.Settings.CodeFlags: write of the
// outputs directory) and preloads config.DisplayModule, so display() is the same global as in
// run_deno_code; the pre-started Python (warm.py) gives the program display() and display_file()
// as builtins and saves matplotlib's figures (MPLBACKEND=Agg) at plt.show() and when it ends.
// Debian's python3-matplotlib needs its data beside dist-packages (matplotlibData).
package runtimes

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
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
	// Pip, when set, runs the interpreter's pip (pip's arguments follow): what installs the
	// admin's pypi: packages, in an install sandbox (see PipInRoot). nil: this interpreter has
	// no pip, so pypi: packages cannot be installed for it.
	Pip []string
	// ImportCheck, when set, is the working-directory file (ImportSpec, JSON) the pre-started
	// interpreter reads before it runs the entrypoint: which of the run's files to check and what
	// to say when an import is refused. The engine writes it for every run of this runtime.
	ImportCheck string
	// Base are the directories of the interpreter's base environment (baseEnvironment), in the
	// root at their host paths; Modules are the top-level modules there, for the tool's
	// description.
	Base, Modules []string
}

// PythonImportCheck is Python's Runtime.ImportCheck.
const PythonImportCheck = ".conductor/imports.json"

// ImportSpec is what a run's import check reads (Runtime.ImportCheck). warm.py checks, before it
// runs the entrypoint, that every absolute import in Files names a module the sandbox has: see
// warm.py for the rule.
type ImportSpec struct {
	// Files are the request's Python files, relative to the working directory.
	Files []string `json:"files"`
	// Dir is the program's sys.path[0] (where its own modules are), relative to the working
	// directory.
	Dir string `json:"dir"`
	// Allowed ends a refusal: what may be imported (deps.Allowlist.PythonAllowed).
	Allowed string `json:"allowed"`
	// Result, when set, is the file of run_python_code's outcome: a refusal is written there as
	// its error, {"error": {...}} (engine.pyOutcome), and the interpreter exits 0; without it the
	// refusal goes to stderr as Python words an error, and the interpreter exits 1.
	Result string `json:"result,omitempty"`
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

// Where, in the working directory, run_python_code's runner and its mcpFactory client are
// written. The pre-started interpreter compiles both while its sandbox boots (they follow the
// import check's file on its command line, each as a name and its source) and runs the compiled
// code for a file of that name whose content is the same, so a run does not compile them.
const (
	PythonRunnerFile  = ".conductor/run.py"
	PythonFactoryFile = ".conductor/mcp.py"
)

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
	// display(), as run_deno_code's bootstrap defines it.
	argv = append(argv, "--preload="+config.DisplayModule)
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

// pythonProbe prints, as one JSON object, what the root needs of an interpreter: the executable
// as python sees it, its version, the venv it runs in (prefix != base_prefix), the standard
// library, whether it is EXTERNALLY-MANAGED (PEP 668), and its site directories that exist.
const pythonProbe = `import json, os, site, sys, sysconfig
p = sysconfig.get_paths()
print(json.dumps({
    "executable": sys.executable, "version": "Python " + sys.version.split()[0],
    "venv": sys.prefix if sys.prefix != sys.base_prefix else "",
    "stdlib": [p["stdlib"], p["platstdlib"]],
    "managed": os.path.isfile(os.path.join(p["stdlib"], "EXTERNALLY-MANAGED")),
    "site": [d for d in site.getsitepackages() if os.path.isdir(d)],
}))
`

// probe is what pythonProbe prints.
type probe struct {
	Executable string   `json:"executable"`
	Version    string   `json:"version"`
	Venv       string   `json:"venv"`
	Stdlib     []string `json:"stdlib"`
	Managed    bool     `json:"managed"`
	Site       []string `json:"site"`
}

// stdlibSkipped are entries of the standard library the root leaves out: its own test suite
// (123 MB here), the Tk IDE and demos, pip's bundled wheels, the static library and build files,
// and the site directories inside it (site-packages, Debian's dist-packages): those that belong to
// the base environment come in as such, the others (a venv's base interpreter's) not at all.
var stdlibSkipped = []string{"site-packages", "dist-packages", "test", "idlelib", "turtledemo", "tkinter", "ensurepip", "lib2to3"}

// matplotlibSkipped: the web backend's copies of jQuery, which Debian's python3-matplotlib makes
// symlinks out of the site directory (to /usr/share/javascript); the backend serves a browser,
// which a sandbox has none of, and the root refuses links that leave their data directory.
var matplotlibSkipped = []string{"web_backend"}

// matplotlibData is matplotlib's data (fonts, its matplotlibrc) when a base directory holds a
// matplotlib without its own mpl-data: Debian's python3-matplotlib keeps it in
// /usr/share/matplotlib (matplotlib.get_data_path falls back there) and reads its configuration
// from /etc/matplotlibrc only (Debian's matplotlib_fname). None otherwise.
func matplotlibData(base []string) []string {
	const debian, rc = "/usr/share/matplotlib", "/etc/matplotlibrc"
	for _, d := range base {
		if _, err := os.Stat(filepath.Join(d, "matplotlib", "__init__.py")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "matplotlib", "mpl-data")); err == nil {
			return nil
		}
		var data []string
		for _, p := range []string{debian, rc} {
			if _, err := os.Stat(p); err == nil {
				data = append(data, p)
			}
		}
		return data
	}
	return nil
}

// baseEnvironment returns the directories of the packages code may import besides the standard
// library and the allowed PyPI packages: the interpreter's own environment, read-only in the root
// at their host paths and on sys.path as the interpreter puts them there (site, with -s: no user
// site-packages). Which environment that is depends on who manages it:
//
//   - a venv (MCP_CONDUCTOR_PYTHON=/path/venv/bin/python): its site-packages, and the system's
//     too when it was made with --system-site-packages: what the admin built the venv for;
//   - a distribution's Python marked EXTERNALLY-MANAGED (PEP 668; Debian's /usr/bin/python3):
//     its site directories that exist (/usr/lib/python3/dist-packages, where python3-yaml and
//     python3-numpy are, /usr/lib/python3.X/dist-packages and /usr/local/lib/python3.X/dist-packages),
//     which only the package manager, or an admin overriding PEP 668, changes;
//   - any other interpreter (pyenv's, a python.org or self-built one): none. Its site-packages is
//     pip's default target for whatever anyone on the machine installed — pip and setuptools at
//     least, often far more (460 MB of unrelated packages under pyenv's 3.11 on the machine this
//     was written on) — not a set an admin chose for sandboxed code. An admin who wants packages
//     with such an interpreter makes a venv of it, or allows pypi: packages.
//
// Every ELF file in these directories (a compiled extension) brings its shared-library closure
// into the root, as any program's data does (rootfs.Program.Data): numpy's BLAS, libyaml.
func baseEnvironment(pr probe) []string {
	if pr.Venv == "" && !pr.Managed {
		return nil
	}
	return pr.Site
}

// topLevelModules lists the importable top-level names in dirs, sorted, without private ones
// (a leading _): modules (name.py, name.*.so) and packages (a directory with an identifier's name).
func topLevelModules(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() {
				if !PyIdentifier(name) {
					continue
				}
			} else if base, ext, ok := strings.Cut(name, "."); ok && (ext == "py" || ext == "so" || strings.HasSuffix(ext, ".so")) && PyIdentifier(base) {
				name = base
			} else {
				continue
			}
			if !strings.HasPrefix(name, "_") && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// PyIdentifier reports whether s is a Python identifier of ASCII letters, digits and _ (module
// names are, in practice; so are the globals the engine accepts).
func PyIdentifier(s string) bool {
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

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
	var pr probe
	lines, err := outputLines(ctx, exe, "-E", "-s", "-c", pythonProbe)
	if err == nil && len(lines) == 1 {
		err = json.Unmarshal([]byte(lines[0]), &pr)
	}
	if err != nil || len(lines) != 1 || len(pr.Stdlib) != 2 {
		if !configured {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s=%s does not run as a Python 3 interpreter (%v); fix or unset it", ErrNotInstalled, config.VarPython, o.Python, err)
	}
	host, err := filepath.EvalSymlinks(pr.Executable)
	if err != nil || !filepath.IsAbs(pr.Executable) {
		return nil, fmt.Errorf("%w: %s: sys.executable %q: %v", ErrNotInstalled, config.VarPython, pr.Executable, err)
	}
	prog := rootfs.Program{Host: host, Path: filepath.Clean(pr.Executable)}
	base := baseEnvironment(pr)
	seen := map[string]bool{}
	for _, dir := range pr.Stdlib {
		if seen[dir] || dir == "" {
			continue
		}
		seen[dir] = true
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: standard library %s: %v", ErrNotInstalled, config.VarPython, dir, err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if slices.Contains(stdlibSkipped, e.Name()) || strings.HasPrefix(e.Name(), "config-") || slices.Contains(base, p) {
				continue
			}
			prog.Data = append(prog.Data, p)
		}
	}
	var caVars []string
	if o.CABundle != "" {
		prog.Data = append(prog.Data, o.CABundle)
		caVars = []string{"SSL_CERT_FILE"}
	}
	if pr.Venv != "" {
		prog.Data = append(prog.Data, filepath.Join(pr.Venv, "pyvenv.cfg"))
	}
	for _, dir := range base {
		if !seen[dir] {
			seen[dir] = true
			prog.Data = append(prog.Data, dir)
		}
	}
	if d := matplotlibData(base); len(d) > 0 {
		prog.Data = append(prog.Data, d...)
		prog.Skip = append(prog.Skip, matplotlibSkipped...)
	}
	rt := &Runtime{
		Name:      "python",
		Languages: []Language{{Name: "python", Extensions: []string{".py"}, DefaultFile: "main.py"}},
		Programs:  []rootfs.Program{prog},
		// -E: no PYTHON* variables; -s: no user site-packages; -B: no bytecode writes (the
		// root is read-only, the working directory is the program's). Not -I: it would also
		// drop the script's directory from sys.path, and the request's other files are
		// modules the entrypoint imports. -u: output is not buffered, so a run cut by its timeout
		// still shows what it printed.
		Argv: []string{prog.Path, "-E", "-s", "-B", "-u"},
		// The pre-started interpreter puts config.PyPackagesDir on sys.path after the standard
		// library and the base environment, and checks a run's imports (ImportCheck).
		Warm: []string{prog.Path, "-E", "-s", "-B", "-u", "-c", pythonWarm, config.PyPackagesDir, PythonImportCheck,
			PythonRunnerFile, PythonRunner, PythonFactoryFile, PythonFactory},
		ImportCheck: PythonImportCheck,
		// MPLBACKEND: matplotlib renders without a display (Agg); figures reach the client
		// through the outputs directory (pyrun.py saves those left open).
		Env:     []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "MPLBACKEND=Agg"},
		Version: pr.Version,
		CAVars:  caVars,
		Base:    base,
		Modules: topLevelModules(base),
	}
	addPip(ctx, exe, rt)
	return rt, nil
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
