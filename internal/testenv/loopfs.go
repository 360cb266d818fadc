package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Filesystem is one way to make a loop-mounted test filesystem: the mkfs
// command line (the image path is appended) and the mount options.
type Filesystem struct {
	Mkfs    []string
	Options string
}

// LoopMount makes a size-byte image in a temporary directory, formats it
// with the first of fss that works, loop-mounts it and returns the mount
// point; cleanup unmounts it and detaches the loop device. It needs root.
// When no candidate can be made or mounted it calls Unavailable with every
// reason.
func LoopMount(tb testing.TB, size int64, fss ...Filesystem) string {
	tb.Helper()
	mnt, why := TryLoopMount(tb, size, fss...)
	if mnt == "" {
		Unavailable(tb, "no loop-mounted filesystem could be made: %s", strings.Join(why, "; "))
	}
	return mnt
}

// TryLoopMount is LoopMount that returns why each candidate failed instead
// of ending the test ("" and the reasons).
func TryLoopMount(tb testing.TB, size int64, fss ...Filesystem) (string, []string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		return "", []string{"loop-mounting a filesystem needs root"}
	}
	img := filepath.Join(tb.TempDir(), "fs.img")
	mnt := tb.TempDir()
	var why []string
	for _, fs := range fss {
		if _, err := exec.LookPath(fs.Mkfs[0]); err != nil {
			why = append(why, fs.Mkfs[0]+" is not installed")
			continue
		}
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Truncate(img, size); err != nil {
			tb.Fatal(err)
		}
		mkfs := append(append([]string{}, fs.Mkfs[1:]...), img)
		if out, err := exec.Command(fs.Mkfs[0], mkfs...).CombinedOutput(); err != nil {
			why = append(why, fmt.Sprintf("%s: %v: %s", fs.Mkfs[0], err, bytes.TrimSpace(out)))
			continue
		}
		out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
		if err != nil {
			why = append(why, fmt.Sprintf("losetup: %v: %s", err, bytes.TrimSpace(out)))
			break
		}
		dev := string(bytes.TrimSpace(out))
		args := []string{dev, mnt}
		if fs.Options != "" {
			args = append([]string{"-o", fs.Options}, args...)
		}
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			_ = exec.Command("losetup", "-d", dev).Run()
			why = append(why, fmt.Sprintf("%s with -o %q: %v: %s", fs.Mkfs[0], fs.Options, err, bytes.TrimSpace(out)))
			continue
		}
		tb.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				tb.Errorf("umount %s: %v: %s", mnt, err, out)
			}
			if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
				tb.Errorf("losetup -d %s: %v: %s", dev, err, out)
			}
		})
		return mnt, nil
	}
	return "", why
}
