package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/outputs"
)

// onePNG is a 1x1 PNG.
const onePNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

func outputsRunner(t *testing.T, mutate func(*Options)) *Runner {
	return newTestRunner(t, func(o *Options) {
		o.Outputs = outputs.Limits{TotalBytes: 4 << 20, Files: 32}
		o.DenoFlags = config.GrantPath([]string{"--allow-env=" + config.OutputsEnv}, "write", config.OutputsDir)
		if mutate != nil {
			mutate(o)
		}
	})
}

func outputsByName(fs []outputs.File) map[string]outputs.File {
	m := map[string]outputs.File{}
	for _, f := range fs {
		m[f.Name] = f
	}
	return m
}

// TestOutputs: what a run writes into its outputs directory comes back with sniffed types and
// its exact bytes; the directory is in the environment.
func TestOutputs(t *testing.T) {
	r := outputsRunner(t, nil)
	res := runCode(t, r, `
const dir = Deno.env.get("CONDUCTOR_OUTPUTS");
Deno.writeFileSync(dir + "/plot.png", Uint8Array.from(atob("`+onePNG+`"), (c) => c.charCodeAt(0)));
Deno.writeTextFileSync(dir + "/table.csv", "x,y\n1,2\n");
Deno.mkdirSync(dir + "/sub/deeper", { recursive: true });
Deno.writeTextFileSync(dir + "/sub/deeper/notes.md", "# notes\n");
export default dir;`, 20*time.Second)
	if res.Status != StatusSuccess {
		t.Fatalf("run: %s %+v %s", res.Status, res.Error, res.Stderr)
	}
	if string(res.ReturnValue) != `"/outputs"` {
		t.Errorf("CONDUCTOR_OUTPUTS = %s, want /outputs", res.ReturnValue)
	}
	png, _ := base64.StdEncoding.DecodeString(onePNG)
	want := []outputs.File{
		{Name: "plot.png", MimeType: outputs.TypePNG, Bytes: int64(len(png)), Data: png},
		{Name: "sub/deeper/notes.md", MimeType: "text/markdown", Bytes: 8, Data: []byte("# notes\n")},
		{Name: "table.csv", MimeType: "text/csv", Bytes: 8, Data: []byte("x,y\n1,2\n")},
	}
	if len(res.Outputs) != len(want) {
		t.Fatalf("outputs %+v, want %+v", res.Outputs, want)
	}
	for i, w := range want {
		g := res.Outputs[i]
		if g.Name != w.Name || g.MimeType != w.MimeType || g.Bytes != w.Bytes || !bytes.Equal(g.Data, w.Data) || g.Skipped != "" {
			t.Errorf("output %d: got %+v, want %+v", i, g, w)
		}
	}
}

