package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppArmorCheck: doctor's apparmor line with the sysctl, the kernel's profile list, this
// process's label and the installed profile faked, as Ubuntu >= 23.10 shows them.
func TestAppArmorCheck(t *testing.T) {
	const installed = "/usr/local/bin/conductor"
	checkout := t.TempDir() // a checkout: bin/conductor next to packaging/ and the Makefile
	for _, f := range []string{"Makefile", "packaging/apparmor/conductor"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(checkout, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(checkout, f), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inCheckout := filepath.Join(checkout, "bin", "conductor")
	profileFor := func(exe string) string {
		return "abi <abi/4.0>,\nprofile conductor " + exe + " flags=(unconfined) {\n  userns,\n}\n"
	}
	const absent = "\x00absent" // no such file
	cases := []struct {
		name     string
		rootless bool
		exe      string
		restrict string // the sysctl's content
		profiles string // the kernel's profile list
		denied   bool   // the list cannot be read
		label    string
		file     string // /etc/apparmor.d/conductor
		ok       bool
		want     []string // in the detail
		fix      string   // the fix, exactly
	}{
		{name: "no sysctl", rootless: true, exe: installed, restrict: absent, ok: true,
			want: []string{"does not restrict unprivileged user namespaces here"}},
		{name: "sysctl 0", rootless: true, exe: installed, restrict: "0\n", label: "unconfined\n", ok: true,
			want: []string{"does not restrict", "is 0 or absent"}},
		{name: "root", exe: installed, restrict: "1\n", label: "unconfined\n", ok: true,
			want: []string{"kernel.apparmor_restrict_unprivileged_userns=1", "conductor runs as root"}},
		{name: "loaded, applies", rootless: true, exe: installed, restrict: "1\n", profiles: "conductor (unconfined)\nbwrap (unconfined)\n",
			label: "conductor (unconfined)\n", file: profileFor(installed), ok: true,
			want: []string{"profile conductor (", "/conductor) is loaded and applies to this binary (" + installed + ")"}},
		{name: "not loaded, installed", rootless: true, exe: installed, restrict: "1\n", profiles: "bwrap (unconfined)\n", label: "unconfined\n",
			file: profileFor(installed),
			want: []string{"sandboxes cannot start (unprivileged user namespaces are denied)", "profile conductor is NOT loaded",
				"/conductor is installed for this binary"},
			fix: "load it: sudo apparmor_parser -r <dir>/conductor"},
		{name: "not loaded, not installed", rootless: true, exe: installed, restrict: "1\n", profiles: "", label: "unconfined\n", file: absent,
			want: []string{"profile conductor does not apply to this binary (" + installed + ")", "profile conductor is NOT loaded", "/conductor is not installed"},
			fix:  "install and load it: sudo make install BINDIR=/usr/local/bin in conductor's checkout (installs <dir>/conductor and runs apparmor_parser -r on it)"},
		{name: "loaded for another path", rootless: true, exe: inCheckout, restrict: "1\n", profiles: "conductor (unconfined)\n", label: "unconfined\n",
			file: profileFor(installed),
			want: []string{"profile conductor is loaded, for another path", "/conductor is for another path, not " + inCheckout},
			fix: "install and load the profile (" + checkout + "/packaging/apparmor/conductor) for this checkout's binary: sudo make -C " + checkout +
				" install-apparmor BINDIR=" + checkout + "/bin"},
		{name: "profiles unreadable", rootless: true, exe: installed, restrict: "1\n", denied: true, label: "unconfined\n", file: absent,
			want: []string{"sandboxes cannot start", "the loaded profiles cannot be read: "},
			fix:  "install and load it: sudo make install BINDIR=/usr/local/bin in conductor's checkout (installs <dir>/conductor and runs apparmor_parser -r on it)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			h := appArmorHost{
				restrict: filepath.Join(dir, "restrict"), profiles: filepath.Join(dir, "profiles"), label: filepath.Join(dir, "current"),
				profileDir: filepath.Join(dir, "apparmor.d"), exe: c.exe, rootless: c.rootless,
			}
			write := func(path, content string, mode os.FileMode) {
				if content == absent {
					return
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), mode); err != nil {
					t.Fatal(err)
				}
			}
			write(h.restrict, c.restrict, 0o644)
			write(h.label, c.label, 0o644)
			write(filepath.Join(h.profileDir, "conductor"), c.file, 0o644)
			if c.denied { // a path ReadFile cannot read, as a user cannot read the kernel's list
				h.profiles = dir
			} else {
				write(h.profiles, c.profiles, 0o644)
			}
			got := appArmorCheck(h)
			if got.Name != "apparmor" || got.OK != c.ok {
				t.Errorf("check %+v: want ok=%v", got, c.ok)
			}
			for _, w := range c.want {
				if !strings.Contains(got.Detail, w) {
					t.Errorf("detail %q lacks %q", got.Detail, w)
				}
			}
			if want := strings.ReplaceAll(c.fix, "<dir>", h.profileDir); got.Fix != want {
				t.Errorf("fix %q, want %q", got.Fix, want)
			}
		})
	}
}
