package engine

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// debianPython is Debian's interpreter with python3-yaml and python3-numpy (.ci/run installs
// them): its base environment is /usr/lib/python3/dist-packages.
func debianPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import yaml, numpy").Run(); err != nil {
		testenv.Unavailable(t, "%s with python3-yaml and python3-numpy (.ci/run installs them): %v", py, err)
	}
	return py
}

// TestPythonImports: what Python code may import, through real sandboxes with Debian's python3
// and the allowlist pypi:pyyaml==6.0. The base environment works, compiled extensions included
// (yaml's C loader and dumper over libyaml, numpy over its BLAS: their libraries are in the root);
// the allowed packages' directory is last on sys.path; an import nothing provides is refused
// before any of the code runs (no output), with its line and column, naming the allowlist, in
// run_python_code and in execute_code's files alike, while one guarded by try/except ImportError
// runs; the request's own module imports; run_python_code's dependencies are checked against the
// allowlist.
func TestPythonImports(t *testing.T) {
	allow, err := deps.ParseAllowlist("npm:zod@^3,pypi:pyyaml==6.0")
	if err != nil {
		t.Fatal(err)
	}
	e := newPythonEngine(t, debianPython(t), func(o *Options) { o.Allowlist = allow })
	ctx := context.Background()
	const allowed = "Allowed PyPI packages: pypi:pyyaml==6.0"
	success := func(t *testing.T, res *Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != sandbox.StatusSuccess {
			t.Fatalf("status %s, error %+v, stderr %q", res.Status, res.Error, res.Stderr)
		}
	}

	t.Run("base environment with compiled extensions", func(t *testing.T) {
		code := "import sys, yaml, numpy as np\n" +
			"doc = yaml.load('a: [1, 2, 3]\\nb: x', Loader=yaml.CSafeLoader)\n" +
			"m = np.array([[2.0, 1.0], [1.0, 3.0]])\n" +
			"[doc, yaml.__with_libyaml__, round(float(np.linalg.det(m)), 9), int((np.arange(10) ** 2).sum()), sys.path[-1]]"
		res, err := e.ExecutePython(ctx, PythonRequest{Code: code})
		success(t, res, err)
		want := `[{"a":[1,2,3],"b":"x"},true,5,285,"/conductor/pypi"]`
		if got := compactJSON(t, res.ReturnValue); got != want {
			t.Errorf("returnValue %s, want %s", got, want)
		}
	})

	t.Run("refused before the run", func(t *testing.T) {
		res, err := e.ExecutePython(ctx, PythonRequest{Code: "print('ran')\nx = 1\nimport requests\n"})
		if err != nil {
			t.Fatal(err)
		}
		got := res.Error
		if res.Status != sandbox.StatusError || got == nil || got.Type != sandbox.ErrorDependency || got.Name != "ModuleNotFoundError" || got.Line != 3 || got.Column != 8 {
			t.Fatalf("status %s, error %+v; want a dependency error ModuleNotFoundError at 3:8", res.Status, got)
		}
		for _, want := range []string{"No module named 'requests'", "refused before the code ran", allowed} {
			if !strings.Contains(got.Message, want) {
				t.Errorf("message %q lacks %q", got.Message, want)
			}
		}
		if res.Stdout != "" {
			t.Errorf("the code ran before the refusal: stdout %q", res.Stdout)
		}
	})

	t.Run("an import guarded by try/except ImportError runs", func(t *testing.T) {
		res, err := e.ExecutePython(ctx, PythonRequest{Code: "try:\n    import notinstalled\nexcept ImportError as e:\n    notinstalled = e.name\nnotinstalled"})
		success(t, res, err)
		if got := string(res.ReturnValue); got != `"notinstalled"` {
			t.Errorf("returnValue %s, want the ImportError's module name", got)
		}
	})

	t.Run("execute_code: the request's own module and the base environment", func(t *testing.T) {
		res, err := e.ExecuteCode(ctx, CodeRequest{Language: "python",
			Entrypoint: File{Name: "main.py", Content: "import sys, helper\nprint(helper.dump({'k': [1]}), sys.path[-1])"},
			Files:      []File{{Name: "helper.py", Content: "import yaml\n\ndef dump(v):\n    return yaml.dump(v, Dumper=yaml.CDumper, default_flow_style=True).strip()"}},
		})
		success(t, res, err)
		if want := "{k: [1]} /conductor/pypi\n"; res.Stdout != want {
			t.Errorf("stdout %q, want %q", res.Stdout, want)
		}
	})

	t.Run("execute_code: refused in an additional file", func(t *testing.T) {
		res, err := e.ExecuteCode(ctx, CodeRequest{Language: "python",
			Entrypoint: File{Name: "main.py", Content: "print('ran')\nimport helper"},
			Files:      []File{{Name: "helper.py", Content: "import os\nimport requests"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode == nil || *res.ExitCode != 1 || res.Stdout != "" {
			t.Fatalf("exit %v, stdout %q; want 1 and no output (stderr %q)", res.ExitCode, res.Stdout, res.Stderr)
		}
		for _, want := range []string{`File "/conductor/work/helper.py", line 2`, "ModuleNotFoundError: No module named 'requests'", allowed} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, res.Stderr)
			}
		}
	})

	t.Run("dependencies", func(t *testing.T) {
		res, err := e.ExecutePython(ctx, PythonRequest{Code: "import yaml\nyaml.safe_load('[1]')", Dependencies: []string{"pyyaml", "PyYAML==6.0"}})
		success(t, res, err)
		if string(res.ReturnValue) != "[1]" {
			t.Errorf("returnValue %s", res.ReturnValue)
		}
		_, err = e.ExecutePython(ctx, PythonRequest{Code: "import numpy", Dependencies: []string{"pyyaml", "numpy"}})
		if !errors.Is(err, ErrDependency) || !strings.Contains(err.Error(), "pypi:numpy is not on this server's package allowlist") || !strings.Contains(err.Error(), allowed) {
			t.Errorf("err = %v; want ErrDependency refusing numpy, naming the allowlist", err)
		}
	})
}

// TestPythonImportsDescription: the sentence that tells the model what it may import names the
// base environment's first modules and how many more, and the allowed PyPI packages.
func TestPythonImportsDescription(t *testing.T) {
	allow, err := deps.ParseAllowlist("npm:zod@^3,pypi:pyyaml==6.0,pypi:Requests~=2.31")
	if err != nil {
		t.Fatal(err)
	}
	if got := New(Options{Allowlist: allow}).PythonImports(); got != "" {
		t.Errorf("without Python: %q", got)
	}
	modules := strings.Fields("apt dbus gi jwt numpy oauthlib pip pygments setuptools six toml wheel yaml yq")
	py := &runtimes.Runtime{Name: "python", Languages: []runtimes.Language{{Name: "python", Extensions: []string{".py"}}}, Modules: modules}
	got := New(Options{Allowlist: allow, Runtimes: &runtimes.Set{Runtimes: []*runtimes.Runtime{py}}}).PythonImports()
	want := "Imports: the standard library; the interpreter's packages (apt, dbus, gi, jwt, numpy, oauthlib, pip, pygments, setuptools, six, toml, wheel and 2 more); " +
		"the allowed PyPI packages (pyyaml==6.0, requests~=2.31; list them in dependencies). Any other import is refused before the code runs, naming its line."
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	py.Modules = nil
	if got := New(Options{Runtimes: &runtimes.Set{Runtimes: []*runtimes.Runtime{py}}}).PythonImports(); got != "Imports: the standard library. Any other import is refused before the code runs, naming its line." {
		t.Errorf("no packages: %q", got)
	}
}
