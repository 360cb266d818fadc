package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newWorkspace makes a workspace directory the sandbox can reach. As root it
// is owned by an arbitrary other uid, to prove the idmapped mount: files the
// sandbox writes land as that owner.
func newWorkspace(t *testing.T) (dir string, uid int) {
	t.Helper()
	top, err := os.MkdirTemp("", "conductor-ws-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	uid = os.Geteuid()
	if uid == 0 {
		uid = 4242
		if err := os.Chown(top, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return top, uid
}

func ownerOf(t *testing.T, path string) int {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

func TestWorkspace(t *testing.T) {
	ws, owner := newWorkspace(t)
	r := newTestRunner(t, func(o *Options) {
		o.Workspace = ws
		o.MaxOutput = 1024
		o.SpillMax = 1 << 20
		o.DenoFlags = []string{"--allow-read=" + ws, "--allow-write=" + ws}
	})

	t.Run("persistent and owned by the workspace owner", func(t *testing.T) {
		res := runCode(t, r, `Deno.writeTextFileSync("`+ws+`/note.txt", "from run 1")`, 20*time.Second)
		if res.Status != StatusSuccess {
			t.Fatalf("write: %s %+v", res.Status, res.Error)
		}
		if got := ownerOf(t, filepath.Join(ws, "note.txt")); got != owner {
			t.Errorf("file owner on the host = %d, want the workspace owner %d", got, owner)
		}
		res = runCode(t, r, `console.log(Deno.readTextFileSync("`+ws+`/note.txt"))`, 20*time.Second)
		if res.Stdout != "from run 1\n" {
			t.Fatalf("run 2 read %q (%+v)", res.Stdout, res.Error)
		}
	})

	t.Run("capped output is spilled in full", func(t *testing.T) {
		res := runCode(t, r, `for (let i = 0; i < 5000; i++) console.log("line " + i)`, 20*time.Second)
		if !res.StdoutTruncated || res.StdoutFile == "" {
			t.Fatalf("truncated=%v file=%q note=%q", res.StdoutTruncated, res.StdoutFile, res.OutputNote)
		}
		if !strings.HasPrefix(res.StdoutFile, ws+"/.conductor/output/") {
			t.Errorf("spill file %s is not in the workspace's output dir", res.StdoutFile)
		}
		full, err := os.ReadFile(res.StdoutFile)
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for i := 0; i < 5000; i++ {
			want.WriteString("line " + itoa(i) + "\n")
		}
		if string(full) != want.String() || int64(len(full)) != res.StdoutBytes {
			t.Errorf("spill file has %d bytes, want %d (the whole stream)", len(full), want.Len())
		}
		if got := ownerOf(t, res.StdoutFile); got != owner {
			t.Errorf("spill file owner %d, want %d", got, owner)
		}
		// The file is retrievable from the sandbox, at the same path.
		res2 := runCode(t, r, `console.log(Deno.readTextFileSync("`+res.StdoutFile+`").split("\n").length)`, 20*time.Second)
		if res2.Stdout != "5001\n" {
			t.Errorf("reading the spill file from a sandbox: %q %+v", res2.Stdout, res2.Error)
		}
	})

	t.Run("a planted symlink is never followed by the host", func(t *testing.T) {
		// Deno's own wall refuses symlinks under path-scoped grants; open it
		// to test the host's handling on its own.
		hostile := newTestRunner(t, func(o *Options) {
			o.Workspace = ws
			o.MaxOutput = 1024
			o.SpillMax = 1 << 20
			o.DenoFlags = []string{"--allow-all"}
		})
		victim := t.TempDir()
		res := runCode(t, hostile, `Deno.renameSync("`+ws+`/.conductor", "`+ws+`/old"); Deno.symlinkSync("`+victim+`", "`+ws+`/.conductor")`, 20*time.Second)
		if res.Status != StatusSuccess {
			t.Fatalf("plant: %s %+v", res.Status, res.Error)
		}
		res = runCode(t, hostile, `for (let i = 0; i < 5000; i++) console.log("x" + i)`, 20*time.Second)
		if entries, _ := os.ReadDir(victim); len(entries) != 0 {
			t.Errorf("the host wrote outside the workspace, into %s: %v", victim, entries)
		}
		// The link was moved aside, not followed, and the spill went to a
		// fresh directory of the host's.
		if st, err := os.Lstat(filepath.Join(ws, ".conductor")); err != nil || !st.IsDir() {
			t.Errorf(".conductor after the spill: %v %v, want a real directory", st, err)
		}
		if aside, _ := filepath.Glob(filepath.Join(ws, ".conductor.untrusted-*")); len(aside) != 1 {
			t.Errorf("the planted link was not moved aside: %v", aside)
		} else if st, err := os.Lstat(aside[0]); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("moved aside %s is not the planted link: %v %v", aside[0], st, err)
		}
		if !strings.HasPrefix(res.StdoutFile, ws+"/.conductor/output/") || res.OutputNote != "" {
			t.Errorf("spill after replacing the link: file=%q note=%q", res.StdoutFile, res.OutputNote)
		}
		if !res.StdoutTruncated || len(res.Stdout) != 1024 {
			t.Errorf("inline output must still be capped: %d bytes", len(res.Stdout))
		}
	})
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestWorkspaceOf: a sandbox started for an identity sees <workspace>/<identity>/ at the
// workspace's path: what it writes lands there (owned as the workspace, in a 0700 directory made
// on first use), the other identity's files and the workspace's own are invisible, its spill
// file is named at the path the sandbox sees; a name that is not an identity's and a link planted
// where an identity's directory goes are refused.
func TestWorkspaceOf(t *testing.T) {
	ws, owner := newWorkspace(t)
	r := newTestRunner(t, func(o *Options) {
		o.Workspace = ws
		o.MaxOutput = 1024
		o.SpillMax = 1 << 20
		o.DenoFlags = []string{"--allow-read=" + ws, "--allow-write=" + ws}
	})
	if err := os.WriteFile(filepath.Join(ws, "shared.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(ws, "mallory")); err != nil {
		t.Fatal(err)
	}
	runAs := func(who, code string) *Result {
		t.Helper()
		sb, err := r.StartWith(context.Background(), StartOptions{WorkspaceOf: who})
		if err != nil {
			t.Fatalf("start for %s: %v", who, err)
		}
		defer sb.Close()
		return sb.Run(context.Background(), Job{Code: code, Timeout: 20 * time.Second})
	}
	list := `const n = []; for await (const e of Deno.readDir("` + ws + `")) n.push(e.name); export default n.sort().join(",")`
	for _, tc := range []struct{ who, sees string }{{"alice", "alice.txt"}, {"bob", "bob.txt"}} {
		res := runAs(tc.who, `Deno.writeTextFileSync("`+ws+`/`+tc.who+`.txt", "mine");`+list)
		if res.Status != StatusSuccess || string(res.ReturnValue) != `"`+tc.sees+`"` {
			t.Fatalf("%s: %s %s %+v; want only %s", tc.who, res.Status, res.ReturnValue, res.Error, tc.sees)
		}
		dir := filepath.Join(ws, tc.who)
		if st, err := os.Lstat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 || ownerOf(t, dir) != owner {
			t.Errorf("%s: %v %v; want a 0700 directory owned by %d", dir, st, err, owner)
		}
		if got := ownerOf(t, filepath.Join(dir, tc.sees)); got != owner {
			t.Errorf("%s's file owner %d, want %d", tc.who, got, owner)
		}
	}
	res := runAs("alice", `console.log("y".repeat(5000))`)
	if res.StdoutFile == "" || !strings.HasPrefix(res.StdoutFile, ws+"/.conductor/output/") {
		t.Errorf("alice's spill file %q, want it under %s/.conductor/output/ (the path she sees)", res.StdoutFile, ws)
	} else if _, err := os.Stat(filepath.Join(ws, "alice", strings.TrimPrefix(res.StdoutFile, ws+"/"))); err != nil {
		t.Errorf("alice's spill is not in her directory on the host: %v", err)
	}
	for _, who := range []string{"mallory", "../x", ".conductor", "Alice"} {
		if sb, err := r.StartWith(context.Background(), StartOptions{WorkspaceOf: who}); err == nil {
			sb.Close()
			t.Errorf("started with the workspace of %q", who)
		}
	}
}
