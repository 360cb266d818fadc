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

// GrantProblems names the path grants in s.RunArgs that give code nothing in a sandbox, so that
// conductor refuses them instead of telling the model about a permission that cannot work: an
// allow-read path the sandbox does not hold (inRoot reports whether its read-only root has the
// path; /tmp, /dev, /proc and the workspace are always there, and the outputs directory when runs
// have one), and an allow-write path outside what code can write there (/tmp, /dev, the
// workspace and the outputs directory; the root is read-only). A directory
// above the workspace is usable: it covers the workspace.
func GrantProblems(s Settings, inRoot func(path string) bool) []string {
	under := func(p, dir string) bool {
		return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
	}
	shared := func(p string) bool {
		return p == "/" || under(p, "/tmp") || under(p, "/dev") || (s.OutputsSize > 0 && under(p, OutputsDir)) ||
			(s.Workspace != "" && (under(p, s.Workspace) || under(s.Workspace, p)))
	}
	ws := "none: " + VarWorkspace + " is unset"
	if s.Workspace != "" {
		ws = s.Workspace
	}
	var probs []string
	for _, f := range s.RunArgs {
		perm, list, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if !ok || (perm != "allow-read" && perm != "allow-write") {
			continue
		}
		for _, p := range strings.Split(list, ",") {
			switch {
			case perm == "allow-read" && !shared(p) && !under(p, "/proc") && !inRoot(p):
				probs = append(probs, fmt.Sprintf("allow-read=%s grants nothing: %s is not in the sandbox, which holds only its "+
					"read-only root (deno and the admin's tools), a fresh /tmp and the workspace (%s)", p, p, ws))
			case perm == "allow-write" && !shared(p):
				probs = append(probs, fmt.Sprintf("allow-write=%s grants nothing: the sandbox's root is read-only; code can write "+
					"only /tmp (fresh each run) and the workspace (%s)", p, ws))
			}
		}
	}
	return probs
}

// GrantFix is what the admin does about GrantProblems.
const GrantFix = "remove those paths from " + VarRunArgs + ", or set " + VarWorkspace +
	" to the host directory code should share (and grant that)"
