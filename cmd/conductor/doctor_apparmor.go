package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// appArmorProfile is the name of the profile packaging/apparmor/conductor defines and `make
// install` puts in /etc/apparmor.d under the same name.
const appArmorProfile = "conductor"

// appArmorHost is where appArmorCheck reads this host's state; tests point each path at a file
// they wrote.
type appArmorHost struct {
	restrict   string // kernel.apparmor_restrict_unprivileged_userns (1: Ubuntu >= 23.10's default)
	profiles   string // the kernel's list of loaded profiles (readable by root only)
	label      string // this process's AppArmor label
	profileDir string // where `make install` puts the profile
	exe        string // this binary on disk
	rootless   bool
}

func hostAppArmor(rootless bool) appArmorHost {
	exe, _ := executable()
	return appArmorHost{
		restrict:   "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
		profiles:   "/sys/kernel/security/apparmor/profiles",
		label:      "/proc/self/attr/current",
		profileDir: "/etc/apparmor.d",
		exe:        exe,
		rootless:   rootless,
	}
}

// appArmorRestricts reports whether AppArmor denies unprivileged programs without a profile
// allowing it a working user namespace (kernel.apparmor_restrict_unprivileged_userns=1).
func appArmorRestricts(sysctl string) bool {
	b, err := os.ReadFile(sysctl)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// appArmorCheck: on a host where AppArmor restricts unprivileged user namespaces (Ubuntu >=
// 23.10), rootless conductor needs its profile (packaging/apparmor/conductor: `userns,` for the
// binary's path) loaded and attached to this binary, or no sandbox can start. The proof is this
// process's own label: the kernel gave it the profile at exec, so it is loaded and its path is
// this binary's. The fix names the profile file and the one command that loads it.
func appArmorCheck(h appArmorHost) check {
	c := check{Name: "apparmor", OK: true}
	const sysctl = "kernel.apparmor_restrict_unprivileged_userns"
	if !appArmorRestricts(h.restrict) {
		c.Detail = "AppArmor does not restrict unprivileged user namespaces here (" + sysctl + " is 0 or absent)"
		return c
	}
	if !h.rootless {
		c.Detail = "AppArmor restricts unprivileged user namespaces (" + sysctl + "=1); conductor runs as root, which it does not restrict"
		return c
	}
	file := filepath.Join(h.profileDir, appArmorProfile)
	if label := readLabel(h.label); label == appArmorProfile {
		c.Detail = fmt.Sprintf("AppArmor restricts unprivileged user namespaces (%s=1); profile %s (%s) is loaded and applies to this binary (%s): it may create them",
			sysctl, appArmorProfile, file, h.exe)
		return c
	}
	c.OK = false
	c.Detail = fmt.Sprintf("AppArmor restricts unprivileged user namespaces (%s=1) and profile %s does not apply to this binary (%s): "+
		"sandboxes cannot start (unprivileged user namespaces are denied); %s; %s",
		sysctl, appArmorProfile, h.exe, loadedState(h.profiles), fileState(file, h.exe))
	c.Fix = appArmorFix(file, h.exe)
	return c
}

// readLabel is a process's AppArmor label without its mode ("conductor (unconfined)" →
// "conductor"); "" when it cannot be read.
func readLabel(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	l := strings.TrimSpace(strings.TrimRight(string(b), "\x00\n"))
	name, _, _ := strings.Cut(l, " (")
	return name
}

// loadedState says whether the kernel's profile list names conductor's profile.
func loadedState(profiles string) string {
	b, err := os.ReadFile(profiles)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "whether profile " + appArmorProfile + " is loaded cannot be read (" + profiles + " is root's)"
	case err != nil:
		return "the loaded profiles cannot be read: " + err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, _, _ := strings.Cut(line, " ("); name == appArmorProfile {
			return "profile " + appArmorProfile + " is loaded, for another path"
		}
	}
	return "profile " + appArmorProfile + " is NOT loaded"
}

// fileState says whether the installed profile file exists and attaches this binary.
func fileState(file, exe string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return file + " is not installed"
	}
	if !attaches(string(b), exe) {
		return file + " is for another path, not " + exe
	}
	return file + " is installed for this binary"
}

// attaches reports whether a profile text's conductor profile is for the path exe.
func attaches(profile, exe string) bool {
	return strings.Contains(profile, "profile "+appArmorProfile+" "+exe+" ")
}

// appArmorFix is the one command that loads a profile for exe: the installed file when it is
// for exe; from a checkout (bin/conductor next to packaging/), the checkout's Makefile renders
// the profile for its bin/ and loads it; else `make install` for exe's directory.
func appArmorFix(file, exe string) string {
	if b, err := os.ReadFile(file); err == nil && attaches(string(b), exe) {
		return "load it: sudo apparmor_parser -r " + file
	}
	bin := filepath.Dir(exe)
	if top := filepath.Dir(bin); isFile(filepath.Join(top, "packaging", "apparmor", appArmorProfile)) && isFile(filepath.Join(top, "Makefile")) {
		return fmt.Sprintf("install and load the profile (%s) for this checkout's binary: sudo make -C %s install-apparmor BINDIR=%s",
			filepath.Join(top, "packaging", "apparmor", appArmorProfile), top, bin)
	}
	return fmt.Sprintf("install and load it: sudo make install BINDIR=%s in conductor's checkout (installs %s and runs apparmor_parser -r on it)", bin, file)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
