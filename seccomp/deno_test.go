//go:build cgo && seccomp

package seccomp

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/opencontainers/runc/libcontainer/utils"
	"golang.org/x/sys/unix"
)

// execSpec tells the "exec" helper what to run.
type execSpec struct {
	Path string   // deno binary
	Args []string // argv, including argv[0]
	Env  []string
	// Fifo stands in for runc's exec fifo: the helper opens it O_PATH
	// before loading the filters and re-opens it for writing afterwards,
	// with the same code runc init uses, to prove the policy allows the
	// syscalls `runc init` makes between seccomp load and execve.
	Fifo string
}

// execDeno is the "exec" helper: it mimics the tail of `runc init` under
// the loaded filters (re-open the fifo through procfs, write, close every
// fd above stderr) and execs deno.
func execDeno(specJSON string, load func() error) error {
	var spec execSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("decode exec spec: %w", err)
	}
	fifo, err := os.OpenFile(spec.Fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := load(); err != nil {
		return err
	}
	w, err := pathrs.Reopen(fifo, unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("reopen exec fifo stand-in under the policy: %w", err)
	}
	if _, err := w.Write([]byte("0")); err != nil {
		return err
	}
	_ = w.Close()
	_ = fifo.Close()
	if err := utils.UnsafeCloseFrom(3); err != nil {
		return fmt.Errorf("close fds under the policy: %w", err)
	}
	return syscall.Exec(spec.Path, spec.Args, spec.Env)
}

// denoPath finds the deno binary: $CONDUCTOR_DENO, else ../.build/deno.
// Without it the test is skipped, or fails when CI=true.
func denoPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CONDUCTOR_DENO")
	if p == "" {
		p = filepath.Join("..", ".build", "deno")
	}
	abs, err := filepath.Abs(p)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		msg := fmt.Sprintf("deno binary not available (%v): run scripts/fetch-deno.sh or set CONDUCTOR_DENO", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return abs
}

// denoWorkload exercises what run_deno_code users do: TypeScript (the file
// itself and a data: import), a Worker, WebAssembly, WebCrypto, timers, the
// file system, a signal listener, a subprocess, and the network.
const denoWorkload = `
const out: string[] = [];
const m = await import("data:application/typescript,export const x: number = 41; export function inc(a: number): number { return a + 1; }");
out.push("ts " + m.inc(m.x));

const src = "self.onmessage = (e) => { self.postMessage(e.data * 2); self.close(); };";
const w = new Worker(URL.createObjectURL(new Blob([src], { type: "application/javascript" })), { type: "module" });
out.push("worker " + await new Promise((r) => { w.onmessage = (e) => r(e.data); w.postMessage(21); }));
w.terminate();

// (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
const wasm = new Uint8Array([0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,3,2,1,0,7,7,1,3,97,100,100,0,0,10,9,1,7,0,32,0,32,1,106,11]);
const { instance } = await WebAssembly.instantiate(wasm);
let s = 0;
for (let i = 0; i < 100000; i++) s = (instance.exports.add as (a: number, b: number) => number)(s, 1);
out.push("wasm " + s);

const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc")));
out.push("sha256 " + Array.from(d.slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join(""));
const k = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, k.privateKey, d);
out.push("ecdsa " + await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, k.publicKey, sig, d));

await new Promise((r) => setTimeout(r, 20));
const ticks = await new Promise((r) => { let n = 0; const id = setInterval(() => { if (++n === 3) { clearInterval(id); r(n); } }, 2); });
out.push("timers " + ticks);

const f = Deno.env.get("WORKDIR") + "/file.txt";
await Deno.writeTextFile(f, "hello");
out.push("fs " + await Deno.readTextFile(f) + " " + (await Deno.stat(f)).size);

// Signal listeners use a socketpair with send(2)/recv(2), also without network.
const got = new Promise((r) => Deno.addSignalListener("SIGUSR1", () => r("SIGUSR1")));
Deno.kill(Deno.pid, "SIGUSR1");
out.push("signal " + await got);

const p = await new Deno.Command(Deno.execPath(), { args: ["--version"], stdout: "null" }).output();
out.push("spawn " + p.code);

try {
  const ac = new AbortController();
  const srv = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} }, () => new Response("pong"));
  const res = await fetch("http://127.0.0.1:" + srv.addr.port + "/");
  out.push("net " + await res.text());
  ac.abort();
  await srv.finished;
} catch (e) {
  out.push("net " + (e as Error).name);
}
console.log(out.join("\n"));
`

func TestDenoRunsUnderPolicy(t *testing.T) {
	deno := denoPath(t)
	common := "ts 42\nworker 42\nwasm 100000\nsha256 ba7816bf\necdsa true\ntimers 3\nfs hello 5\nsignal SIGUSR1\nspawn 0\n"
	tests := []struct {
		network bool
		want    string
	}{
		// Without network, bind(2) fails with EPERM and deno reports it.
		{network: false, want: common + "net PermissionDenied\n"},
		{network: true, want: common + "net pong\n"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("network=%v", tt.network), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script := filepath.Join(dir, "main.ts")
			fifo := filepath.Join(dir, "exec.fifo")
			for name, content := range map[string]string{script: denoWorkload, fifo: ""} {
				if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			spec, err := json.Marshal(execSpec{
				Path: deno,
				Args: []string{"deno", "run", "-A", "--quiet", "--no-lock", script},
				Env: []string{"DENO_DIR=" + filepath.Join(dir, "deno-dir"), "DENO_NO_UPDATE_CHECK=1",
					"NO_COLOR=1", "HOME=" + dir, "WORKDIR=" + dir, "PATH=/usr/bin:/bin"},
				Fifo: fifo,
			})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res := runHelper(t, 15*time.Second, envHelper+"=exec", envLoad+"="+loadBoth,
				envNetwork+"="+boolEnv(tt.network), envExec+"="+string(spec))
			t.Logf("deno ran in %v", time.Since(start).Round(time.Millisecond))
			if res.timedOut || !res.status.Exited() || res.status.ExitStatus() != 0 {
				t.Fatalf("deno under the policy: status %v timedOut=%v\nstdout:\n%s\nstderr:\n%s",
					res.status, res.timedOut, res.stdout, res.stderr)
			}
			if res.stdout != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr:\n%s", res.stdout, tt.want, res.stderr)
			}
			if got, err := os.ReadFile(fifo); err != nil || string(got) != "0" {
				t.Errorf("exec fifo stand-in = %q, %v; want \"0\" written under the policy", got, err)
			}
			if strings.TrimSpace(res.stderr) != "" {
				t.Logf("deno stderr:\n%s", res.stderr)
			}
		})
	}
}
