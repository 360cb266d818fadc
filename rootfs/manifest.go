package rootfs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// manifest is <dir>/<hash>/manifest.json: the state of the root right after it was built.
type manifest struct {
	Format  string    `json:"format"`
	Hash    string    `json:"hash"`
	Built   time.Time `json:"built"`
	Entries []mfEntry `json:"entries"`

	byPath map[string]*mfEntry
}

// mfEntry is one entry of the manifest.
type mfEntry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Perm   uint32 `json:"perm"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Size   int64  `json:"size,omitempty"`
	Ino    uint64 `json:"ino,omitempty"`
	Mtime  int64  `json:"mtime,omitempty"`
	Ctime  int64  `json:"ctime,omitempty"`
	Target string `json:"target,omitempty"`
	Digest string `json:"sha256,omitempty"`
}

// newManifest records a freshly scanned root.
func newManifest(hash string, scanned []*diskEntry) *manifest {
	m := &manifest{Hash: hash, Built: time.Now().UTC(), Format: hashFormat[:len(hashFormat)-1]}
	for _, e := range scanned {
		m.Entries = append(m.Entries, mfEntry{
			Path: e.Path, Type: string(e.Type), Perm: e.Perm, UID: e.UID, GID: e.GID,
			Size: e.Size, Ino: e.Ino, Mtime: e.Mtime, Ctime: e.Ctime, Target: e.Target, Digest: e.Digest,
		})
	}
	return m
}

// readManifest loads and sanity-checks a manifest: it must be for hash and its entries must
// hash to it.
func readManifest(path, hash string) (*manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read manifest: %w", ErrStale, err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: parse %s: %w", ErrStale, path, err)
	}
	if m.Hash != hash {
		return nil, fmt.Errorf("%w: manifest %s is for %s", ErrStale, path, m.Hash)
	}
	entries := make([]*entry, len(m.Entries))
	m.byPath = make(map[string]*mfEntry, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		if len(e.Type) != 1 {
			return nil, fmt.Errorf("%w: manifest %s: bad type %q", ErrStale, path, e.Type)
		}
		entries[i] = &entry{Path: e.Path, Type: entryType(e.Type[0]), Perm: e.Perm, Target: e.Target, Digest: e.Digest}
		m.byPath[e.Path] = e
	}
	if got := treeHash(entries); got != hash {
		return nil, fmt.Errorf("%w: manifest %s hashes to %s", ErrStale, path, got)
	}
	return &m, nil
}

// write stores the manifest durably at path.
func (m *manifest) write(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(path, b, 0o644)
}

// check verifies the root at rootDir against the manifest by content, reading file contents only
// where the filesystem cannot vouch for them. The set of paths, and every entry's type, mode,
// owner and symlink target, and every file's size, must match. A file whose inode, mtime and
// ctime are also the recorded ones is trusted as is (any write through the filesystem changes
// ctime); any other file (a copy of the root, a restore, an edit) is hashed and must have the
// recorded digest. check then records that file's new inode and times in m, and reports that it
// did (refreshed), so a caller holding the store lock exclusively can write m back and let later
// opens of the copy take the cheap path.
func (m *manifest) check(ctx context.Context, rootDir string) (refreshed bool, err error) {
	scanned, err := scanTree(ctx, rootDir, false)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrStale, err)
	}
	if len(scanned) != len(m.Entries) {
		return false, fmt.Errorf("%w: %s has %d entries, manifest %d", ErrStale, rootDir, len(scanned), len(m.Entries))
	}
	for _, d := range scanned {
		e, ok := m.byPath[d.Path]
		if !ok {
			return false, fmt.Errorf("%w: unexpected %s in %s", ErrStale, d.Path, rootDir)
		}
		if e.Type != string(d.Type) || e.Perm != d.Perm || e.UID != d.UID || e.GID != d.GID || e.Target != d.Target ||
			(d.Type == typeFile && e.Size != d.Size) {
			return false, fmt.Errorf("%w: %s changed in %s", ErrStale, d.Path, rootDir)
		}
		if d.Type != typeFile || (e.Ino == d.Ino && e.Mtime == d.Mtime && e.Ctime == d.Ctime) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		sum, err := fileDigest(filepath.Join(rootDir, d.Path))
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrStale, err)
		}
		if sum != e.Digest {
			return false, fmt.Errorf("%w: content of %s changed in %s", ErrStale, d.Path, rootDir)
		}
		// The digest was taken after the stat: a write in between changed ctime again, and the
		// next check hashes the file anew.
		e.Ino, e.Mtime, e.Ctime = d.Ino, d.Mtime, d.Ctime
		refreshed = true
	}
	return refreshed, nil
}

// replace writes the manifest to path through a temporary file and a rename, so that a crash
// leaves the old or the new manifest, never a partial one.
func (m *manifest) replace(path string) error {
	tmp := path + ".tmp"
	if err := m.write(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// owners checks every scanned entry has the owner the manifest recorded.
func (m *manifest) owners(scanned []*diskEntry) error {
	for _, d := range scanned {
		if e, ok := m.byPath[d.Path]; !ok || e.UID != d.UID || e.GID != d.GID {
			return fmt.Errorf("%w: owner of %s changed", ErrStale, d.Path)
		}
	}
	return nil
}
