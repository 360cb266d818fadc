// Package leftovers finds what a sandbox may have left on the host —
// processes and cgroup directories whose names carry a marker — so tests can
// assert that every path cleans up after itself.
package leftovers

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupDirs lists cgroup directories under /sys/fs/cgroup whose name
// contains marker.
func CgroupDirs(marker string) []string {
	var found []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Contains(d.Name(), marker) {
			found = append(found, p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// Processes lists live (non-zombie) pids whose cgroup path mentions marker.
func Processes(marker string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err == nil && strings.Contains(string(b), marker) && Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
