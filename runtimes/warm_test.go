package runtimes

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// runWarm runs the pre-started interpreter's program (warm.py) as the sandbox does, on the
// host's python3 in dir, with packages as config.PyPackagesDir and the import check's spec, and
// hands it entry. It returns stdout, stderr and the exit code.
func runWarm(t *testing.T, dir, packages string, spec *ImportSpec, entry string) (string, string, int) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Unavailable(t, "no python3 on PATH (CI installs it: .ci/run)")
	}
	if spec != nil {
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{PythonImportCheck: string(b)})
	}
	cmd := exec.Command(py, "-E", "-s", "-B", "-u", "-c", pythonWarm, packages, PythonImportCheck)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(entry + "\n")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImportCheck: the rule of warm.py's import check, on the host's python (no sandbox: the
// sandbox tests are engine's TestPythonImports). Before the entrypoint runs, every absolute
// import of the checked files, at any depth, must name a module the interpreter finds (standard
// library names, its sys.path, the program's own files); the first that does not is refused with
// its line and column (in characters), naming every refused module and ending with the allowed
// text. Imports guarded against ImportError, under TYPE_CHECKING, relative and dynamic ones are not
// checked; a file that does not parse is left to Python.
func TestImportCheck(t *testing.T) {
	const allowed = "ALLOWED: pypi:example==1.0."
	tests := []struct {
		name   string
		code   string            // main.py, checked
		files  map[string]string // the request's other files (.py ones checked too)
		module string            // the module refused, "" = none
		file   string            // where (default main.py)
		line   int
		column int
	}{
		{"standard library", "import os, json\nfrom collections import abc\nimport xml.etree.ElementTree as ET", nil, "", "", 0, 0},
		{"a stdlib name absent from the interpreter still passes", "import tkinter, _tkinter", nil, "", "", 0, 0},
		{"modules loaded already", "import __main__, sys, builtins", nil, "", "", 0, 0},
		{"missing module", "import nopkg_a", nil, "nopkg_a", "", 1, 8},
		{"from a missing package's submodule", "x = 1\nfrom nopkg_a.sub import y", nil, "nopkg_a", "", 2, 1},
		{"second alias", "import os, nopkg_a as n", nil, "nopkg_a", "", 1, 12},
		{"dotted import", "import nopkg_a.b.c", nil, "nopkg_a", "", 1, 8},
		{"inside a function", "def f():\n    import nopkg_a\n", nil, "nopkg_a", "", 2, 12},
		{"inside a class and a branch", "class C:\n    if True:\n        from nopkg_a import x", nil, "nopkg_a", "", 3, 9},
		{"in an async function after await", "async def f():\n    await g()\n    import nopkg_a", nil, "nopkg_a", "", 3, 12},
		{"try/except ImportError", "try:\n    import nopkg_a\nexcept ImportError:\n    nopkg_a = None", nil, "", "", 0, 0},
		{"try/except ModuleNotFoundError in a tuple", "try:\n    import nopkg_a\nexcept (ValueError, ModuleNotFoundError):\n    pass", nil, "", "", 0, 0},
		{"try/bare except", "try:\n    from nopkg_a import b\nexcept:\n    pass", nil, "", "", 0, 0},
		{"try/except Exception, nested in a function", "def f():\n    try:\n        if True:\n            import nopkg_a\n    except Exception:\n        pass", nil, "", "", 0, 0},
		{"try/except builtins.ImportError", "import builtins\ntry:\n    import nopkg_a\nexcept builtins.ImportError:\n    pass", nil, "", "", 0, 0},
		{"try/except ValueError does not guard", "try:\n    import nopkg_a\nexcept ValueError:\n    pass", nil, "nopkg_a", "", 2, 12},
		{"the handler itself is not guarded", "try:\n    import json\nexcept ImportError:\n    import nopkg_a", nil, "nopkg_a", "", 4, 12},
		{"try/finally does not guard", "try:\n    import nopkg_a\nfinally:\n    pass", nil, "nopkg_a", "", 2, 12},
		{"with suppress(ImportError)", "import contextlib\nwith contextlib.suppress(ImportError):\n    import nopkg_a", nil, "", "", 0, 0},
		{"with suppress(KeyError) does not guard", "from contextlib import suppress\nwith suppress(KeyError):\n    import nopkg_a", nil, "nopkg_a", "", 3, 12},
		{"if TYPE_CHECKING", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import nopkg_a\nelse:\n    nopkg_a = None", nil, "", "", 0, 0},
		{"relative imports are the program's own", "from . import sibling\nfrom .nopkg_a import x", nil, "", "", 0, 0},
		{"dynamic imports are not checked", "import importlib\nimportlib.import_module('nopkg_a')\n__import__('nopkg_b')", nil, "", "", 0, 0},
		{"the request's own module and package", "import helper\nimport pkg.mod\nfrom data import x", map[string]string{"helper.py": "X = 1", "pkg/__init__.py": "", "pkg/mod.py": "", "data/x.py": ""}, "", "", 0, 0},
		{"refused in another file", "import helper", map[string]string{"helper.py": "import json\n\nimport nopkg_h"}, "nopkg_h", "helper.py", 3, 8},
		{"a file that does not parse is left to python", "x = (", map[string]string{"notes.txt": "import nopkg_a"}, "", "", 0, 0},
		{"column in characters", "s = 'é'; import nopkg_a", nil, "nopkg_a", "", 1, 17},
		{"first in source order, others named", "def f():\n    import nopkg_b\nimport nopkg_a\nimport nopkg_b", nil, "nopkg_b", "", 2, 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, result := range []string{"", ".conductor/result.json"} {
				dir := t.TempDir()
				files := map[string]string{"main.py": tc.code, "entry.py": "print('ran')"}
				spec := &ImportSpec{Files: []string{"main.py"}, Dir: ".", Allowed: allowed, Result: result}
				for name, content := range tc.files {
					files[name] = content
					if strings.HasSuffix(name, ".py") {
						spec.Files = append(spec.Files, name)
					}
				}
				writeFiles(t, dir, files)
				stdout, stderr, code := runWarm(t, dir, "/nonexistent/pypi", spec, "entry.py")
				if tc.module == "" {
					if stdout != "ran\n" || code != 0 {
						t.Fatalf("result %q: refused (exit %d, stdout %q, stderr %q), want it to run", result, code, stdout, stderr)
					}
					continue
				}
				if stdout != "" {
					t.Fatalf("result %q: the program ran: %q", result, stdout)
				}
				file := tc.file
				if file == "" {
					file = "main.py"
				}
				var got struct {
					Type, Name, Message, Stack string
					Line, Column               int
				}
				if result == "" {
					if code != 1 {
						t.Fatalf("exit %d, want 1 (stderr %q)", code, stderr)
					}
					got.Stack, got.Message = stderr, stderr
					if !strings.Contains(stderr, `File "`+filepath.Join(dir, file)+`", line `) {
						t.Errorf("stderr does not name %s as python would:\n%s", file, stderr)
					}
				} else {
					b, err := os.ReadFile(filepath.Join(dir, result))
					if code != 0 || err != nil {
						t.Fatalf("exit %d, result file: %v (stderr %q)", code, err, stderr)
					}
					var out struct {
						Error *struct {
							Type, Name, Message, Stack string
							Line, Column               int
						}
					}
					if err := json.Unmarshal(b, &out); err != nil || out.Error == nil {
						t.Fatalf("result %s: %v", b, err)
					}
					got = *out.Error
					if got.Type != "dependency" || got.Name != "ModuleNotFoundError" || got.Line != tc.line || got.Column != tc.column {
						t.Errorf("error %s %s at %d:%d, want dependency ModuleNotFoundError at %d:%d", got.Type, got.Name, got.Line, got.Column, tc.line, tc.column)
					}
					if !strings.Contains(got.Stack, `File "`+file+`", line `) {
						t.Errorf("stack does not name %s:\n%s", file, got.Stack)
					}
				}
				for _, want := range []string{"ModuleNotFoundError: No module named '" + tc.module + "'", "refused before the code ran", allowed} {
					if !strings.Contains(got.Stack, want) {
						t.Errorf("result %q: refusal lacks %q:\n%s", result, want, got.Stack)
					}
				}
				if tc.name == "first in source order, others named" && !strings.Contains(got.Message, "also refused: 'nopkg_a'") {
					t.Errorf("the other refused module is not named: %s", got.Message)
				}
			}
		})
	}
}

// TestWarmPackagesOnPath: the allowed PyPI packages' directory (config.PyPackagesDir) is on
// sys.path after the standard library and the base environment, whether or not it exists; there,
// the check finds its modules, and without the spec file nothing is checked.
func TestWarmPackagesOnPath(t *testing.T) {
	dir := t.TempDir()
	pkgs := t.TempDir()
	writeFiles(t, pkgs, map[string]string{"allowedpkg/__init__.py": "V = 7"})
	writeFiles(t, dir, map[string]string{"main.py": "import sys, allowedpkg\nprint(sys.path[-1] == sys.argv[0] or sys.path[-1], allowedpkg.V)"})
	spec := &ImportSpec{Files: []string{"main.py"}, Dir: ".", Allowed: "none"}
	if stdout, stderr, _ := runWarm(t, dir, pkgs, spec, "main.py"); stdout != pkgs+" 7\n" {
		t.Errorf("with the packages: stdout %q, stderr %q; want %q", stdout, stderr, pkgs+" 7\n")
	}
	writeFiles(t, dir, map[string]string{"main.py": "import sys\nprint(sys.path[-1])"})
	if stdout, stderr, _ := runWarm(t, dir, "/nonexistent/pypi", spec, "main.py"); stdout != "/nonexistent/pypi\n" {
		t.Errorf("without them: stdout %q, stderr %q", stdout, stderr)
	}
	if err := os.Remove(filepath.Join(dir, PythonImportCheck)); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"main.py": "try:\n    import nopkg_a\nexcept NameError:\n    print('unchecked')"})
	if _, stderr, code := runWarm(t, dir, "/nonexistent/pypi", nil, "main.py"); code != 1 || !strings.Contains(stderr, "No module named 'nopkg_a'") || strings.Contains(stderr, "refused") {
		t.Errorf("without a spec: exit %d, stderr %q; want python's own ModuleNotFoundError", code, stderr)
	}
}

