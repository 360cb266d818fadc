package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// In-root locations. Root carries them too; these are the single source.
const (
	denoPath     = "/usr/bin/deno"
	denoDir      = "/deno-dir"
	bootstrapDir = "/conductor"
	trustDir     = "/conductor/trust"
	// outputsDir is the mount point of a run's outputs directory (config.OutputsDir).
	outputsDir = "/outputs"
	// hostname is the sandbox's host name (its UTS namespace's), which /etc/hosts resolves
	// locally: tools that look their own host up (git's default identity) ask no DNS server.
	hostname = "sandbox"
)

// mountPoints are the directories the sandbox mounts over: empty, except /dev (devNodes,
// devLinks), which the sandbox binds onto itself.
func mountPoints() []string { return []string{"/proc", "/dev", "/tmp", denoDir, trustDir, outputsDir} }

// devNodes are the device mount points in the root's /dev: empty files the sandbox bind-mounts
// the host's node of the same path over. With them and devLinks in the root, /dev is complete
// before a sandbox starts, so the sandbox can bind it read-only and leave libcontainer no /dev
// setup of its own (which would add /dev/core, /dev/ptmx and its own nodes).
func devNodes() []string {
	return []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
}

// devLinks are the root's /dev symlinks (path -> target): the standard descriptor names.
// Relative, like every link in the root, so that on the host they resolve inside the root.
func devLinks() map[string]string {
	return map[string]string{
		"/dev/fd": "../proc/self/fd", "/dev/stdin": "../proc/self/fd/0",
		"/dev/stdout": "../proc/self/fd/1", "/dev/stderr": "../proc/self/fd/2",
	}
}

// underMountPoint reports whether d is a mount point or lies below one.
func underMountPoint(d string) bool {
	for _, m := range mountPoints() {
		if d == m || strings.HasPrefix(d, m+"/") {
			return true
		}
	}
	return false
}

// etcFiles is the minimal /etc: uid/gid 0 is the sandbox user (the container runs as
// container-uid 0 mapped to an unprivileged host id).
func etcFiles() map[string]string {
	return map[string]string{
		"/etc/passwd":        "sandbox:x:0:0:sandbox:/tmp:/nonexistent\n",
		"/etc/group":         "sandbox:x:0:\n",
		"/etc/hosts":         "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 " + hostname + "\n",
		"/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
		"/etc/resolv.conf":   "nameserver 127.0.0.53\n",
	}
}

// entryType is the kind of a root entry, also its character in the content hash.
type entryType byte

const (
	typeDir     entryType = 'd'
	typeFile    entryType = 'f'
	typeSymlink entryType = 'l'
)

// entry is one path of a root: what to create, and what it hashes to.
type entry struct {
	Path   string    // absolute in-root path, clean
	Type   entryType //
	Perm   uint32    // unix permission bits, including setuid/setgid/sticky
	Target string    // symlink target
	Src    string    // host file to copy (files only; empty when Data is used)
	Data   []byte    // literal content (files only)
	Digest string    // hex sha256 of the content (files only)
	// Mtime is the source's modification time, which the copy keeps (Src files only): runtimes
	// check caches against it (a Python .pyc records its source's mtime; with a new one every
	// module would be compiled again at every import). Not part of the hash.
	Mtime time.Time
}

// plan is the complete description of a root, computed from Options before anything is built.
type plan struct {
	entries map[string]*entry
	hash    string
}

