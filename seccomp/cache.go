package seccomp

import (
	"runtime"
	"sync"

	"github.com/opencontainers/runc/libcontainer/configs"
)

// Cache builds each policy variant once and hands out copies. The zero
// value is ready to use; a Cache is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	built map[Options]*configs.Seccomp
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{built: make(map[Options]*configs.Seccomp)}
}

// Policy returns the libcontainer seccomp config for a deno sandbox run
// with options o, for the architecture this binary was built for.
//
// Each call returns a fresh deep copy: the caller owns it and may modify it
// without affecting later calls. The container must be configured with
// NoNewPrivileges = true (see the package documentation).
//
// Errors: ErrUnsupportedArch, ErrNotSupported (built without cgo and the
// "seccomp" tag), ErrUnknownSyscall (libseccomp too old).
func (c *Cache) Policy(o Options) (*configs.Seccomp, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg, ok := c.built[o]; ok {
		return deepCopy(cfg), nil
	}
	a, err := archFor(runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	cfg, err := build(o, a)
	if err != nil {
		return nil, err
	}
	if c.built == nil {
		c.built = make(map[Options]*configs.Seccomp)
	}
	c.built[o] = cfg
	return deepCopy(cfg), nil
}
