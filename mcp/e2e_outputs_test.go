package mcp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// pngCode is TypeScript that builds a valid w×h RGB PNG by hand (zlib with one stored deflate
// block, CRC-32 and Adler-32 computed in code) and writes it to /outputs/<name>.
func pngCode(name string, w, h int) string {
	return fmt.Sprintf(`{
const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
const crc32 = (b: Uint8Array) => { let c = 0xffffffff; for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
const be32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const chunk = (type: string, data: number[]) => { const td = new Uint8Array([...new TextEncoder().encode(type), ...data]); return [...be32(data.length), ...td, ...be32(crc32(td))]; };
const W = %d, H = %d;
const raw: number[] = [];
for (let y = 0; y < H; y++) { raw.push(0); for (let x = 0; x < W; x++) raw.push(x * 40 %% 256, y * 60 %% 256, 128); }
let a = 1, b = 0; for (const x of raw) { a = (a + x) %% 65521; b = (b + a) %% 65521; }
const zlib = [0x78, 0x01, 0x01, raw.length & 255, raw.length >> 8, ~raw.length & 255, (~raw.length >> 8) & 255, ...raw, ...be32(((b << 16) | a) >>> 0)];
const png = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, ...chunk("IHDR", [...be32(W), ...be32(H), 8, 2, 0, 0, 0]), ...chunk("IDAT", zlib), ...chunk("IEND", [])]);
await display(png, { name: "%s" });
}
`, w, h, name)
}

// csvCode returns a CSV of rows lines (about 12 bytes each) with display(), as /outputs/<name>.
func csvCode(name string, rows int) string {
	return fmt.Sprintf(`
const lines = ["i,square"]; for (let i = 0; i < %d; i++) lines.push(i + "," + i * i);
await display(lines.join("\n") + "\n", { name: "%s", mimeType: "text/csv" });
`, rows, name)
}

// wantCSV is what csvCode writes.
func wantCSV(rows int) string {
	var b strings.Builder
	b.WriteString("i,square\n")
	for i := range rows {
		fmt.Fprintf(&b, "%d,%d\n", i, i*i)
	}
	return b.String()
}

// contentKinds names each content item by its wire type.
func contentKinds(cs []sdk.Content) []string {
	var out []string
	for _, c := range cs {
		switch c.(type) {
		case *sdk.TextContent:
			out = append(out, "text")
		case *sdk.ImageContent:
			out = append(out, "image")
		case *sdk.EmbeddedResource:
			out = append(out, "resource")
		case *sdk.ResourceLink:
			out = append(out, "resource_link")
		default:
			out = append(out, fmt.Sprintf("%T", c))
		}
	}
	return out
}

// checkPNG decodes data as a PNG of w×h.
func checkPNG(t *testing.T, data []byte, w, h int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("image content is not a PNG: %v (%d bytes)", err, len(data))
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("PNG is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
}

func readResource(cs *sdk.ClientSession, uri string) (*sdk.ReadResourceResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri})
}