// TestOutputsHostile: links, special files, floods, huge sparse files and bad names are each
// refused with their reason, bounded, and the host neither follows nor blocks.
func TestOutputsHostile(t *testing.T) {
	if hostPython() == config.PythonOff {
		unavailable(t, "the hostile outputs are made by python3, which this host lacks (/usr/bin/python3)")
	}
	ws, _ := newWorkspace(t)
	if err := os.WriteFile(filepath.Join(ws, "real.csv"), []byte("a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := outputsRunner(t, func(o *Options) {
		o.Workspace = ws
		o.DenoFlags = []string{"--allow-all"}
		o.Network = true // socket(2), for a socket file; the namespace holds only its lo
	})
	// Python makes what deno cannot (a socket, a FIFO where seccomp allows mknod of one);
	// everything is made inside the sandbox.
	py := `
import os
d = os.environ["CONDUCTOR_OUTPUTS"]
os.symlink("/etc/passwd", d + "/passwd")
os.symlink("../../../etc", d + "/up")
try:
    os.mkfifo(d + "/fifo")
except PermissionError:
    print("mkfifo refused")
import socket
s = socket.socket(socket.AF_UNIX); s.bind(d + "/sock")
with open(d + "/sparse", "wb") as f:
    f.truncate(1 << 30)
with open(d + "/a\x01b", "w") as f:
    f.write("control")
with open(d + "/ok.txt", "w") as f:
    f.write("fine")
os.mkdir(d + "/flood")
for i in range(10000):
    open(d + "/flood/f%05d" % i, "w").close()
with open(d + "/.workspace-files", "w") as f:
    f.write("real.csv\n../../../etc/passwd\n/etc/passwd\nmissing.txt\nlink\n")
os.symlink("/etc/passwd", os.getcwd() + "/link")
`
	code := `
const p = new Deno.Command("/usr/bin/python3", { args: ["-c", String.raw` + "`" + py + "`" + `], stderr: "inherit" }).outputSync();
if (!p.success) throw new Error("python failed: " + p.code);
console.log(new TextDecoder().decode(p.stdout));
// Left behind after the result: the run ends before it fires.
setTimeout(() => Deno.writeTextFileSync("/outputs/late.txt", "too late"), 3000);
export default "made";`
	t0 := time.Now()
	res := runCode(t, r, code, 60*time.Second)
	if res.Status != StatusSuccess {
		t.Fatalf("run: %s %+v %s", res.Status, res.Error, res.Stderr)
	}
	t.Logf("run with 10 000 outputs: %s", time.Since(t0))
	got := outputsByName(res.Outputs)
	tests := []struct{ name, skipped string }{
		{"passwd", "a symbolic link: not followed"},
		{"up", "a symbolic link: not followed"},
		{"fifo", "a FIFO: not a regular file"},
		{"sock", "a socket: not a regular file"},
		{"sparse", "1073741824 bytes, over the per-file cap of 4194304 bytes (" + config.VarOutputsFileSize + ")"},
		{`"a\x01b"`, `the name "a\x01b" is refused`},
		{".", "stopped after reading 128 directory entries"},
		{"real.csv", ""},
		{`"../../../etc/passwd"`, `a ".." path component`},
		{`"/etc/passwd"`, "an absolute path"},
		{"missing.txt", "no such file in the workspace"},
		{"link", "a symbolic link: not followed"},
	}
	for _, tt := range tests {
		f, ok := got[tt.name]
		if tt.name == "fifo" && !ok && strings.Contains(res.Stdout, "mkfifo refused") {
			t.Logf("no FIFO: the sandbox's seccomp policy refuses mknod (outputs' unit tests collect one)")
			continue
		}
		switch {
		case !ok:
			t.Errorf("%s: not reported", tt.name)
		case tt.skipped == "" && f.Skipped != "":
			t.Errorf("%s: skipped (%s), want it returned", tt.name, f.Skipped)
		case !strings.Contains(f.Skipped, tt.skipped):
			t.Errorf("%s: skipped %q, want %q", tt.name, f.Skipped, tt.skipped)
		case f.Skipped != "" && f.Data != nil:
			t.Errorf("%s: skipped with data", tt.name)
		}
	}
	if f := got["real.csv"]; !f.Workspace || f.Bytes != 4 || f.MimeType != "text/csv" || f.Data != nil {
		t.Errorf("workspace file: %+v", f)
	}
	// In sorted order ok.txt comes after flood/, whose first 32 (empty) files were returned.
	if f := got["ok.txt"]; !strings.Contains(f.Skipped, "over the count cap: 32 files") || f.Bytes != 4 {
		t.Errorf("ok.txt: %+v", f)
	}
	if _, ok := got["late.txt"]; ok {
		t.Errorf("a file written after the run ended was collected")
	}
	if len(res.Outputs) > 32*4+1+5 {
		t.Errorf("%d outputs reported: not bounded", len(res.Outputs))
	}
	returned := 0
	for _, f := range res.Outputs {
		if f.Skipped == "" {
			returned++
		}
	}
	t.Logf("%d entries reported, %d returned", len(res.Outputs), returned)
}

// TestOutputsOwnRun: a pooled sandbox started before another's run sees only its own outputs;
// without outputs there is no directory and no variable.
func TestOutputsOwnRun(t *testing.T) {
	r := outputsRunner(t, func(o *Options) { o.DenoFlags = []string{"--allow-all"} })
	ctx := context.Background()
	a, err := r.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := r.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	resA := a.Run(ctx, Job{Code: `Deno.writeTextFileSync("/outputs/a.txt", "from a")`, Timeout: 20 * time.Second})
	resB := b.Run(ctx, Job{Code: `export default [...Deno.readDirSync("/outputs")].length`, Timeout: 20 * time.Second})
	if resA.Status != StatusSuccess || resB.Status != StatusSuccess {
		t.Fatalf("runs: %s %+v, %s %+v", resA.Status, resA.Error, resB.Status, resB.Error)
	}
	if len(resA.Outputs) != 1 || string(resA.Outputs[0].Data) != "from a" {
		t.Errorf("a's outputs: %+v", resA.Outputs)
	}
	if len(resB.Outputs) != 0 || string(resB.ReturnValue) != "0" {
		t.Errorf("b saw %s entries and returned %+v", resB.ReturnValue, resB.Outputs)
	}

	off := newTestRunner(t, func(o *Options) { o.DenoFlags, o.Outputs = []string{"--allow-all"}, outputs.Limits{} })
	res := runCode(t, off, `export default [Deno.env.get("CONDUCTOR_OUTPUTS") ?? null, (() => { try { Deno.statSync("/outputs/x"); return "?" } catch (e) { return e.name } })(),
  (() => { try { Deno.writeTextFileSync("/outputs/x", "x"); return "written" } catch (e) { return e.name } })()]`, 20*time.Second)
	if res.Status != StatusSuccess || !strings.HasPrefix(string(res.ReturnValue), `[null,"NotFound",`) || strings.Contains(string(res.ReturnValue), "written") || res.Outputs != nil {
		t.Errorf("without outputs: %s %s %+v %+v", res.Status, res.ReturnValue, res.Outputs, res.Error)
	}
}

