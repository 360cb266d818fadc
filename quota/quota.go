package quota

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Variable is the setting this package enforces, named in every refusal.
const Variable = "MCP_CONDUCTOR_WORKSPACE_QUOTA"

// Sentinel errors callers branch on.
var (
	// ErrOverQuota: the workspace holds as much as its quota allows or more.
	ErrOverQuota = errors.New("workspace quota reached")
	// ErrUnmeasurable: the usage could not be measured in time (fail closed).
	ErrUnmeasurable = errors.New("workspace usage could not be measured")
	// ErrSetup: project quotas exist here but could not be set up.
	ErrSetup = errors.New("workspace quota could not be set")
)

// Mode is how the quota is enforced on this host.
type Mode string

const (
	// ModeProject: the kernel refuses writes past the quota (EDQUOT).
	ModeProject Mode = "project"
	// ModeChecked: usage is measured before each run; over it, the run is refused.
	ModeChecked Mode = "checked"
)

// DefaultScanTimeout bounds one measurement of the workspace's usage.
const DefaultScanTimeout = 10 * time.Second

// Quota is the bound on one workspace directory.
type Quota struct {
	dir    string
	limit  int64
	mode   Mode
	fsName string
	reason string // why ModeChecked
	projID uint32 // ModeProject only
	scan   time.Duration
}

// Plan inspects dir and says how a quota of limit bytes would be enforced,
// changing nothing. `conductor doctor` uses it; Setup starts from it.
func Plan(dir string, limit int64) (*Quota, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("quota: limit %d must be positive", limit)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("quota: workspace %s: %w", dir, err)
	}
	defer unix.Close(fd)
	q := &Quota{dir: dir, limit: limit, mode: ModeChecked, scan: DefaultScanTimeout}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return nil, fmt.Errorf("quota: statfs %s: %w", dir, err)
	}
	q.fsName = fsName(sfs.Type)
	if os.Geteuid() != 0 {
		q.reason = "rootless: project quotas need root"
		return q, nil
	}
	st, err := projectState(fd)
	switch {
	case errors.Is(err, unix.ENOSYS):
		q.reason = fmt.Sprintf("quotactl_fd gives ENOSYS for this %s filesystem: the kernel (it needs Linux 5.14 or later with CONFIG_QUOTA, and CONFIG_QFMT_V2 for ext4 or CONFIG_XFS_QUOTA for xfs) or the filesystem offers no quotas", q.fsName)
	case err != nil:
		q.reason = fmt.Sprintf("no project quota support on this %s filesystem (%v); for enforcement use ext4 with `tune2fs -O quota,project` mounted with prjquota, or xfs mounted with pquota", q.fsName, err)
	case st&fsQuotaPDQEnforced == 0:
		q.reason = fmt.Sprintf("project quotas are not enforced on this %s filesystem; mount it with prjquota (ext4, after `tune2fs -O quota,project`) or pquota (xfs)", q.fsName)
	default:
		q.mode = ModeProject
	}
	return q, nil
}

// Setup plans the quota and, where the kernel can enforce it, applies it:
// the workspace and everything in it join a project whose hard block limit
// is the quota. Where project quotas are enforced but setting them fails,
// it returns ErrSetup: the admin asked for a bound that cannot be applied.
func Setup(ctx context.Context, dir string, limit int64, log *slog.Logger) (*Quota, error) {
	q, err := Plan(dir, limit)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if q.mode != ModeProject {
		log.Info("workspace quota checked before each run", "workspace", dir, "quota", limit, "why", q.reason)
		return q, nil
	}
	if err := q.applyProject(ctx); err != nil {
		return nil, fmt.Errorf("%w on %s (%s, project quotas enforced): %w; fix the filesystem or unset %s", ErrSetup, dir, q.fsName, err, Variable)
	}
	log.Info("workspace quota enforced by project quota", "workspace", dir, "quota", limit, "fs", q.fsName, "project", q.projID)
	return q, nil
}

// Mode says how the quota is enforced.
func (q *Quota) Mode() Mode { return q.mode }

// Limit is the quota in bytes.
func (q *Quota) Limit() int64 { return q.limit }

// Describe is the one line doctor prints.
func (q *Quota) Describe() string {
	if q.mode == ModeProject {
		return fmt.Sprintf("%s quota on %s: enforced by project quota on %s (writes past it fail with EDQUOT)", FormatSize(q.limit), q.dir, q.fsName)
	}
	return fmt.Sprintf("%s quota on %s: checked before each run: %s", FormatSize(q.limit), q.dir, q.reason)
}

// Check refuses a run when the workspace is at or over its quota. With a
// project quota it reads the kernel's count (one syscall); otherwise it
// measures the workspace, within the scan bound.
func (q *Quota) Check(ctx context.Context) error {
	var used int64
	var partial bool
	var err error
	if q.mode == ModeProject {
		used, err = q.projectUsage()
	} else {
		ctx, cancel := context.WithTimeout(ctx, q.scan)
		defer cancel()
		used, partial, err = usage(ctx, q.dir, q.limit)
	}
	if err != nil {
		return fmt.Errorf("%w: %s within %s: %w; the admin can clean the workspace, or move it to a filesystem with project quotas, or unset %s",
			ErrUnmeasurable, q.dir, q.scan, err, Variable)
	}
	if used >= q.limit {
		uses := "uses"
		if partial {
			uses = "uses at least"
		}
		return fmt.Errorf("%w: the workspace %s %s %s, its quota is %s (%s); runs are refused until the admin cleans the workspace or raises %s",
			ErrOverQuota, q.dir, uses, FormatSize(used), FormatSize(q.limit), Variable, Variable)
	}
	return nil
}

// projectID derives the workspace's project id from its device and inode, so
// that a restart finds the same project; the high bit range keeps it clear of
// the small ids admins usually hand out.
func projectID(st *unix.Stat_t) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d:%d", st.Dev, st.Ino)
	return 1<<30 | h.Sum32()&(1<<30-1)
}

func (q *Quota) applyProject(ctx context.Context) error {
	fd, err := unix.Open(q.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	q.projID = projectID(&st)
	if err := labelTree(ctx, fd, q.projID); err != nil {
		return fmt.Errorf("give the workspace project id %d: %w", q.projID, err)
	}
	blocks := uint64((q.limit + 1023) / 1024)
	if err := setProjectLimit(fd, q.projID, blocks); err != nil {
		return fmt.Errorf("set the limit of project %d: %w", q.projID, err)
	}
	got, err := getProject(fd, q.projID)
	if err != nil {
		return fmt.Errorf("read back project %d: %w", q.projID, err)
	}
	if got.BHardLimit != blocks {
		return fmt.Errorf("project %d limit reads back as %d KiB, want %d", q.projID, got.BHardLimit, blocks)
	}
	return nil
}

func (q *Quota) projectUsage() (int64, error) {
	fd, err := unix.Open(q.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	d, err := getProject(fd, q.projID)
	if err != nil {
		return 0, err
	}
	return int64(d.CurSpace), nil
}

// FormatSize renders n bytes for people: "8 MiB", "1.5 GiB", "512 B".
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func fsName(magic int64) string {
	switch magic {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("filesystem type %#x", magic)
}
