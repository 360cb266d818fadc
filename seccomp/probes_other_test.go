//go:build cgo && seccomp && !amd64

package seccomp

// archProbes are the architecture-only probes (none beyond the common ones).
func archProbes() []probe { return nil }