// TestE2EOutputs: through a go-sdk client over stdio, TypeScript writes a PNG it builds in code
// and a CSV larger than the embedding cap: the result has the PNG as image content (decoding to
// its size) and the CSV as a resource link; resources/read of the link returns the CSV's exact
// bytes; an unknown id is not found; after the retention (2 s here) the link is refused as
// expired. The structured result and the text list both outputs.
func TestE2EOutputs(t *testing.T) {
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_OUTPUTS_RETENTION=2s")
	const rows = 2000 // ~23 KB: over the 16 KiB embedding cap
	r := run(t, s.cs, map[string]any{"deno_code": pngCode("dot.png", 3, 2) + csvCode("squares.csv", rows) + "'done'"})
	expectSuccess(t, r)
	if got := strings.Join(contentKinds(r.res.Content), ","); got != "text,image,resource_link" {
		t.Fatalf("content %s, want text,image,resource_link: %s", got, r)
	}
	img := r.res.Content[1].(*sdk.ImageContent)
	if img.MIMEType != "image/png" {
		t.Errorf("image mimeType %q", img.MIMEType)
	}
	checkPNG(t, img.Data, 3, 2)
	link := r.res.Content[2].(*sdk.ResourceLink)
	want := wantCSV(rows)
	if link.Name != "squares.csv" || link.MIMEType != "text/csv" || link.Size == nil || *link.Size != int64(len(want)) ||
		!strings.HasPrefix(link.URI, "conductor://outputs/") {
		t.Errorf("resource link %+v (size %v), want squares.csv, text/csv, %d bytes", link, link.Size, len(want))
	}
	outs, _ := r.out["outputs"].([]any)
	raw, _ := json.Marshal(outs)
	if len(outs) != 2 || !strings.Contains(string(raw), `"name":"dot.png"`) || !strings.Contains(string(raw), `"uri":"`+link.URI+`"`) {
		t.Errorf("structured outputs %s", raw)
	}
	for _, line := range []string{"dot.png (image/png, ", ": image content", "squares.csv (text/csv, " + fmt.Sprint(len(want)) + " bytes): link " + link.URI} {
		if !strings.Contains(r.text, line) {
			t.Errorf("text lacks %q:\n%s", line, r.text)
		}
	}
	start := time.Now()

	res, err := readResource(s.cs, link.URI)
	if err != nil {
		t.Fatalf("resources/read %s: %v", link.URI, err)
	}
	if len(res.Contents) != 1 || res.Contents[0].Text != want || res.Contents[0].MIMEType != "text/csv" {
		t.Fatalf("resources/read returned %d contents, text %d bytes (want %d), mime %q", len(res.Contents), len(res.Contents[0].Text), len(want), res.Contents[0].MIMEType)
	}
	if _, err := readResource(s.cs, "conductor://outputs/0123456789abcdef0123456789abcdef/squares.csv"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("an unknown id: %v, want not found", err)
	}

	time.Sleep(time.Until(start.Add(3 * time.Second)))
	_, err = readResource(s.cs, link.URI)
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "MCP_CONDUCTOR_OUTPUTS_RETENTION") {
		t.Errorf("resources/read after the retention: %v, want expired naming MCP_CONDUCTOR_OUTPUTS_RETENTION", err)
	}
}

// TestE2EOutputsImageLink: an image over MCP_CONDUCTOR_OUTPUTS_INLINE (1K here) is a resource
// link, and resources/read returns it as a blob: the PNG's exact bytes.
func TestE2EOutputsImageLink(t *testing.T) {
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_OUTPUTS_INLINE=1K")
	r := run(t, s.cs, map[string]any{"deno_code": pngCode("big.png", 40, 40) + pngCode("small.png", 2, 2) + "1"})
	expectSuccess(t, r)
	if got := strings.Join(contentKinds(r.res.Content), ","); got != "text,resource_link,image" {
		t.Fatalf("content %s, want text,resource_link,image (the 40x40 PNG is over 1K): %s", got, r)
	}
	link := r.res.Content[1].(*sdk.ResourceLink)
	if link.MIMEType != "image/png" || link.Name != "big.png" {
		t.Errorf("link %+v", link)
	}
	res, err := readResource(s.cs, link.URI)
	if err != nil {
		t.Fatalf("resources/read %s: %v", link.URI, err)
	}
	if c := res.Contents[0]; c.Text != "" || int64(len(c.Blob)) != *link.Size {
		t.Fatalf("want a blob of %d bytes, got text %d bytes, blob %d bytes", *link.Size, len(c.Text), len(c.Blob))
	}
	checkPNG(t, res.Contents[0].Blob, 40, 40)
	checkPNG(t, r.res.Content[2].(*sdk.ImageContent).Data, 2, 2)
}

