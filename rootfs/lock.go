package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// flock takes a flock(2) lock on f (syscall.LOCK_SH or LOCK_EX), polling so that ctx can cancel
// the wait. Locks belong to the open file description: two opens of the same file exclude each
// other even within one process, which is what makes goroutines and processes serialize alike.
func flock(ctx context.Context, f *os.File, how int) error {
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("rootfs: flock %s: %w", f.Name(), err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("rootfs: waiting for lock %s: %w", f.Name(), ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// tryFlock takes a lock without waiting and reports whether it got it.
func tryFlock(f *os.File, how int) (bool, error) {
	err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false, nil
	default:
		return false, fmt.Errorf("rootfs: flock %s: %w", f.Name(), err)
	}
}

// lockStore opens <dir>/.lock and locks it. With create it makes the file (exclusive lockers
// only); otherwise a missing lock file means nothing was ever built and yields ErrNotBuilt.
func lockStore(ctx context.Context, path string, how int, create bool) (*os.File, error) {
	var (
		f   *os.File
		err error
	)
	if create {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	} else {
		f, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotBuilt
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rootfs: open lock: %w", err)
	}
	if err := flock(ctx, f, how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
