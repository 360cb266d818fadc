package config

import (
	"fmt"
	"strings"
)

// PathAccess says whether deno flags (RunArgs: --allow-read=/a,/b, bare --allow-read,
// --allow-all) let code read and write dir, an absolute clean path: a grant covers it when it is
// global or names dir or a directory above it. Deny flags are not consulted: they can only take
// part of it away.
func PathAccess(flags []string, dir string) (read, write bool) {
	covers := func(perm string) bool {
		flag := "--allow-" + perm
		for _, f := range flags {
			if f == "--allow-all" || f == flag {
				return true
			}
			list, ok := strings.CutPrefix(f, flag+"=")
			if !ok {
				continue
			}
			for _, p := range strings.Split(list, ",") {
				if p == dir || p == "/" || strings.HasPrefix(dir, strings.TrimSuffix(p, "/")+"/") {
					return true
				}
			}
		}
		return false
	}
	return covers("read"), covers("write")
}

// WorkspaceProblem says what the workspace setting cannot give code because RunArgs does not
// grant it ("" when the workspace is unset or code may read and write it).
func WorkspaceProblem(s Settings) string {
	if s.Workspace == "" {
		return ""
	}
	read, write := PathAccess(s.RunArgs, s.Workspace)
	var missing []string
	if !read {
		missing = append(missing, "allow-read="+s.Workspace)
	}
	if !write {
		missing = append(missing, "allow-write="+s.Workspace)
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("%s is %s, but %s does not grant %s: code is refused there (add it to %s)",
		VarWorkspace, s.Workspace, VarRunArgs, strings.Join(missing, " or "), VarRunArgs)
}

// GrantPath adds path to the --allow-<perm> list in flags, merging with an
// existing list (deno rejects a repeated flag) and leaving a global grant
// alone. It adds the paths conductor itself grants deno (the channel, the
// DNS responder, a launcher's working directory) to the admin's flags.
func GrantPath(flags []string, perm, path string) []string {
	flag := "--allow-" + perm
	out := make([]string, 0, len(flags)+1)
	merged := false
	for _, f := range flags {
		switch {
		case f == "--allow-all" || f == flag:
			merged = true
		case strings.HasPrefix(f, flag+"="):
			f += "," + path
			merged = true
		}
		out = append(out, f)
	}
	if !merged {
		out = append(out, flag+"="+path)
	}
	return out
}
