package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/artifacts"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/sandbox"
)

func testStore(t *testing.T, max int64) *artifacts.Store {
	t.Helper()
	st, err := artifacts.Open(artifacts.Options{Dir: filepath.Join(t.TempDir(), "outputs"), MaxBytes: max, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func file(name, mime string, n int) outputs.File {
	return outputs.File{Name: name, MimeType: mime, Bytes: int64(n), Data: bytes.Repeat([]byte{'x'}, n)}
}

// kinds is the content types of cs, as the wire names them.
func kinds(cs []sdk.Content) []string {
	var out []string
	for _, c := range cs {
		switch c.(type) {
		case *sdk.ImageContent:
			out = append(out, "image")
		case *sdk.EmbeddedResource:
			out = append(out, "resource")
		case *sdk.ResourceLink:
			out = append(out, "resource_link")
		case *sdk.TextContent:
			out = append(out, "text")
		}
	}
	return out
}

// TestOutputContent: which output becomes which content, by type and size, what the structured
// list says of each, and that skipped ones are listed with their reason.
func TestOutputContent(t *testing.T) {
	lim := outputLimits{image: 1000, total: 1500}
	tests := []struct {
		name     string
		store    int64 // 0 = no store
		files    []outputs.File
		want     []string // content kinds
		skipped  []bool   // per file
		haveURI  []bool   // per file
		contains string   // in a skipped reason
	}{
		{"small png inline", 1 << 20, []outputs.File{file("a.png", "image/png", 1000)}, []string{"image"}, []bool{false}, []bool{true}, ""},
		{"png over the image cap is a link", 1 << 20, []outputs.File{file("a.png", "image/png", 1001)}, []string{"resource_link"}, []bool{false}, []bool{true}, ""},
		{"second image over the total is a link", 1 << 20, []outputs.File{file("a.png", "image/png", 800), file("b.jpg", "image/jpeg", 800), file("c.gif", "image/gif", 700)},
			[]string{"image", "resource_link", "image"}, []bool{false, false, false}, []bool{true, true, true}, ""},
		{"svg inline", 1 << 20, []outputs.File{file("a.svg", "image/svg+xml", 10)}, []string{"image"}, []bool{false}, []bool{true}, ""},
		{"small csv embedded", 1 << 20, []outputs.File{file("d.csv", "text/csv", EmbedTextMax)}, []string{"resource"}, []bool{false}, []bool{true}, ""},
		{"csv over the embed cap is a link", 1 << 20, []outputs.File{file("d.csv", "text/csv", EmbedTextMax+1)}, []string{"resource_link"}, []bool{false}, []bool{true}, ""},
		{"json with charset embedded", 1 << 20, []outputs.File{file("d.json", "application/json; charset=utf-8", 20)}, []string{"resource"}, []bool{false}, []bool{true}, ""},
		{"binary is a link", 1 << 20, []outputs.File{file("d.bin", "application/octet-stream", 10)}, []string{"resource_link"}, []bool{false}, []bool{true}, ""},
		{"invalid utf-8 text is a link", 1 << 20, []outputs.File{{Name: "t.txt", MimeType: "text/plain", Bytes: 2, Data: []byte{0xff, 0xfe}}}, []string{"resource_link"}, []bool{false}, []bool{true}, ""},
		{"skipped by the collector is listed only", 1 << 20, []outputs.File{{Name: "passwd", Bytes: 0, Skipped: "a symbolic link"}, file("a.png", "image/png", 5)},
			[]string{"image"}, []bool{true, false}, []bool{false, true}, "symbolic link"},
		{"workspace reference is a link", 1 << 20, []outputs.File{{Name: "reports/big.csv", MimeType: "text/csv", Bytes: 5 << 20, Workspace: true}},
			[]string{"resource_link"}, []bool{false}, []bool{true}, ""},
		{"over the store's size is skipped", 1 << 20, []outputs.File{file("huge.bin", "application/octet-stream", 1<<20+1)}, nil, []bool{true}, []bool{false}, config.VarOutputsStoreSize},
		{"image over the store's size but inline", 500, []outputs.File{{Name: "a.png", MimeType: "image/png", Bytes: 900, Data: make([]byte, 900)}}, []string{"image"}, []bool{false}, []bool{false}, ""},
		{"no store: inline still works", 0, []outputs.File{file("a.png", "image/png", 10), file("d.csv", "text/csv", 10)}, []string{"image", "resource"}, []bool{false, false}, []bool{false, false}, ""},
		{"no store: a link is skipped", 0, []outputs.File{file("a.png", "image/png", 2000), file("d.bin", "application/octet-stream", 1)}, nil, []bool{true, true}, []bool{false, false}, config.VarOutputsInline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st *artifacts.Store
			if tt.store > 0 {
				st = testStore(t, tt.store)
			}
			content, listed, how := outputContent(st, "alice", lim, tt.files, slog.New(slog.DiscardHandler))
			if got := strings.Join(kinds(content), ","); got != strings.Join(tt.want, ",") {
				t.Errorf("content %s, want %s", got, strings.Join(tt.want, ","))
			}
			if len(listed) != len(tt.files) {
				t.Fatalf("listed %d of %d", len(listed), len(tt.files))
			}
			found := tt.contains == ""
			for i, f := range listed {
				if (f.Skipped != "") != tt.skipped[i] || (f.URI != "") != tt.haveURI[i] {
					t.Errorf("%s: skipped %q uri %q; want skipped %v, uri %v", f.Name, f.Skipped, f.URI, tt.skipped[i], tt.haveURI[i])
				}
				if strings.Contains(f.Skipped, tt.contains) {
					found = true
				}
			}
			if !found {
				t.Errorf("no skipped reason contains %q: %+v", tt.contains, listed)
			}
			text := outputsSummary(listed, how)
			if lines := strings.Count(text, "\n"); lines != len(tt.files)+1 {
				t.Errorf("summary has %d lines for %d outputs:\n%s", lines, len(tt.files), text)
			}
			for _, c := range content {
				if l, ok := c.(*sdk.ResourceLink); ok && (l.Size == nil || l.URI == "" || l.Name == "" || l.MIMEType == "") {
					t.Errorf("incomplete link %+v", l)
				}
			}
		})
	}
}

// TestToolResultOutputs: the structured result lists the outputs with their URIs and no data,
// and the text names each.
func TestToolResultOutputs(t *testing.T) {
	s := &Server{}
	s.cur.Store(&Options{OutputStore: testStore(t, 1<<20), OutputsInline: 1 << 20, OutputsInlineTotal: 4 << 20, Logger: slog.New(slog.DiscardHandler)})
	res := &engine.Result{Result: &sandbox.Result{Status: sandbox.StatusSuccess, Outputs: []outputs.File{
		file("plot.png", "image/png", 100), file("data.csv", "text/csv", 20000), {Name: "fifo", Skipped: "not a regular file"},
	}}}
	out, _, err := s.toolResult("alice", res, summary)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kinds(out.Content), ","); got != "text,image,resource_link" {
		t.Errorf("content %s", got)
	}
	var structured struct {
		Outputs []map[string]any `json:"outputs"`
	}
	if err := json.Unmarshal(out.StructuredContent.(json.RawMessage), &structured); err != nil {
		t.Fatal(err)
	}
	if len(structured.Outputs) != 3 || structured.Outputs[1]["uri"] == nil || structured.Outputs[2]["skipped"] != "not a regular file" {
		t.Errorf("structured outputs %v", structured.Outputs)
	}
	if _, ok := structured.Outputs[0]["Data"]; ok {
		t.Error("the structured result carries the data")
	}
	text := out.Content[0].(*sdk.TextContent).Text
	for _, want := range []string{"plot.png (image/png, 100 bytes): image content", "data.csv (text/csv, 20000 bytes): link conductor://outputs/", "fifo (unknown type, 0 bytes): skipped: not a regular file"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if res.Outputs[0].URI != "" {
		t.Error("the engine's result was changed")
	}
}

func readReq(uri, identity string) *sdk.ReadResourceRequest {
	return &sdk.ReadResourceRequest{Params: &sdk.ReadResourceParams{URI: uri},
		Extra: &sdk.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: identity}}}
}

