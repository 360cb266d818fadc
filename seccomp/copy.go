package seccomp

import "github.com/opencontainers/runc/libcontainer/configs"

// deepCopy returns a copy of c that shares no memory with it, so a caller
// may modify what Cache.Policy returns without affecting the cache.
func deepCopy(c *configs.Seccomp) *configs.Seccomp {
	if c == nil {
		return nil
	}
	out := *c
	out.Architectures = append([]string(nil), c.Architectures...)
	out.Flags = append(out.Flags[:0:0], c.Flags...)
	out.DefaultErrnoRet = copyUint(c.DefaultErrnoRet)
	out.Syscalls = make([]*configs.Syscall, len(c.Syscalls))
	for i, s := range c.Syscalls {
		if s == nil {
			continue
		}
		sc := *s
		sc.ErrnoRet = copyUint(s.ErrnoRet)
		if s.Args != nil {
			sc.Args = make([]*configs.Arg, len(s.Args))
			for j, a := range s.Args {
				if a != nil {
					ac := *a
					sc.Args[j] = &ac
				}
			}
		}
		out.Syscalls[i] = &sc
	}
	return &out
}

func copyUint(p *uint) *uint {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
