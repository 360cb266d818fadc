package runtimes

import (
	"context"
	"fmt"
	"path"

	"github.com/conductor-sandbox/conductor/rootfs"
)

// PipInRoot is the in-root directory that holds the Python interpreter's own pip (the package
// directory `python -m pip` runs on the host, copied as a rootfs.Tree to PipInRoot/pip). It is
// on no sys.path: only the install sandbox of pypi: packages runs it (Runtime.Pip), and code
// cannot import this copy by name. (A base environment that holds pip itself, as Debian's
// dist-packages with python3-pip do, offers that one to code like any base package; it cannot
// reach an index from a run, whose network is the admin's allow-net.)
const PipInRoot = "/usr/lib/conductor/pip"

// pipProbe prints the directory of the pip package the interpreter would import, without
// importing it, or nothing.
const pipProbe = `import importlib.util, os
s = importlib.util.find_spec("pip")
print(os.path.dirname(s.origin) if s and s.origin else "")
`

// pipLauncher runs pip from PipInRoot (python -I -B -c pipLauncher ARGS...: -I, so no PYTHON*
// variables, user site, script or working directory count). It first makes os.umask honest
// under conductor's seccomp policy, which ignores a umask that would clear S_IWOTH and returns 0
// (see seccomp's modeRules): the old = umask(0); umask(old) query then reads 0, and pip would
// chmod every file it writes to 0666 & ~0, which the policy refuses (EPERM). Here a umask
// always keeps S_IWOTH, so the query reads the mask in force (0022) and pip's modes are 0644.
const pipLauncher = `import os, runpy, sys
_umask = os.umask
os.umask = lambda mask: _umask(mask | 0o002)
sys.path.insert(0, ` + "%q" + `)
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
`

// addPip gives the Python row its pip, when the interpreter has one: the host's pip package
// directory into the root at PipInRoot/pip, and Runtime.Pip running it. pip is pure Python and
// carries its dependencies (pip._vendor), so the directory is all it needs besides the standard
// library.
func addPip(ctx context.Context, exe string, rt *Runtime) {
	lines, err := outputLines(ctx, exe, "-E", "-s", "-c", pipProbe)
	if err != nil || len(lines) == 0 || lines[0] == "" {
		return
	}
	rt.Programs[0].Trees = append(rt.Programs[0].Trees, rootfs.Tree{Host: lines[0], Path: path.Join(PipInRoot, "pip")})
	rt.Pip = []string{rt.Programs[0].Path, "-I", "-B", "-c", fmt.Sprintf(pipLauncher, PipInRoot)}
}
