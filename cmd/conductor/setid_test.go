package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// setidAttack is the reviewer's attack on issue 9 (finding 1), sent as
// run_deno_code: plant an executable in the workspace and make it set-id,
// through deno, node and libc over FFI, plus world-writable entries. It
// returns what each step did; WS is replaced with the workspace path.
const setidAttack = `
const ws = WS;
const r = {};
const step = (name, fn) => { try { const v = fn(); r[name] = v === undefined ? "ok" : v; } catch (e) { r[name] = e.name; r[name + " message"] = e.message; } };
const elf = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
Deno.writeFileSync(ws + "/sh", elf, { mode: 0o755 });
step("Deno.chmodSync 06755", () => Deno.chmodSync(ws + "/sh", 0o6755));
step("Deno.writeFileSync mode 04755", () => Deno.writeFileSync(ws + "/sh2", elf, { mode: 0o4755 }));
step("Deno.writeFileSync mode 0666", () => Deno.writeFileSync(ws + "/ww", elf, { mode: 0o666 }));
step("Deno.mkdirSync then chmod 02777", () => { Deno.mkdirSync(ws + "/shared"); Deno.chmodSync(ws + "/shared", 0o2777); });
const fs = await import("node:fs");
step("node chmodSync 04755", () => fs.chmodSync(ws + "/sh", 0o4755));
const process = (await import("node:process")).default;
step("node umask 0 then writeFileSync", () => { process.umask(0); fs.writeFileSync(ws + "/after-umask", "x"); });
step("node writeFileSync mode 0666", () => fs.writeFileSync(ws + "/ww3", "x", { mode: 0o666 }));
r["mode after umask 0"] = Deno.statSync(ws + "/after-umask").mode & 0o7777;
const libcPath = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib/aarch64-linux-gnu/libc.so.6"].find((p) => { try { return Deno.statSync(p).isFile; } catch { return false; } });
const libc = Deno.dlopen(libcPath, {
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  mkdir: { parameters: ["buffer", "u32"], result: "i32" },
  umask: { parameters: ["u32"], result: "u32" },
});
const c = (s) => new TextEncoder().encode(s + "\0");
r["ffi chmod 06755"] = libc.symbols.chmod(c(ws + "/sh"), 0o6755);
r["ffi open O_CREAT 06755"] = libc.symbols.open(c(ws + "/sh3"), 0o101, 0o6755);
r["ffi umask 0"] = libc.symbols.umask(0);
r["ffi open O_CREAT 0666 after umask 0"] = libc.symbols.open(c(ws + "/ww2"), 0o101, 0o666) >= 0 ? 0 : -1;
r["ffi mkdir 0777 after umask 0"] = libc.symbols.mkdir(c(ws + "/wwdir"), 0o777);
r["ffi chmod 0755"] = libc.symbols.chmod(c(ws + "/sh"), 0o755);
r
`

// TestWorkspaceSetIDOverMCP is issue 9, finding 1 end to end: a real MCP
// client calls run_deno_code on `conductor serve` with allow-all and a
// workspace owned by the user running the test (root in the root phase: the
// worst case, where a set-id file would be root's on the host). The attack
// must be refused step by step, harmless modes must still work, and the host
// must find no set-id, world-writable or capability entry afterwards.
func TestWorkspaceSetIDOverMCP(t *testing.T) {
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(os.Environ(), "MCP_CONDUCTOR_STATE_DIR="+t.TempDir(), "MCP_CONDUCTOR_POOL_SIZE=0",
		"MCP_CONDUCTOR_WORKSPACE="+ws, "MCP_CONDUCTOR_RUN_ARGS=allow-all")
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "setid-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nstderr: %s", err, stderr.String())
	}
	defer cs.Close()
	wsJSON, _ := json.Marshal(ws)
	code := strings.Replace(setidAttack, "WS", string(wsJSON), 1)
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_deno_code", Arguments: map[string]any{"deno_code": code, "timeout": 60000}})
	if err != nil || res.IsError {
		t.Fatalf("run_deno_code: %v %+v\nstderr: %s", err, res, stderr.String())
	}
	raw, _ := json.Marshal(res.StructuredContent)
	var out struct {
		ReturnValue map[string]any `json:"returnValue"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ReturnValue == nil {
		t.Fatalf("result %s: %v", raw, err)
	}
	want := map[string]any{
		"Deno.chmodSync 06755":                "PermissionDenied",
		"Deno.writeFileSync mode 04755":       "PermissionDenied",
		"Deno.writeFileSync mode 0666":        "PermissionDenied",
		"Deno.mkdirSync then chmod 02777":     "PermissionDenied",
		"node chmodSync 04755":                "Error",
		"node umask 0 then writeFileSync":     "ok",
		"node writeFileSync mode 0666":        "Error", // an explicit o+w mode is refused (EPERM)
		"mode after umask 0":                  float64(0o644),
		"ffi chmod 06755":                     float64(-1),
		"ffi open O_CREAT 06755":              float64(-1),
		"ffi umask 0":                         float64(0), // ignored: reports 0, the mask stays 0022
		"ffi open O_CREAT 0666 after umask 0": float64(0),
		"ffi mkdir 0777 after umask 0":        float64(0),
		"ffi chmod 0755":                      float64(0),
	}
	for k, w := range want {
		if got := out.ReturnValue[k]; got != w {
			t.Errorf("%s: %v (%v), want %v", k, got, out.ReturnValue[k+" message"], w)
		}
	}
	if n := testenv.AssertNoSetID(t, ws); n < 8 {
		t.Errorf("the host walk saw only %d entries; the attack made more", n)
	}
}
