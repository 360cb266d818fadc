package rootfs

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotBuilt is returned by Store.Current when the store holds no current root.
	ErrNotBuilt = errors.New("rootfs: no root built yet")
	// ErrStale is returned when a root on disk no longer matches what was recorded when it was built.
	ErrStale = errors.New("rootfs: root does not match its recorded content")
	// ErrNotELF is returned by Libraries for a file that is not an ELF executable or shared object.
	ErrNotELF = errors.New("rootfs: not an ELF file")
	// ErrMissingLibrary matches (errors.Is) every *MissingLibraryError.
	ErrMissingLibrary = errors.New("rootfs: shared library not found")
)

// MissingLibraryError reports a DT_NEEDED entry that the loader search could not satisfy.
type MissingLibraryError struct {
	Needer string   // host path of the object with the DT_NEEDED entry
	Name   string   // the DT_NEEDED name, e.g. "libfoo.so.1"
	Dirs   []string // the directories searched, in order
}

func (e *MissingLibraryError) Error() string {
	return fmt.Sprintf("rootfs: %s needs %s, not found in [%s]", e.Needer, e.Name, strings.Join(e.Dirs, " "))
}

// Is makes errors.Is(err, ErrMissingLibrary) true.
func (e *MissingLibraryError) Is(target error) bool { return target == ErrMissingLibrary }
