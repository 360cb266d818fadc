package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// mount is one cgroup filesystem mount taken from /proc/self/mountinfo.
type mount struct {
	Point       string   // mount point, e.g. /sys/fs/cgroup/memory
	Root        string   // root of the mount inside the hierarchy (field 4), "/" unless bind-mounted/namespaced
	FSType      string   // "cgroup" (v1) or "cgroup2"
	Controllers []string // v1: controllers (and "name=..." for named hierarchies) bound to this hierarchy
}

// parseMountinfo returns the cgroup and cgroup2 mounts listed in mountinfo text
// (proc(5) format: "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS").
// v1 controllers are read from the super options; which options are controllers is decided
// by the controller names known from /proc/self/cgroup (known), so mount flags such as
// "rw", "xattr" or "release_agent=..." are never mistaken for controllers.
func parseMountinfo(text []byte, known map[string]bool) ([]mount, error) {
	var out []mount
	s := bufio.NewScanner(bytes.NewReader(text))
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		line := s.Text()
		if line == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo: no separator in line %q", line)
		}
		f := strings.Fields(pre)
		p := strings.Fields(post)
		if len(f) < 5 || len(p) < 2 {
			return nil, fmt.Errorf("mountinfo: short line %q", line)
		}
		fstype := p[0]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		m := mount{Root: unescapeMountinfo(f[3]), Point: unescapeMountinfo(f[4]), FSType: fstype}
		if fstype == "cgroup" && len(p) >= 3 {
			for opt := range strings.SplitSeq(p[2], ",") {
				if known[opt] || strings.HasPrefix(opt, "name=") {
					m.Controllers = append(m.Controllers, opt)
				}
			}
		}
		out = append(out, m)
	}
	return out, s.Err()
}

// unescapeMountinfo undoes the octal escaping (\040 for space etc.) used in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// procCgroup is the parsed content of /proc/<pid>/cgroup.
type procCgroup struct {
	V1    map[string]string // controller (or "name=systemd") -> cgroup path
	V2    string            // path from the "0::" line, "" if absent
	HasV2 bool
}

// parseProcCgroup parses /proc/self/cgroup ("hierarchy-ID:controller-list:cgroup-path" per line).
func parseProcCgroup(text []byte) (procCgroup, error) {
	pc := procCgroup{V1: map[string]string{}}
	s := bufio.NewScanner(bytes.NewReader(text))
	for s.Scan() {
		line := s.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return pc, fmt.Errorf("/proc/self/cgroup: malformed line %q", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			pc.V2, pc.HasV2 = parts[2], true
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c != "" {
				pc.V1[c] = parts[2]
			}
		}
	}
	return pc, s.Err()
}

// classifyMode decides the cgroup mode the way libcontainer will see it: unified when the
// cgroup root itself is cgroup2; otherwise v1 hierarchies mounted directly below the root
// make it legacy, or hybrid when cgroup2 is also mounted at <root>/unified (the only place
// libcontainer's hybrid support looks).
func classifyMode(root string, rootIsCgroup2 bool, mounts []mount) (Mode, []string) {
	var notes []string
	if rootIsCgroup2 {
		return ModeUnified, nil
	}
	var v1, hybrid bool
	var stray []string
	for _, m := range mounts {
		switch {
		case m.FSType == "cgroup" && filepath.Dir(m.Point) == root:
			v1 = true
		case m.FSType == "cgroup2" && m.Point == filepath.Join(root, "unified"):
			hybrid = true
		case m.FSType == "cgroup2":
			stray = append(stray, m.Point)
		}
	}
	for _, p := range stray {
		notes = append(notes, fmt.Sprintf("cgroup2 is mounted at %s, which libcontainer does not use (it only looks at %s and %s/unified)", p, root, root))
	}
	switch {
	case v1 && hybrid:
		return ModeHybrid, notes
	case v1:
		return ModeLegacy, notes
	default:
		return ModeNone, notes
	}
}

// fsPath maps a cgroup path as seen in /proc/self/cgroup to a directory below mount m,
// the same way libcontainer does (relative to the mount's root). ok is false when the
// cgroup is not visible through this mount (e.g. a container that sees only a sub-tree).
func fsPath(m mount, cgPath string) (string, bool) {
	rel, err := filepath.Rel(m.Root, cgPath)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.Join(m.Point, rel), true
}

// parseProcs returns the pids listed in a cgroup.procs file.
func parseProcs(b []byte) []int {
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}
