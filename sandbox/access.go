package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// checkReachable reports the first directory on the way to path (inclusive)
// that the host uid/gid the sandbox's root maps to cannot search. libcontainer
// would otherwise fail deep in container init with a bare "permission denied".
func checkReachable(path string, uid, gid int) error {
	p := filepath.Clean(path)
	for {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if ok {
			mode := st.Mode().Perm()
			var canSearch bool
			switch {
			case int(sys.Uid) == uid:
				canSearch = mode&0o100 != 0
			case int(sys.Gid) == gid:
				canSearch = mode&0o010 != 0
			default:
				canSearch = mode&0o001 != 0
			}
			if !canSearch {
				return fmt.Errorf("the sandbox runs as host uid %d, which cannot enter %s (mode %v, owner %d:%d): make it world-searchable (chmod o+x) or move the root/cache elsewhere", uid, p, mode, sys.Uid, sys.Gid)
			}
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}
