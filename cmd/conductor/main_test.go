package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/leftovers"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// binary returns the built conductor (make build), or fails on CI / skips locally.
func binary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CONDUCTOR_BIN")
	if p == "" {
		p, _ = filepath.Abs("../../bin/conductor")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no conductor binary at %s (run `make build`): %v", p, err)
		}
		t.Skipf("no conductor binary at %s (run `make build`): %v", p, err)
	}
	return p
}

// conductor runs the binary with a private state dir and extra env.
func conductor(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "MCP_CONDUCTOR_STATE_DIR="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("run conductor: %v", err)
	}
	return o.String(), e.String(), code
}

func TestExecJSON(t *testing.T) {
	tests := []struct {
		name   string
		code   string
		args   []string
		exit   int
		status sandbox.Status
		stdout string
		errTyp string
	}{
		{name: "hello", code: "console.log(1+1)", exit: 0, status: sandbox.StatusSuccess, stdout: "2\n"},
		{name: "runtime error", code: "throw new RangeError('nope')", exit: 1, status: sandbox.StatusError, errTyp: sandbox.ErrorRuntime},
		{name: "timeout flag", code: "while(true){}", args: []string{"--timeout", "700"}, exit: 1, status: sandbox.StatusTimeout, errTyp: sandbox.ErrorTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"exec", "--json"}, tc.args...)
			out, errOut, code := conductor(t, tc.code, nil, append(args, "-")...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.exit, errOut)
			}
			var res map[string]any
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
			}
			for _, key := range []string{"status", "exitCode", "signal", "stdout", "stderr", "stdoutTruncated", "stderrTruncated", "durationMs", "queuedMs", "cpuMs", "memoryPeakBytes", "limitHit", "degraded", "error"} {
				if _, ok := res[key]; !ok {
					t.Errorf("result lacks %q", key)
				}
			}
			if res["status"] != string(tc.status) {
				t.Errorf("status %v, want %s", res["status"], tc.status)
			}
			if tc.stdout != "" && res["stdout"] != tc.stdout {
				t.Errorf("stdout %q, want %q", res["stdout"], tc.stdout)
			}
			if tc.errTyp != "" {
				e, _ := res["error"].(map[string]any)
				if e == nil || e["type"] != tc.errTyp {
					t.Errorf("error %v, want type %s", res["error"], tc.errTyp)
				}
			}
		})
	}
}

