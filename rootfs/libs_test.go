package rootfs

import (
	"bytes"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lddPaths runs ldd and returns the real paths of everything it resolved.
func lddPaths(t *testing.T, binary string) []string {
	t.Helper()
	out, err := exec.Command("ldd", binary).CombinedOutput()
	if err != nil {
		t.Fatalf("ldd %s: %v\n%s", binary, err, out)
	}
	var paths []string
	for _, l := range lines(string(out)) {
		if strings.Contains(l, "not found") {
			t.Fatalf("ldd could not resolve %s: %q", binary, l)
		}
		l, _, _ = strings.Cut(l, " (0x") // drop the load address
		if _, p, ok := strings.Cut(l, " => "); ok {
			l = p
		}
		if !filepath.IsAbs(l) {
			continue // linux-vdso.so.1 and other kernel-provided objects
		}
		paths = append(paths, realPath(t, l))
	}
	slices.Sort(paths)
	return paths
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLibrariesMatchesLdd(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("ldd not installed")
	}
	cases := []struct {
		name   string
		binary string
		want   []string // base names that must be in the closure
	}{
		{"deno", "", []string{"ld-linux-x86-64.so.2", "libc.so.6", "libgcc_s.so.1", "libm.so.6"}},
		{"ls", "/usr/bin/ls", []string{"ld-linux-x86-64.so.2", "libc.so.6"}},
		{"python3", "/usr/bin/python3", []string{"libc.so.6"}},
		{"ssh", "/usr/bin/ssh", []string{"libc.so.6"}},
		{"curl", "/usr/bin/curl", []string{"libc.so.6"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin := tc.binary
			if bin == "" {
				bin = testDeno(t)
			} else if _, err := os.Stat(bin); err != nil {
				t.Skipf("%s not installed", bin)
			}
			libs, err := Libraries(bin)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			bases := map[string]bool{}
			for _, l := range libs {
				if !filepath.IsAbs(l) {
					t.Errorf("Libraries returned relative path %q", l)
				}
				got = append(got, realPath(t, l))
				bases[filepath.Base(l)] = true
			}
			slices.Sort(got)
			got = slices.Compact(got)
			if want := lddPaths(t, bin); !slices.Equal(got, want) {
				t.Errorf("Libraries(%s) real paths\n got %q\nldd %q", bin, got, want)
			}
			for _, b := range tc.want {
				if !bases[b] {
					t.Errorf("closure of %s lacks %s: %q", bin, b, libs)
				}
			}
			if len(libs) == 0 || !strings.Contains(libs[0], "ld-linux") {
				t.Errorf("first entry should be the PT_INTERP loader, got %q", libs)
			}
		})
	}
}

// patchNeeded copies src to dst, renaming the DT_NEEDED string from to the same-length to.
func patchNeeded(t *testing.T, src, dst, from, to string) {
	t.Helper()
	if len(from) != len(to) {
		t.Fatal("patchNeeded needs equal lengths")
	}
	f, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	dynstr := f.Section(".dynstr")
	if dynstr == nil {
		t.Fatalf("%s has no .dynstr", src)
	}
	data, err := dynstr.Data()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, append([]byte(from), 0))
	if i < 0 {
		t.Fatalf("%s: %q not in .dynstr", src, from)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[int(dynstr.Offset)+i:], to)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestLibrariesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	missingLib := filepath.Join(dir, "needs-missing")
	patchNeeded(t, smallELF(t, dir, "true"), missingLib, "libc.so.6", "libq.so.6")

	cases := []struct {
		name    string
		path    string
		is      error
		mention []string
	}{
		{"missing file", filepath.Join(dir, "nope"), fs.ErrNotExist, []string{"nope"}},
		{"shell script", text, ErrNotELF, []string{"script.sh", "not an ELF"}},
		{"empty file", empty, ErrNotELF, []string{"empty"}},
		{"directory", dir, ErrNotELF, nil},
		{"missing library", missingLib, ErrMissingLibrary, []string{"needs-missing needs libq.so.6, not found in [", "/lib/x86_64-linux-gnu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			libs, err := Libraries(tc.path)
			if err == nil {
				t.Fatalf("Libraries(%s) = %q, want an error", tc.path, libs)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	var mle *MissingLibraryError
	if _, err := Libraries(missingLib); !errors.As(err, &mle) || mle.Name != "libq.so.6" || len(mle.Dirs) == 0 {
		t.Errorf("want *MissingLibraryError for libq.so.6 with dirs, got %#v", err)
	}
}

func TestLibrariesStatic(t *testing.T) {
	t.Parallel()
	// The Go toolchain links this test binary statically unless cgo is involved; find any
	// static executable instead of assuming.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	static := true
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			static = false
		}
	}
	f.Close()
	if !static {
		t.Skip("test binary is dynamically linked")
	}
	libs, err := Libraries(exe)
	if err != nil || len(libs) != 0 {
		t.Errorf("Libraries(static) = %q, %v; want none", libs, err)
	}
}
