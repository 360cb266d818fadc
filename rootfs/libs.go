package rootfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// defaultLibDirs returns the directories searched after the ld.so.conf directories: the
// multiarch defaults of x86_64 glibc distributions.
func defaultLibDirs() []string {
	return []string{
		"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
	}
}

// Libraries returns the shared-library closure of an ELF executable as absolute host paths, in
// load order: the PT_INTERP loader first, then the DT_NEEDED closure breadth first. The paths are
// the ones the loader opens (as ldd prints them), so they may be symlinks. A static executable
// yields an empty list. A file that is not ELF yields ErrNotELF; an unresolvable DT_NEEDED entry
// yields a *MissingLibraryError.
//
// The search follows glibc: DT_RPATH of the requesting object and its loaders (unless it has
// DT_RUNPATH), DT_RUNPATH, the directories of /etc/ld.so.conf (standing in for ld.so.cache), then
// /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib. As in
// ld.so, files of another ELF class or machine are skipped, while a file on the search path that
// is not ELF at all is an error (ErrNotELF). $ORIGIN is expanded; entries with other dynamic string
// tokens ($LIB, $PLATFORM), relative entries, LD_LIBRARY_PATH and glibc-hwcaps subdirectories are
// not considered.
func Libraries(binary string) ([]string, error) {
	libs, err := defaultResolver().closure(binary)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(libs))
	for i, l := range libs {
		paths[i] = l.Path
	}
	return paths, nil
}

// via says how a library was found, which decides whether the loader inside the root finds it too.
type via int

const (
	viaInterp  via = iota // PT_INTERP
	viaPath               // DT_NEEDED name containing a slash
	viaRpath              // a DT_RPATH entry
	viaRunpath            // a DT_RUNPATH entry
	viaConf               // an ld.so.conf directory (ld.so.cache on the host)
	viaDefault            // a default directory
)

// library is one resolved member of the closure.
type library struct {
	Name string // the DT_NEEDED name, or the PT_INTERP path
	Path string // absolute host path the loader opens
	Real string // Path with every symlink resolved
	Via  via
	Dir  string // the search directory it was found in (empty for viaInterp and viaPath)
	// ExeOrigin is set when Dir came from a $ORIGIN entry of the main executable.
	ExeOrigin bool
}

// resolver holds the loader configuration the search uses; tests substitute their own.
type resolver struct {
	confPath    string   // ld.so.conf; empty for none
	defaultDirs []string // searched last
}

func defaultResolver() *resolver {
	return &resolver{confPath: "/etc/ld.so.conf", defaultDirs: defaultLibDirs()}
}

// object is a loaded ELF file during the closure walk.
type object struct {
	path     string // lookup path
	origin   string // $ORIGIN
	soname   string
	needed   []string
	rpath    []string
	runpath  []string
	nodeflib bool    // DF_1_NODEFLIB: skip ld.so.cache and default directories
	parent   *object // the object that loaded it; nil for the executable
}

// searchDir is one candidate directory with its provenance.
type searchDir struct {
	dir       string
	via       via
	exeOrigin bool
}

// closure resolves the full library closure of the executable binary.
func (r *resolver) closure(binary string) ([]library, error) { return r.walk(binary, false, nil) }

// objectClosure resolves the closure of an ELF file found among a program's data: an executable,
// or a shared object (no PT_INTERP; its DT_NEEDED closure, which the process that loads it has
// its interpreter for).
func (r *resolver) objectClosure(name string, cache loadCache) ([]library, error) {
	return r.walk(name, true, cache)
}

