//go:build !cgo || !seccomp

package seccomp

import (
	"errors"
	"testing"
)

// Without cgo and the seccomp tag libcontainer cannot load any filter, so
// Policy must refuse rather than hand out a config that would fail later.
func TestPolicyNeedsSeccompTag(t *testing.T) {
	_, err := NewCache().Policy(Options{})
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Policy without the seccomp tag = %v, want ErrNotSupported", err)
	}
}
