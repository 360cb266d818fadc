package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// procCheck finds a masked /proc: a file or directory of /proc covered by another mount, as a
// container runtime masks /proc/kcore, /proc/keys and others by default. The kernel refuses a
// fresh proc mount in a user namespace while any such path is covered, and every sandbox mounts
// one: no sandbox could start.
func procCheck() check {
	c := check{Name: "proc", OK: true, Detail: "/proc is not masked: sandboxes can mount their own"}
	covered, err := procCovered("/proc/self/mountinfo")
	if err != nil {
		c.Detail = "cannot read /proc/self/mountinfo: " + err.Error()
		return c // not a wall this check can see; the sandbox run says more
	}
	if len(covered) == 0 {
		return c
	}
	c.OK = false
	c.Detail = fmt.Sprintf("/proc is masked (%s covered by other mounts, as a container runtime does by default): "+
		"the kernel refuses a sandbox its own /proc in a user namespace", strings.Join(covered, ", "))
	c.Fix = "run conductor's container with an unmasked /proc: in Kubernetes, the container's securityContext.procMount " +
		"Unmasked (needs the pod's hostUsers: false), as deploy/kubernetes/deployment.yaml does; with docker, " +
		"--security-opt systempaths=unconfined. Each sandbox masks those paths again in its own /proc"
	return c
}

// procCovered lists the mount points strictly under /proc in a mountinfo file, except empty
// directories the kernel itself provides for mounts (binfmt_misc), which do not count.
func procCovered(mountinfo string) ([]string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var covered []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if !strings.HasPrefix(mp, "/proc/") || mp == "/proc/sys/fs/binfmt_misc" {
			continue
		}
		covered = append(covered, mp)
	}
	return covered, sc.Err()
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
