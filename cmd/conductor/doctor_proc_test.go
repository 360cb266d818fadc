package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestProcCovered: the mount points under /proc that mask it, from mountinfo lines as runc's
// masking and a plain host produce them.
func TestProcCovered(t *testing.T) {
	cases := []struct {
		name  string
		lines string
		want  []string
	}{
		{"host", "22 1 0:21 / /proc rw,nosuid - proc proc rw\n" +
			"40 22 0:35 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw\n", nil},
		{"runc masked", "600 599 0:50 / /proc rw - proc proc rw\n" +
			"601 600 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw\n" +
			"602 600 0:51 / /proc/acpi ro - tmpfs tmpfs ro\n", []string{"/proc/kcore", "/proc/acpi"}},
		{"escaped", `700 600 0:52 / /proc/odd\040name ro - tmpfs tmpfs ro` + "\n", []string{"/proc/odd name"}},
		{"not proc", "800 1 0:53 / /procfs-backup rw - tmpfs tmpfs rw\nshort line\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "mountinfo")
			if err := os.WriteFile(f, []byte(c.lines), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := procCovered(f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("procCovered = %q, want %q", got, c.want)
			}
		})
	}
}
