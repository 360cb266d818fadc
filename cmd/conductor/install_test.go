package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestMakeInstall: `make install DESTDIR=…` stages the binary, deno, the sandbox root, the
// systemd unit and the AppArmor profile (for the installed binary's path); the installed binary,
// run from outside any checkout with only the installed data directory, passes doctor and runs a
// sandboxed hello; the unit (its paths pointed into DESTDIR)
// passes `systemd-analyze verify`.
func TestMakeInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "make install's sandboxed hello runs as root here (not root)")
	}
	for _, tool := range []string{"make", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "%s is not installed", tool)
		}
	}
	dest := t.TempDir()
	for _, d := range []string{filepath.Dir(dest), dest} { // the sandbox's uid must be able to enter the root
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// APPARMOR=yes: the profile is staged also on a host without AppArmor (TestInstallAppArmor
	// covers how make decides).
	mk := exec.Command("make", "-C", testenv.RepoRoot(), "install", "DESTDIR="+dest, "APPARMOR=yes")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bin := filepath.Join(dest, "usr/local/bin/conductor")
	for _, f := range []string{bin, filepath.Join(dest, "var/lib/conductor/deno"), filepath.Join(dest, "etc/systemd/system/conductor.service"), filepath.Join(dest, "etc/conductor")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}

	if b, err := os.ReadFile(filepath.Join(dest, "etc/apparmor.d/conductor")); err != nil {
		t.Errorf("AppArmor profile not installed: %v", err)
	} else if !strings.Contains(string(b), "profile conductor /usr/local/bin/conductor flags=(unconfined) {") {
		t.Errorf("AppArmor profile is not for the installed binary:\n%s", b)
	}

	env := append(os.Environ(), "MCP_CONDUCTOR_DATA_DIR="+filepath.Join(dest, "var/lib/conductor"), "MCP_CONDUCTOR_STATE_DIR="+t.TempDir())
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dest // no checkout around
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		return string(out), err
	}
	if out, err := run("", "doctor"); err != nil {
		t.Errorf("installed doctor: %v\n%s", err, out)
	}
	out, err := run(`console.log("hello from the installed binary"); 6 * 7`, "exec", "--json", "-")
	var res struct {
		Status      string          `json:"status"`
		Stdout      string          `json:"stdout"`
		ReturnValue json.RawMessage `json:"returnValue"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Status != "success" || res.Stdout != "hello from the installed binary\n" || string(res.ReturnValue) != "42" {
		t.Errorf("installed exec: %v\n%s", err, out)
	}

	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/conductor.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/conductor serve --http 127.0.0.1:8080", "Delegate=yes", "MCP_CONDUCTOR_DATA_DIR=/var/lib/conductor", "EnvironmentFile=-/etc/conductor/conductor.env", "StateDirectory=conductor"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// verify checks that ExecStart's program exists: point it at the staged one.
	staged := filepath.Join(t.TempDir(), "conductor.service")
	if err := os.WriteFile(staged, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/conductor", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", staged).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
