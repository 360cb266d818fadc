package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sweep removes stale sandbox cgroups left behind by dead conductor instances.
//
// It looks only directly inside our own parents (every directory in Parent: on v1 one per
// hierarchy libcontainer uses, plus the hybrid cgroup2 tree) and only at directories
// whose name starts with Prefix. Of those it removes the ones isStale(name) reports as
// stale (the caller encodes instance markers in the names and knows which owners are
// dead), plus Detect's own probe directories (<prefix>probe-<pid>-<rand>) whose pid is no
// longer alive. The server leaf <prefix>server is never touched. Removal is rmdir only,
// depth first; a cgroup that still has processes is skipped and reported in the
// returned error, which also carries any other failures. It returns the directories it
// removed.
func (h *Host) Sweep(ctx context.Context, isStale func(name string) bool) ([]string, error) {
	var dirs []string
	for _, d := range h.parentDir {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)

	var removed []string
	var errs []error
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cgroups: sweep %s: %w", d, err))
			}
			continue
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return removed, errors.Join(append(errs, err)...)
			}
			n := e.Name()
			if !e.IsDir() || !strings.HasPrefix(n, h.prefix) || n == h.prefix+serverLeaf {
				continue
			}
			if !h.deadProbe(n) && (isStale == nil || !isStale(n)) {
				continue
			}
			rm, err := removeCgroupTree(h.env.rmdir, filepath.Join(d, n))
			removed = append(removed, rm...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return removed, errors.Join(errs...)
}

// deadProbe reports whether n is a probe directory of a process that no longer exists.
func (h *Host) deadProbe(n string) bool {
	rest, ok := strings.CutPrefix(n, h.prefix+probeInfix)
	if !ok {
		return false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil || pid <= 0 || pid == h.env.pid {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// removeCgroupTree rmdirs p and its sub-cgroups, depth first, refusing any that still has
// processes.
func removeCgroupTree(rmdir func(string) error, p string) ([]string, error) {
	ents, err := os.ReadDir(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("cgroups: sweep %s: %w", p, err)
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		rm, err := removeCgroupTree(rmdir, filepath.Join(p, e.Name()))
		removed = append(removed, rm...)
		if err != nil {
			return removed, err
		}
	}
	if b, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err == nil {
		if pids := parseProcs(b); len(pids) > 0 {
			return removed, fmt.Errorf("cgroups: sweep: %s still has processes %v, skipped", p, pids)
		}
	}
	if err := rmdir(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return removed, fmt.Errorf("cgroups: sweep: rmdir %s: %w", p, err)
	}
	return append(removed, p), nil
}
