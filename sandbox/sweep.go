package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/cgroups"
)

// lockName is the file a live runner holds an exclusive flock on.
const lockName = ".lock"

// Sweep removes what dead conductor instances left under stateDir: for every
// instance directory whose lock nobody holds, it kills and destroys each
// container (processes, cgroups, state), removes cgroups that never got a
// state file, and removes the directory. Live instances and anything without
// conductor's prefix are never touched. It returns what it removed.
func Sweep(ctx context.Context, stateDir string, host *cgroups.Host, log *slog.Logger) ([]string, error) {
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("sweep: %w", err)
	}
	var removed []string
	var errs []error
	var dead []string
	for _, e := range entries {
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		if !e.IsDir() || !strings.HasPrefix(e.Name(), IDPrefix) {
			continue
		}
		dir := filepath.Join(stateDir, e.Name())
		lock, alive, err := tryLock(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if alive {
			continue
		}
		dead = append(dead, e.Name())
		got, err := sweepInstance(dir, log)
		removed = append(removed, got...)
		if err != nil {
			errs = append(errs, err)
		}
		if lock != nil {
			lock.Close()
		}
	}
	if host != nil && len(dead) > 0 {
		gone, err := host.Sweep(ctx, func(name string) bool {
			for _, inst := range dead {
				if strings.HasPrefix(name, inst+"-") {
					return true
				}
			}
			return false
		})
		removed = append(removed, gone...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// tryLock reports whether a live runner holds dir's lock. When nobody does,
// it returns the lock, held, so no runner can claim the directory meanwhile.
func tryLock(dir string) (*os.File, bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil // crashed before locking: dead
	}
	if err != nil {
		return nil, false, fmt.Errorf("sweep: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("sweep: lock %s: %w", dir, err)
	}
	return f, false, nil
}

// sweepInstance destroys every container in a dead instance dir, then the dir.
func sweepInstance(dir string, log *slog.Logger) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), IDPrefix) {
			continue
		}
		ctr, err := libcontainer.Load(dir, e.Name())
		if err == nil {
			_ = ctr.Signal(unix.SIGKILL)
			err = ctr.Destroy()
		}
		if err != nil {
			log.Debug("sweep: container state unusable, removing dir", "id", e.Name(), "err", err)
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	_ = os.Remove(filepath.Join(dir, lockName))
	if err := os.Remove(dir); err != nil {
		errs = append(errs, fmt.Errorf("sweep: %w", err))
	} else {
		removed = append(removed, filepath.Base(dir))
	}
	return removed, errors.Join(errs...)
}
