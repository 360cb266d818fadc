package rootfs

import (
	"context"
	"errors"
	"fmt"
	"github.com/conductor-sandbox/conductor/internal/flock"
	"os"
)

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
	if err := flock.Lock(ctx, f, how); err != nil {
		f.Close()
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	return f, nil
}
