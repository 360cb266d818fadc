package playbook

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestDeclarationsCheck: deno check accepts code that uses the playbooks global as the bootstrap
// defines it, and refuses misuse at the line of the misuse.
func TestDeclarationsCheck(t *testing.T) {
	deno := testenv.Deno(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "globals.d.ts"), []byte(Declarations+ArgsDeclaration), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, code, err string
	}{
		{"run and list", "const v = await playbooks.run(\"sum\", { a: 1 });\nconst names: string[] = (await playbooks.list()).map((p) => p.name);\nconsole.log(v, names, args.x);\n", ""},
		{"run without args", "await playbooks.run(\"sum\");\n", ""},
		// Positions count the reference line the test puts first.
		{"a name that is not a string", "\nawait playbooks.run(1);\n", "main.ts:3:"},
		{"args that are not an object", "await playbooks.run(\"sum\", 3);\n", "main.ts:2:"},
		{"a method that does not exist", "await playbooks.start(\"sum\");\n", "main.ts:2:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			main := filepath.Join(dir, "main.ts")
			code := "/// <reference path=\"./globals.d.ts\" />\n" + c.code
			if err := os.WriteFile(main, []byte(code), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(deno, "check", "--quiet", main)
			cmd.Env = append(os.Environ(), "DENO_DIR="+filepath.Join(dir, ".deno"), "NO_COLOR=1")
			out, err := cmd.CombinedOutput()
			if c.err == "" {
				if err != nil {
					t.Fatalf("deno check refused:\n%s", out)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), c.err) {
				t.Fatalf("deno check: %v, want a type error at %s:\n%s", err, c.err, out)
			}
		})
	}
}