// walk resolves the library closure of binary; shared allows a shared object without PT_INTERP.
// cache, when not nil, keeps parsed libraries across walks (one root's many ELF files).
func (r *resolver) walk(binary string, shared bool, cache loadCache) ([]library, error) {
	abs, err := filepath.Abs(binary)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %s: %w", binary, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	f, err := openELF(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("rootfs: %s: ELF type %v is not an executable: %w", binary, f.Type, ErrNotELF)
	}
	interp, err := interpreter(f)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %s: %w", binary, err)
	}
	exe, err := readObject(f, abs, filepath.Dir(real), nil)
	if err != nil {
		return nil, err
	}
	if interp == "" {
		switch {
		case len(exe.needed) == 0:
			return nil, nil // static, or a shared object needing nothing
		case !shared || f.Type != elf.ET_DYN:
			return nil, fmt.Errorf("rootfs: %s has DT_NEEDED entries but no PT_INTERP", binary)
		}
	}

	var confDirs []string
	if r.confPath != "" {
		if confDirs, err = ldConfDirs(r.confPath); err != nil {
			return nil, err
		}
	}

	w := walker{class: f.Class, machine: f.Machine, loaded: map[string]bool{}, cache: cache}
	var libs []library
	if interp != "" {
		ilib, iobj, err := w.load(interp, nil)
		if err != nil {
			return nil, fmt.Errorf("rootfs: %s: interpreter %s: %w", binary, interp, err)
		}
		ilib.Name, ilib.Via = interp, viaInterp
		libs = append(libs, ilib)
		w.register(interp, iobj)
	}

	queue := []*object{exe}
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		for _, name := range obj.needed {
			if w.loaded[name] {
				continue
			}
			lib, child, err := w.find(name, obj, r.searchDirs(obj, confDirs))
			if err != nil {
				return nil, err
			}
			libs = append(libs, lib)
			w.loaded[name] = true
			w.register(lib.Path, child)
			queue = append(queue, child)
		}
	}
	return libs, nil
}

// searchDirs lists, in loader order, the directories searched for a DT_NEEDED entry of obj.
func (r *resolver) searchDirs(obj *object, confDirs []string) []searchDir {
	var dirs []searchDir
	add := func(entries []string, o *object, v via) {
		for _, e := range entries {
			d, ok := expandOrigin(e, o.origin)
			if !ok {
				continue
			}
			dirs = append(dirs, searchDir{dir: d, via: v, exeOrigin: o.parent == nil && hasOrigin(e)})
		}
	}
	if len(obj.runpath) == 0 {
		for o := obj; o != nil; o = o.parent {
			if len(o.runpath) == 0 {
				add(o.rpath, o, viaRpath)
			}
		}
	}
	add(obj.runpath, obj, viaRunpath)
	if !obj.nodeflib {
		for _, d := range confDirs {
			dirs = append(dirs, searchDir{dir: d, via: viaConf})
		}
		for _, d := range r.defaultDirs {
			dirs = append(dirs, searchDir{dir: d, via: viaDefault})
		}
	}
	return dirs
}

// walker tracks what the simulated loader has loaded.
type walker struct {
	class   elf.Class
	machine elf.Machine
	loaded  map[string]bool // DT_NEEDED names, sonames and paths already satisfied
	cache   loadCache       // nil = parse every library
}

// loadCache remembers the libraries parsed while planning one root, by path, class and
// machine; the loading object (which decides the search path) is set per walk.
type loadCache map[loadKey]loadResult

type loadKey struct {
	path    string
	class   elf.Class
	machine elf.Machine
}

type loadResult struct {
	lib library
	obj *object // parent unset
	err error
}

func (w *walker) register(path string, o *object) {
	w.loaded[path] = true
	if o.soname != "" {
		w.loaded[o.soname] = true
	}
}

// find resolves one DT_NEEDED name of obj.
func (w *walker) find(name string, obj *object, dirs []searchDir) (library, *object, error) {
	if strings.Contains(name, "/") {
		lib, child, err := w.load(name, obj)
		if err != nil {
			return library{}, nil, fmt.Errorf("rootfs: %s needs %s: %w", obj.path, name, err)
		}
		lib.Name, lib.Via = name, viaPath
		return lib, child, nil
	}
	tried := make([]string, 0, len(dirs))
	for _, d := range dirs {
		tried = append(tried, d.dir)
		candidate := filepath.Join(d.dir, name)
		lib, child, err := w.load(candidate, obj)
		if err != nil {
			// Like ld.so: absent, unreadable and other-class/machine files are skipped; a file that
			// is there but is no valid ELF stops the load.
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) ||
				errors.Is(err, fs.ErrPermission) || errors.Is(err, errOtherArch) {
				continue
			}
			return library{}, nil, fmt.Errorf("rootfs: %s needs %s: %w", obj.path, name, err)
		}
		lib.Name, lib.Via, lib.Dir, lib.ExeOrigin = name, d.via, d.dir, d.exeOrigin
		return lib, child, nil
	}
	return library{}, nil, &MissingLibraryError{Needer: obj.path, Name: name, Dirs: tried}
}

