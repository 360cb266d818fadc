package rootfs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
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

// check is the cheap verification: it walks the root without reading file contents and compares
// the set of paths and every entry's type, mode, owner, inode, symlink target and, for regular
// files, size, mtime and ctime against the manifest.
func (m *manifest) check(ctx context.Context, rootDir string) error {
	scanned, err := scanTree(ctx, rootDir, false)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	if len(scanned) != len(m.Entries) {
		return fmt.Errorf("%w: %s has %d entries, manifest %d", ErrStale, rootDir, len(scanned), len(m.Entries))
	}
	for _, d := range scanned {
		e, ok := m.byPath[d.Path]
		if !ok {
			return fmt.Errorf("%w: unexpected %s in %s", ErrStale, d.Path, rootDir)
		}
		same := e.Type == string(d.Type) && e.Perm == d.Perm && e.UID == d.UID && e.GID == d.GID &&
			e.Ino == d.Ino && e.Target == d.Target
		if same && d.Type == typeFile {
			same = e.Size == d.Size && e.Mtime == d.Mtime && e.Ctime == d.Ctime
		}
		if !same {
			return fmt.Errorf("%w: %s changed in %s", ErrStale, d.Path, rootDir)
		}
	}
	return nil
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
