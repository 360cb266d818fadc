package quota

import (
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel interfaces golang.org/x/sys/unix does not define (linux/fs.h,
// linux/quota.h, linux/dqblk_xfs.h).
const (
	fsIocFsgetxattr          = 0x801c581f // _IOR('X', 31, struct fsxattr)
	fsIocFssetxattr          = 0x401c5820 // _IOW('X', 32, struct fsxattr)
	fsXflagProjinherit       = 0x00000200
	fsXflagHasattr           = 0x80000000 // reported by FSGETXATTR, not settable
	prjQuota                 = 2
	qGetQuota                = 0x800007
	qSetQuota                = 0x800008
	qXGetQStatV              = 'X'<<8 + 8
	qifBLimits               = 1
	fsQStatVVersion1         = 1
	fsQuotaPDQEnforced       = 1 << 5
	subCmdShift              = 8
	maxLabelDepth            = 4096
	direntBatch              = 256
	statBlockSize      int64 = 512
)

// fsxattr is struct fsxattr.
type fsxattr struct {
	XFlags     uint32
	ExtSize    uint32
	NExtents   uint32
	ProjID     uint32
	CowExtSize uint32
	_          [8]byte
}

// dqblk is struct if_dqblk.
type dqblk struct {
	BHardLimit uint64 // 1 KiB blocks
	BSoftLimit uint64
	CurSpace   uint64 // bytes
	IHardLimit uint64
	ISoftLimit uint64
	CurInodes  uint64
	BTime      uint64
	ITime      uint64
	Valid      uint32
	_          uint32
}

// qfilestatv is struct fs_qfilestatv.
type qfilestatv struct {
	Ino      uint64
	NBlks    uint64
	NExtents uint32
	_        uint32
}

// quotaStatV is struct fs_quota_statv.
type quotaStatV struct {
	Version      int8
	_            uint8
	Flags        uint16
	InCoreDQs    uint32
	UQuota       qfilestatv
	GQuota       qfilestatv
	PQuota       qfilestatv
	BTimeLimit   int32
	ITimeLimit   int32
	RTBTimeLimit int32
	BWarnLimit   uint16
	IWarnLimit   uint16
	RTBWarnLimit uint16
	_            uint16
	_            uint32
	_            [7]uint64
}

func quotactlFd(fd int, cmd, id uint32, addr unsafe.Pointer) error {
	_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(fd), uintptr(cmd<<subCmdShift|prjQuota), uintptr(id), uintptr(addr), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// projectState returns the filesystem's quota state flags (FS_QUOTA_*).
func projectState(fd int) (uint16, error) {
	st := quotaStatV{Version: fsQStatVVersion1}
	if err := quotactlFd(fd, qXGetQStatV, 0, unsafe.Pointer(&st)); err != nil {
		return 0, err
	}
	return st.Flags, nil
}

func getProject(fd int, id uint32) (dqblk, error) {
	var d dqblk
	err := quotactlFd(fd, qGetQuota, id, unsafe.Pointer(&d))
	return d, err
}

func setProjectLimit(fd int, id uint32, blocks uint64) error {
	d := dqblk{BHardLimit: blocks, BSoftLimit: blocks, Valid: qifBLimits}
	return quotactlFd(fd, qSetQuota, id, unsafe.Pointer(&d))
}

// setProject gives the open file fd project id, and to a directory also
// PROJINHERIT so what is created in it joins the project.
func setProject(fd int, id uint32, dir bool) error {
	var x fsxattr
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFsgetxattr, uintptr(unsafe.Pointer(&x))); e != 0 {
		return fmt.Errorf("FS_IOC_FSGETXATTR: %w", e)
	}
	want := x.XFlags &^ fsXflagHasattr
	if dir {
		want |= fsXflagProjinherit
	}
	if x.ProjID == id && x.XFlags&^fsXflagHasattr == want {
		return nil
	}
	x.ProjID, x.XFlags = id, want
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFssetxattr, uintptr(unsafe.Pointer(&x))); e != 0 {
		return fmt.Errorf("FS_IOC_FSSETXATTR: %w", e)
	}
	return nil
}

// labelTree puts dirfd and every directory and regular file below it into
// project id, never following a link. Other entries (links, fifos, sockets,
// devices) hold no data blocks worth counting and are left alone.
func labelTree(ctx context.Context, dirfd int, id uint32) error {
	return walk(ctx, dirfd, 0, func(fd int, st *unix.Stat_t) error {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			return setProject(fd, id, true)
		case unix.S_IFREG:
			return setProject(fd, id, false)
		}
		return nil
	}, true)
}

// Usage measures the disk space under dir: allocated blocks of every entry,
// each inode once, links not followed. It stops early, returning what it has
// counted, once the count exceeds stopAbove (0 = never); and fails when ctx
// ends first.
func Usage(ctx context.Context, dir string, stopAbove int64) (int64, error) {
	n, _, err := usage(ctx, dir, stopAbove)
	return n, err
}

// usage is Usage that also says whether it stopped early.
func usage(ctx context.Context, dir string, stopAbove int64) (int64, bool, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false, err
	}
	defer unix.Close(fd)
	seen := map[[2]uint64]bool{}
	var total int64
	err = walk(ctx, fd, 0, func(_ int, st *unix.Stat_t) error {
		key := [2]uint64{st.Dev, st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		total += st.Blocks * statBlockSize
		if stopAbove > 0 && total > stopAbove {
			return errStop
		}
		return nil
	}, false)
	if errors.Is(err, errStop) {
		return total, true, nil
	}
	return total, false, err
}

var errStop = errors.New("stop")

// walk calls visit for dirfd and every entry below it. With open, visit gets
// an fd of each directory and regular file (opened without following links,
// and confirmed to be what was stat'ed); otherwise fd is -1 for all but dirs.
func walk(ctx context.Context, dirfd, depth int, visit func(fd int, st *unix.Stat_t) error, open bool) error {
	if depth > maxLabelDepth {
		return fmt.Errorf("directories nested deeper than %d", maxLabelDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return err
	}
	if depth == 0 {
		if err := visit(dirfd, &st); err != nil {
			return err
		}
	}
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(dup), "dir")
	defer d.Close()
	for {
		names, err := d.Readdirnames(direntBatch)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := visitEntry(ctx, dirfd, name, depth, visit, open); err != nil {
				return err
			}
		}
		if err != nil {
			return nil // io.EOF, or the directory vanished under us
		}
	}
}

func visitEntry(ctx context.Context, dirfd int, name string, depth int, visit func(int, *unix.Stat_t) error, open bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", name, err)
	}
	kind := st.Mode & unix.S_IFMT
	if kind != unix.S_IFDIR && (!open || kind != unix.S_IFREG) {
		return visit(-1, &st)
	}
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	if kind == unix.S_IFDIR {
		flags |= unix.O_DIRECTORY
	}
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil // replaced while we looked: not ours to follow
		}
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(fd)
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return err
	}
	if got.Ino != st.Ino || got.Dev != st.Dev {
		return nil // swapped between stat and open
	}
	if err := visit(fd, &got); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if kind == unix.S_IFDIR {
		return walk(ctx, fd, depth+1, visit, open)
	}
	return nil
}
