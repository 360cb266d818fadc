package outputs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/config"
)

// Defaults of Limits (MCP_CONDUCTOR_OUTPUTS_*).
const (
	DefaultFiles = 32
	DefaultSize  = 32 << 20
	DefaultDepth = 4
	// entriesPerFile: Collect reads at most Files*entriesPerFile directory entries in all (files,
	// directories, links, special files), so a directory of 10 000 entries is not read through.
	entriesPerFile = 4
)

// WorkspaceList is the file in the outputs directory where code names workspace files to
// return, one workspace-relative path a line; it is read, never returned itself.
const (
	WorkspaceList         = ".workspace-files"
	MaxWorkspaceLines     = 64
	MaxWorkspaceListBytes = 4 << 10
)

// Limits bound one collection. Zero fields take their defaults.
type Limits struct {
	Files      int   // most files returned (MCP_CONDUCTOR_OUTPUTS_FILES)
	FileBytes  int64 // most bytes of one file (MCP_CONDUCTOR_OUTPUTS_FILE_SIZE)
	TotalBytes int64 // most bytes of all files together (MCP_CONDUCTOR_OUTPUTS_SIZE)
	Depth      int   // most directory levels below the outputs directory
}

func (l Limits) withDefaults() Limits {
	if l.Files <= 0 {
		l.Files = DefaultFiles
	}
	if l.TotalBytes <= 0 {
		l.TotalBytes = DefaultSize
	}
	if l.FileBytes <= 0 {
		l.FileBytes = l.TotalBytes
	}
	if l.Depth <= 0 {
		l.Depth = DefaultDepth
	}
	return l
}

// ErrNotOutputs is returned by OpenDir for a path that is not a tmpfs directory.
var ErrNotOutputs = errors.New("not an outputs directory")