// errOtherArch marks a library of another ELF class or machine, which the loader skips.
var errOtherArch = errors.New("ELF class or machine differs from the executable")

// load opens path as a library compatible with the executable, through the cache if any.
func (w *walker) load(path string, parent *object) (library, *object, error) {
	if w.cache == nil {
		return w.parse(path, parent)
	}
	k := loadKey{path, w.class, w.machine}
	res, ok := w.cache[k]
	if !ok {
		res.lib, res.obj, res.err = w.parse(path, nil)
		w.cache[k] = res
	}
	if res.err != nil {
		return library{}, nil, res.err
	}
	o := *res.obj
	o.parent = parent
	return res.lib, &o, nil
}

// parse opens path as a library compatible with the executable.
func (w *walker) parse(path string, parent *object) (library, *object, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return library{}, nil, err
	}
	f, err := openELF(real)
	if err != nil {
		return library{}, nil, err
	}
	defer f.Close()
	if f.Class != w.class || f.Machine != w.machine {
		return library{}, nil, fmt.Errorf("%s is %v/%v, want %v/%v: %w", path, f.Class, f.Machine, w.class, w.machine, errOtherArch)
	}
	o, err := readObject(f, path, filepath.Dir(path), parent)
	if err != nil {
		return library{}, nil, err
	}
	return library{Path: path, Real: real}, o, nil
}

// openELF opens path with debug/elf. Anything that is not a readable ELF file (a directory, an
// empty or truncated file, a script) yields ErrNotELF.
func openELF(path string) (*elf.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("rootfs: %s: %w (not a regular file)", path, ErrNotELF)
	}
	f, err := elf.Open(path)
	if err == nil {
		return f, nil
	}
	var fe *elf.FormatError
	if errors.As(err, &fe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("rootfs: %s: %w (%v)", path, ErrNotELF, err)
	}
	return nil, fmt.Errorf("rootfs: %s: %w", path, err)
}

// interpreter returns the PT_INTERP path, or "" for a static executable.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		s := strings.TrimRight(string(b), "\x00")
		if !filepath.IsAbs(s) {
			return "", fmt.Errorf("PT_INTERP %q is not absolute", s)
		}
		return s, nil
	}
	return "", nil
}

// readObject reads the dynamic section of f.
func readObject(f *elf.File, path, origin string, parent *object) (*object, error) {
	o := &object{path: path, origin: origin, parent: parent}
	if f.SectionByType(elf.SHT_DYNAMIC) == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_DYNAMIC {
				return nil, fmt.Errorf("rootfs: %s: PT_DYNAMIC without section headers is not supported", path)
			}
		}
		return o, nil
	}
	var err error
	str := func(tag elf.DynTag) []string {
		if err != nil {
			return nil
		}
		var v []string
		v, err = f.DynString(tag)
		return v
	}
	o.needed = str(elf.DT_NEEDED)
	o.rpath = splitPath(str(elf.DT_RPATH))
	o.runpath = splitPath(str(elf.DT_RUNPATH))
	if so := str(elf.DT_SONAME); len(so) > 0 {
		o.soname = so[0]
	}
	if err != nil {
		return nil, fmt.Errorf("rootfs: %s: read dynamic section: %w", path, err)
	}
	flags, err := f.DynValue(elf.DT_FLAGS_1)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %s: read DT_FLAGS_1: %w", path, err)
	}
	for _, v := range flags {
		if elf.DynFlag1(v)&elf.DF_1_NODEFLIB != 0 {
			o.nodeflib = true
		}
	}
	return o, nil
}

// splitPath splits colon-separated DT_RPATH/DT_RUNPATH values into entries.
func splitPath(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, strings.Split(v, ":")...)
	}
	return out
}

func hasOrigin(entry string) bool {
	return strings.Contains(entry, "$ORIGIN") || strings.Contains(entry, "${ORIGIN}")
}

// expandOrigin substitutes $ORIGIN in a search-path entry. It reports false for entries the
// resolver does not follow: empty or relative ones and ones with other dynamic string tokens.
func expandOrigin(entry, origin string) (string, bool) {
	e := strings.ReplaceAll(entry, "${ORIGIN}", origin)
	e = strings.ReplaceAll(e, "$ORIGIN", origin)
	if e == "" || strings.Contains(e, "$") || !filepath.IsAbs(e) {
		return "", false
	}
	return filepath.Clean(e), true
}
