package runtimes

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestResolve: deno's languages are always offered, with the admin's flags and the working
// directory merged into them; Python is offered when found, not offered when absent and
// unconfigured or "off", and a configured one that does not run is ErrNotInstalled naming it.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	absent := func(string) (string, error) { return "", exec.ErrNotFound }
	tests := []struct {
		name   string
		o      Options
		langs  []string
		err    error
		denoIn []string // flags the child deno gets
	}{
		{"python off", Options{Python: config.PythonOff, Go: config.GoOff, DenoFlags: []string{"--allow-read=/data", "--allow-net"}},
			[]string{"javascript", "typescript"}, nil, []string{"--allow-read=/data," + config.WorkDir, "--allow-net", "--allow-write=" + config.WorkDir}},
		{"python absent, unconfigured", Options{LookPath: absent, DenoFlags: []string{"--allow-all"}},
			[]string{"javascript", "typescript"}, nil, []string{"--allow-all"}},
		{"python configured, missing", Options{Python: "/nonexistent/python3"}, nil, ErrNotInstalled, nil},
		{"python configured, not python", Options{Python: "/bin/true"}, nil, ErrNotInstalled, nil},
		{"go configured, missing", Options{Python: config.PythonOff, Go: "/nonexistent/go"}, nil, ErrNotInstalled, nil},
		{"go configured, not a GOROOT", Options{Python: config.PythonOff, Go: "/usr"}, nil, ErrNotInstalled, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.DenoPath = "/usr/bin/deno"
			s, err := Resolve(ctx, tc.o)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Resolve = %v, want %v", err, tc.err)
			}
			if err != nil {
				named := config.VarPython + "=" + tc.o.Python
				if tc.o.Go != "" {
					named = config.VarGo + "=" + tc.o.Go
				}
				if !strings.Contains(err.Error(), named) {
					t.Errorf("error %q does not name the setting", err)
				}
				return
			}
			if got := s.Names(); !slices.Equal(got, tc.langs) {
				t.Errorf("languages %v, want %v", got, tc.langs)
			}
			rt, _, _ := s.Language("javascript")
			for _, f := range tc.denoIn {
				if !slices.Contains(rt.Argv, f) {
					t.Errorf("child deno argv %v lacks %s", rt.Argv, f)
				}
			}
		})
	}
	t.Run("host python", func(t *testing.T) {
		if _, err := exec.LookPath("python3"); err != nil {
			testenv.Unavailable(t, "no python3 on PATH (CI installs it: .ci/run)")
		}
		s, err := Resolve(ctx, Options{DenoPath: "/usr/bin/deno"})
		if err != nil {
			t.Fatal(err)
		}
		rt, l, ok := s.Language("python")
		if !ok || l.DefaultFile != "main.py" || !strings.HasPrefix(rt.Version, "Python 3.") || len(rt.Programs) != 1 {
			t.Fatalf("python runtime %+v", rt)
		}
		for _, d := range rt.Programs[0].Data {
			if slices.Contains(rt.Base, d) {
				continue // the base environment's site directories, Debian's dist-packages among them
			}
			for _, skip := range stdlibSkipped {
				if strings.HasSuffix(d, "/"+skip) {
					t.Errorf("root data %s is skipped (%s)", d, skip)
				}
			}
		}
		if lang, ok := s.ByExtension(".py"); !ok || lang.Name != "python" {
			t.Errorf("ByExtension(.py) = %v, %v", lang, ok)
		}
	})
	t.Run("host go", func(t *testing.T) {
		if _, err := exec.LookPath("go"); err != nil {
			testenv.Unavailable(t, "no go on PATH: the Go runtime cannot be resolved here")
		}
		// Resolving probes the toolchain with `go env`; nothing of it may stay in TMPDIR
		// (the go command creates its telemetry directory under HOME's config).
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		s, err := Resolve(ctx, Options{DenoPath: "/usr/bin/deno", Python: config.PythonOff})
		if err != nil {
			t.Fatal(err)
		}
		// The go command's telemetry wrote from a detached child after `go env` had exited
		// (a directory per probe was left): give such a child time to show up.
		time.Sleep(time.Second)
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("resolving the go runtime left %d entries in TMPDIR, first %s", len(left), left[0].Name())
		}
		rt, l, ok := s.Language("go")
		if !ok || l.DefaultFile != "main.go" || !strings.HasPrefix(rt.Version, "go1.") || len(rt.Programs) != 1 || !rt.Exec || !rt.Dir {
			t.Fatalf("go runtime %+v", rt)
		}
		if got := rt.Argv[1:]; !slices.Equal(got, []string{"run", "."}) {
			t.Errorf("argv %v, want go run .", rt.Argv)
		}
		for _, kv := range []string{"GOPROXY=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOFLAGS=-trimpath", "GOCACHE=" + GoCacheInRoot, "GOTMPDIR=" + config.WorkDir} {
			if !slices.Contains(rt.Env, kv) {
				t.Errorf("env %v lacks %s", rt.Env, kv)
			}
		}
		if len(rt.Defaults) != 1 || rt.Defaults[0].Name != "go.mod" || !strings.HasPrefix(rt.Defaults[0].Content, "module "+GoModule+"\n\ngo 1.") {
			t.Errorf("defaults %+v", rt.Defaults)
		}
		p := rt.Programs[0]
		if len(p.Trees) != 0 {
			t.Errorf("without GoCacheDir the row has a cache tree: %v", p.Trees)
		}
		for _, d := range p.Data {
			if strings.HasSuffix(d, "/src/cmd") || strings.Contains(d, "/bin/gofmt") || strings.HasSuffix(d, "/vet") {
				t.Errorf("root data %s is not needed by go run", d)
			}
		}
		if !slices.Contains(p.Skip, "testdata") || !slices.Contains(p.Skip, "*_test.go") {
			t.Errorf("skip %v", p.Skip)
		}
	})
}
