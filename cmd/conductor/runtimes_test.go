package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// TestRuntimeRefusal: a configured Python or Go that does not work stops exec, `rootfs build`
// and doctor at start, naming its setting.
func TestRuntimeRefusal(t *testing.T) {
	dir := toolsDataDir(t)
	tests := []struct{ setting, want string }{
		{"MCP_CONDUCTOR_PYTHON=/nonexistent/python3", "MCP_CONDUCTOR_PYTHON=/nonexistent/python3 does not run as a Python 3 interpreter"},
		{"MCP_CONDUCTOR_GO=/nonexistent/go", "MCP_CONDUCTOR_GO=/nonexistent/go is not a working Go toolchain"},
	}
	for _, tc := range tests {
		env := []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, tc.setting}
		for _, args := range [][]string{{"exec", "-"}, {"rootfs", "build"}, {"doctor"}} {
			out, errOut, exit := conductor(t, "1", env, args...)
			if exit == 0 || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("%s with %s: exit %d, want a refusal naming the setting:\n%s%s", args[0], tc.setting, exit, out, errOut)
			}
		}
	}
}

// TestServeExecuteCode: over MCP (serve, with its pools), execute_code's description names the
// languages this server offers; Python runs cold, then warm from the launchers' pool, and a
// JavaScript run in between takes its own launcher.
func TestServeExecuteCode(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Unavailable(t, "no python3 on PATH: %v", err)
	}
	cs, stop := startServe(t, toolsDataDir(t), "")
	defer stop()
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var desc string
	for _, tl := range list.Tools {
		if tl.Name == "execute_code" {
			desc = tl.Description
		}
	}
	langs := "javascript, typescript, python"
	_, errGo := exec.LookPath("go")
	if errGo == nil {
		langs += ", go"
	}
	if !strings.Contains(desc, "Languages on this server: "+langs+".") || (errGo == nil) != strings.Contains(desc, "Go: `go run .`") {
		t.Errorf("execute_code description: %q", desc)
	}
	run := func(lang, code, want string) time.Duration {
		t.Helper()
		t0 := time.Now()
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "execute_code", Arguments: map[string]any{"language": lang, "entrypoint_code": code}})
		if err != nil {
			t.Fatal(err)
		}
		if text := resultText(res); res.IsError || !strings.Contains(text, "--- stdout ---\n"+want+"\n--- stderr ---") {
			t.Fatalf("%s: %s", lang, text)
		}
		return time.Since(t0)
	}
	cold := run("python", "print('one')", "one")
	time.Sleep(testenv.Scale(2 * time.Second)) // the launchers' pool boots its sandbox
	run("javascript", "console.log('js')", "js")
	warm := run("python", "print('two')", "two")
	t.Logf("python: cold %v, warm %v", cold, warm)
	if errGo == nil {
		hello := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"%s\") }\n"
		cold := run("go", fmt.Sprintf(hello, "go one"), "go one")
		time.Sleep(testenv.Scale(2 * time.Second))
		warm := run("go", fmt.Sprintf(hello, "go two"), "go two")
		t.Logf("go: cold %v, warm %v", cold, warm)
	}
}

// TestExecCode: `conductor exec` runs execute_code's languages: by --language or a .py/.go
// file's extension, the files after the entrypoint going into the working directory with it;
// a failing program's output and error, an unknown language and a refused file name exit as
// the other exec failures do.
func TestExecCode(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Unavailable(t, "no python3 on PATH: %v", err)
	}
	_, errGo := exec.LookPath("go")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mainPy := write("main.py", "import helper\nprint(helper.greet('py'))\n")
	write("helper.py", "def greet(n):\n    return 'hello ' + n\n")
	failPy := write("fail.py", "print('before')\nraise ValueError('bad value')\n")
	mainGo := write("main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(greet()) }\n")
	write("util.go", "package main\n\nfunc greet() string { return \"hello go\" }\n")
	tests := []struct {
		name           string
		stdin          string
		args           []string
		needGo         bool
		exit           int
		stdout, stderr string
	}{
		{"python by extension with a second file", "", []string{"exec", mainPy, "helper.py"}, false, 0, "hello py\n", ""},
		{"python from stdin by --language", "print(6*7)", []string{"exec", "--language", "python", "-"}, false, 0, "42\n", ""},
		{"javascript by --language", "console.log('js')", []string{"exec", "--language", "javascript", "-"}, false, 0, "js\n", ""},
		{"go by extension with a second file", "", []string{"exec", mainGo, "util.go"}, true, 0, "hello go\n", ""},
		{"failing program", "", []string{"exec", failPy}, false, 1, "before\n", "ValueError: bad value"},
		{"unknown language", "x", []string{"exec", "--language", "cobol", "-"}, false, 2, "", "python"},
		{"a file name outside the working directory", "", []string{"exec", mainPy, "../" + filepath.Base(dir) + "/helper.py"}, false, 2, "", ".."},
		{"more files without a language", "console.log(1)", []string{"exec", "-", "helper.py"}, false, 2, "", "--language"},
	}
	data := toolsDataDir(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needGo && errGo != nil {
				testenv.Unavailable(t, "no go on PATH: %v", errGo)
			}
			cmd := exec.Command(binary(t), tc.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "MCP_CONDUCTOR_STATE_DIR="+t.TempDir(), "MCP_CONDUCTOR_DATA_DIR="+data)
			cmd.Stdin = strings.NewReader(tc.stdin)
			var o, e strings.Builder
			cmd.Stdout, cmd.Stderr = &o, &e
			err := cmd.Run()
			exit := cmd.ProcessState.ExitCode()
			if err != nil && exit < 0 {
				t.Fatal(err)
			}
			if exit != tc.exit || o.String() != tc.stdout || !strings.Contains(e.String(), tc.stderr) {
				t.Errorf("exit %d stdout %q stderr %q; want exit %d stdout %q stderr containing %q", exit, o.String(), e.String(), tc.exit, tc.stdout, tc.stderr)
			}
		})
	}
}
