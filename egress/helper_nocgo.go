//go:build !cgo

package egress

import (
	"context"
	"errors"
	"net"
	"os"
)

// haveHelper: without cgo there is no constructor to join namespaces.
const haveHelper = false

// Without cgo there is no way to join a user namespace from this
// (necessarily multi-threaded) binary, so rootless Start fails with the
// original setns error plus this one.
func listenViaHelper(ctx context.Context, userns, netns *os.File, port int) (*net.TCPListener, error) {
	return nil, errors.New("the rootless listener helper needs a cgo build")
}
