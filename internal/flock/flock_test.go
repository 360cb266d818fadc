package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Two opens of one file exclude each other (locks belong to the open file
// description), a shared lock admits another shared one, and a waiting Lock
// gives up when its context ends.
func TestLockAndTry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b, c := open(), open(), open()
	if err := Lock(context.Background(), a, syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if got, err := Try(b, syscall.LOCK_SH); !got || err != nil {
		t.Fatalf("second shared lock: %v %v", got, err)
	}
	if got, err := Try(c, syscall.LOCK_EX); got || err != nil {
		t.Fatalf("exclusive lock while shared ones are held: %v %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Lock(ctx, c, syscall.LOCK_EX); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting Lock: %v, want the context's deadline", err)
	}
	a.Close()
	b.Close()
	if err := Lock(context.Background(), c, syscall.LOCK_EX); err != nil {
		t.Fatalf("exclusive lock once the others are gone: %v", err)
	}
}
