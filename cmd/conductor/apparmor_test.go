package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// renderAppArmor is packaging/apparmor/conductor as `make install` writes it for bindir (the
// Makefile's own substitution, through `make apparmor-profile`).
func renderAppArmor(t *testing.T, bindir string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Unavailable(t, "make is not installed")
	}
	out, err := exec.Command("make", "-s", "-C", testenv.RepoRoot(), "apparmor-profile", "BINDIR="+bindir).Output()
	if err != nil {
		t.Fatalf("make apparmor-profile: %v", err)
	}
	return string(out)
}

// TestAppArmorProfileParses: the profile, rendered for /usr/local/bin, parses with AppArmor 4.1's
// parser (what Ubuntu >= 23.10 ships; Debian 12's 3.0 does not know `userns,`), fetched by
// scripts/fetch-apparmor.sh (make test-go runs it); broken copies do not, so the parse decides.
func TestAppArmorProfileParses(t *testing.T) {
	parser := filepath.Join(testenv.RepoRoot(), ".build", "apparmor", "apparmor_parser")
	if _, err := os.Stat(parser); err != nil {
		testenv.Unavailable(t, "no AppArmor 4.1 parser at %s (run scripts/fetch-apparmor.sh; make test-go does): %v", parser, err)
	}
	profile := renderAppArmor(t, "/usr/local/bin")
	for _, want := range []string{"profile conductor /usr/local/bin/conductor flags=(unconfined) {", "\n  userns,\n", "include if exists <local/conductor>", "abi <abi/4.0>,"} {
		if !strings.Contains(profile, want) {
			t.Errorf("rendered profile lacks %q:\n%s", want, profile)
		}
	}
	if strings.Contains(profile, "@") {
		t.Errorf("rendered profile keeps a placeholder:\n%s", profile)
	}
	cases := []struct {
		name, text string
		ok         bool
	}{
		{"as installed", profile, true},
		{"misspelt rule", strings.Replace(profile, "userns,", "usernz,", 1), false},
		{"unclosed profile", strings.Replace(profile, "\n}", "\n", 1), false},
		{"unknown flag", strings.Replace(profile, "flags=(unconfined)", "flags=(unconfinde)", 1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name != "as installed" && c.text == profile {
				t.Fatal("the broken copy is the profile itself: the replacement no longer matches")
			}
			f := filepath.Join(t.TempDir(), "conductor")
			if err := os.WriteFile(f, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(parser, "-QT", f).CombinedOutput()
			if (err == nil) != c.ok {
				t.Errorf("apparmor_parser -QT: %v (want ok=%v)\n%s", err, c.ok, out)
			}
		})
	}
}

// TestInstallAppArmor: `make install-apparmor` (part of `make install`) puts the profile, with
// BINDIR filled in, where AppArmor is present, loads it only when not staging and the kernel has
// AppArmor, and otherwise says in one line why it skipped. The host's AppArmor is faked
// (APPARMOR_SYSFS, APPARMOR_PARSER: a script that records its arguments), so nothing on this
// host is read or loaded.
func TestInstallAppArmor(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Unavailable(t, "make is not installed")
	}
	cases := []struct {
		name     string
		apparmor string // APPARMOR
		sysfs    bool   // the kernel has AppArmor
		parser   bool   // apparmor_parser is installed
		staged   bool   // DESTDIR set
		file     bool   // the profile is installed
		loaded   bool   // apparmor_parser -r ran on it
		line     string // make's one line
	}{
		{"no AppArmor", "auto", false, false, false, false, false, "AppArmor profile: skipped (this host has no AppArmor: no <sysfs>, no <parser> on PATH)"},
		{"switched off", "no", true, true, false, false, false, "AppArmor profile: skipped (APPARMOR=no)"},
		{"staged", "auto", true, true, true, true, false, "AppArmor profile: installed <dest><dir>/conductor, not loaded (staged in DESTDIR)"},
		{"parser only", "auto", false, true, false, true, false, "AppArmor profile: installed <dir>/conductor, not loaded (the kernel has no AppArmor: no <sysfs>)"},
		{"kernel only", "auto", true, false, false, true, false,
			"AppArmor profile: installed <dir>/conductor, NOT loaded: no <parser> on PATH (install apparmor, then run <parser> -r <dir>/conductor)"},
		{"loaded", "auto", true, true, false, true, true, "AppArmor profile: installed and loaded <dir>/conductor"},
		{"forced, staged", "yes", false, false, true, true, false, "AppArmor profile: installed <dest><dir>/conductor, not loaded (staged in DESTDIR)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			sysfs, dir, record := filepath.Join(tmp, "sys-apparmor"), filepath.Join(tmp, "apparmor.d"), filepath.Join(tmp, "parser-args")
			parser := filepath.Join(tmp, "no-apparmor_parser")
			if c.sysfs {
				if err := os.Mkdir(sysfs, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if c.parser {
				parser = filepath.Join(tmp, "apparmor_parser")
				if err := os.WriteFile(parser, []byte("#!/bin/sh\necho \"$@\" > "+record+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			dest := ""
			if c.staged {
				dest = filepath.Join(tmp, "dest")
			}
			out, err := exec.Command("make", "-s", "-C", testenv.RepoRoot(), "install-apparmor", "APPARMOR="+c.apparmor, "DESTDIR="+dest,
				"BINDIR=/opt/conductor/bin", "APPARMORDIR="+dir, "APPARMOR_SYSFS="+sysfs, "APPARMOR_PARSER="+parser).CombinedOutput()
			if err != nil {
				t.Fatalf("make install-apparmor: %v\n%s", err, out)
			}
			want := strings.NewReplacer("<sysfs>", sysfs, "<parser>", parser, "<dest>", dest, "<dir>", dir).Replace(c.line)
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("make said %q, want %q", got, want)
			}
			b, err := os.ReadFile(filepath.Join(dest+dir, "conductor"))
			if (err == nil) != c.file {
				t.Errorf("profile installed: %v, want %v", err == nil, c.file)
			}
			if c.file && !strings.Contains(string(b), "profile conductor /opt/conductor/bin/conductor flags=(unconfined) {") {
				t.Errorf("installed profile is not for BINDIR's conductor:\n%s", b)
			}
			args, err := os.ReadFile(record)
			if (err == nil) != c.loaded {
				t.Errorf("apparmor_parser ran: %v, want %v", err == nil, c.loaded)
			}
			if c.loaded && strings.TrimSpace(string(args)) != "-r "+filepath.Join(dir, "conductor") {
				t.Errorf("apparmor_parser ran with %q, want -r %s/conductor", args, dir)
			}
		})
	}
}
