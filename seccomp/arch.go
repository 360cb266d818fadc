package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// arch describes one supported CPU architecture.
type arch struct {
	// goarch is the runtime.GOARCH value.
	goarch string
	// ociName is the runtime-spec name (SCMP_ARCH_*). libcontainer's
	// configs.Seccomp wants the libseccomp spelling, which
	// libcontainer/seccomp.ConvertStringToArch derives from this.
	ociName string
	// auditArch is the AUDIT_ARCH_* value the kernel reports in
	// seccomp_data.arch for native syscalls.
	auditArch uint32
	// x32Bit, when non-zero, is the syscall-number bit that selects a
	// second ABI sharing auditArch (x32 on x86_64).
	x32Bit uint32
	// extra are the architecture-specific rules.
	extra []rule
}

var (
	archAMD64 = arch{
		goarch:    "amd64",
		ociName:   "SCMP_ARCH_X86_64",
		auditArch: unix.AUDIT_ARCH_X86_64,
		x32Bit:    0x40000000, // __X32_SYSCALL_BIT
		extra:     amd64Rules,
	}
	archARM64 = arch{
		goarch:    "arm64",
		ociName:   "SCMP_ARCH_AARCH64",
		auditArch: unix.AUDIT_ARCH_AARCH64,
		extra:     arm64Rules,
	}
)

// archFor returns the description of goarch, or ErrUnsupportedArch.
func archFor(goarch string) (arch, error) {
	switch goarch {
	case archAMD64.goarch:
		return archAMD64, nil
	case archARM64.goarch:
		return archARM64, nil
	default:
		return arch{}, fmt.Errorf("%w: %s", ErrUnsupportedArch, goarch)
	}
}

// rules returns the policy table for the architecture: the common rules
// followed by the architecture's own.
func (a arch) rules() []rule {
	out := make([]rule, 0, len(commonRules)+len(a.extra))
	out = append(out, commonRules...)
	return append(out, a.extra...)
}
