package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// onePNG is a 1x1 PNG.
const onePNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

// newOutputsEngine is an engine as conductor serves with outputs on (MCP_CONDUCTOR_OUTPUTS_SIZE):
// code's deno flags from Settings.CodeFlags, for run_deno_code and execute_code's deno alike,
// and the Python py (MCP_CONDUCTOR_PYTHON's value: Debian's for the matplotlib tests, off for
// TypeScript's, which then runs where the host has no python3-numpy or -yaml: the test VM).
func newOutputsEngine(t *testing.T, py string) *Engine {
	t.Helper()
	s := config.Settings{OutputsSize: 8 << 20}
	rs, err := runtimes.Resolve(context.Background(), runtimes.Options{
		DenoPath: "/usr/bin/deno", DenoFlags: s.CodeFlags(), Memory: 512 << 20, Python: py, Go: config.GoOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := sandboxtest.RunnerWithRoot(t, func(o *rootfs.Options) {
		o.Programs = rs.Programs()
		o.MountPoints = []string{config.WorkDir}
	}, func(o *sandbox.Options) {
		o.DenoFlags = s.CodeFlags()
		o.Outputs = outputs.Limits{TotalBytes: s.OutputsSize}
	})
	return newEngine(t, func(o *Options) {
		o.Sandboxes, o.Runtimes = r, rs
		o.MaxTimeout = testenv.Scale(60 * time.Second)
	})
}

// pngSize is the width and height in a PNG's IHDR.
func pngSize(t *testing.T, b []byte) (w, h uint32) {
	t.Helper()
	if len(b) < 24 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || string(b[12:16]) != "IHDR" {
		t.Fatalf("not a PNG: %q", b[:min(len(b), 24)])
	}
	return binary.BigEndian.Uint32(b[16:20]), binary.BigEndian.Uint32(b[20:24])
}

func outputNamed(fs []outputs.File, name string) (outputs.File, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f, true
		}
	}
	return outputs.File{}, false
}

// TestTypeScriptDisplay: display() of a PNG and a CSV, in run_deno_code and in execute_code's
// TypeScript, comes back in Outputs with its bytes and sniffed type.
func TestTypeScriptDisplay(t *testing.T) {
	e := newOutputsEngine(t, config.PythonOff)
	code := `
const png = Uint8Array.from(atob("` + onePNG + `"), (c) => c.charCodeAt(0));
const a = await display(png, { name: "dot.png" });
const b = await display("x,y\n1,2\n", { mimeType: "text/csv" });
console.log(JSON.stringify([a, b]));`
	png, _ := base64.StdEncoding.DecodeString(onePNG)
	deno, err := e.Execute(context.Background(), Request{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := e.ExecuteCode(context.Background(), CodeRequest{Language: "typescript", Entrypoint: File{Content: code}})
	if err != nil {
		t.Fatal(err)
	}
	for tool, res := range map[string]*Result{"run_deno_code": deno, "execute_code": ts} {
		if res.Status != sandbox.StatusSuccess {
			t.Errorf("%s: %s %+v %s", tool, res.Status, res.Error, res.Stderr)
			continue
		}
		if want := `[{"name":"dot.png","bytes":70},{"name":"output-1.csv","bytes":8}]` + "\n"; res.Stdout != want {
			t.Errorf("%s: display returned %q, want %q", tool, res.Stdout, want)
		}
		dot, _ := outputNamed(res.Outputs, "dot.png")
		csv, _ := outputNamed(res.Outputs, "output-1.csv")
		if dot.MimeType != outputs.TypePNG || !bytes.Equal(dot.Data, png) || csv.MimeType != "text/csv" || string(csv.Data) != "x,y\n1,2\n" || len(res.Outputs) != 2 {
			t.Errorf("%s: outputs %+v", tool, res.Outputs)
		}
	}
}

// TestPythonOutputs: with Debian's matplotlib, a figure left open is saved as a PNG of the size the
// code asked (figsize 4x3 at dpi 100: 400x300), plt.show() saves what is open then, and display()
// returns bytes; in run_python_code and execute_code alike.
func TestPythonOutputs(t *testing.T) {
	e := newOutputsEngine(t, debianPython(t))
	code := `import time
t0 = time.monotonic()
import matplotlib.pyplot as plt
t1 = time.monotonic()
fig = plt.figure(figsize=(4, 3), dpi=100)
plt.plot([1, 2, 3], [1, 4, 9])
plt.savefig("/tmp/first.png")
t2 = time.monotonic()
print("import %.2fs, first savefig %.2fs" % (t1 - t0, t2 - t1))
plt.figure(figsize=(2, 2), dpi=50)
plt.show()  # saves both open figures
plt.figure(figsize=(1, 1), dpi=64)  # left open: saved when the run ends
display(b"\x89PNG\r\n\x1a\n", name="raw.png")
r = display("a,b\n1,2\n", mime_type="text/csv")
print(r)
`
	py, err := e.ExecutePython(context.Background(), PythonRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := e.ExecuteCode(context.Background(), CodeRequest{Language: "python", Entrypoint: File{Content: code}})
	if err != nil {
		t.Fatal(err)
	}
	for tool, res := range map[string]*Result{"run_python_code": py, "execute_code": ex} {
		if res.Status != sandbox.StatusSuccess {
			t.Errorf("%s: %s %+v %s", tool, res.Status, res.Error, res.Stderr)
			continue
		}
		t.Logf("%s: %s", tool, strings.TrimSpace(res.Stdout))
		if !strings.Contains(res.Stdout, "{'name': 'output-1.csv', 'bytes': 8}") {
			t.Errorf("%s: display returned %q", tool, res.Stdout)
		}
		sizes := map[string][2]uint32{"figure-1.png": {400, 300}, "figure-2.png": {100, 100}, "figure-3.png": {64, 64}}
		for name, want := range sizes {
			f, ok := outputNamed(res.Outputs, name)
			if !ok || f.MimeType != outputs.TypePNG || f.Skipped != "" {
				t.Errorf("%s: %s: %+v (outputs %+v)", tool, name, f, res.Outputs)
				continue
			}
			if w, h := pngSize(t, f.Data); w != want[0] || h != want[1] {
				t.Errorf("%s: %s is %dx%d, want %dx%d", tool, name, w, h, want[0], want[1])
			}
		}
		if f, _ := outputNamed(res.Outputs, "raw.png"); f.MimeType != outputs.TypePNG || f.Bytes != 8 {
			t.Errorf("%s: raw.png %+v", tool, f)
		}
		if f, _ := outputNamed(res.Outputs, "output-1.csv"); f.MimeType != "text/csv" || string(f.Data) != "a,b\n1,2\n" {
			t.Errorf("%s: output-1.csv %+v", tool, f)
		}
		if len(res.Outputs) != 5 {
			t.Errorf("%s: %d outputs: %+v", tool, len(res.Outputs), res.Outputs)
		}
	}
}
