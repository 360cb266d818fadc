package rootfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// digestCache remembers the sha256 of source files (deno, libraries) keyed by their inode, size,
// mtime and ctime, so an unchanged deno is not re-hashed on every Ensure. It is stored as
// <dir>/.digests.json and only written under the store lock.
type digestCache struct {
	path    string
	entries map[string]digestEntry // by host path
	used    map[string]digestEntry // entries looked up in this run; what save writes
	dirty   bool
}

type digestEntry struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Size   int64  `json:"size"`
	Mtime  int64  `json:"mtime"`
	Ctime  int64  `json:"ctime"`
	SHA256 string `json:"sha256"`
}

// loadDigests reads the cache; a missing or unreadable cache is an empty one.
func loadDigests(path string) *digestCache {
	c := &digestCache{path: path, entries: map[string]digestEntry{}, used: map[string]digestEntry{}}
	if b, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(b, &c.entries) != nil {
			c.entries = map[string]digestEntry{}
		}
	}
	return c
}

// digest returns the hex sha256 of the file at name, from the cache if its stat is unchanged.
func (c *digestCache) digest(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	key, err := statKey(name)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if e, ok := c.entries[name]; ok && e.SHA256 != "" {
		key.SHA256 = e.SHA256
		if e == key {
			c.used[name] = e
			return e.SHA256, nil
		}
	}
	sum, err := fileDigest(name)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	after, err := statKey(name)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	key.SHA256, after.SHA256 = sum, sum
	if after == key { // do not cache a file that changed while it was hashed
		c.used[name] = key
		c.dirty = true
	}
	return sum, nil
}

// save writes the entries used in this run (atomically) if anything changed.
func (c *digestCache) save() error {
	if !c.dirty && len(c.used) == len(c.entries) {
		return nil
	}
	b, err := json.Marshal(c.used)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("rootfs: write digest cache: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("rootfs: write digest cache: %w", err)
	}
	return nil
}

// statKey stats name (following symlinks) into a cache key without digest.
func statKey(name string) (digestEntry, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		return digestEntry{}, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return digestEntry{}, &fs.PathError{Op: "stat", Path: name, Err: errors.New("not a regular file")}
	}
	return digestEntry{
		Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}, nil
}

// digestCachePath is where a store keeps its digest cache.
func digestCachePath(storeDir string) string { return filepath.Join(storeDir, ".digests.json") }