// TestOutputsDisplay: the display() global writes the outputs directory (named, default-named
// with the type's extension, a Blob) and names workspace files; without an outputs directory it
// says who can give one.
func TestOutputsDisplay(t *testing.T) {
	ws, _ := newWorkspace(t)
	if err := os.WriteFile(filepath.Join(ws, "data.json"), []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := outputsRunner(t, func(o *Options) {
		o.Workspace = ws
		o.DenoFlags = config.GrantPath([]string{"--allow-read=" + ws, "--allow-write=" + ws}, "write", config.OutputsDir)
	})
	res := runCode(t, r, `
const png = Uint8Array.from(atob("`+onePNG+`"), (c) => c.charCodeAt(0));
export default [
  await display(png, { name: "plot", mimeType: "image/png" }),
  await display("x,y\n1,2\n", { mimeType: "text/csv" }),
  await display(new Blob(["# hi\n"], { type: "text/markdown" })),
  await display(png.buffer),
  await display.workspaceFile("./data.json"),
  await display("x", { name: "../escape" }).catch((e) => e.message),
];`, 20*time.Second)
	if res.Status != StatusSuccess {
		t.Fatalf("run: %s %+v %s", res.Status, res.Error, res.Stderr)
	}
	want := `[{"name":"plot.png","bytes":70},{"name":"output-1.csv","bytes":8},{"name":"output-2.md","bytes":5},{"name":"output-3.bin","bytes":70},{"name":"data.json"},` +
		`"display(): name \"../escape.txt\" must be a relative path without \".\" or \"..\" components or control characters"]`
	if string(res.ReturnValue) != want {
		t.Errorf("display returned %s\nwant %s", res.ReturnValue, want)
	}
	got := outputsByName(res.Outputs)
	for name, mime := range map[string]string{"plot.png": outputs.TypePNG, "output-1.csv": "text/csv", "output-2.md": "text/markdown", "output-3.bin": outputs.TypePNG, "data.json": "application/json"} {
		if f := got[name]; f.MimeType != mime || f.Skipped != "" {
			t.Errorf("%s: %+v, want type %s", name, f, mime)
		}
	}
	if f := got["data.json"]; !f.Workspace || f.Bytes != 7 || f.Data != nil {
		t.Errorf("workspace file: %+v", f)
	}
	if len(res.Outputs) != 5 {
		t.Errorf("%d outputs: %+v", len(res.Outputs), res.Outputs)
	}

	off := newTestRunner(t, func(o *Options) { o.Outputs = outputs.Limits{} })
	res = runCode(t, off, `await display("x")`, 20*time.Second)
	if res.Status != StatusError || res.Error == nil || !strings.Contains(res.Error.Message, "no outputs directory") || !strings.Contains(res.Error.Message, config.VarOutputsSize) {
		t.Errorf("display without outputs: %s %+v", res.Status, res.Error)
	}
}

// TestOutputsWorkspaceOf: a run of an identity names workspace files of its own directory only:
// another identity's file is out of reach by name and by link.
func TestOutputsWorkspaceOf(t *testing.T) {
	ws, _ := newWorkspace(t)
	r := outputsRunner(t, func(o *Options) {
		o.Workspace = ws
		o.DenoFlags = []string{"--allow-read", "--allow-write"} // unscoped: Deno.symlinkSync needs it
	})
	if err := os.WriteFile(filepath.Join(ws, "top.txt"), []byte("not alice's"), 0o644); err != nil {
		t.Fatal(err)
	}
	sb, err := r.StartWith(context.Background(), StartOptions{WorkspaceOf: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	res := sb.Run(context.Background(), Job{Timeout: 20 * time.Second, Code: `
Deno.writeTextFileSync("mine.csv", "a,b\n");
Deno.symlinkSync("../top.txt", "link.txt");
await display.workspaceFile("mine.csv");
await display.workspaceFile("link.txt");
await display.workspaceFile("top.txt");`})
	if res.Status != StatusSuccess {
		t.Fatalf("run: %s %+v", res.Status, res.Error)
	}
	want := []outputs.File{
		{Name: "mine.csv", MimeType: "text/csv", Bytes: 4, Workspace: true},
		{Name: "link.txt", Workspace: true, Skipped: "a symbolic link: not followed"},
		{Name: "top.txt", Workspace: true, Skipped: "no such file in the workspace"},
	}
	if len(res.Outputs) != len(want) {
		t.Fatalf("outputs %+v, want %+v", res.Outputs, want)
	}
	for i, w := range want {
		if g := res.Outputs[i]; g.Name != w.Name || g.MimeType != w.MimeType || g.Workspace != w.Workspace || g.Skipped != w.Skipped || (w.Skipped == "" && g.Bytes != w.Bytes) {
			t.Errorf("%d: %+v, want %+v", i, g, w)
		}
	}
}