// TestBaseEnvironment: which site directories are the base environment (a venv's, an
// EXTERNALLY-MANAGED interpreter's, no other's), the top-level modules listed from them, and, on
// a host with Debian's python3-yaml and python3-numpy, the real thing.
func TestBaseEnvironment(t *testing.T) {
	site := []string{"/s/site-packages"}
	for _, tc := range []struct {
		name string
		pr   probe
		want []string
	}{
		{"venv", probe{Venv: "/v", Site: site}, site},
		{"externally managed", probe{Managed: true, Site: site}, site},
		{"other (pyenv)", probe{Site: site}, nil},
	} {
		if got := baseEnvironment(tc.pr); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"yaml/__init__.py": "", "six.py": "", "_yaml/__init__.py": "", "numpy/__init__.py": "",
		"_cffi_backend.cpython-311-x86_64-linux-gnu.so": "", "apt_pkg.cpython-311-x86_64-linux-gnu.so": "", "lib.so": "",
		"PyYAML-6.0.dist-info/METADATA": "", "__pycache__/six.cpython-311.pyc": "", "distutils-precedence.pth": "",
		"not-a-module/x.py": "", "iso.iso": "",
	})
	if got, want := topLevelModules([]string{dir, dir + "/missing"}), []string{"apt_pkg", "lib", "numpy", "six", "yaml"}; !slices.Equal(got, want) {
		t.Errorf("modules %v, want %v", got, want)
	}

	const debian = "/usr/bin/python3"
	if err := exec.Command(debian, "-c", "import yaml, numpy").Run(); err != nil {
		testenv.Unavailable(t, "%s with python3-yaml and python3-numpy (Debian's; .ci/run installs them): %v", debian, err)
	}
	s, err := Resolve(t.Context(), Options{DenoPath: "/usr/bin/deno", Python: debian, Go: "off"})
	if err != nil {
		t.Fatal(err)
	}
	rt, _, _ := s.Language("python")
	if !slices.Contains(rt.Base, "/usr/lib/python3/dist-packages") || !slices.Contains(rt.Programs[0].Data, "/usr/lib/python3/dist-packages") {
		t.Errorf("base %v, data %v: no /usr/lib/python3/dist-packages", rt.Base, rt.Programs[0].Data)
	}
	if !slices.Contains(rt.Modules, "yaml") || !slices.Contains(rt.Modules, "numpy") {
		t.Errorf("modules %v lack yaml and numpy", rt.Modules)
	}
}
