package artifacts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNotRegular: a workspace reference that is not a regular file now (a link, a directory, a
// FIFO, a device) is not read.
var ErrNotRegular = errors.New("not a regular file")

// ErrFileTooLarge: a workspace file over the read cap is not read.
var ErrFileTooLarge = errors.New("larger than the read cap")

// ReadBeneath reads the regular file at rel (workspace-relative, "/"-separated) below root,
// following no symbolic link on the way (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), at most
// max bytes. It never opens a FIFO or device for reading: the path is opened O_PATH, checked to
// be a regular file, then that very file is reopened.
func ReadBeneath(root, rel string, max int64) ([]byte, error) {
	if !ValidPath(rel) {
		return nil, fmt.Errorf("%q: %w", rel, ErrNotFound)
	}
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: %w", root, err)
	}
	defer unix.Close(dir)
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	pfd, err := unix.Openat2(dir, rel, &how)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("%s: %w", rel, ErrNotFound)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return nil, fmt.Errorf("%s: a symbolic link or a path leaving the workspace: %w", rel, ErrNotRegular)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %w", rel, ErrNotRegular)
	}
	if st.Size > max {
		return nil, fmt.Errorf("%s: %w: %d bytes, the cap is %d", rel, ErrFileTooLarge, st.Size, max)
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: grew past %d bytes", rel, ErrFileTooLarge, max)
	}
	return data, nil
}