// sorted returns the entries in path order, so parents come before their children.
func (p *plan) sorted() []*entry {
	out := make([]*entry, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// newPlan resolves opts into a plan. Source digests come from dc (computed on a miss).
func newPlan(ctx context.Context, opts Options, r *resolver, dc *digestCache) (*plan, error) {
	if opts.Deno == "" {
		return nil, fmt.Errorf("rootfs: Options.Deno is empty")
	}
	p := &plan{entries: map[string]*entry{}}
	if err := p.add(&entry{Path: "/", Type: typeDir, Perm: 0o755}); err != nil {
		return nil, err
	}
	pp := &programPlanner{p: p, r: r, done: map[fileKey]bool{}, cache: loadCache{}}
	for _, pr := range append([]Program{{Host: opts.Deno, Path: denoPath}}, opts.Programs...) {
		if err := pp.add(pr); err != nil {
			return nil, err
		}
	}
	for name, content := range etcFiles() {
		if err := p.addFile(name, 0o644, "", []byte(content)); err != nil {
			return nil, err
		}
	}
	for _, d := range append(mountPoints(), bootstrapDir) {
		if err := p.add(&entry{Path: d, Type: typeDir, Perm: 0o755}); err != nil {
			return nil, err
		}
	}
	for _, n := range devNodes() {
		if err := p.addFile(n, 0o644, "", []byte{}); err != nil {
			return nil, err
		}
	}
	for name, target := range devLinks() {
		if err := p.add(&entry{Path: name, Type: typeSymlink, Perm: 0o777, Target: target}); err != nil {
			return nil, err
		}
	}
	for name, data := range opts.Bootstrap {
		if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("rootfs: bootstrap file name %q must be a clean relative path", name)
		}
		if err := p.addFile(path.Join(bootstrapDir, name), 0o644, "", data); err != nil {
			return nil, err
		}
	}
	for _, d := range opts.MountPoints {
		if !path.IsAbs(d) || path.Clean(d) != d || d == "/" {
			return nil, fmt.Errorf("rootfs: mount point %q must be a clean absolute path other than /", d)
		}
		if d == "/sys" || strings.HasPrefix(d, "/sys/") {
			return nil, fmt.Errorf("rootfs: mount point %s: the root has no /sys", d)
		}
		if underMountPoint(d) {
			continue // created inside that mount when the sandbox starts
		}
		if err := p.add(&entry{Path: d, Type: typeDir, Perm: 0o755}); err != nil {
			return nil, fmt.Errorf("rootfs: mount point %s: %w", d, err)
		}
	}
	for name, data := range opts.Extra {
		if !path.IsAbs(name) || path.Clean(name) != name || name == "/" {
			return nil, fmt.Errorf("rootfs: extra file path %q must be a clean absolute path", name)
		}
		for _, m := range mountPoints() {
			if strings.HasPrefix(name, m+"/") {
				return nil, fmt.Errorf("rootfs: extra file %s would be hidden by the %s mount", name, m)
			}
		}
		if name == "/sys" || strings.HasPrefix(name, "/sys/") {
			return nil, fmt.Errorf("rootfs: extra file %s: the root has no /sys", name)
		}
		if err := p.addFile(name, 0o644, "", data); err != nil {
			return nil, err
		}
	}
	if err := p.addParents(); err != nil {
		return nil, err
	}
	for _, e := range p.entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if e.Type != typeFile {
			continue
		}
		if e.Src == "" {
			sum := sha256.Sum256(e.Data)
			e.Digest = hex.EncodeToString(sum[:])
		} else {
			d, err := dc.digest(ctx, e.Src)
			if err != nil {
				return nil, err
			}
			st, err := os.Stat(e.Src)
			if err != nil {
				return nil, fmt.Errorf("rootfs: %w", err)
			}
			e.Digest, e.Mtime = d, st.ModTime()
		}
	}
	p.hash = treeHash(p.sorted())
	return p, nil
}

// inRootReachable rejects libraries the loader inside the root would not find: it has no
// ld.so.cache, and the executable's $ORIGIN is /usr/bin there.
func inRootReachable(l library, defaultDirs []string) error {
	switch {
	case l.Via == viaInterp:
		return nil
	case l.Via == viaPath && !filepath.IsAbs(l.Name):
		return fmt.Errorf("rootfs: DT_NEEDED %q is relative to the working directory; unsupported in the root", l.Name)
	case l.Via == viaPath:
		return nil
	case l.ExeOrigin:
		return fmt.Errorf("rootfs: %s was found through the executable's $ORIGIN (%s), which differs inside the root", l.Name, l.Dir)
	case l.Via == viaConf && !slices.Contains(defaultDirs, l.Dir):
		return fmt.Errorf("rootfs: %s was found in %s through ld.so.conf; the root has no ld.so.cache, so the loader would not find it there (install it in one of %v)", l.Name, l.Dir, defaultDirs)
	}
	return nil
}

// addFile adds a regular file; adding the same source twice at one path merges the permissions.
func (p *plan) addFile(name string, perm uint32, src string, data []byte) error {
	if old, ok := p.entries[name]; ok && old.Type == typeFile && src != "" && old.Src == src {
		old.Perm |= perm
		return nil
	}
	return p.add(&entry{Path: name, Type: typeFile, Perm: perm, Src: src, Data: data})
}

// add adds e, refusing to replace an existing entry with a different one.
func (p *plan) add(e *entry) error {
	if old, ok := p.entries[e.Path]; ok {
		if old.Type == typeDir && e.Type == typeDir {
			return nil
		}
		if old.Type == typeSymlink && e.Type == typeSymlink && old.Target == e.Target {
			return nil
		}
		return fmt.Errorf("rootfs: %s is defined twice (%c and %c)", e.Path, old.Type, e.Type)
	}
	p.entries[e.Path] = e
	return nil
}

// addParents adds every missing ancestor directory and checks no ancestor is a file or symlink.
func (p *plan) addParents() error {
	for _, e := range p.sorted() {
		for d := path.Dir(e.Path); d != "/" && e.Path != "/"; d = path.Dir(d) {
			old, ok := p.entries[d]
			if !ok {
				p.entries[d] = &entry{Path: d, Type: typeDir, Perm: 0o755}
				continue
			}
			if old.Type != typeDir {
				return fmt.Errorf("rootfs: %s needs %s to be a directory, but it is %c", e.Path, d, old.Type)
			}
		}
	}
	return nil
}

// modePerm converts the permission part of a Go FileMode to unix bits.
func modePerm(m fs.FileMode) uint32 {
	perm := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	return perm
}
