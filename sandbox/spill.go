package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// spillDirName is where full output goes inside the workspace when the
// inline copy is capped.
const spillDirName = ".conductor/output"

// DefaultSpillMax bounds one spilled stream.
const DefaultSpillMax = 256 << 20

// workspace is the host side of MCP_CONDUCTOR_WORKSPACE.
type workspace struct {
	path       string
	uid, gid   int  // the directory's owner; spill files are given to it
	chownFiles bool // root mode: files the host creates go to the owner
}

// resolveSafely is how the host opens anything inside the workspace: the
// sandbox may have planted symlinks there, and none may be followed, nor may
// the path leave the workspace.
var resolveSafely = &unix.OpenHow{Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}

// openSpill creates a new spill file named name in the workspace's output
// directory, never following a link the sandbox made. It returns the file
// and its path as seen from both sides (the workspace has the same path in
// the sandbox).
func (w *workspace) openSpill(name string) (*os.File, string, error) {
	root, err := unix.Open(w.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("workspace: %w", err)
	}
	defer unix.Close(root)
	dir := root
	for _, part := range []string{".conductor", "output"} {
		if err := unix.Mkdirat(dir, part, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, "", fmt.Errorf("workspace: mkdir %s: %w", part, err)
		}
		how := *resolveSafely
		how.Flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
		next, err := unix.Openat2(dir, part, &how)
		if err != nil {
			return nil, "", fmt.Errorf("workspace: %s is not a plain directory (a link made by a sandbox?): %w", part, err)
		}
		if w.chownFiles {
			_ = unix.Fchownat(next, "", w.uid, w.gid, unix.AT_EMPTY_PATH)
		}
		if dir != root {
			unix.Close(dir)
		}
		dir = next
	}
	defer unix.Close(dir)
	how := *resolveSafely
	how.Flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	how.Mode = 0o644
	fd, err := unix.Openat2(dir, name, &how)
	if err != nil {
		return nil, "", fmt.Errorf("workspace: create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if w.chownFiles {
		_ = f.Chown(w.uid, w.gid)
	}
	return f, filepath.Join(w.path, spillDirName, name), nil
}