func TestExecFromFileHumanOutput(t *testing.T) {
	f := filepath.Join(t.TempDir(), "prog.ts")
	if err := os.WriteFile(f, []byte("console.log('out'); console.error('err'); throw new Error('bad')"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := conductor(t, "", nil, "exec", f)
	if code != 1 || out != "out\n" {
		t.Fatalf("exit %d stdout %q, want 1 and the program's own stdout", code, out)
	}
	if !strings.HasPrefix(errOut, "err\n") || !strings.Contains(errOut, "conductor: error (runtime)") || !strings.Contains(errOut, "main.ts:1:") {
		t.Fatalf("stderr %q: want the program's stderr, then a status line with the error and its location", errOut)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		args    []string
		exit    int
		mention []string
	}{
		{"bad memory", []string{"MCP_CONDUCTOR_MEMORY=12Q"}, []string{"exec", "-"}, 1, []string{"MCP_CONDUCTOR_MEMORY", "12Q", "allowed"}},
		{"injected run args", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-read=/x --allow-all"}, []string{"exec", "-"}, 1, []string{"MCP_CONDUCTOR_RUN_ARGS", "allowed"}},
		{"write grant on the read-only root", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-write=/etc"}, []string{"exec", "-"}, 1,
			[]string{"allow-write=/etc grants nothing: the sandbox's root is read-only", "remove those paths from MCP_CONDUCTOR_RUN_ARGS"}},
		{"two bad vars, both named", []string{"MCP_CONDUCTOR_PIDS=-1", "MCP_CONDUCTOR_ALLOW_DEGRADED=maybe"}, []string{"exec", "-"}, 1, []string{"MCP_CONDUCTOR_PIDS", "MCP_CONDUCTOR_ALLOW_DEGRADED"}},
		{"timeout above max", []string{"MCP_CONDUCTOR_MAX_TIMEOUT=1000"}, []string{"exec", "--timeout", "5000", "-"}, 2, []string{"--timeout", "1000"}},
		{"unknown command", nil, []string{"frobnicate"}, 2, []string{"unknown command", "Usage"}},
		{"missing file", nil, []string{"exec", "/nonexistent.ts"}, 2, []string{"/nonexistent.ts"}},
		{"no argument", nil, []string{"exec"}, 2, []string{"usage: conductor exec"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := conductor(t, "console.log(1)", tc.env, tc.args...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.exit, errOut)
			}
			for _, m := range tc.mention {
				if !strings.Contains(errOut, m) {
					t.Errorf("stderr %q does not mention %q", errOut, m)
				}
			}
		})
	}
}

func TestDoctor(t *testing.T) {
	out, errOut, code := conductor(t, "", nil, "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
	}
	if code != 0 || !rep.OK {
		t.Fatalf("doctor exit %d ok=%v: %+v", code, rep.OK, rep.Checks)
	}
	names := map[string]bool{}
	for _, c := range rep.Checks {
		names[c.Name] = c.OK
	}
	for _, want := range []string{"settings", "variables", "user namespaces", "apparmor", "seccomp", "limits", "deno", "rootfs", "sandbox run", "runtimes", "execute_code", "type checker"} {
		if ok, present := names[want]; !present || !ok {
			t.Errorf("check %q present=%v ok=%v", want, present, ok)
		}
	}
	if rep.Cgroups == nil {
		t.Fatal("no cgroup report")
	}
	// A policy this host cannot enforce: doctor says so and exits non-zero.
	// 0.01 CPU is enforceable, so ask for something the host lacks only when
	// running rootless without delegation; as root, use an impossible state dir.
	if os.Geteuid() == 0 {
		out, _, code = conductor(t, "", []string{"MCP_CONDUCTOR_MEMORY=lots"}, "doctor")
		if code == 0 || !strings.Contains(out, "MCP_CONDUCTOR_MEMORY") || !strings.Contains(out, "CANNOT be enforced") {
			t.Fatalf("doctor with a bad setting: exit %d\n%s", code, out)
		}
	}
}

// TestDoctorWorkspaceQuota: doctor says how the workspace quota is enforced
// here, and a run through the binary over the quota is refused, naming the
// setting (the settings reach the sandbox runner).
func TestDoctorWorkspaceQuota(t *testing.T) {
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"MCP_CONDUCTOR_WORKSPACE=" + ws, "MCP_CONDUCTOR_WORKSPACE_QUOTA=2M", "MCP_CONDUCTOR_SPILL_MAX=1M",
		"MCP_CONDUCTOR_RUN_ARGS=allow-read=" + ws + ",allow-write=" + ws}
	out, errOut, code := conductor(t, "", env, "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
	}
	var line *check
	for i := range rep.Checks {
		if rep.Checks[i].Name == "workspace" {
			line = &rep.Checks[i]
		}
	}
	if code != 0 || line == nil || !line.OK {
		t.Fatalf("doctor exit %d, workspace check %+v", code, line)
	}
	enforced := "2 MiB quota on " + ws + ": enforced by project quota on "
	checked := "2 MiB quota on " + ws + ": checked before each run: "
	if !strings.HasPrefix(line.Detail, enforced) && !strings.HasPrefix(line.Detail, checked) {
		t.Errorf("workspace line %q says neither %q nor %q", line.Detail, enforced, checked)
	}
	if !strings.Contains(line.Detail, "spills at most 1 MiB per run, 256 MiB in all") {
		t.Errorf("workspace line %q does not give the spill bounds", line.Detail)
	}
	if !strings.HasPrefix(line.Detail, checked) {
		return // the next step needs the before-run check
	}
	if err := os.WriteFile(filepath.Join(ws, "big"), make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = conductor(t, "export default 1", env, "exec", "--json", "-")
	var res sandbox.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("exec --json: %v\n%s", err, out)
	}
	if code == 0 || res.Error == nil || res.Error.Type != sandbox.ErrorQuota || !strings.Contains(res.Error.Message, "MCP_CONDUCTOR_WORKSPACE_QUOTA") {
		t.Fatalf("a run over the quota: exit %d %+v", code, res.Error)
	}
	out, _, code = conductor(t, "", env, "doctor")
	if code == 0 || !strings.Contains(out, "workspace quota reached") {
		t.Errorf("doctor with the workspace over its quota: exit %d\n%s", code, out)
	}
}

// TestServerKilledMidRun: SIGKILL conductor while a sandbox runs; 1 s later no
// sandbox process is alive, and the next start sweeps every leftover.
func TestServerKilledMidRun(t *testing.T) {
	state := t.TempDir()
	cmd := exec.Command(binary(t), "exec", "--timeout", "60000", "-")
	cmd.Env = append(os.Environ(), "MCP_CONDUCTOR_STATE_DIR="+state)
	cmd.Stdin = strings.NewReader("while (true) {}")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Wait for the container's state file, then read deno's host pid.
	var instance, ctrDir string
	testenv.WaitFor(t, "the run's container", 20*time.Second, func() bool {
		matches, _ := filepath.Glob(filepath.Join(state, sandbox.IDPrefix+"*", sandbox.IDPrefix+"*", "state.json"))
		if len(matches) > 0 {
			ctrDir = filepath.Dir(matches[0])
			instance = filepath.Base(filepath.Dir(ctrDir))
		}
		return ctrDir != ""
	})
	var st struct {
		InitPid int `json:"init_process_pid"`
	}
	b, err := os.ReadFile(filepath.Join(ctrDir, "state.json"))
	if err != nil || json.Unmarshal(b, &st) != nil || st.InitPid <= 0 {
		t.Fatalf("state.json: %v %s", err, b)
	}
	// deno runs the code now (before: a 300 ms sleep): a process of the sandbox is deno.
	testenv.WaitFor(t, "deno to run in the sandbox", 20*time.Second, func() bool {
		for _, pid := range leftovers.Processes(instance) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "deno" {
				return true
			}
		}
		return false
	})
	if !leftovers.Alive(st.InitPid) {
		t.Fatalf("sandbox init %d not alive before the kill", st.InitPid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// Polled, not slept: the bound is the 1 s the server's death may take to reach them.
	testenv.WaitFor(t, fmt.Sprintf("sandbox init %d and every process of the dead instance to end after the server was SIGKILLed", st.InitPid), time.Second, func() bool {
		return !leftovers.Alive(st.InitPid) && len(leftovers.Processes(instance)) == 0
	})
	if _, err := os.Stat(ctrDir); err != nil {
		t.Fatalf("expected the dead server's state to remain until the next start: %v", err)
	}

	// The next start sweeps the dead instance: state dir and cgroups.
	cmd2 := exec.Command(binary(t), "exec", "-")
	cmd2.Env = append(os.Environ(), "MCP_CONDUCTOR_STATE_DIR="+state)
	cmd2.Stdin = strings.NewReader("console.log('after')")
	if out, err := cmd2.Output(); err != nil || string(out) != "after\n" {
		t.Fatalf("next run: %v %q", err, out)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("state dir after the sweep: %v", names)
	}
	if dirs := leftovers.CgroupDirs(instance); len(dirs) > 0 {
		t.Fatalf("cgroups of the dead instance remain: %v", dirs)
	}
}

// TestDepsInstallThenOfflineRun: step 1 fetches an allowlisted npm package
// into the cache in a sandbox that can reach only the registry; step 2 runs
// code importing it (unversioned, and bare) from the read-only cache with no
// network; a different version and an unlisted package are refused.
func TestDepsInstallThenOfflineRun(t *testing.T) {
	env := []string{"MCP_CONDUCTOR_ALLOWED_PACKAGES=npm:is-number@^7"}
	out, errOut, code := conductor(t, "", env, "deps", "install", "--force")
	if code != 0 || !strings.Contains(out, "npm:is-number@^7") || !strings.Contains(out, "installed") {
		t.Fatalf("deps install: exit %d\n%s\n%s", code, out, errOut)
	}
	prog := "import isNumber from \"npm:is-number\";\nimport same from \"is-number\";\nreturn [isNumber(\"12\"), isNumber(\"x\"), same === isNumber]"
	out, errOut, code = conductor(t, prog, env, "exec", "--json", "-")
	var res struct {
		Status      string          `json:"status"`
		ReturnValue json.RawMessage `json:"returnValue"`
	}
	_ = json.Unmarshal([]byte(out), &res)
	var got []bool
	_ = json.Unmarshal(res.ReturnValue, &got)
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Status != "success" || fmt.Sprint(got) != "[true false true]" {
		t.Fatalf("offline run from the cache: exit %d %s\n%s\n%s", code, res.ReturnValue, out, errOut)
	}
	for _, bad := range []string{`import x from "npm:is-number@^6"; x`, `import x from "npm:left-pad"; x`, `import x from "https://example.com/x.ts"; x`} {
		_, errOut, code = conductor(t, bad, env, "exec", "-")
		if code != 2 || !strings.Contains(errOut, "npm:is-number@^7") {
			t.Errorf("%s: exit %d, want 2 with the allowed list named; stderr %q", bad, code, errOut)
		}
	}
}

// TestREADMEDocumentsEveryVariable keeps the README's settings table whole.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables() {
		if !strings.Contains(string(b), "| `"+v.Name+"` |") {
			t.Errorf("README's settings table lacks %s", v.Name)
		}
	}
}

