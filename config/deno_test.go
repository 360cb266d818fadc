package config

import (
	"bytes"
	"context"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// denoBinary finds the deno to test against: $CONDUCTOR_DENO, else the
// repository's .build/deno (fetched by scripts/fetch-deno.sh). Without one
// the test fails under CI=true and is skipped otherwise.
func denoBinary(t *testing.T) string { return testenv.Deno(t) }

// runDeno runs deno with a private cache and no colors or update checks.
func runDeno(t *testing.T, deno string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, deno, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"DENO_DIR="+t.TempDir(),
		"DENO_NO_UPDATE_CHECK=1",
		"NO_COLOR=1",
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestDenoKnowsAcceptedFlags checks every flag the validator accepts
// against `deno run --help`, so we never accept a flag deno does not know,
// and checks that every allow-/deny- flag deno has is a deliberate decision
// here (accepted or refused).
func TestDenoKnowsAcceptedFlags(t *testing.T) {
	deno := denoBinary(t)
	help, stderr, err := runDeno(t, deno, "run", "--help")
	if err != nil {
		t.Fatalf("deno run --help: %v\n%s", err, stderr)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`--([a-z0-9-]+)(\[=)?`).FindAllStringSubmatch(help, -1) {
		known[m[1]] = known[m[1]] || m[2] != ""
	}
	if len(known) < 20 {
		t.Fatalf("found only %d flags in deno run --help; output format changed?\n%s", len(known), help)
	}
	for name, kind := range permFlags {
		takesValues, ok := known[name]
		switch {
		case !ok:
			t.Errorf("accepted flag --%s is not in deno run --help", name)
		case kind == kindNone && takesValues:
			t.Errorf("--%s takes values in deno, but is accepted as bare only", name)
		case kind != kindNone && !takesValues:
			t.Errorf("--%s takes no values in deno, but is accepted with values", name)
		}
	}
	for name := range refusedFlags {
		if _, ok := known[name]; !ok {
			t.Errorf("refused flag --%s is not in deno run --help; drop it or update the message", name)
		}
	}
	for name := range known {
		if !strings.HasPrefix(name, "allow-") && !strings.HasPrefix(name, "deny-") {
			continue
		}
		if _, ok := permFlags[name]; !ok && refusedFlags[name] == "" {
			t.Errorf("deno has --%s, which is neither accepted nor refused here; decide", name)
		}
	}
}

// TestDenoAcceptsOutput runs deno with what ParseRunArgs produces, covering
// every accepted flag and value form, so our normalized output is
// something deno starts with.
func TestDenoAcceptsOutput(t *testing.T) {
	deno := denoBinary(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "main.js")
	if err := os.WriteFile(script, []byte(`console.log("ok");`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []string{
		"allow-read=/data,/tmp,allow-write=/tmp/x+y@z,allow-ffi=/usr/lib/libfoo.so," +
			"allow-net=api.example.com:443,Deno.Land,127.0.0.1,10.0.0.1:8080,[::1],[2001:db8::1]:8443," +
			"allow-env=HOME,AWS_*,_X,allow-sys=" + strings.Join(sysNames, ",") + "," +
			"allow-run=git,/usr/bin/python3,c++",
		"deny-read=/etc,deny-write=/etc,deny-net=example.com:80,[::1],deny-env=SECRET_*," +
			"deny-sys=" + strings.Join(sysNames, ",") + ",deny-run=curl,deny-ffi=/lib,deny-import=evil.example:443",
		"allow-read,allow-write,allow-net,allow-env,allow-sys,allow-run,allow-ffi," +
			"deny-read,deny-write,deny-net,deny-env,deny-sys,deny-run,deny-ffi,deny-import",
		"allow-all,deny-read,deny-write,deny-net,deny-env,deny-sys,deny-run,deny-ffi,deny-import",
	}
	for _, c := range cases {
		args, err := ParseRunArgs(c)
		if err != nil {
			t.Fatalf("ParseRunArgs(%q): %v", c, err)
		}
		argv := append([]string{"run", "--no-prompt", "--no-remote", "--no-config"}, args...)
		out, stderr, err := runDeno(t, deno, append(argv, script)...)
		if err != nil || out != "ok\n" {
			t.Errorf("deno %q: %v\nstdout: %s\nstderr: %s", argv, err, out, stderr)
		}
	}
}
