package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
)

// Start sets up cgroups for a process that starts sandboxes: Claim (Detect, and
// on cgroup v2 without delegation a transient Delegate=yes scope of its own),
// then PrepareDelegation. The server calls it once at startup, and the tests that
// start sandboxes call it too (sandbox's and internal/sandboxtest's helpers,
// this package's TestRealApplyAsRoot), so tests take the server's path: in a
// delegated cgroup v2 subtree (a Delegate=yes scope or service) the calling
// process moves into the server leaf and enables the controllers, exactly as
// the server does. Calling it again in the same process is a no-op after
// Detect (the leaf's parent is recognised as ours, nothing is pending).
func Start(ctx context.Context, o Options) (*Host, error) {
	h, err := Claim(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := h.PrepareDelegation(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// PrepareDelegation readies a delegated cgroup v2 subtree for sandboxes. cgroup v2's
// "no internal processes" rule forbids enabling controllers for the children of a cgroup
// that itself holds processes, so when conductor lives directly in the delegated cgroup P
// (the usual case under `systemd-run --user --scope -p Delegate=yes` or a Delegate=yes
// service), it
//
//  1. creates the leaf P/<prefix>server and moves this process (all its threads) into it,
//  2. writes +memory, +pids and +cpu (those that Detect found available but not yet
//     enabled) to P/cgroup.subtree_control,
//
// after which sandboxes are created as P/<name>, siblings of the server leaf. Their
// common ancestor P is ours, which is what cgroup v2 requires for an unprivileged user to
// move the sandbox's init from the server leaf into its cgroup.
//
// It acts only when Detect found a cgroup v2 subtree delegated to us that we own
// (rootless: P and its cgroup.procs/cgroup.subtree_control owned by our euid; root: P
// given via Options.Delegated or marked delegated by systemd with the trusted.delegate
// xattr) and has controllers to enable; otherwise (v1, hybrid, nothing pending) it is a
// no-op. Call it once at startup, before the first sandbox and before starting any
// other child process. It never touches processes other than this one: if P holds other
// processes Detect already reported the limits as missing.
func (h *Host) PrepareDelegation(ctx context.Context) error {
	if h.Mode != ModeUnified || len(h.pending) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := h.parentDir[""]
	if h.v2own == h.v2parent {
		leaf := filepath.Join(dir, h.prefix+serverLeaf)
		if err := h.env.mkdir(leaf); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroups: create server leaf %s: %w", leaf, err)
		}
		if err := h.env.write(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(h.env.pid)); err != nil {
			return fmt.Errorf("cgroups: move conductor (pid %d) into %s: %w", h.env.pid, leaf, err)
		}
		h.v2own = filepath.Join(h.v2parent, h.prefix+serverLeaf)
		h.own.V2 = h.v2own
	}
	var errs []error
	for _, c := range h.pending {
		err := h.env.write(filepath.Join(dir, "cgroup.subtree_control"), "+"+c)
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroups: enable %s in %s/cgroup.subtree_control: %w", c, dir, err))
			h.Controllers[c] = false
			h.why[c] = LimitError{Limit: c,
				Reason: fmt.Sprintf("cgroup v2: enabling %s in %s/cgroup.subtree_control failed: %v", c, dir, err),
				Fix:    "start conductor alone in its own delegated cgroup: systemd-run --user --scope -p Delegate=yes conductor … (root: systemd-run -p Delegate=yes --unit=conductor conductor …)"}
			continue
		}
		h.how[c] = fmt.Sprintf("cgroup v2 %s in %s/<sandbox> (enabled by conductor in %s/cgroup.subtree_control)", v2File(c), dir, dir)
	}
	h.pending = nil
	return errors.Join(errs...)
}
