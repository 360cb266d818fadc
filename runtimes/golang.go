package runtimes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// GoCacheInRoot is where the root holds the seeded, read-only Go build cache (GOCACHE).
const GoCacheInRoot = "/var/cache/conductor/go-build"

// GoModule is the module path of the go.mod a Go run gets when its files bring none.
const GoModule = "program"

// goSkipped are entries of GOROOT/src the root leaves out: the toolchain's own sources (cmd),
// test data and tests (go run never compiles them), and the race detector's objects (cgo is off).
var goSkipped = []string{"testdata", "*_test.go", "*.syso"}

// goTools are the tools of GOROOT/pkg/tool/<os_arch> that `go run` of pure Go code uses.
var goTools = []string{"compile", "link", "asm"}

// goSeedImports are the standard packages the seeded cache holds compiled: what small programs
// commonly import (net/http included: compiling it takes longer than a default timeout).
var goSeedImports = []string{
	"bufio", "bytes", "container/heap", "container/list", "context", "crypto/rand", "crypto/sha256",
	"encoding/base64", "encoding/csv", "encoding/hex", "encoding/json", "errors", "flag", "fmt", "io",
	"log", "maps", "math", "math/big", "math/rand", "net/http", "os", "os/exec", "path/filepath",
	"regexp", "slices", "sort", "strconv", "strings", "sync", "syscall", "text/tabwriter", "time",
	"unicode/utf8",
}

// goEnv is the environment of every go command conductor runs, on the host to seed the cache
// and in the sandbox: everything that enters the cache's keys is the same in both (GOFLAGS,
// CGO_ENABLED, GOROOT's path), and nothing is ever downloaded (no proxy, no toolchain switch).
func goEnv(goroot, cache, tmp, home string) []string {
	return []string{
		"GOROOT=" + goroot, "GOCACHE=" + cache, "GOTMPDIR=" + tmp, "HOME=" + home, "GOPATH=" + home + "/go",
		"GOFLAGS=-trimpath", "GOTOOLCHAIN=local", "GOPROXY=off", "GOSUMDB=off", "GOENV=off",
		"CGO_ENABLED=0", "GOTELEMETRY=off",
		// The go command's telemetry would start an upload child process (refused in the
		// sandbox, with a warning on stderr): "2" tells it it already is a child's child.
		"GO_TELEMETRY_CHILD=2",
	}
}

// goMod is the go.mod of a run (and of the seed) for a toolchain of version goVersion
// ("go1.26.8"): the language version is the toolchain's, not go 1.16's defaults.
func goMod(goVersion string) string {
	v := strings.TrimPrefix(goVersion, "go")
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		v = parts[0] + "." + parts[1]
	}
	return "module " + GoModule + "\n\ngo " + v + "\n"
}

// goInfo is what `go env` says of a toolchain.
type goInfo struct{ root, version, goos, goarch string }

// resolveGo finds the Go toolchain to offer, or none.
func resolveGo(ctx context.Context, o Options) (*Runtime, error) {
	if o.Go == config.GoOff {
		return nil, nil
	}
	configured := o.Go != ""
	goBin := filepath.Join(o.Go, "bin", "go")
	if !configured {
		p, err := o.LookPath("go")
		if err != nil {
			return nil, nil // not configured, not installed: not offered
		}
		goBin = p
	}
	info, err := probeGo(ctx, goBin, o.Go)
	if err != nil {
		if !configured {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s=%s is not a working Go toolchain (%v); fix or unset it", ErrNotInstalled, config.VarGo, o.Go, err)
	}
	prog, err := goProgram(info)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotInstalled, config.VarGo, err)
	}
	if o.GoCacheDir != "" {
		seed, err := ensureGoCache(ctx, info, o.GoCacheDir)
		if err != nil {
			return nil, fmt.Errorf("runtimes: Go (%s): seeding its build cache: %w", info.root, err)
		}
		prog.Trees = []rootfs.Tree{{Host: seed, Path: GoCacheInRoot}}
	}
	return &Runtime{
		Name:      "go",
		Languages: []Language{{Name: "go", Extensions: []string{".go"}, DefaultFile: "main.go"}},
		Programs:  []rootfs.Program{prog},
		// `go run .`: the working directory's package, so the request's other files of package
		// main are compiled with the entrypoint (sub-directories are packages GoModule/<dir>).
		Argv:     []string{prog.Path, "run", "."},
		Dir:      true,
		Defaults: []File{{Name: "go.mod", Content: goMod(info.version)}},
		// The per-run working directory is the build's temporary directory too: go run links
		// the program there and executes it (the sandbox's /tmp is noexec).
		// GODEBUG=goindex=0: the go command reads the root's sources directly instead of the
		// seed's module index, which describes the host's GOROOT with its tests (it made every
		// std package "not in std" in the root); the index is not part of any cache key.
		Env:     append(goEnv(info.root, GoCacheInRoot, config.WorkDir, "/tmp"), "GODEBUG=goindex=0"),
		Exec:    true,
		Version: info.version,
	}, nil
}