// beneath is how everything below the outputs directory (and the workspace) is opened: never
// through a link, never off the directory's mount.
func beneath(flags int) *unix.OpenHow {
	return &unix.OpenHow{
		Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
}

// OpenDir opens p, an outputs directory (e.g. /proc/<init pid>/root/outputs while the
// sandbox's code has not run yet), as an O_PATH directory fd, and checks that it is a tmpfs.
// The fd pins the tmpfs after its mount namespace is gone; the caller owns it.
func OpenDir(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open outputs directory %s: %w", p, err)
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("outputs directory %s: %w", p, err)
	}
	if fs.Type != unix.TMPFS_MAGIC {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is on a file system of type %#x, not a tmpfs", ErrNotOutputs, p, fs.Type)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// collector is one walk of an outputs directory.
type collector struct {
	l       Limits
	out     []File
	files   int   // files returned
	bytes   int64 // their bytes
	entries int   // directory entries read
	cut     bool  // the entry budget ran out
}

// Collect walks dir (an fd from OpenDir, or any directory fd) once the sandbox's processes are
// gone, and returns its files sorted by name: the regular files within the limits with their
// content and sniffed type, and every other entry it read as skipped with the reason (a link, a
// special file, a bad name, over a cap). It reads at most Files*4 directory entries, so the
// result is bounded whatever the directory holds; when it stops early the last entry, named
// ".", says so. Only an unreadable dir itself is an error.
func Collect(dir *os.File, l Limits) ([]File, error) {
	c := &collector{l: l.withDefaults()}
	root, err := unix.Openat2(int(dir.Fd()), ".", beneath(unix.O_RDONLY|unix.O_DIRECTORY))
	if err != nil {
		return nil, fmt.Errorf("outputs: open directory: %w", err)
	}
	c.walk(root, "", 0)
	slices.SortFunc(c.out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	if c.cut {
		c.out = append(c.out, File{Name: ".", Skipped: fmt.Sprintf(
			"stopped after reading %d directory entries (%d times %s=%d): the rest of the outputs directory was not read",
			c.entries, entriesPerFile, config.VarOutputsFiles, c.l.Files)})
	}
	return c.out, nil
}

// walk reads the directory fd (it closes it); rel is its path below the outputs directory. Its
// names are read first, within what is left of the entry budget, and examined in sorted order,
// so the same directory gives the same result.
func (c *collector) walk(fd int, rel string, depth int) {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var names []string
	for {
		budget := c.l.Files*entriesPerFile - c.entries
		if budget <= 0 {
			c.cut = true
			break
		}
		batch, err := f.Readdirnames(min(budget, 256)) // leaves out "." and ".."
		c.entries += len(batch)
		names = append(names, batch...)
		if err != nil && !errors.Is(err, io.EOF) {
			c.out = append(c.out, File{Name: cmpName(rel), Skipped: fmt.Sprintf("the directory could not be read: %v", err)})
		}
		if len(batch) == 0 || err != nil {
			break
		}
	}
	slices.Sort(names)
	for _, name := range names {
		c.entry(fd, rel, name, depth)
	}
}

func cmpName(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// entry examines one directory entry of dir without following it.
func (c *collector) entry(dir int, rel, name string, depth int) {
	full := path.Join(rel, name)
	if rel == "" && name == WorkspaceList {
		return // read by Workspace
	}
	if err := CheckName(full); err != nil {
		c.out = append(c.out, skippedName(full, err))
		return
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		c.skip(full, fmt.Sprintf("could not be examined: %v", err))
		return
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		c.file(dir, full, name, st.Size)
	case unix.S_IFDIR:
		if depth+1 >= c.l.Depth {
			c.skip(full, fmt.Sprintf("a directory more than %d levels deep: not read", c.l.Depth-1))
			return
		}
		sub, err := unix.Openat2(dir, name, beneath(unix.O_RDONLY|unix.O_DIRECTORY))
		if err != nil {
			c.skip(full, fmt.Sprintf("the directory could not be opened: %v", err))
			return
		}
		c.walk(sub, full, depth+1)
	default:
		c.skip(full, notRegular(st.Mode))
	}
}

// notRegular is the reason a non-regular file is skipped.
func notRegular(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symbolic link: not followed"
	case unix.S_IFIFO:
		return "a FIFO: not a regular file"
	case unix.S_IFSOCK:
		return "a socket: not a regular file"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device: not a regular file"
	case unix.S_IFDIR:
		return "a directory: not a regular file"
	}
	return fmt.Sprintf("of file type %#o: not a regular file", mode&unix.S_IFMT)
}

func (c *collector) skip(name, why string) {
	c.out = append(c.out, File{Name: name, Skipped: why})
}

// file collects one regular file whose size the directory entry gave, checking the caps before
// reading anything.
func (c *collector) file(dir int, full, name string, size int64) {
	switch {
	case size > c.l.FileBytes:
		c.skipSized(full, size, fmt.Sprintf("%d bytes, over the per-file cap of %d bytes (%s)", size, c.l.FileBytes, config.VarOutputsFileSize))
		return
	case c.bytes+size > c.l.TotalBytes:
		c.skipSized(full, size, fmt.Sprintf("%d bytes, over what is left of the total cap of %d bytes (%s)", size, c.l.TotalBytes, config.VarOutputsSize))
		return
	case c.files >= c.l.Files:
		c.skipSized(full, size, fmt.Sprintf("over the count cap: %d files are returned at most (%s)", c.l.Files, config.VarOutputsFiles))
		return
	}
	data, st, err := readFile(dir, name, min(c.l.FileBytes, c.l.TotalBytes-c.bytes))
	if err != nil {
		c.skipSized(full, size, err.Error())
		return
	}
	c.files++
	c.bytes += int64(len(data))
	c.out = append(c.out, File{Name: full, MimeType: Sniff(full, data), Bytes: st.Size, Data: data})
}

func (c *collector) skipSized(name string, size int64, why string) {
	c.out = append(c.out, File{Name: name, Bytes: size, Skipped: why})
}

// readFile opens name in dir without following links, checks it is still a regular file and
// reads it whole, at most max bytes.
func readFile(dir int, name string, max int64) ([]byte, *unix.Stat_t, error) {
	fd, err := unix.Openat2(dir, name, beneath(unix.O_RDONLY|unix.O_NONBLOCK))
	if err != nil {
		return nil, nil, fmt.Errorf("could not be opened: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, nil, fmt.Errorf("could not be examined: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil, errors.New(notRegular(st.Mode))
	}
	if st.Size > max {
		return nil, nil, fmt.Errorf("%d bytes, over the cap of %d bytes", st.Size, max)
	}
	data, err := io.ReadAll(io.LimitReader(f, st.Size+1))
	if err != nil {
		return nil, nil, fmt.Errorf("could not be read: %w", err)
	}
	if int64(len(data)) != st.Size {
		return nil, nil, fmt.Errorf("changed size while read (%d bytes, then %d)", st.Size, len(data))
	}
	return data, &st, nil
}
