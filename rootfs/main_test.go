package rootfs

import (
	"context"
	"fmt"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Helper modes: the test binary re-executes itself to act as a second process.
const (
	helperEnv     = "CONDUCTOR_ROOTFS_TEST_HELPER"
	helperEnsure  = "ensure"     // run Ensure on $STORE with deno $DENO, print "built=<n> hash=<h>"
	helperChroot  = "chroot-run" // in a new mount ns: ro bind of $ROOT, proc, tmpfs /tmp, chroot, exec args
	helperRootEnv = "CONDUCTOR_ROOTFS_TEST_ROOT"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case helperEnsure:
		os.Exit(helperEnsureMain())
	case helperChroot:
		err := helperChrootMain(os.Getenv(helperRootEnv), flagArgs())
		fmt.Fprintln(os.Stderr, "chroot helper:", err) // only reached on failure
		os.Exit(111)
	}
	os.Exit(m.Run())
}

// flagArgs returns the arguments after "--".
func flagArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

func helperEnsureMain() int {
	s := NewStore(os.Getenv("STORE"))
	r, err := s.Ensure(context.Background(), Options{
		Deno:      os.Getenv("DENO"),
		Bootstrap: map[string][]byte{"bootstrap.js": []byte(os.Getenv("BOOTSTRAP"))},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Release()
	fmt.Printf("built=%d hash=%s\n", s.builds.Load(), r.Hash)
	return 0
}

// helperChrootMain runs in a fresh mount namespace (the parent sets CLONE_NEWNS): it mounts the
// root read-only with proc and a tmpfs /tmp, as the sandbox will, then execs args inside it.
func helperChrootMain(root string, args []string) error {
	steps := []struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}{
		{"", "/", "", syscall.MS_REC | syscall.MS_PRIVATE, ""},
		{root, root, "", syscall.MS_BIND | syscall.MS_REC, ""},
		{"", root, "", syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY, ""},
		{"proc", root + "/proc", "proc", syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC, ""},
		{"tmpfs", root + "/tmp", "tmpfs", syscall.MS_NOSUID | syscall.MS_NODEV, "size=64m,mode=1777"},
	}
	for _, s := range steps {
		if err := syscall.Mount(s.src, s.dst, s.fstype, s.flags, s.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", s.src, s.dst, err)
		}
	}
	if err := syscall.Chroot(root); err != nil {
		return err
	}
	if err := syscall.Chdir("/"); err != nil {
		return err
	}
	return syscall.Exec(args[0], args, []string{"DENO_DIR=/tmp/deno", "DENO_NO_UPDATE_CHECK=1", "HOME=/tmp", "NO_COLOR=1"})
}

// testDeno returns the deno binary to build roots from: $CONDUCTOR_DENO or ../.build/deno.
// Without one the test is skipped, or fails when CI=true.
func testDeno(t *testing.T) string { return testenv.Deno(t) }

// requireRoot skips (or fails when CI=true) unless the test runs as root.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := fmt.Sprintf("needs root (euid %d) to %s", os.Geteuid(), why)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// smallELF copies a small dynamically linked system binary into dir as name, for tests that need
// an ELF they can modify and that build fast.
func smallELF(t *testing.T, dir, name string) string {
	t.Helper()
	var src string
	for _, c := range []string{"/usr/bin/true", "/bin/true"} {
		if _, err := os.Stat(c); err == nil {
			src = c
			break
		}
	}
	if src == "" {
		t.Fatal("no /usr/bin/true on this machine")
	}
	dst := filepath.Join(dir, name)
	copyFile(t, src, dst, 0o755)
	return dst
}

func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// bootstrapOpts returns Options for deno with one bootstrap file.
func bootstrapOpts(deno, content string) Options {
	return Options{Deno: deno, Bootstrap: map[string][]byte{"bootstrap.js": []byte(content)}}
}

// ensure runs Ensure and registers the Release.
func ensure(t *testing.T, s *Store, opts Options) *Root {
	t.Helper()
	r, err := s.Ensure(context.Background(), opts)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Cleanup(func() { r.Release() })
	return r
}

// runHelper starts the test binary as a helper process.
func helperCmd(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	return cmd
}

// lines splits command output into trimmed non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
