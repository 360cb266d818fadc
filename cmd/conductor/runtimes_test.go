package main

import (
	"context"
	"fmt"
	"os/exec"
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
