package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (clock ticks):
// USER_HZ, fixed at 100 in Linux's user ABI on the architectures we run on.
const userHZ = 100

// errStat is returned for a /proc/<pid>/stat line that cannot be parsed.
var errStat = errors.New("unparsable /proc/<pid>/stat")

// procTimes is one process's CPU time from /proc/<pid>/stat: its own
// (utime+stime, every thread, living and exited) and that of its children
// it has reaped (cutime+cstime, each including what they had reaped).
type procTimes struct {
	own, reaped time.Duration
}

// parseStat reads the CPU times out of the contents of /proc/<pid>/stat.
// The command name (field 2, in parentheses) is chosen by the process and
// may hold spaces and parentheses, so the fields are counted from the last
// ')'.
func parseStat(data []byte) (procTimes, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procTimes{}, fmt.Errorf("%w: no ')' after the command name", errStat)
	}
	// After the name: state (field 3), ppid (4), …, utime (14), stime (15),
	// cutime (16), cstime (17).
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("%w: %d fields after the command name, want at least 15", errStat, len(f))
	}
	var t [4]int64
	for k := range t {
		v, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil || v < 0 {
			return procTimes{}, fmt.Errorf("%w: field %d is %q", errStat, 14+k, f[11+k])
		}
		t[k] = v
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * (time.Second / userHZ) }
	return procTimes{own: tick(t[0]) + tick(t[1]), reaped: tick(t[2]) + tick(t[3])}, nil
}

// descendants returns the pids of pid's living descendants, children first
// (from /proc/<pid>/task/*/children, recursively).
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		data, _ := os.ReadFile(t)
		for _, c := range strings.Fields(string(data)) {
			if cpid, err := strconv.Atoi(c); err == nil {
				out = append(out, cpid)
				out = append(out, descendants(cpid)...)
			}
		}
	}
	return out
}

// treeCPU is the CPU time of pid's whole process tree so far: pid's own and
// its reaped children's, plus the same for each living descendant (a
// descendant's reaped children are in its cutime/cstime; when it is reaped
// itself, its total moves into its parent's). A descendant that is gone
// between the listing and the read is skipped; callers take it when the tree
// is quiet (settle), where that does not happen. The unit is a clock tick
// (10 ms) per process read.
func treeCPU(pid int) (time.Duration, error) {
	var sum time.Duration
	for i, p := range append([]int{pid}, descendants(pid)...) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		t, err := parseStat(data)
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", p, err)
		}
		sum += t.own + t.reaped
	}
	return sum, nil
}
