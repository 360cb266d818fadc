package sandbox

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/egress"
)

// commandProbe runs as a sandbox's Command (deno eval, every deno permission: only the OS walls
// hold) and reports what it could do: read the given file and write into the writable directory,
// write the read-only root, see the workspace, the mounts' flags, its environment, and reach the
// allowed and an unlisted loopback port through the door.
const commandProbe = `
const dir = Deno.env.get("DENO_DIR");
const out = {};
const code = (f) => { try { f(); return "ok"; } catch (e) { return e.code ?? e.name; } };
out.given = Deno.readTextFileSync(dir + "/given.txt");
out.write = code(() => Deno.writeTextFileSync(dir + "/made.txt", "made in the sandbox"));
out.root = code(() => Deno.writeTextFileSync("/usr/probe.txt", "x"));
out.workspace = code(() => Deno.readTextFileSync(Deno.env.get("WS") + "/secret.txt"));
out.mount = Deno.readTextFileSync("/proc/self/mountinfo").split("\n").map((l) => l.split(" ")).filter((f) => f[4] === dir).map((f) => f[5]);
out.extra = Deno.env.get("EXTRA") ?? null;
out.admin = Deno.env.get("ADMINVAR") ?? null;
out.cwd = Deno.cwd();
try { out.allowed = await (await fetch("http://127.0.0.1:" + Deno.env.get("ALLOWED") + "/p")).text(); } catch (e) { out.allowed = String(e); }
try { await fetch("http://127.0.0.1:" + Deno.env.get("OTHER") + "/p"); out.other = "reached"; } catch (e) { out.other = "refused"; }
console.log(JSON.stringify(out));
`

// TestCommandSandbox: a sandbox that runs its own Command (as package install does) has the
// same walls as a run's: it writes only its Writable directory (rw, noexec; new files land as the
// directory's owner), Files are there during the run and gone after Close, the read-only root
// stays read-only, Isolated leaves out the workspace and the admin's environment, and its Network
// policy, in place of the runner's, is the only way out through the door. Bad options are refused before anything starts.
func TestCommandSandbox(t *testing.T) {
	httpPort, otherPort, otherHits := hostServers(t)
	ws, _ := newWorkspace(t)
	if err := os.WriteFile(filepath.Join(ws, "secret.txt"), []byte("the workspace"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &netHooks{}
	var o Options
	r := newTestRunner(t, func(opts *Options) {
		opts.Workspace = ws
		opts.Env = []string{"ADMINVAR=from the admin"}
		// Runs may reach the other port only: the command sandbox's own policy replaces this one.
		opts.Net = &NetOptions{Policy: egress.Policy{Allow: []egress.Rule{{Host: "127.0.0.1", Port: otherPort}}}, Resolver: h.resolve, Dial: h.dial}
		o = *opts
	})
	dir, owner := newWorkspace(t) // owned by another uid as root: the idmapped mount's proof

	denoDir := o.Root.DenoDir
	so := StartOptions{
		Command:  []string{o.Root.DenoPath, "eval", commandProbe},
		Env:      []string{"EXTRA=added", "WS=" + ws, "ALLOWED=" + strconv.Itoa(httpPort), "OTHER=" + strconv.Itoa(otherPort)},
		Writable: &Mount{Host: dir, Path: denoDir},
		Files:    map[string][]byte{"given.txt": []byte("given by the host")},
		Network:  &egress.Policy{Allow: []egress.Rule{{Host: "127.0.0.1", Port: httpPort}}},
		Isolated: true,
	}
	sb, err := r.StartWith(t.Context(), so)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	res := sb.Run(t.Context(), Job{Timeout: 60 * time.Second})
	if err := sb.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if res.Status != StatusSuccess {
		t.Fatalf("command: %s %+v\nstderr: %s", res.Status, res.Error, lastLines(res.Stderr, 10))
	}
	var got struct {
		Given, Write, Root, Workspace, Allowed, Other, Cwd string
		Mount                                              []string
		Extra, Admin                                       *string
	}
	if err := json.Unmarshal([]byte(lastLines(res.Stdout, 1)), &got); err != nil {
		t.Fatalf("probe output %q: %v", res.Stdout, err)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"the given file is readable: " + got.Given, got.Given == "given by the host"},
		{"the writable directory is writable: " + got.Write, got.Write == "ok"},
		{"the root is read-only: " + got.Root, got.Root == "EROFS"},
		{"the workspace is not mounted: " + got.Workspace, got.Workspace == "NotFound" || got.Workspace == "ENOENT"},
		{"the writable directory is mounted once, rw and noexec: " + strings.Join(got.Mount, " "), len(got.Mount) == 1 && strings.HasPrefix(got.Mount[0], "rw,") && strings.Contains(got.Mount[0], "noexec")},
		{"Env is added", got.Extra != nil && *got.Extra == "added"},
		{"the admin's Options.Env stays out", got.Admin == nil},
		{"cwd is /tmp, not the workspace: " + got.Cwd, got.Cwd == "/tmp"},
		{"the allowed destination answers: " + got.Allowed, strings.HasPrefix(got.Allowed, "hello from the host, GET /p")},
		{"the unlisted port is refused: " + got.Other, got.Other == "refused" && otherHits.Load() == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s", c.what)
		}
	}
	if rec, ok := findRecord(res.Network, "127.0.0.1", otherPort); !ok || rec.Allowed {
		t.Errorf("the door's record of the unlisted port: %+v (found %v), want refused", rec, ok)
	}
	h.mu.Lock()
	dialed := slices.Clone(h.dialed)
	h.mu.Unlock()
	if want := "127.0.0.1:" + strconv.Itoa(httpPort); !slices.Equal(dialed, []string{want}) {
		t.Errorf("the door dialed %v, want only %s", dialed, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "given.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Files after Close: %v, want removed", err)
	}
	if got := ownerOf(t, filepath.Join(dir, "made.txt")); got != owner {
		t.Errorf("the sandbox's file is owned by %d on the host, want the directory's owner %d", got, owner)
	}

	for name, bad := range map[string]StartOptions{
		"empty command":          {Command: []string{}},
		"files without writable": {Command: so.Command, Files: so.Files},
		"relative writable":      {Command: so.Command, Writable: &Mount{Host: "dir", Path: denoDir}},
	} {
		if sb, err := r.StartWith(t.Context(), bad); !errors.Is(err, ErrStart) {
			if sb != nil {
				sb.Close()
			}
			t.Errorf("%s: %v, want ErrStart", name, err)
		}
	}
}
