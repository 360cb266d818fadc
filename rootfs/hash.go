package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// hashFormat names the serialization below; change it whenever the layout, the format or the way
// a root is built changes, so that every store rebuilds.
const hashFormat = "conductor-rootfs/v2\n" // v2: copies keep their sources' modification times

// treeHash is the content hash of a root: sha256 over every entry (sorted by path) as
// "<type> <perm> <len>:<path> <len>:<payload>\n", where payload is the file digest or symlink target.
func treeHash(entries []*entry) string {
	h := sha256.New()
	io.WriteString(h, hashFormat)
	for _, e := range entries {
		payload := e.Digest
		if e.Type == typeSymlink {
			payload = e.Target
		}
		fmt.Fprintf(h, "%c %04o %d:%s %d:%s\n", e.Type, e.Perm, len(e.Path), e.Path, len(payload), payload)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diskEntry is an entry as found on disk, with the stat fields the cheap check compares.
type diskEntry struct {
	entry
	UID, GID uint32
	Size     int64
	Ino      uint64
	Mtime    int64 // ns
	Ctime    int64 // ns
}

// scanTree lists the root at dir, sorted by path, without following symlinks. With digests it
// hashes every regular file. Entries other than directories, regular files and symlinks are
// reported with type '?', which never matches a plan.
func scanTree(ctx context.Context, dir string, digests bool) ([]*diskEntry, error) {
	var out []*diskEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("no stat for %s", p)
		}
		e := &diskEntry{
			entry: entry{Path: filepath.Join("/", rel), Perm: modePerm(info.Mode())},
			UID:   st.Uid, GID: st.Gid, Size: st.Size, Ino: st.Ino,
			Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
		}
		switch info.Mode().Type() {
		case fs.ModeDir:
			e.Type, e.Size, e.Mtime, e.Ctime = typeDir, 0, 0, 0 // not compared: renames touch them
		case 0:
			e.Type = typeFile
			if digests {
				if e.Digest, err = fileDigest(p); err != nil {
					return err
				}
			}
		case fs.ModeSymlink:
			e.Type = typeSymlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			e.Type = '?'
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rootfs: scan %s: %w", dir, err)
	}
	// WalkDir is depth first ("/a", "/a/b", "/a-b"); the hash wants plain path order.
	slices.SortFunc(out, func(a, b *diskEntry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// fileDigest returns the hex sha256 of a file's content.
func fileDigest(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// entriesOf strips the stat fields.
func entriesOf(d []*diskEntry) []*entry {
	out := make([]*entry, len(d))
	for i, e := range d {
		out[i] = &e.entry
	}
	return out
}
