package engine

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// File is one file of an execute_code run, written into its working directory.
type File struct {
	Name    string // relative to the working directory; sub-directories allowed
	Content string
}

// FileLimits bound the files of one run.
type FileLimits struct {
	Count     int // files, the entrypoint included
	Depth     int // directories above a file, e.g. 1 for data/x.json
	NameBytes int // bytes of one name
	Bytes     int // bytes of all contents together
	// BytesSetting names who sets Bytes, for the refusal ("" = nobody can).
	BytesSetting string
}

// DefaultFileLimits are the limits unless the engine is told others.
var DefaultFileLimits = FileLimits{Count: 100, Depth: 8, NameBytes: 255, Bytes: 1 << 20}

// ErrFileName is wrapped by every refusal of a file name or of the files' sizes.
var ErrFileName = errors.New("file refused")

// CheckFiles validates the names and sizes of a run's files: each name is relative, clean (no
// "." or ".." component, no doubled or trailing slash), free of NUL and control characters, valid
// UTF-8, at most NameBytes long and Depth directories deep; no two files share a name or have one
// as the other's directory; at most Count files and Bytes of content together. Each refusal names
// the file, the rule and the limit. It is pure: no file system is touched.
func CheckFiles(files []File, l FileLimits) error {
	if len(files) > l.Count {
		return fmt.Errorf("%w: %d files; the limit is %d files per run (entrypoint included)", ErrFileName, len(files), l.Count)
	}
	total := 0
	names := make(map[string]bool, len(files))
	for _, f := range files {
		if err := checkName(f.Name, l); err != nil {
			return err
		}
		if names[f.Name] {
			return fmt.Errorf("%w: %q is given twice; each file name must be unique", ErrFileName, f.Name)
		}
		names[f.Name] = true
		total += len(f.Content)
	}
	for n := range names {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if names[d] {
				return fmt.Errorf("%w: %q is a file, and %q needs it to be a directory", ErrFileName, d, n)
			}
		}
	}
	if total > l.Bytes {
		who := ""
		if l.BytesSetting != "" {
			who = "; only the admin can change it, with " + l.BytesSetting
		}
		return fmt.Errorf("%w: the files hold %d bytes; the limit is %d bytes per run (entrypoint included)%s", ErrFileName, total, l.Bytes, who)
	}
	return nil
}

// checkName validates one file name.
func checkName(n string, l FileLimits) error {
	q := fmt.Sprintf("%q", n)
	if len(q) > 80 {
		q = q[:77] + "..."
	}
	switch {
	case n == "":
		return fmt.Errorf("%w: a file name is empty", ErrFileName)
	case len(n) > l.NameBytes:
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d bytes per name", ErrFileName, q, len(n), l.NameBytes)
	case !utf8.ValidString(n):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrFileName, q)
	case strings.HasPrefix(n, "/"):
		return fmt.Errorf("%w: %s is an absolute path; names are relative to the working directory", ErrFileName, q)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\\' {
			return fmt.Errorf("%w: %s contains a control character or backslash; names may not", ErrFileName, q)
		}
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return fmt.Errorf("%w: %s has a \"..\" component; names may not leave the working directory", ErrFileName, q)
		}
	}
	if n == "." {
		return fmt.Errorf("%w: %s names the working directory itself, not a file", ErrFileName, q)
	}
	if path.Clean(n) != n {
		return fmt.Errorf("%w: %s is not a clean path (no \".\" component, doubled or trailing slash); write it as %q", ErrFileName, q, path.Clean(n))
	}
	if d := strings.Count(n, "/"); d > l.Depth {
		return fmt.Errorf("%w: %s is %d directories deep; the limit is %d", ErrFileName, q, d, l.Depth)
	}
	return nil
}
