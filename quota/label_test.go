package quota

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

func fsxattrOf(t *testing.T, path string) fsxattr {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var x fsxattr
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFsgetxattr, uintptr(unsafe.Pointer(&x))); e != 0 {
		t.Fatalf("FS_IOC_FSGETXATTR %s: %v", path, e)
	}
	return x
}

// labelTree puts the workspace and everything in it into the project, with
// inheritance so that what is created later joins it too, and never follows
// a link out. xfs keeps project ids whether or not quotas are on, so this
// runs even on kernels without quota support.
func TestLabelTree(t *testing.T) {
	mnt := testenv.LoopMount(t, 320<<20, testenv.Filesystem{Mkfs: []string{"mkfs.xfs", "-q", "-f"}})
	ws, outside := filepath.Join(mnt, "ws"), filepath.Join(mnt, "outside")
	for _, d := range []string{filepath.Join(ws, "a", "b"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(ws, "a", "b", "f"), filepath.Join(ws, "top"), filepath.Join(outside, "secret")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(ws, "out")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(ws, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(ws, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const id = 1<<30 | 77
	if err := labelTree(context.Background(), fd, id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "a", "later"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		id      uint32
		inherit bool
	}{
		{ws, id, true},
		{filepath.Join(ws, "a"), id, true},
		{filepath.Join(ws, "a", "b"), id, true},
		{filepath.Join(ws, "a", "b", "f"), id, false},
		{filepath.Join(ws, "top"), id, false},
		{filepath.Join(ws, "a", "later"), id, false}, // inherited
		{outside, 0, false},
		{filepath.Join(outside, "secret"), 0, false},
	}
	for _, tc := range tests {
		x := fsxattrOf(t, tc.path)
		if x.ProjID != tc.id || (x.XFlags&fsXflagProjinherit != 0) != tc.inherit {
			t.Errorf("%s: project %d inherit %v, want %d %v", tc.path, x.ProjID, x.XFlags&fsXflagProjinherit != 0, tc.id, tc.inherit)
		}
	}
}
