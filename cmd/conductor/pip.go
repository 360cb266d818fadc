package main

import (
	"os"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// pythonRuntime is execute_code's Python row, nil when none is offered.
func pythonRuntime(rs *runtimes.Set) *runtimes.Runtime {
	if rs == nil {
		return nil
	}
	rt, _, ok := rs.Language("python")
	if !ok {
		return nil
	}
	return rt
}

// pyMounts are the run sandboxes' read-only mounts of the view's pypi: packages at
// config.PyPackagesDir: exec, so compiled extension modules load.
func pyMounts(v *deps.View) []sandbox.Mount {
	if v == nil {
		return nil
	}
	if st, err := os.Stat(v.PyPackages); err != nil || !st.IsDir() {
		return nil
	}
	return []sandbox.Mount{{Host: v.PyPackages, Path: config.PyPackagesDir, Exec: true}}
}
