package outputs

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes bounds an output's name (its path relative to the outputs directory, or a
// workspace file's path relative to the workspace).
const MaxNameBytes = 255

// ErrBadName is wrapped by every refusal of CheckName.
var ErrBadName = errors.New("unusable name")

// CheckName checks a relative, "/"-separated path the sandbox chose (a hostile one): valid
// UTF-8, no control or other non-printing characters, no empty, "." or ".." component, no
// leading "/", at most MaxNameBytes bytes. The name is returned as is or refused with the
// reason; it is never rewritten, so what the client sees is what the code wrote.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%w: %d bytes, over %d", ErrBadName, len(name), MaxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not valid UTF-8", ErrBadName)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("%w: an absolute path (want one relative to the directory)", ErrBadName)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) && r != ' ' {
			return fmt.Errorf("%w: a control or non-printing character %U", ErrBadName, r)
		}
	}
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "":
			return fmt.Errorf("%w: an empty path component", ErrBadName)
		case ".", "..":
			return fmt.Errorf("%w: a %q path component", ErrBadName, c)
		}
	}
	return nil
}

// skippedName is the File of an entry whose name CheckName refused: the name shown escaped.
func skippedName(name string, err error) File {
	return File{Name: fmt.Sprintf("%q", name), Skipped: fmt.Sprintf("the name %q is refused: %v", name, err)}
}
