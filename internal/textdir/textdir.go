// Package textdir holds what the admin's directories of named text files
// (snippets, playbooks) share: a stamp that changes when the directory or a
// file in it changes, and a bounded read of one file that never follows a
// link.
package textdir

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// ErrTooLarge is ReadFile's refusal of a file over its limit.
var ErrTooLarge = errors.New("file too large")

// Stamp is the directory's and its entries' modification times and sizes: it changes when a
// file is added, removed, renamed or edited in place (editing a file does not change the
// directory's own time). "missing" when the directory cannot be read.
func Stamp(dir string) string {
	var b strings.Builder
	st, err := os.Stat(dir)
	if err != nil {
		return "missing"
	}
	fmt.Fprint(&b, st.ModTime().UnixNano())
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			fmt.Fprintf(&b, "|%s:%d:%d", e.Name(), info.ModTime().UnixNano(), info.Size())
		}
	}
	return b.String()
}

// ReadFile reads a regular file of at most max bytes, not following a link.
func ReadFile(p string, max int64) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file")
	}
	if st.Size() > max {
		return "", fmt.Errorf("%w: %d bytes; the limit is %d", ErrTooLarge, st.Size(), max)
	}
	buf := make([]byte, st.Size())
	if _, err := f.ReadAt(buf, 0); err != nil && st.Size() > 0 {
		return "", err
	}
	return string(buf), nil
}