// TestE2EOutputsIdentities: over HTTP with two identities, alice's run returns a CSV link and a
// workspace file it named; alice reads both (the workspace file as it is at the read, from her
// own workspace); bob gets not found for both, exactly as for a URI that never existed.
func TestE2EOutputsIdentities(t *testing.T) {
	file := filepath.Join(t.TempDir(), "conductor.json")
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	ws, _ = filepath.EvalSymlinks(ws)
	writeAtomic(t, file, identitiesConfig(ws, []string{"alice", "bob"}, nil))
	s := startHTTPWith(t, httpStart{env: []string{"MCP_CONDUCTOR_CONFIG=" + file}, noToken: true})
	alice := mustConnectHTTP(t, s, "alice-token", nil)
	bob := mustConnectHTTP(t, s, "bob-token", nil)

	code := csvCode("big.csv", 2000) + fmt.Sprintf(`
Deno.writeTextFileSync(%q, "# alice's report\n");
await display.workspaceFile("report.md");
'ok'`, ws+"/report.md")
	r := run(t, alice, map[string]any{"deno_code": code})
	expectSuccess(t, r)
	var links []*sdk.ResourceLink
	for _, c := range r.res.Content {
		if l, ok := c.(*sdk.ResourceLink); ok {
			links = append(links, l)
		}
	}
	if len(links) != 2 {
		t.Fatalf("want two resource links (the CSV, the workspace file), got %v: %s", contentKinds(r.res.Content), r)
	}
	var wsLink string
	for _, l := range links {
		if strings.HasPrefix(l.URI, "conductor://workspace/") {
			wsLink = l.URI
		}
	}
	if wsLink != "conductor://workspace/report.md" {
		t.Fatalf("workspace link %q, want conductor://workspace/report.md", wsLink)
	}
	// The workspace file is read when asked: a change after the run shows.
	if err := os.WriteFile(filepath.Join(ws, "alice", "report.md"), []byte("# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		res, err := readResource(alice, l.URI)
		if err != nil {
			t.Fatalf("alice reads her %s: %v", l.URI, err)
		}
		if strings.HasPrefix(l.URI, "conductor://workspace/") && res.Contents[0].Text != "# changed\n" {
			t.Errorf("workspace file read %q, want the file as it is now", res.Contents[0].Text)
		}
		_, err = readResource(bob, l.URI)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("bob reads alice's %s: %v, want not found", l.URI, err)
		}
	}
	_, err := readResource(bob, "conductor://outputs/0123456789abcdef0123456789abcdef/big.csv")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("bob reads a URI that never existed: %v", err)
	}
}

// TestE2EOutputsInspector: the inspector CLI (over stdio; it spawns the server) calls
// run_deno_code that writes a PNG and a large CSV, and shows an image content and a
// resource_link.
func TestE2EOutputsInspector(t *testing.T) {
	mcpTools(t)
	bin := conductorBin(t)
	denoBin(t)
	stdio := []string{"-e", "MCP_CONDUCTOR_STATE_DIR=" + t.TempDir(), bin, "serve"}
	out := inspector(t, append(stdio, "--method", "tools/call", "--tool-name", toolName,
		"--tool-arg", "deno_code="+pngCode("dot.png", 4, 4)+csvCode("squares.csv", 2000)+"1")...)
	content, _ := out["content"].([]any)
	var types []string
	var imageData string
	for _, c := range content {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		types = append(types, typ)
		if typ == "image" {
			imageData, _ = m["data"].(string)
		}
		if typ == "resource_link" && (m["name"] != "squares.csv" || m["mimeType"] != "text/csv") {
			t.Errorf("resource_link %v", m)
		}
	}
	if strings.Join(types, ",") != "text,image,resource_link" {
		t.Fatalf("content types %v, want text,image,resource_link: %v", types, out)
	}
	data, err := base64.StdEncoding.DecodeString(imageData)
	if err != nil {
		t.Fatalf("image data is not base64: %v", err)
	}
	checkPNG(t, data, 4, 4)
}

// debianMatplotlib is Debian's python3 when it has matplotlib (python3-matplotlib).
func debianMatplotlib(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import matplotlib").Run(); err != nil {
		testenv.Unavailable(t, "%s cannot import matplotlib (apt-get install python3-matplotlib): %v", py, err)
	}
	return py
}

// TestE2EOutputsMatplotlib: run_python_code draws a figure of 4×3 inches at 50 dpi with Debian's
// matplotlib and leaves it open: the result has an image content whose base64 decodes to a
// 200×150 PNG.
func TestE2EOutputsMatplotlib(t *testing.T) {
	py := debianMatplotlib(t)
	s := startStdio(t, nil, nil, "MCP_CONDUCTOR_PYTHON="+py)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := s.cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_python_code", Arguments: map[string]any{
		"python_code": "import matplotlib.pyplot as plt\nfig = plt.figure(figsize=(4, 3), dpi=50)\nplt.plot([1, 2, 3], [1, 4, 9])\n'drawn'",
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := toResult(t, res)
	expectSuccess(t, r)
	var images []*sdk.ImageContent
	for _, c := range res.Content {
		if img, ok := c.(*sdk.ImageContent); ok {
			images = append(images, img)
		}
	}
	if len(images) != 1 || images[0].MIMEType != "image/png" {
		t.Fatalf("want one PNG image content, got %v: %s", contentKinds(res.Content), r)
	}
	checkPNG(t, images[0].Data, 200, 150)
}