// TestReadOutput: the identity that produced an output reads it (text as text, binary as a
// blob); another identity gets not found, as for a URI that never existed; a workspace
// reference is read from the identity's own workspace now, and never through a link.
func TestReadOutput(t *testing.T) {
	ws := t.TempDir()
	for _, d := range []string{"alice", "bob"} {
		if err := os.Mkdir(filepath.Join(ws, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ws, "bob", "r.md"), []byte("# bob's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(ws, "alice", "r.md")); err != nil {
		t.Fatal(err)
	}
	st := testStore(t, 1<<20)
	s := &Server{}
	s.cur.Store(&Options{OutputStore: st, Workspace: ws, Logger: slog.New(slog.DiscardHandler),
		WorkspaceFor: func(ctx context.Context) (string, bool) { return event.ScopeOf(ctx).Identity, false }})
	csv, err := st.Put("alice", "d.csv", "text/csv", []byte("a,b\n"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := st.Put("alice", "d.bin", "application/octet-stream", []byte{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	refBob, err := st.Reference("bob", "r.md", "text/markdown", 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Reference("alice", "r.md", "text/markdown", 7); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, uri, identity string
		text                string
		blob                []byte
		err                 string
	}{
		{"own csv as text", csv, "alice", "a,b\n", nil, ""},
		{"own binary as blob", bin, "alice", "", []byte{0, 1, 2}, ""},
		{"another identity's", csv, "bob", "", nil, "Resource not found"},
		{"never existed", artifacts.OutputsPrefix + "0123456789abcdef0123456789abcdef/d.csv", "alice", "", nil, "Resource not found"},
		{"own workspace file", refBob, "bob", "# bob's", nil, ""},
		{"a workspace file through a link", refBob, "alice", "", nil, "only regular files are read"},
		{"a workspace reference of nobody", artifacts.WorkspaceURI("x.md"), "alice", "", nil, "Resource not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.readOutput(t.Context(), readReq(tt.uri, tt.identity))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := res.Contents[0]
			if c.Text != tt.text || !bytes.Equal(c.Blob, tt.blob) || c.URI != tt.uri {
				t.Errorf("got %+v", c)
			}
			if res.CacheScope != "private" {
				t.Errorf("cacheScope %q: one identity's output must not be cached for others", res.CacheScope)
			}
		})
	}
}
