package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData encodes struct seccomp_data for x/net/bpf's VM. The VM loads
// words big-endian (network order) while the kernel loads them in native
// order, so the fields are written big-endian here to make the VM see the
// same values the kernel would.
func seccompData(nr, auditArch uint32) []byte {
	b := make([]byte, 64) // nr, arch, instruction_pointer, args[6]
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], auditArch)
	return b
}

func TestGuardProgram(t *testing.T) {
	const (
		allowed = unix.SECCOMP_RET_ALLOW
		killed  = unix.SECCOMP_RET_KILL_PROCESS
	)
	tests := []struct {
		arch      arch
		auditArch uint32
		nr        uint32
		want      uint32
	}{
		{archAMD64, unix.AUDIT_ARCH_X86_64, unix.SYS_GETPID, allowed},
		{archAMD64, unix.AUDIT_ARCH_X86_64, 0, allowed},
		{archAMD64, unix.AUDIT_ARCH_X86_64, 1000, allowed},                        // unknown numbers are the policy's business
		{archAMD64, unix.AUDIT_ARCH_X86_64, unix.SYS_GETPID | 0x40000000, killed}, // x32
		{archAMD64, unix.AUDIT_ARCH_X86_64, 0x40000000, killed},
		{archAMD64, unix.AUDIT_ARCH_X86_64, 0xffffffff, killed}, // nr -1 has the x32 bit too
		{archAMD64, unix.AUDIT_ARCH_I386, 20, killed},           // int 0x80
		{archAMD64, unix.AUDIT_ARCH_AARCH64, unix.SYS_GETPID, killed},
		{archARM64, unix.AUDIT_ARCH_AARCH64, 172, allowed},
		{archARM64, unix.AUDIT_ARCH_AARCH64, 172 | 0x40000000, allowed}, // no x32 on arm64
		{archARM64, unix.AUDIT_ARCH_ARM, 20, killed},                    // AArch32 compat
		{archARM64, unix.AUDIT_ARCH_X86_64, 39, killed},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/arch=%#x/nr=%#x", tt.arch.goarch, tt.auditArch, tt.nr), func(t *testing.T) {
			vm, err := bpf.NewVM(guardProgram(tt.arch))
			if err != nil {
				t.Fatalf("guard program invalid: %v", err)
			}
			got, err := vm.Run(seccompData(tt.nr, tt.auditArch))
			if err != nil {
				t.Fatal(err)
			}
			if uint32(got) != tt.want {
				t.Errorf("action %#x, want %#x", uint32(got), tt.want)
			}
		})
	}
}

func TestAssembleGuard(t *testing.T) {
	for _, tt := range []struct {
		arch arch
		want int
	}{{archAMD64, 6}, {archARM64, 4}} {
		prog, err := assembleGuard(tt.arch)
		if err != nil {
			t.Fatalf("%s: %v", tt.arch.goarch, err)
		}
		if len(prog) != tt.want {
			t.Errorf("%s: %d instructions, want %d", tt.arch.goarch, len(prog), tt.want)
		}
		// The last instruction must be the KILL_PROCESS return.
		last := prog[len(prog)-1]
		if last.Code != unix.BPF_RET|unix.BPF_K || last.K != unix.SECCOMP_RET_KILL_PROCESS {
			t.Errorf("%s: last instruction %+v, want ret KILL_PROCESS", tt.arch.goarch, last)
		}
	}
}

// BenchmarkGuardAssemble measures what LoadArchGuard does before its one
// seccomp(2) call with golang.org/x/net/bpf. Compare with
// BenchmarkGuardLibseccomp.
func BenchmarkGuardAssemble(b *testing.B) {
	for b.Loop() {
		if _, err := assembleGuard(archAMD64); err != nil {
			b.Fatal(err)
		}
	}
}
