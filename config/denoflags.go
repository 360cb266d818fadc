package config

import "strings"

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
