package outputs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Workspace returns the workspace files the code named in dir's WorkspaceList (at most
// MaxWorkspaceLines lines of MaxWorkspaceListBytes bytes), resolved under ws, the host path of
// the run's workspace, without following links: each a regular file, returned by name with its
// size and the type sniffed from its first SniffBytes bytes, Workspace set and no Data. A line
// that names no such file is returned as skipped with the reason. No list, no files; a list
// with no workspace (ws "") is reported as skipped.
func Workspace(dir *os.File, ws string) []File {
	list, err := readList(dir)
	if err != nil {
		return []File{{Name: WorkspaceList, Skipped: err.Error()}}
	}
	if list == nil {
		return nil
	}
	if ws == "" {
		return []File{{Name: WorkspaceList, Skipped: "this run has no workspace: no workspace file can be returned"}}
	}
	root, err := unix.Open(ws, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return []File{{Name: WorkspaceList, Skipped: fmt.Sprintf("the workspace could not be opened: %v", err)}}
	}
	defer unix.Close(root)
	var out []File
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(list))
	sc.Buffer(make([]byte, 0, MaxWorkspaceListBytes), MaxWorkspaceListBytes)
	lines := 0
	for sc.Scan() {
		name := strings.TrimSuffix(sc.Text(), "\r")
		name = strings.TrimPrefix(name, "./")
		if name == "" || seen[name] {
			continue
		}
		if lines++; lines > MaxWorkspaceLines {
			out = append(out, File{Name: WorkspaceList, Skipped: fmt.Sprintf("more than %d names: the rest were not read", MaxWorkspaceLines)})
			break
		}
		seen[name] = true
		if err := CheckName(name); err != nil {
			out = append(out, skippedName(name, err))
			continue
		}
		out = append(out, workspaceFile(root, name))
	}
	return out
}

// readList reads WorkspaceList from dir: nil when there is none.
func readList(dir *os.File) ([]byte, error) {
	fd, err := unix.Openat2(int(dir.Fd()), WorkspaceList, beneath(unix.O_RDONLY|unix.O_NONBLOCK))
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		var st unix.Stat_t
		if unix.Fstatat(int(dir.Fd()), WorkspaceList, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, fmt.Errorf("%s", notRegular(st.Mode))
		}
		return nil, fmt.Errorf("could not be opened: %v", err)
	}
	f := os.NewFile(uintptr(fd), WorkspaceList)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("could not be examined: %v", err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("%s", notRegular(st.Mode))
	case st.Size > MaxWorkspaceListBytes:
		return nil, fmt.Errorf("%d bytes, over its cap of %d bytes: no workspace file was returned", st.Size, MaxWorkspaceListBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxWorkspaceListBytes))
	if err != nil {
		return nil, fmt.Errorf("could not be read: %v", err)
	}
	return b, nil
}

// workspaceFile resolves one checked name under the workspace: first as an O_PATH fd (opening
// nothing), and only a regular file is opened to be read.
func workspaceFile(root int, name string) File {
	skip := func(size int64, why string) File { return File{Name: name, Workspace: true, Bytes: size, Skipped: why} }
	how := beneath(unix.O_PATH)
	how.Resolve &^= unix.RESOLVE_NO_XDEV // the workspace may hold the admin's mounts
	pfd, err := unix.Openat2(root, name, how)
	switch {
	case err == unix.ELOOP:
		return skip(0, "a symbolic link, or a path through one: not followed")
	case err == unix.ENOENT:
		return skip(0, "no such file in the workspace")
	case err != nil:
		return skip(0, fmt.Sprintf("could not be opened: %v", err))
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return skip(0, fmt.Sprintf("could not be examined: %v", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return skip(st.Size, notRegular(st.Mode))
	}
	// Reopened through the fd's own magic link: the file fstat just saw, no path walked again.
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", pfd), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return skip(st.Size, fmt.Sprintf("could not be opened: %v", err))
	}
	defer f.Close()
	head := make([]byte, SniffBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return skip(st.Size, fmt.Sprintf("could not be read: %v", err))
	}
	return File{Name: name, Workspace: true, Bytes: st.Size, MimeType: Sniff(name, head[:n])}
}
