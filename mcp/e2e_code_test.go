package mcp_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// hostPython is the real interpreter behind python3 on PATH (pyenv's shims resolved), which the
// inspector's minimal environment might not find by itself.
func hostPython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		testenv.Unavailable(t, "no python3 on PATH: execute_code's Python cannot be tested here (%v)", err)
	}
	return strings.TrimSpace(string(out))
}

// hostGoroot is the GOROOT of the go on PATH.
func hostGoroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		testenv.Unavailable(t, "no go on PATH: execute_code's Go cannot be tested here (%v)", err)
	}
	return strings.TrimSpace(string(out))
}

// TestE2EExecuteCode: the inspector CLI, as a real client, runs execute_code over stdio: Python,
// JavaScript, TypeScript and Go with additional files, a Go compile error, a snippet by name (and the snippets as
// prompts), a failing program, and hostile file names refused naming the rule.
func TestE2EExecuteCode(t *testing.T) {
	mcpTools(t)
	bin := conductorBin(t)
	denoBin(t)
	snippets := t.TempDir()
	for name, code := range map[string]string{
		"hello.py":   "import sys\nprint('snippet says hi from', sys.implementation.name)",
		"greet.ts":   "const who: string = 'ts';\nconsole.log(`greet ${who}`);",
		"notes.txt":  "not a snippet: unknown extension",
		"gohello.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"snippet says hi from go\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(snippets, name), []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(snippets, "link.py")); err != nil {
		t.Fatal(err)
	}
	stdio := []string{"-e", "MCP_CONDUCTOR_STATE_DIR=" + t.TempDir(), "-e", "MCP_CONDUCTOR_PYTHON=" + hostPython(t),
		"-e", "MCP_CONDUCTOR_GO=" + hostGoroot(t),
		"-e", "MCP_CONDUCTOR_SNIPPETS=" + snippets, bin, "serve"}
	call := func(t *testing.T, args ...string) (map[string]any, string) {
		t.Helper()
		out := inspector(t, append(append(stdio, "--method", "tools/call", "--tool-name", "execute_code"), args...)...)
		content, _ := out["content"].([]any)
		first, _ := content[0].(map[string]any)
		text, _ := first["text"].(string)
		return out, text
	}

	runs := []struct {
		name   string
		args   []string
		stdout string
	}{
		{"python hello with a data file", []string{"--tool-arg", "language=python",
			`entrypoint_code=import json; print("hello", json.load(open("data/x.json"))["n"])`,
			`additional_files=[{"filename": "data/x.json", "content": "{\"n\": 42}"}]`}, "hello 42\n"},
		{"javascript hello", []string{"--tool-arg", "language=javascript", "entrypoint_code=console.log('hello', 6 * 7)"}, "hello 42\n"},
		{"typescript imports ./util.ts", []string{"--tool-arg", "language=typescript",
			"entrypoint_code=import { twice } from './util.ts'; console.log('ts', twice(21));",
			`additional_files=[{"filename": "util.ts", "content": "export const twice = (n: number): number => 2 * n;"}]`}, "ts 42\n"},
		{"python snippet by name", []string{"--tool-arg", "snippet_name=hello"}, "snippet says hi from cpython\n"},
		{"typescript snippet by name", []string{"--tool-arg", "snippet_name=greet"}, "greet ts\n"},
		{"go hello with a second file of package main", []string{"--tool-arg", "language=go",
			`entrypoint_code=package main; import "fmt"; func main() { fmt.Println("go", twice(21)) }`,
			`additional_files=[{"filename": "util.go", "content": "package main\n\nfunc twice(n int) int { return 2 * n }\n"}]`}, "go 42\n"},
		{"go snippet by name", []string{"--tool-arg", "snippet_name=gohello"}, "snippet says hi from go\n"},
	}
	for _, tc := range runs {
		t.Run(tc.name, func(t *testing.T) {
			out, text := call(t, tc.args...)
			sc, _ := out["structuredContent"].(map[string]any)
			if out["isError"] == true || sc["status"] != "success" || sc["stdout"] != tc.stdout || sc["exitCode"] != float64(0) {
				t.Fatalf("want success with stdout %q, got %v", tc.stdout, out)
			}
			if !strings.Contains(text, "--- stdout ---\n"+tc.stdout+"--- stderr ---\n") {
				t.Errorf("text content %q is not in Isolator's layout", text)
			}
		})
	}

	t.Run("failing program", func(t *testing.T) {
		out, text := call(t, "--tool-arg", "language=python", "entrypoint_code=import sys\nprint('partial')\nprint('oops', file=sys.stderr)\nsys.exit(3)")
		sc, _ := out["structuredContent"].(map[string]any)
		errInfo, _ := sc["error"].(map[string]any)
		if out["isError"] != true || sc["status"] != "error" || sc["exitCode"] != float64(3) || sc["stdout"] != "partial\n" || sc["stderr"] != "oops\n" {
			t.Fatalf("want isError with exit code 3 and both streams, got %v", out)
		}
		if msg, _ := errInfo["message"].(string); !strings.Contains(msg, "exited with code 3") {
			t.Errorf("error %v does not give the exit code", errInfo)
		}
		if !strings.Contains(text, "exit code 3") || !strings.Contains(text, "--- stdout ---\npartial\n--- stderr ---\noops\n") {
			t.Errorf("text content %q", text)
		}
	})

	t.Run("go compile error", func(t *testing.T) {
		out, text := call(t, "--tool-arg", "language=go", "entrypoint_code=package main\n\nfunc main() {\n\tnope()\n}\n")
		sc, _ := out["structuredContent"].(map[string]any)
		stderr, _ := sc["stderr"].(string)
		if out["isError"] != true || sc["status"] != "error" || sc["exitCode"] != float64(1) || !strings.Contains(stderr, "main.go:4:2: undefined: nope") {
			t.Fatalf("want isError with exit code 1 and the compiler's message, got %v", out)
		}
		if !strings.Contains(text, "exit code 1") || !strings.Contains(text, "--- stderr ---\n") || !strings.Contains(text, "undefined: nope") {
			t.Errorf("text content %q", text)
		}
	})

	hostile := []struct{ name, files, rule string }{
		{"parent", `[{"filename": "../escape.py", "content": "x"}]`, `".." component`},
		{"absolute", `[{"filename": "/etc/cron.d/x", "content": "x"}]`, "absolute path"},
		{"control character", `[{"filename": "a\u0000b", "content": "x"}]`, "control character"},
		{"unclean", `[{"filename": "a//b", "content": "x"}]`, "not a clean path"},
		{"too deep", `[{"filename": "1/2/3/4/5/6/7/8/9/x", "content": "x"}]`, "directories deep; the limit is 8"},
	}
	for _, tc := range hostile {
		t.Run("hostile name "+tc.name, func(t *testing.T) {
			out, text := call(t, "--tool-arg", "language=python", "entrypoint_code=print(1)", "additional_files="+tc.files)
			if out["isError"] != true || !strings.Contains(text, tc.rule) || !strings.Contains(text, "file refused") {
				t.Errorf("want a refusal naming %q, got %v", tc.rule, out)
			}
		})
	}

	t.Run("snippets are prompts", func(t *testing.T) {
		out := inspector(t, append(stdio, "--method", "prompts/list")...)
		prompts, _ := out["prompts"].([]any)
		var names []string
		for _, p := range prompts {
			m, _ := p.(map[string]any)
			names = append(names, m["name"].(string))
		}
		if strings.Join(names, ",") != "gohello,greet,hello" {
			t.Errorf("prompts %v, want gohello, greet and hello (not the .txt file, not the link)", names)
		}
	})
}
