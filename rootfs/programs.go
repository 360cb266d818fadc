package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Program is one executable the root holds, with the files it needs at run time. deno is the
// first program of every root (Options.Deno); Options.Programs adds the others (CLI tools,
// runtimes). Every ELF file among them, the program and the ELF files inside its data, gets its
// library closure, and each library is copied once however many programs need it.
type Program struct {
	// Host is the executable on the host; symlinks are resolved, so the real file is copied.
	Host string
	// Path is its absolute, clean in-root path, e.g. /usr/bin/git.
	Path string
	// Data are absolute, clean host paths of files or directories copied to the same path in the
	// root (a directory with everything below it), e.g. /usr/lib/git-core. A data path that is
	// itself a symlink is copied as what it points to. Inside a directory, a relative symlink
	// that stays inside it is kept; one that leaves it, or an absolute one pointing outside,
	// is refused (ErrEscapingLink).
	Data []string
	// Trees are host directories copied to another in-root path, like Data otherwise: what
	// conductor prepares for a program on the host (a build cache) at the path the program
	// is told in the root.
	Trees []Tree
	// Skip are base-name patterns (path.Match) of entries left out of the data directories and
	// trees, e.g. "testdata" or "*_test.go"; a skipped directory is left out whole.
	Skip []string
}

// Tree is a host directory (Host, symlinks resolved) copied to Path in the root.
type Tree struct{ Host, Path string }

// ErrEscapingLink is returned when a symlink inside a program's data directory points outside it.
var ErrEscapingLink = errors.New("rootfs: symlink leaves the data directory")

// elfMagic starts every ELF file.
var elfMagic = []byte("\x7fELF")

// fileKey identifies a host file across names (hard links, symlinks).
type fileKey struct{ dev, ino uint64 }

// programPlanner adds programs to a plan; it resolves each distinct ELF object's closure once.
type programPlanner struct {
	p     *plan
	r     *resolver
	done  map[fileKey]bool
	cache loadCache // libraries parsed so far
}

