package mcp_test

// The config file's live reload end to end: the built `conductor serve --http`, a go-sdk client,
// real sandboxes; the file changed by rename (as editors do) or rewritten, and SIGHUP.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// envProbe reads HOME, which only allow-env lets code do: "denied" without it.
const envProbe = `let v; try { v = Deno.env.get("HOME") ?? "unset" } catch { v = "denied" }; v`

// writeAtomic writes data to a new file beside path and renames it over path (an editor's save).
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestE2EConfigReload: serve starts from a config file that grants no environment access, with a
// session open. The file gains allow-env (by an editor's rename, or rewritten then SIGHUP): after
// the reload the SAME session's next call reads HOME, the client got tools/list_changed and the
// tool's description names the new permission, while a call started before the reload (asleep
// for 4 s across it) ends under the old policy (denied). Then the file gets an unknown key: the
// reload is refused, the log names the key and its closest match, the new policy still serves;
// so it does after a change of a setting that needs a restart (http_max_conns; pool_size 1 -> 0),
// refused naming it; /metrics counts the ok reload and the three refused.
func TestE2EConfigReload(t *testing.T) {
	tests := []struct {
		name    string
		sighup  bool   // rewrite in place and send SIGHUP at once, else rename over the file
		trigger string // in the log line of the reload that applied the change
	}{
		{name: "file change", trigger: `trigger="file changed" changed=MCP_CONDUCTOR_RUN_ARGS`},
		{name: "SIGHUP", sighup: true, trigger: `trigger=SIGHUP changed=MCP_CONDUCTOR_RUN_ARGS`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "conductor.json")
			writeAtomic(t, file, `{"pool_size": 1, "max_concurrency": 2}`)
			s := startHTTP(t, "MCP_CONDUCTOR_CONFIG="+file)

			listChanged := make(chan struct{}, 8)
			started := make(chan struct{})
			var once sync.Once
			copts := &sdk.ClientOptions{
				ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
					listChanged <- struct{}{}
				},
				ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
					if strings.Contains(req.Params.Message, "asleep") {
						once.Do(func() { close(started) })
					}
				},
			}
			cs := mustConnectHTTP(t, s, "", copts)
			if r := run(t, cs, map[string]any{"deno_code": envProbe}); r.out["returnValue"] != "denied" {
				t.Fatalf("before the reload: %v; want returnValue denied", r)
			}

			// A call that is running when the policy changes.
			old := make(chan result, 1)
			go func() {
				params := &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{
					"deno_code": "console.log('asleep'); await new Promise(r => setTimeout(r, 4000));\n" + envProbe}}
				params.SetProgressToken("old")
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				res, err := cs.CallTool(ctx, params)
				if err != nil {
					t.Errorf("the old call: %v", err)
					old <- result{}
					return
				}
				old <- toResult(t, res)
			}()
			select {
			case <-started:
			case <-time.After(testenv.Scale(20 * time.Second)):
				t.Fatal("the old call did not report that it runs within 20 s")
			}

			grant := `{"pool_size": 1, "max_concurrency": 2, "run_args": ["allow-env=HOME"]}`
			if tt.sighup {
				writeAtomic(t, file, grant)
				if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			} else {
				writeAtomic(t, file, grant)
			}
			testenv.WaitFor(t, "the reload's log line", 20*time.Second, func() bool {
				return strings.Contains(s.stderr.String(), tt.trigger)
			})
			select {
			case r := <-old:
				t.Fatalf("the old call ended before the reload was applied (%v): the test proves nothing", r)
			default:
			}
			if r := run(t, cs, map[string]any{"deno_code": envProbe}); r.out["returnValue"] != "/tmp" {
				t.Errorf("after the reload, same session: %v; want returnValue /tmp (HOME)", r)
			}
			expectToolsRelisted(t, cs, listChanged, "--allow-env=HOME")
			select {
			case r := <-old:
				if r.out["returnValue"] != "denied" {
					t.Errorf("the call started before the reload: %v; want returnValue denied (the old policy)", r)
				}
			case <-time.After(testenv.Scale(30 * time.Second)):
				t.Fatal("the old call did not end within 30 s")
			}

			// A broken file is refused; the policy in force stays.
			if err := os.WriteFile(file, []byte(`{"run_args": "allow-env=HOME", "pool_sise": 1}`), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.sighup {
				if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitFor(t, "the refusal's log line", 20*time.Second, func() bool {
				return strings.Contains(s.stderr.String(), "config reload refused")
			})
			logs := s.stderr.String()
			if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, `key \"pool_sise\": not a setting; did you mean pool_size?`) {
				t.Errorf("the refusal is not an error naming the key and its closest match:\n%s", logs)
			}
			if r := run(t, cs, map[string]any{"deno_code": envProbe}); r.out["returnValue"] != "/tmp" {
				t.Errorf("after the refused reload: %v; want the policy in force (/tmp)", r)
			}
			// A setting that cannot change while serving is refused too, named with its key.
			writeAtomic(t, file, `{"run_args": "allow-env=HOME", "http_max_conns": 10}`)
			if tt.sighup {
				if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitFor(t, "the restart-only refusal's log line", 20*time.Second, func() bool {
				return strings.Contains(s.stderr.String(), "MCP_CONDUCTOR_HTTP_MAX_CONNS (key http_max_conns): cannot change while serving; restart serve")
			})
			// So is turning the pool off (the readiness check is built for a server with a pool).
			writeAtomic(t, file, `{"run_args": "allow-env=HOME", "pool_size": 0}`)
			if tt.sighup {
				if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitFor(t, "the pool-off refusal's log line", 20*time.Second, func() bool {
				return strings.Contains(s.stderr.String(), "MCP_CONDUCTOR_POOL_SIZE (key pool_size) 1 -> 0: turning the pool on or off cannot change while serving")
			})
			if r := run(t, cs, map[string]any{"deno_code": envProbe}); r.out["returnValue"] != "/tmp" {
				t.Errorf("after the restart-only changes: %v; want the policy in force (/tmp)", r)
			}
			m := scrapeMetrics(t, s.base+"/metrics", s.token)
			if m[`conductor_config_reloads_total{result="refused"}`] < 3 || m[`conductor_config_reloads_total{result="ok"}`] < 1 {
				t.Errorf("reload counts: ok %v, refused %v; want at least 1 and 3",
					m[`conductor_config_reloads_total{result="ok"}`], m[`conductor_config_reloads_total{result="refused"}`])
			}
		})
	}
}

// expectToolsRelisted: after a reload, the client gets tools/list_changed within 10 s, and
// run_deno_code's description, listed again, contains want.
func expectToolsRelisted(t *testing.T, cs *sdk.ClientSession, listChanged <-chan struct{}, want string) {
	t.Helper()
	select {
	case <-listChanged:
	case <-time.After(testenv.Scale(10 * time.Second)):
		t.Error("no tools/list_changed within 10 s of the reload")
	}
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name == toolName && !strings.Contains(tool.Description, want) {
			t.Errorf("run_deno_code's description after the reload lacks %q: %q", want, tool.Description)
		}
	}
}
