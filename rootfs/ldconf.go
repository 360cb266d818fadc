package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxIncludeDepth bounds nested "include" directives (and so include cycles) in ld.so.conf.
const maxIncludeDepth = 8

// ldConfDirs returns the library directories listed in an ld.so.conf file and the files it
// includes, in order, without duplicates. A missing file yields no directories. Like ldconfig, it
// accepts "include <glob>" (relative globs are relative to the including file's directory),
// ignores "hwcap" lines and comments, and strips a "=TYPE" suffix from a directory.
func ldConfDirs(path string) ([]string, error) {
	var dirs []string
	if err := readLdConf(path, 0, &dirs); err != nil {
		return nil, err
	}
	return dirs, nil
}

func readLdConf(path string, depth int, dirs *[]string) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("rootfs: %s: includes nested deeper than %d", path, maxIncludeDepth)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rootfs: read loader config: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "include":
			for _, pattern := range fields[1:] {
				if !filepath.IsAbs(pattern) {
					pattern = filepath.Join(filepath.Dir(path), pattern)
				}
				matches, err := filepath.Glob(pattern)
				if err != nil {
					return fmt.Errorf("rootfs: %s: include %q: %w", path, pattern, err)
				}
				slices.Sort(matches)
				for _, m := range matches {
					if err := readLdConf(m, depth+1, dirs); err != nil {
						return err
					}
				}
			}
		case "hwcap":
		default:
			for _, d := range strings.FieldsFunc(line, func(r rune) bool {
				return r == ' ' || r == '\t' || r == ',' || r == ':'
			}) {
				d, _, _ = strings.Cut(d, "=")
				d = filepath.Clean(d)
				if filepath.IsAbs(d) && !slices.Contains(*dirs, d) {
					*dirs = append(*dirs, d)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("rootfs: read %s: %w", path, err)
	}
	return nil
}
