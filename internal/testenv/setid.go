package testenv

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// AssertNoSetID walks dir on the host without following symlinks and fails
// tb for any entry with S_ISUID, S_ISGID or S_IWOTH (symlinks, always 0777,
// excepted) or with a security.capability xattr: what a sandbox leaves in a
// workspace must be harmless to every local user (issue 9, finding 1). It
// returns the number of entries seen, so a caller can check that the walk
// saw what the sandbox made.
func AssertNoSetID(tb testing.TB, dir string) int {
	tb.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil
		}
		if bad := st.Mode & (unix.S_ISUID | unix.S_ISGID | unix.S_IWOTH); bad != 0 {
			tb.Errorf("%s on the host: mode %#o (uid %d) has %#o", path, st.Mode&0o7777, st.Uid, bad)
		}
		_, xerr := unix.Lgetxattr(path, "security.capability", make([]byte, 64))
		switch {
		case xerr == nil:
			tb.Errorf("%s on the host carries a security.capability xattr", path)
		case !errors.Is(xerr, unix.ENODATA) && !errors.Is(xerr, unix.ENOTSUP):
			tb.Errorf("%s: reading security.capability: %v", path, xerr)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("walking %s: %v", dir, err)
	}
	return n
}
