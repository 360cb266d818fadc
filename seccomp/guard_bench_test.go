//go:build cgo && seccomp

package seccomp

import (
	"os"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// BenchmarkGuardLibseccomp is the libseccomp way to build the same guard
// (allow-all filter, KILL_PROCESS bad-arch action), up to the exported BPF
// program. Both are cheap (a few microseconds on the reference VM:
// libseccomp 2.7 µs, x/net/bpf 0.7 µs); LoadArchGuard uses x/net/bpf because
// it is faster, needs no cgo, and its six instructions are easy to audit.
func BenchmarkGuardLibseccomp(b *testing.B) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()
	for b.Loop() {
		f, err := libseccomp.NewFilter(libseccomp.ActAllow)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
			b.Fatal(err)
		}
		if err := f.ExportBPF(devNull); err != nil {
			b.Fatal(err)
		}
		f.Release()
	}
}