// add puts one program, its data and every library they need into the plan.
func (pp *programPlanner) add(pr Program) error {
	if err := checkRootPath(pr.Path, "program path"); err != nil {
		return err
	}
	real, err := filepath.Abs(pr.Host)
	if err == nil {
		real, err = filepath.EvalSymlinks(real)
	}
	if err != nil {
		return fmt.Errorf("rootfs: program %s: %w", pr.Path, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("rootfs: program %s: %w", pr.Path, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("rootfs: program %s: %s is not an executable file", pr.Path, real)
	}
	if err := pp.p.addFile(pr.Path, 0o755, real, nil); err != nil {
		return err
	}
	// The loader expands $ORIGIN to the directory of the in-root path.
	if err := pp.closure(real, path.Dir(pr.Path) == filepath.Dir(real), false); err != nil {
		return fmt.Errorf("%w (program %s)", err, pr.Path)
	}
	for _, d := range pr.Data {
		if err := checkRootPath(d, "data path"); err != nil {
			return err
		}
		if err := pp.addData(d, d, pr.Skip); err != nil {
			return fmt.Errorf("rootfs: program %s: %w", pr.Path, err)
		}
	}
	for _, t := range pr.Trees {
		if err := checkRootPath(t.Path, "tree path"); err != nil {
			return err
		}
		if err := pp.addData(t.Host, t.Path, pr.Skip); err != nil {
			return fmt.Errorf("rootfs: program %s: %w", pr.Path, err)
		}
	}
	return nil
}

// skipped reports whether a data entry's base name matches one of the skip patterns.
func skipped(name string, skip []string) bool {
	for _, pat := range skip {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// checkRootPath refuses an in-root path that is not absolute and clean, or that the sandbox's
// own mounts or the root's fixed parts own.
func checkRootPath(p, what string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("rootfs: %s %q must be a clean absolute path other than /", what, p)
	}
	if p == "/sys" || strings.HasPrefix(p, "/sys/") {
		return fmt.Errorf("rootfs: %s %s: the root has no /sys", what, p)
	}
	for _, m := range append(mountPoints(), bootstrapDir) {
		if p == m || strings.HasPrefix(p, m+"/") {
			return fmt.Errorf("rootfs: %s %s is inside %s, which the root or the sandbox owns", what, p, m)
		}
	}
	return nil
}

// addData copies the host file or directory d (its target, if d is a symlink) to at in the root,
// leaving out the entries below it that skip names.
func (pp *programPlanner) addData(d, at string, skip []string) error {
	src, err := filepath.EvalSymlinks(d)
	if err != nil {
		return fmt.Errorf("data %s: %w", d, err)
	}
	sameOrigin := src == at
	return filepath.WalkDir(src, func(host string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("data %s: %w", d, err)
		}
		rel, err := filepath.Rel(src, host)
		if err != nil {
			return err
		}
		if rel != "." && skipped(de.Name(), skip) {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		inRoot := path.Join(at, filepath.ToSlash(rel))
		switch de.Type() {
		case fs.ModeDir:
			return pp.p.add(&entry{Path: inRoot, Type: typeDir, Perm: 0o755})
		case fs.ModeSymlink:
			target, err := dataLink(src, host)
			if err != nil {
				return fmt.Errorf("data %s: %w", d, err)
			}
			return pp.p.add(&entry{Path: inRoot, Type: typeSymlink, Perm: 0o777, Target: target})
		case 0:
			return pp.addDataFile(inRoot, host, sameOrigin)
		}
		return fmt.Errorf("data %s: %s is a %v, not a file, directory or symlink", d, host, de.Type())
	})
}

// dataLink returns the in-root target of the symlink at host inside the data tree top: its
// relative target when that stays inside top, an absolute target inside top made relative.
func dataLink(top, host string) (string, error) {
	target, err := os.Readlink(host)
	if err != nil {
		return "", err
	}
	abs := target
	if !filepath.IsAbs(target) {
		abs = filepath.Join(filepath.Dir(host), target)
	}
	abs = filepath.Clean(abs)
	if abs != top && !strings.HasPrefix(abs, top+"/") {
		return "", fmt.Errorf("%w: %s -> %s points outside %s (list its target as data too, or remove the link)", ErrEscapingLink, host, target, top)
	}
	if filepath.IsAbs(target) {
		return filepath.Rel(filepath.Dir(host), abs)
	}
	return target, nil
}

// addDataFile copies one regular data file, executable or not as on the host, and the closure of
// an ELF file. sameOrigin: the file's directory is the same in the root, so $ORIGIN holds.
func (pp *programPlanner) addDataFile(inRoot, host string, sameOrigin bool) error {
	st, err := os.Stat(host)
	if err != nil {
		return err
	}
	perm := uint32(0o644)
	if st.Mode().Perm()&0o111 != 0 {
		perm = 0o755
	}
	if err := pp.p.addFile(inRoot, perm, host, nil); err != nil {
		return err
	}
	isELF, err := hasELFMagic(host)
	if err != nil || !isELF {
		return err
	}
	if err := pp.closure(host, sameOrigin, true); err != nil {
		return fmt.Errorf("%w (data file %s)", err, inRoot)
	}
	return nil
}

// hasELFMagic reports whether the file starts with the ELF magic.
func hasELFMagic(name string) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b := make([]byte, len(elfMagic))
	n, _ := f.Read(b)
	return bytes.Equal(b[:n], elfMagic), nil
}

// closure adds the library closure of the ELF file name, once per host file. An ELF file of a
// type that loads nothing (an object file, core dump) is copied without a closure.
func (pp *programPlanner) closure(name string, sameOrigin, data bool) error {
	st, err := os.Stat(name)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		k := fileKey{uint64(sys.Dev), sys.Ino}
		if pp.done[k] {
			return nil
		}
		pp.done[k] = true
	}
	var libs []library
	if data {
		libs, err = pp.r.objectClosure(name, pp.cache)
		if errors.Is(err, ErrNotELF) {
			return nil // e.g. ET_REL: nothing loads it as a program or library
		}
	} else {
		libs, err = pp.r.walk(name, false, pp.cache)
	}
	if err != nil {
		return err
	}
	return pp.p.addLibraries(libs, pp.r.defaultDirs, sameOrigin)
}

// addLibraries copies each library at its real path, with a relative symlink at the path the
// loader looks it up at. sameOrigin: the object's $ORIGIN is the same inside the root.
func (p *plan) addLibraries(libs []library, defaultDirs []string, sameOrigin bool) error {
	for _, l := range libs {
		if sameOrigin {
			l.ExeOrigin = false
		}
		if err := inRootReachable(l, defaultDirs); err != nil {
			return err
		}
		perm := uint32(0o644)
		if l.Via == viaInterp {
			perm = 0o755 // the kernel opens PT_INTERP with exec permission
		}
		if err := p.addFile(l.Real, perm, l.Real, nil); err != nil {
			return err
		}
		if l.Path != l.Real {
			target, err := filepath.Rel(path.Dir(l.Path), l.Real)
			if err != nil {
				return fmt.Errorf("rootfs: link %s: %w", l.Path, err)
			}
			if err := p.add(&entry{Path: l.Path, Type: typeSymlink, Perm: 0o777, Target: target}); err != nil {
				return err
			}
		}
	}
	return nil
}
