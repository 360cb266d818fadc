package rootfs

import (
	"context"
	"errors"
	"fmt"
	"github.com/conductor-sandbox/conductor/internal/flock"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Root is a built, immutable root filesystem. It is held (protected from Prune) from the moment
// Ensure or Current returns it until Release.
type Root struct {
	Path         string // absolute host path of the built root directory (immutable once built)
	Hash         string // hex sha256 content hash over every path, mode, symlink target and file content
	DenoPath     string // in-root path of deno, "/usr/bin/deno"
	DenoDir      string // in-root mount point for the dependency cache, "/deno-dir"
	BootstrapDir string // in-root directory of the bootstrap files, "/conductor"
	TrustDir     string // in-root mount point for the certificates sandboxes trust, "/conductor/trust"
	Hostname     string // the host name sandboxes get, which the root's /etc/hosts resolves: "sandbox"
	// DevNodes are the in-root paths of the device mount points in /dev ("/dev/null", ...): the
	// sandbox binds the host's node of the same path over each one.
	DevNodes []string

	manifest *manifest
	// refreshed: open verified files by content whose inode or times differ from the manifest's
	// (a copied root) and updated the in-memory manifest; Ensure writes it back.
	refreshed bool
	mu        sync.Mutex
	hold      *os.File // shared flock on <dir>/<hash>/hold; nil once released
}

// open loads <dir>/<hash>, takes a hold on it and runs the cheap check. The caller holds the
// store lock (either mode), so no Prune can run between resolving and holding.
func open(ctx context.Context, dir, hash string) (*Root, error) {
	hashDir := filepath.Join(dir, hash)
	m, err := readManifest(filepath.Join(hashDir, manifestName), hash)
	if err != nil {
		return nil, err
	}
	hold, err := os.Open(filepath.Join(hashDir, holdName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s", ErrStale, hashDir, holdName)
	}
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if err := flock.Lock(ctx, hold, syscall.LOCK_SH); err != nil {
		hold.Close()
		return nil, err
	}
	r := &Root{
		Path:         filepath.Join(hashDir, rootfsName),
		Hash:         hash,
		DenoPath:     denoPath,
		DenoDir:      denoDir,
		TrustDir:     trustDir,
		BootstrapDir: bootstrapDir,
		Hostname:     hostname,
		DevNodes:     devNodes(),
		manifest:     m,
		hold:         hold,
	}
	refreshed, err := m.check(ctx, r.Path)
	if err != nil {
		hold.Close()
		return nil, err
	}
	r.refreshed = refreshed
	return r, nil
}

// Verify re-hashes every byte of the root and compares the result with Hash (the name of the
// root's directory, which the manifest must also agree with), and checks every entry still has
// the owner it was built with. A mismatch yields ErrStale. It costs ~100 ms for a deno root.
func (r *Root) Verify(ctx context.Context) error {
	return verifyTree(ctx, r.Path, r.Hash, r.manifest)
}

// verifyTree re-hashes the root at rootDir and compares it with hash and m's owners.
func verifyTree(ctx context.Context, rootDir, hash string, m *manifest) error {
	scanned, err := scanTree(ctx, rootDir, true)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	if got := treeHash(entriesOf(scanned)); got != hash {
		return fmt.Errorf("%w: %s hashes to %s, want %s", ErrStale, rootDir, got, hash)
	}
	return m.owners(scanned)
}

// Release drops the hold, after which Prune may remove the root unless it is current. Call it
// only once no sandbox started from this root is running any more: a sandbox's bind mount of
// Path shows the removal too. Release is idempotent.
func (r *Root) Release() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hold == nil {
		return nil
	}
	err := r.hold.Close()
	r.hold = nil
	return err
}
