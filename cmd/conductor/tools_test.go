package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// toolsDataDir is a data directory with this checkout's deno and a root store of its own, so
// the roots these tests build (with tools) never become the checkout's current root.
func toolsDataDir(t *testing.T) string {
	t.Helper()
	build := filepath.Join(filepath.Dir(binary(t)), "..", ".build")
	deno, err := filepath.Abs(filepath.Join(build, "deno"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(deno); err != nil {
		t.Fatalf("no deno in %s (run `make build`): %v", build, err)
	}
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(deno, filepath.Join(d, "deno")); err != nil {
		t.Fatal(err)
	}
	shareGoCache(t, build, d)
	return d
}

// needHostTools stops the test (fails under CI=true) when git or curl is missing here.
func needHostTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testenv.Unavailable(t, "%s is not installed: %v", n, err)
		}
	}
}

// toolsCode commits a file with git in the workspace, reads the log back, and fetches the
// test's loopback server with curl.
const toolsCode = `const dec = (b: Uint8Array) => new TextDecoder().decode(b);
async function run(cmd: string, args: string[]) {
  const r = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  if (r.code !== 0) throw new Error(cmd + " " + args.join(" ") + " exited " + r.code + ": " + dec(r.stderr));
  return dec(r.stdout);
}
const git = (...a: string[]) => run("git", ["-C", WS, "-c", "user.name=Sandbox", "-c", "user.email=sandbox@example.com", ...a]);
await git("init", "-q");
await Deno.writeTextFile(WS + "/hello.txt", "hello\n");
await git("add", "hello.txt");
await git("commit", "-q", "-m", "first commit from the sandbox");
const log = await git("log", "--format=%s|%an");
const fetched = await run("curl", ["-sS", "--max-time", "10", URL]);
// No identity: clone's reflog makes git look the sandbox's host name up, which the root's
// /etc/hosts answers (no DNS query reaches the door).
await run("git", ["clone", "-q", URL + "repo.git", WS + "/clone"]);
const cloned = await run("git", ["-C", WS + "/clone", "log", "--format=%s"]);
export default { log, fetched, cloned, home: Deno.env.get("HOME") ?? "" };`

