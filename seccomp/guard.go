package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Offsets into struct seccomp_data (linux/seccomp.h).
const (
	seccompDataNR   = 0 // int nr
	seccompDataArch = 4 // __u32 arch
)

// guardProgram returns the arch-guard classic BPF program for a:
//
//	ld  [arch]
//	jne #auditArch, kill
//	ld  [nr]              (only when the arch has a second ABI, i.e. x32)
//	jset #x32Bit, kill
//	ret ALLOW
//	kill: ret KILL_PROCESS
func guardProgram(a arch) []bpf.Instruction {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: seccompDataArch, Size: 4},
	}
	tail := []bpf.Instruction{
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
	}
	var middle []bpf.Instruction
	if a.x32Bit != 0 {
		middle = []bpf.Instruction{
			bpf.LoadAbsolute{Off: seccompDataNR, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: a.x32Bit, SkipTrue: 1},
		}
	}
	// Skip the middle part and the ALLOW to reach the KILL.
	prog = append(prog, bpf.JumpIf{
		Cond:     bpf.JumpNotEqual,
		Val:      a.auditArch,
		SkipTrue: uint8(len(middle) + 1),
	})
	prog = append(prog, middle...)
	return append(prog, tail...)
}

// assembleGuard assembles guardProgram(a) into the kernel's sock_filter form.
func assembleGuard(a arch) ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble(guardProgram(a))
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble arch guard: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		out[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return out, nil
}