// probeGo asks the toolchain for its GOROOT, version and target; goroot "" is the go binary's own.
func probeGo(ctx context.Context, goBin, goroot string) (goInfo, error) {
	// The go command keeps its telemetry state under the user's config directory and creates
	// it even for `go env` (GOTELEMETRY=off notwithstanding), from a detached child that outlives
	// the command: a HOME and config directory that cannot hold a directory (/dev/null) leave
	// it nowhere to write, so a probe leaves nothing behind.
	env := []string{"GOTOOLCHAIN=local", "GOENV=off", "GOPROXY=off", "GOTELEMETRY=off", "HOME=/dev/null", "XDG_CONFIG_HOME=/dev/null", "XDG_CACHE_HOME=/dev/null",
		"GO_TELEMETRY_CHILD=2"} // and no telemetry child (see goEnv)
	if goroot != "" {
		env = append(env, "GOROOT="+goroot)
	}
	lines, err := outputLinesEnv(ctx, env, goBin, "env", "GOROOT", "GOVERSION", "GOOS", "GOARCH")
	if err != nil {
		return goInfo{}, err
	}
	if len(lines) != 4 || !filepath.IsAbs(lines[0]) || !strings.HasPrefix(lines[1], "go") {
		return goInfo{}, fmt.Errorf("go env printed %q", lines)
	}
	info := goInfo{root: filepath.Clean(lines[0]), version: lines[1], goos: lines[2], goarch: lines[3]}
	if goroot != "" && info.root != goroot {
		return goInfo{}, fmt.Errorf("its GOROOT is %s", info.root)
	}
	return info, nil
}

// goProgram is the root's part of a toolchain: bin/go, the tools go run uses, the standard
// library's sources without tests, and the files the go command reads at start.
func goProgram(info goInfo) (rootfs.Program, error) {
	r := info.root
	prog := rootfs.Program{Host: filepath.Join(r, "bin", "go"), Path: filepath.Join(r, "bin", "go"), Skip: goSkipped}
	toolDir := filepath.Join(r, "pkg", "tool", info.goos+"_"+info.goarch)
	for _, t := range goTools {
		prog.Data = append(prog.Data, filepath.Join(toolDir, t))
	}
	prog.Data = append(prog.Data, filepath.Join(r, "pkg", "include"))
	for _, f := range []string{"VERSION", "go.env", "lib/time/zoneinfo.zip"} {
		if _, err := os.Stat(filepath.Join(r, f)); err == nil {
			prog.Data = append(prog.Data, filepath.Join(r, f))
		}
	}
	ents, err := os.ReadDir(filepath.Join(r, "src"))
	if err != nil {
		return prog, fmt.Errorf("standard library: %w", err)
	}
	for _, e := range ents {
		if e.Name() != "cmd" {
			prog.Data = append(prog.Data, filepath.Join(r, "src", e.Name()))
		}
	}
	for _, d := range prog.Data {
		if _, err := os.Stat(d); err != nil {
			return prog, err
		}
	}
	return prog, nil
}

// goSeedKey names a seed: the toolchain (GOROOT, version, target, and its go and compile
// binaries' size and time), the environment and the seed program.
func goSeedKey(info goInfo) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s/%s\n%q\n%s\n", info.root, info.version, info.goos, info.goarch,
		goEnv(info.root, "", "", ""), goSeedSource(info.root))
	for _, f := range []string{filepath.Join(info.root, "bin", "go"), filepath.Join(info.root, "pkg", "tool", info.goos+"_"+info.goarch, "compile")} {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

// goSeedSource is the seed program: it imports those of goSeedImports the toolchain under
// goroot has (an older Go lacks maps and slices).
func goSeedSource(goroot string) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n")
	for _, p := range slices.Sorted(slices.Values(goSeedImports)) {
		if _, err := os.Stat(filepath.Join(goroot, "src", p)); err == nil {
			fmt.Fprintf(&b, "\t_ %q\n", p)
		}
	}
	b.WriteString(")\n\nfunc main() {}\n")
	return b.String()
}

// goSeedTimeout bounds building a seed (about a minute on a busy 2-CPU host).
const goSeedTimeout = 10 * time.Minute

// ensureGoCache returns the seeded build cache for the toolchain under dir, building it the
// first time (dir/<key>, renamed into place when complete, so a half-built seed is never used).
func ensureGoCache(ctx context.Context, info goInfo, dir string) (string, error) {
	key, err := goSeedKey(info)
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, key)
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".seed-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src, cache := filepath.Join(tmp, "src"), filepath.Join(tmp, "cache")
	if err := os.Mkdir(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(goMod(info.version)), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(goSeedSource(info.root)), 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, goSeedTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(info.root, "bin", "go"), "build", "-o", os.DevNull, ".")
	cmd.Dir = src
	cmd.Env = append(goEnv(info.root, cache, tmp, tmp), "PATH=/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of the seed: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(cache, final); err != nil {
		if st, serr := os.Stat(final); serr == nil && st.IsDir() {
			return final, nil // another process seeded it first
		}
		return "", err
	}
	return final, nil
}