// TestDoctorMisconfigurations: each thing an admin can get wrong is a failed doctor check with
// its exact message, and doctor exits 1; allow-all is a warning (exit 0), as at serve's start.
func TestDoctorMisconfigurations(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(cfg, []byte(`{"mcpServers": {"dead": {"command": "sh", "args": ["-c", "echo 'dead: no API key' >&2; exit 7"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pbDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pbDir, "broken.ts"), []byte("args.a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	confDir := t.TempDir()
	brokenConf := filepath.Join(confDir, "broken.json")
	goodConf := filepath.Join(confDir, "good.json")
	for p, data := range map[string]string{brokenConf: "{\n  \"pool_sise\": 4\n}\n", goodConf: `{"max_queue": 7, "pool_size": 1}`} {
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		env   []string
		exit  int
		check string
		want  string // in the check's detail
		fix   string // in the check's fix
	}{
		{"config file with a typo'd key", []string{"MCP_CONDUCTOR_CONFIG=" + brokenConf}, 1, "config file",
			"MCP_CONDUCTOR_CONFIG " + brokenConf + `:2:3: key "pool_sise": not a setting; did you mean pool_size?`, "serve refuses to start with it"},
		{"config file's sources", []string{"MCP_CONDUCTOR_CONFIG=" + goodConf, "MCP_CONDUCTOR_POOL_SIZE=0"}, 0, "config file",
			goodConf + "; from the file: max_queue; from the environment: MCP_CONDUCTOR_POOL_SIZE", ""},
		{"typo'd variable", []string{"MCP_CONDUCTOR_RUN_ARG=allow-net"}, 1, "variables",
			"MCP_CONDUCTOR_RUN_ARG is not a conductor variable, so it is ignored; did you mean MCP_CONDUCTOR_RUN_ARGS?", "README's settings table"},
		{"unknown variable", []string{"MCP_CONDUCTOR_FAVOURITE_COLOUR=blue"}, 1, "variables",
			"MCP_CONDUCTOR_FAVOURITE_COLOUR is not a conductor variable, so it is ignored", "rename or remove"},
		{"missing package", []string{"MCP_CONDUCTOR_ALLOWED_PACKAGES=npm:conductor-doctor-never-installed@1.0.0"}, 1, "packages",
			"NOT installed: npm:conductor-doctor-never-installed@1.0.0; code importing them fails", "run `conductor deps install`"},
		{"dead upstream", []string{"MCP_CONDUCTOR_MCP_CONFIG=" + cfg}, 1, "upstream dead",
			"its stderr ends: dead: no API key", "fix its entry in " + cfg},
		{"read grant of a path the sandbox lacks", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-read=/data"}, 1, "grants",
			"allow-read=/data grants nothing: /data is not in the sandbox, which holds only its read-only root (deno and the admin's tools), " +
				"a fresh /tmp and the workspace (none: MCP_CONDUCTOR_WORKSPACE is unset)", "set MCP_CONDUCTOR_WORKSPACE"},
		{"write grant on the read-only root", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-write=/usr"}, 1, "grants",
			"allow-write=/usr grants nothing: the sandbox's root is read-only; code can write only /tmp (fresh each run) and the workspace", "remove those paths"},
		{"run grant of a program the sandbox lacks", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-run=git"}, 1, "settings",
			"allow-run lists git, which is not in the sandbox: add it to MCP_CONDUCTOR_TOOLS", "fix the MCP_CONDUCTOR_* variables"},
		{"allow-all", []string{"MCP_CONDUCTOR_RUN_ARGS=allow-all"}, 0, "grants",
			"WARNING: allow-all: deno's own permission wall is open", ""},
		{"missing playbook directory", []string{"MCP_CONDUCTOR_PLAYBOOKS=" + filepath.Join(pbDir, "nope")}, 1, "playbooks",
			"playbook directory " + filepath.Join(pbDir, "nope") + ": stat", "create the directory"},
		{"audit log in a missing directory", []string{"MCP_CONDUCTOR_AUDIT=" + filepath.Join(pbDir, "nope", "audit.log")}, 1, "audit",
			"cannot create " + filepath.Join(pbDir, "nope", "audit.log") + ": its directory: stat", "or change MCP_CONDUCTOR_AUDIT; serve refuses to start"},
		{"audit log to stdout", []string{"MCP_CONDUCTOR_AUDIT=stdout", "MCP_CONDUCTOR_AUDIT_CODE=1"}, 0, "audit",
			"audit log to stdout, only with serve --http (serve on stdio refuses it: stdout is the MCP channel); code included", ""},
		{"a bad playbook file", []string{"MCP_CONDUCTOR_PLAYBOOKS=" + pbDir, "MCP_CONDUCTOR_PLAYBOOKS_WRITABLE=1"}, 0, "playbooks",
			"WARNING: files skipped: broken.ts: the first line must be \"/* ---\"", "fix or remove the skipped files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := conductor(t, "", tc.env, "doctor", "--json")
			var rep doctorReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
			}
			if code != tc.exit || rep.OK != (tc.exit == 0) {
				t.Errorf("exit %d ok=%v; want exit %d", code, rep.OK, tc.exit)
			}
			for _, c := range rep.Checks {
				if c.Name != tc.check {
					continue
				}
				if c.OK != (tc.exit == 0) || !strings.Contains(c.Detail, tc.want) || !strings.Contains(c.Fix, tc.fix) {
					t.Errorf("check %q: ok=%v detail %q fix %q; want %q, fix %q", c.Name, c.OK, c.Detail, c.Fix, tc.want, tc.fix)
				}
				return
			}
			t.Errorf("no %q check in %+v", tc.check, rep.Checks)
		})
	}
}

// TestExecMessages: `conductor exec` prints what the MCP tool returns: a request refused before
// it ran is a JSON result with error.type under --json (exit 2 kept); without --json the return
// value follows stdout as JSON on a line of its own (nothing for undefined); both keep the key
// order the code made.
func TestExecMessages(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		args    []string
		exit    int
		stdout  string // exactly, without --json
		errType string // with --json: error.type
		compact string // with --json: a substring of the compacted JSON
	}{
		{name: "refused import", code: "import pad from 'npm:left-pad';\npad('x', 3)", args: []string{"--json"}, exit: 2, errType: sandbox.ErrorDependency},
		{name: "refused empty code", code: "", args: []string{"--json"}, exit: 2, errType: sandbox.ErrorInvalidRequest, compact: `"exitCode":null`},
		{name: "key order in JSON", code: "({ b: 1, a: 2, c: { z: 1, y: 2 } })", args: []string{"--json"}, compact: `"returnValue":{"b":1,"a":2,"c":{"z":1,"y":2}}`},
		{name: "value after output", code: "console.log('hi');\n({ b: 1, a: 2, c: { z: 1, y: 2 } })", stdout: "hi\n" + `{"b":1,"a":2,"c":{"z":1,"y":2}}` + "\n"},
		{name: "value on its own line", code: "Deno.stdout.writeSync(new TextEncoder().encode('no newline'));\n'v'", stdout: "no newline\n\"v\"\n"},
		{name: "undefined prints nothing", code: "console.log('only output')", stdout: "only output\n"},
		{name: "null is a value", code: "null", stdout: "null\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := conductor(t, tc.code, nil, append(append([]string{"exec"}, tc.args...), "-")...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.exit, out, errOut)
			}
			if !slices.Contains(tc.args, "--json") {
				if out != tc.stdout {
					t.Errorf("stdout %q, want %q", out, tc.stdout)
				}
				return
			}
			var res struct {
				Status string
				Error  *sandbox.ErrorInfo
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("stdout is not one JSON result: %v\n%s\nstderr %q", err, out, errOut)
			}
			if tc.errType != "" && (res.Error == nil || res.Error.Type != tc.errType || res.Status != "error") {
				t.Errorf("status %q error %+v, want error.type %q", res.Status, res.Error, tc.errType)
			}
			var c bytes.Buffer
			if err := json.Compact(&c, []byte(out)); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(c.String(), tc.compact) {
				t.Errorf("result %s does not contain %s", c.String(), tc.compact)
			}
		})
	}
}

// TestExecLimitMessages: `conductor exec` words a limit hit as the MCP tool does — the limit, its
// size, the setting the admin raises it with.
func TestExecLimitMessages(t *testing.T) {
	env := []string{"MCP_CONDUCTOR_MEMORY=256M", "MCP_CONDUCTOR_PIDS=24"}
	tests := []struct {
		name, code string
		want       []string
	}{
		{"heap", "const a = []; while (true) a.push({ s: 'x'.repeat(1024) + Math.random() });", []string{"oom (oom)", "heap reached its limit of 86 MiB", "256 MiB", "MCP_CONDUCTOR_MEMORY"}},
		{"threads", "for (let i = 0; i < 200; i++) new Worker('data:application/javascript,setInterval(() => {}, 1000)', { type: 'module' });", []string{"limit of 24 processes and threads", "MCP_CONDUCTOR_PIDS"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := conductor(t, tc.code, env, "exec", "-")
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
}
