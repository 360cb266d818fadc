package rootfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Names inside <dir>/<hash>.
const (
	rootfsName   = "rootfs"
	manifestName = "manifest.json"
	holdName     = "hold"
)

// build creates the root described by p in a fresh directory inside storeDir, checks that what
// landed on disk hashes to p.hash, makes it durable and renames it to storeDir/<hash>.
func build(ctx context.Context, storeDir string, p *plan) (err error) {
	tmp, err := os.MkdirTemp(storeDir, ".build-")
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil { // the sandbox's host uid must traverse it
		return fmt.Errorf("rootfs: %w", err)
	}
	rootDir := filepath.Join(tmp, rootfsName)
	asRoot := os.Geteuid() == 0
	for _, e := range p.sorted() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := create(filepath.Join(rootDir, e.Path), e, asRoot); err != nil {
			return fmt.Errorf("rootfs: build %s: %w", e.Path, err)
		}
	}
	scanned, err := scanTree(ctx, rootDir, true)
	if err != nil {
		return err
	}
	if got := treeHash(entriesOf(scanned)); got != p.hash {
		return fmt.Errorf("rootfs: the built root hashes to %s, not the planned %s (did a source file change during the build?)", got, p.hash)
	}
	if err := syncDirs(rootDir); err != nil {
		return err
	}
	if err := newManifest(p.hash, scanned).write(filepath.Join(tmp, manifestName)); err != nil {
		return fmt.Errorf("rootfs: write manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, holdName), nil, 0o644); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(storeDir, p.hash)); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return syncDir(storeDir)
}

// create makes one entry at host path name. Ownership is set before the mode (chown clears
// setuid/setgid bits), and the mode explicitly, independent of the umask.
func create(name string, e *entry, asRoot bool) error {
	chown := func() error {
		if asRoot {
			return os.Lchown(name, 0, 0)
		}
		return nil
	}
	mode := fs.FileMode(e.Perm & 0o777)
	switch e.Type {
	case typeDir:
		if err := os.Mkdir(name, 0o700); err != nil {
			return err
		}
		if err := chown(); err != nil {
			return err
		}
		return os.Chmod(name, mode)
	case typeSymlink:
		if err := os.Symlink(e.Target, name); err != nil {
			return err
		}
		return chown()
	case typeFile:
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if err := fillFile(f, e); err != nil {
			f.Close()
			return err
		}
		if err := chown(); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
		if !e.Mtime.IsZero() {
			if err := os.Chtimes(name, e.Mtime, e.Mtime); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return fmt.Errorf("unknown entry type %c", e.Type)
}

// fillFile writes a file entry's content; host sources go through io.Copy, which uses
// copy_file_range on Linux.
func fillFile(f *os.File, e *entry) error {
	if e.Src == "" {
		_, err := f.Write(e.Data)
		return err
	}
	src, err := os.Open(e.Src)
	if err != nil {
		return err
	}
	defer src.Close()
	_, err = io.Copy(f, src)
	return err
}

// writeFileSync writes a new file and fsyncs it.
func writeFileSync(name string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDirs fsyncs every directory under (and including) dir.
func syncDirs(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		return nil
	})
}

// syncDir fsyncs one directory, making renames and creations in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("rootfs: fsync %s: %w", dir, err)
	}
	return nil
}