// TestExecTools is issue 11's must-show: with MCP_CONDUCTOR_TOOLS=git,curl and allow-run
// naming them, code commits with git in the workspace and reads the log back, curl reaches a
// loopback server through the network door (the result's network list records it), and git
// clones from it over HTTP (its exec-path helper git-remote-http and libcurl in the root). The
// commit is real: the host's git reads it from the workspace afterwards. doctor lists both
// tools with their versions and runs each in a sandbox.
func TestExecTools(t *testing.T) {
	needHostTools(t, "git", "curl")
	// A bare repository served over git's dumb HTTP protocol: cloning it runs git's
	// git-remote-http helper, an ELF of the exec-path data directory with libcurl's closure.
	repos := t.TempDir()
	for _, args := range [][]string{
		{"init", "-q", "--bare", filepath.Join(repos, "repo.git")},
		{"-C", filepath.Join(repos, "repo.git"), "-c", "user.name=Host", "-c", "user.email=host@example.com",
			"commit-tree", "-m", "served commit", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
	} {
		out, err := exec.Command("git", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		if args[0] == "-C" {
			commit := strings.TrimSpace(string(out))
			for _, a := range [][]string{{"update-ref", "refs/heads/main", commit}, {"symbolic-ref", "HEAD", "refs/heads/main"}, {"update-server-info"}} {
				if out, err := exec.Command("git", append([]string{"-C", filepath.Join(repos, "repo.git")}, a...)...).CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v: %s", a, err, out)
				}
			}
		}
	}
	var hits atomic.Int32
	files := http.FileServer(http.Dir(repos))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/repo.git/") {
			files.ServeHTTP(w, r)
			return
		}
		hits.Add(1)
		fmt.Fprint(w, "served to curl")
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"MCP_CONDUCTOR_DATA_DIR=" + toolsDataDir(t),
		"MCP_CONDUCTOR_WORKSPACE=" + ws,
		"MCP_CONDUCTOR_TOOLS=git,curl",
		fmt.Sprintf("MCP_CONDUCTOR_RUN_ARGS=allow-run=git,curl,allow-read=%s,allow-write=%s,allow-env=HOME,allow-net=127.0.0.1:%d", ws, ws, port),
	}
	code := fmt.Sprintf("const WS = %q; const URL = %q;\n%s", ws, srv.URL+"/", toolsCode)
	out, errOut, exit := conductor(t, code, env, "exec", "--json", "-")
	if exit != 0 {
		t.Fatalf("exit %d; stdout %s; stderr %s", exit, out, errOut)
	}
	var res struct {
		ReturnValue struct{ Log, Fetched, Cloned, Home string } `json:"returnValue"`
		Network     []struct {
			Host    string `json:"host"`
			Port    int    `json:"port"`
			Allowed bool   `json:"allowed"`
		} `json:"network"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := res.ReturnValue.Log; got != "first commit from the sandbox|Sandbox\n" {
		t.Errorf("git log in the sandbox = %q", got)
	}
	if res.ReturnValue.Fetched != "served to curl" || hits.Load() != 1 {
		t.Errorf("curl fetched %q, server hits %d", res.ReturnValue.Fetched, hits.Load())
	}
	if res.ReturnValue.Cloned != "served commit\n" {
		t.Errorf("git clone over HTTP gave log %q", res.ReturnValue.Cloned)
	}
	if res.ReturnValue.Home != "/tmp" {
		t.Errorf("HOME = %q, want /tmp (a per-run tmpfs)", res.ReturnValue.Home)
	}
	if len(res.Network) < 2 {
		t.Errorf("network = %+v, want curl's and git's connections", res.Network)
	}
	for _, n := range res.Network {
		if n.Port != port || !n.Allowed {
			t.Errorf("network entry %+v, want only allowed connections to port %d", n, port)
		}
	}
	host, err := exec.Command("git", "-c", "safe.directory=*", "-C", ws, "log", "--format=%s").CombinedOutput()
	if err != nil || string(host) != "first commit from the sandbox\n" {
		t.Errorf("the host's git reads %q (%v) from the workspace", host, err)
	}

	dout, _, dexit := conductor(t, "", env, "doctor")
	for _, want := range []string{"git (/usr/bin/git: git version ", "curl (/usr/bin/curl: curl ", "git, curl --version ran in a sandbox through Deno.Command"} {
		if !strings.Contains(dout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, dout)
		}
	}
	if dexit != 0 {
		t.Errorf("doctor exit %d:\n%s", dexit, dout)
	}
}

// TestToolsRefusals: a program the root does not hold fails with a message naming it and
// MCP_CONDUCTOR_TOOLS; a listed tool that is not installed, and an allow-run/tools mismatch,
// stop exec, `rootfs build` and doctor at start, naming the tool and both variables.
func TestToolsRefusals(t *testing.T) {
	dir := toolsDataDir(t)
	t.Run("not in the root", func(t *testing.T) {
		env := []string{"MCP_CONDUCTOR_DATA_DIR=" + dir, "MCP_CONDUCTOR_RUN_ARGS=allow-run"}
		out, errOut, _ := conductor(t, `await new Deno.Command("git", { args: ["--version"] }).output();`, env, "exec", "--json", "-")
		var res execResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %s %s", err, out, errOut)
		}
		if res.Status != "error" || res.Error == nil || !strings.Contains(res.Error.Message, `"git" is not in the sandbox`) ||
			!strings.Contains(res.Error.Message, "MCP_CONDUCTOR_TOOLS") {
			t.Errorf("result %s: want an error naming git and MCP_CONDUCTOR_TOOLS", out)
		}
	})
	for _, c := range []struct {
		name  string
		env   []string
		wants []string
	}{
		{"not installed", []string{"MCP_CONDUCTOR_TOOLS=git,absent-tool-xyz", "MCP_CONDUCTOR_RUN_ARGS=allow-run=git,absent-tool-xyz"},
			[]string{`"absent-tool-xyz"`, "MCP_CONDUCTOR_TOOLS"}},
		{"tool not in allow-run", []string{"MCP_CONDUCTOR_TOOLS=git,curl", "MCP_CONDUCTOR_RUN_ARGS=allow-run=git"},
			[]string{"MCP_CONDUCTOR_TOOLS lists curl, but MCP_CONDUCTOR_RUN_ARGS does not allow running it: list it in allow-run too"}},
		{"allow-run not a tool", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-run=git"},
			[]string{"allow-run lists git, which is not in the sandbox: add it to MCP_CONDUCTOR_TOOLS"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := append([]string{"MCP_CONDUCTOR_DATA_DIR=" + dir}, c.env...)
			for _, args := range [][]string{{"exec", "-"}, {"rootfs", "build"}, {"doctor"}} {
				out, errOut, exit := conductor(t, "1", env, args...)
				if exit == 0 {
					t.Errorf("%s: exit 0, want a refusal", args[0])
				}
				for _, w := range c.wants {
					if !strings.Contains(out+errOut, w) {
						t.Errorf("%s: output lacks %q:\n%s%s", args[0], w, out, errOut)
					}
				}
			}
		})
	}
}

// TestServeTools: over MCP (serve, with its pool), the tool description names the CLI tools,
// and a pooled sandbox runs git and sees the CA bundle variable the tools brought.
func TestServeTools(t *testing.T) {
	needHostTools(t, "git")
	t.Setenv("MCP_CONDUCTOR_TOOLS", "git")
	t.Setenv("MCP_CONDUCTOR_RUN_ARGS", "allow-run=git,allow-env=GIT_SSL_CAINFO")
	cs, stop := startServe(t, toolsDataDir(t), "")
	defer stop()
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := runDenoTool(list.Tools).Description; !strings.Contains(d, "CLI tools in the sandbox, run with `new Deno.Command(name, { args })`: git (HOME is /tmp") {
		t.Errorf("description does not name the tools: %s", d)
	}
	res := callRun(t, cs, `const r = await new Deno.Command("git", { args: ["--version"] }).output();
export default [r.code, new TextDecoder().decode(r.stdout), Deno.env.get("GIT_SSL_CAINFO") ?? ""];`)
	text := resultText(res)
	if res.IsError || !strings.Contains(text, `[0,"git version `) {
		t.Errorf("git in a pooled sandbox: %s", text)
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil && !strings.Contains(text, `"/etc/ssl/certs/ca-certificates.crt"]`) {
		t.Errorf("GIT_SSL_CAINFO not set to the CA bundle: %s", text)
	}
}

// runDenoTool is run_deno_code among the listed tools (they are listed by name).
func runDenoTool(tools []*sdk.Tool) *sdk.Tool {
	for _, t := range tools {
		if t.Name == "run_deno_code" {
			return t
		}
	}
	return &sdk.Tool{}
}
