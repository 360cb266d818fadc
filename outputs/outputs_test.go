package outputs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pngHead is the signature and IHDR start of a PNG.
var pngHead = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

// openPath opens dir as Collect gets it: an O_PATH directory fd.
func openPath(t *testing.T, dir string) *os.File {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), dir)
	t.Cleanup(func() { f.Close() })
	return f
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func byName(fs []File) map[string]File {
	m := map[string]File{}
	for _, f := range fs {
		m[f.Name] = f
	}
	return m
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "plot.png"), pngHead)
	write(t, filepath.Join(dir, "table.csv"), []byte("a,b\n1,2\n"))
	write(t, filepath.Join(dir, "sub/deep/data.json"), []byte(`{"a":1}`))
	write(t, filepath.Join(dir, "a/b/c/d/too-deep.txt"), []byte("x"))
	write(t, filepath.Join(dir, "big.bin"), bytes.Repeat([]byte{0}, 2000))
	write(t, filepath.Join(dir, WorkspaceList), []byte("nothing\n"))
	write(t, filepath.Join(dir, "a\x01b"), []byte("ctl"))
	write(t, filepath.Join(dir, "bad\xffutf8"), []byte("x"))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	sparse, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	sparse.Close()

	got, err := Collect(openPath(t, dir), Limits{FileBytes: 1000, TotalBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	m := byName(got)
	tests := []struct {
		name, mime, skipped string
		data                []byte
		bytes               int64
	}{
		{name: "plot.png", mime: TypePNG, data: pngHead, bytes: int64(len(pngHead))},
		{name: "table.csv", mime: "text/csv", data: []byte("a,b\n1,2\n"), bytes: 8},
		{name: "sub/deep/data.json", mime: "application/json", data: []byte(`{"a":1}`), bytes: 7},
		{name: "a/b/c/d", skipped: "a directory more than 3 levels deep: not read"},
		{name: "big.bin", skipped: "2000 bytes, over the per-file cap of 1000 bytes (MCP_CONDUCTOR_OUTPUTS_FILE_SIZE)", bytes: 2000},
		{name: "sparse", skipped: "1073741824 bytes, over the per-file cap of 1000 bytes", bytes: 1 << 30},
		{name: "passwd", skipped: "a symbolic link: not followed"},
		{name: "fifo", skipped: "a FIFO: not a regular file"},
		{name: `"a\x01b"`, skipped: `the name "a\x01b" is refused: unusable name: a control or non-printing character U+0001`},
		{name: `"bad\xffutf8"`, skipped: "not valid UTF-8"},
	}
	for _, tt := range tests {
		f, ok := m[tt.name]
		if !ok {
			t.Errorf("%s: missing from %+v", tt.name, got)
			continue
		}
		if tt.skipped == "" && (f.Skipped != "" || f.MimeType != tt.mime || !bytes.Equal(f.Data, tt.data) || f.Bytes != tt.bytes) {
			t.Errorf("%s: got %+v, want type %s, %d bytes %q", tt.name, f, tt.mime, tt.bytes, tt.data)
		}
		if tt.skipped != "" && (!strings.Contains(f.Skipped, tt.skipped) || f.Data != nil || f.Bytes != tt.bytes) {
			t.Errorf("%s: skipped %q (%d bytes, data %d), want it to say %q (%d bytes)", tt.name, f.Skipped, f.Bytes, len(f.Data), tt.skipped, tt.bytes)
		}
	}
	if _, ok := m[WorkspaceList]; ok {
		t.Errorf("%s returned as an output", WorkspaceList)
	}
	if len(got) != len(tests) {
		t.Errorf("got %d entries, want %d: %+v", len(got), len(tests), got)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Name > got[i].Name {
			t.Errorf("not sorted by name: %q before %q", got[i-1].Name, got[i].Name)
		}
	}
}

// TestCollectBounded: 10 000 files are not read through; the count and total caps hold.
func TestCollectBounded(t *testing.T) {
	dir := t.TempDir()
	for i := range 10000 {
		write(t, filepath.Join(dir, fmt.Sprintf("f%05d.txt", i)), []byte("0123456789"))
	}
	got, err := Collect(openPath(t, dir), Limits{Files: 32, TotalBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	returned, overCount, overTotal := 0, 0, 0
	for _, f := range got[:len(got)-1] {
		switch {
		case f.Skipped == "":
			returned++
		case strings.Contains(f.Skipped, "over the count cap"):
			overCount++
		case strings.Contains(f.Skipped, "total cap of 200 bytes"):
			overTotal++
		default:
			t.Errorf("unexpected %+v", f)
		}
	}
	last := got[len(got)-1]
	if returned != 20 || overTotal != 32*entriesPerFile-20 || overCount != 0 {
		t.Errorf("returned %d, over the total %d, over the count %d; want 20, %d, 0", returned, overTotal, overCount, 32*entriesPerFile-20)
	}
	if last.Name != "." || !strings.Contains(last.Skipped, "stopped after reading 128 directory entries") {
		t.Errorf("last entry %+v, want the stop reported", last)
	}

	got, err = Collect(openPath(t, dir), Limits{Files: 3})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range got {
		if f.Skipped == "" {
			n++
		} else if f.Name != "." && !strings.Contains(f.Skipped, "over the count cap: 3 files") {
			t.Errorf("unexpected %+v", f)
		}
	}
	if n != 3 || len(got) != 3*entriesPerFile+1 {
		t.Errorf("returned %d of %d entries, want 3 of %d", n, len(got), 3*entriesPerFile+1)
	}
}

func TestOpenDir(t *testing.T) {
	if _, err := OpenDir(t.TempDir()); err == nil && mustStatfs(t, os.TempDir()) != unix.TMPFS_MAGIC {
		t.Errorf("OpenDir accepted a directory that is not a tmpfs")
	}
	shm, err := os.MkdirTemp("/dev/shm", "outputs-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	f, err := OpenDir(shm)
	if err != nil {
		t.Fatalf("OpenDir(%s), a tmpfs: %v", shm, err)
	}
	f.Close()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(shm, link); err != nil {
		t.Fatal(err)
	}
	if f, err := OpenDir(link); err == nil {
		f.Close()
		t.Errorf("OpenDir followed a symbolic link")
	}
}

func mustStatfs(t *testing.T, p string) int64 {
	var fs unix.Statfs_t
	if err := unix.Statfs(p, &fs); err != nil {
		t.Fatal(err)
	}
	return fs.Type
}

func TestWorkspace(t *testing.T) {
	ws, out := t.TempDir(), t.TempDir()
	write(t, filepath.Join(ws, "plots/big.png"), append(pngHead, make([]byte, 5000)...))
	write(t, filepath.Join(ws, "notes.md"), []byte("# hi\n"))
	write(t, filepath.Join(out, "plain.txt"), []byte("x"))
	if err := os.Symlink("/etc/passwd", filepath.Join(ws, "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(ws, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(ws, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	list := "plots/big.png\n./notes.md\npasswd\netc/passwd\nfifo\n../outside\n/etc/passwd\nmissing\nplots\nnotes.md\n"
	write(t, filepath.Join(out, WorkspaceList), []byte(list))
	got := Workspace(openPath(t, out), ws)
	want := []File{
		{Name: "plots/big.png", MimeType: TypePNG, Bytes: int64(len(pngHead) + 5000), Workspace: true},
		{Name: "notes.md", MimeType: "text/markdown", Bytes: 5, Workspace: true},
		{Name: "passwd", Workspace: true, Skipped: "a symbolic link: not followed"},
		{Name: "etc/passwd", Workspace: true, Skipped: "a symbolic link, or a path through one: not followed"},
		{Name: "fifo", Workspace: true, Skipped: "a FIFO: not a regular file"},
		{Name: `"../outside"`, Skipped: `the name "../outside" is refused: unusable name: a ".." path component`},
		{Name: `"/etc/passwd"`, Skipped: `the name "/etc/passwd" is refused: unusable name: an absolute path (want one relative to the directory)`},
		{Name: "missing", Workspace: true, Skipped: "no such file in the workspace"},
		{Name: "plots", Workspace: true, Skipped: "a directory: not a regular file"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d files, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if dir := want[i]; g.Name != dir.Name || g.MimeType != dir.MimeType || g.Workspace != dir.Workspace || g.Skipped != dir.Skipped || g.Data != nil ||
			(dir.Skipped == "" && g.Bytes != dir.Bytes) {
			t.Errorf("%d: got %+v, want %+v", i, g, dir)
		}
	}

	// Bounded: over 64 names, and a list over 4 KiB.
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "f%d\n", i)
	}
	write(t, filepath.Join(out, WorkspaceList), []byte(b.String()))
	got = Workspace(openPath(t, out), ws)
	if len(got) != MaxWorkspaceLines+1 || !strings.Contains(got[len(got)-1].Skipped, "more than 64 names") {
		t.Errorf("100 names: got %d entries, last %+v", len(got), got[len(got)-1])
	}
	write(t, filepath.Join(out, WorkspaceList), bytes.Repeat([]byte("notes.md\n"), 1000))
	got = Workspace(openPath(t, out), ws)
	if len(got) != 1 || !strings.Contains(got[0].Skipped, "over its cap of 4096 bytes") {
		t.Errorf("a 9000-byte list: got %+v", got)
	}
	if got := Workspace(openPath(t, out), ""); len(got) != 1 || !strings.Contains(got[0].Skipped, "no workspace") {
		t.Errorf("no workspace: got %+v", got)
	}
	os.Remove(filepath.Join(out, WorkspaceList))
	if got := Workspace(openPath(t, out), ws); got != nil {
		t.Errorf("no list: got %+v", got)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"x.bin", string(pngHead), TypePNG},
		{"x.csv", string(pngHead), TypePNG}, // content wins over the name
		{"x", "\xff\xd8\xff\xe0\x00\x10JFIF", TypeJPEG},
		{"x", "GIF89a\x01\x00", TypeGIF},
		{"x", "RIFF\x10\x00\x00\x00WEBPVP8 ", TypeWebP},
		{"x", `<?xml version="1.0"?>` + "\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>", TypeSVG},
		{"x.txt", "  <svg width=\"1\">", TypeSVG},
		{"x", "<svgfoo>", "text/plain; charset=utf-8"},
		{"x.csv", "a,b\n1,2\n", "text/csv"},
		{"x.CSV", "a,b\n", "text/csv"},
		{"x.json", `{"a": [1]}`, "application/json"},
		{"x.md", "# Title\n", "text/markdown"},
		{"x.csv", "a,\xff\xfe,b\x00", "application/octet-stream"}, // not UTF-8 text: no type by name
		{"x.txt", "hello", "text/plain; charset=utf-8"},
		{"x.pdf", "%PDF-1.7", "application/pdf"},
	}
	for _, tt := range tests {
		if got := Sniff(tt.name, []byte(tt.data)); got != tt.want {
			t.Errorf("Sniff(%q, %q) = %q, want %q", tt.name, tt.data, got, tt.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name, refused string
	}{
		{"a.png", ""},
		{"sub/dir/a b.csv", ""},
		{"données.csv", ""},
		{"", "empty"},
		{"../etc/passwd", `a ".." path component`},
		{"a/../../b", `a ".." path component`},
		{"./a", `a "." path component`},
		{"a//b", "an empty path component"},
		{"a/", "an empty path component"},
		{"/etc/passwd", "an absolute path"},
		{"a\x01b", "U+0001"},
		{"a\nb", "U+000A"},
		{"evil\u202egnp.exe", "U+202E"},
		{"\xff", "not valid UTF-8"},
		{strings.Repeat("a", 256), "256 bytes, over 255"},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if tt.refused == "" && err != nil || tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)) {
			t.Errorf("CheckName(%q) = %v, want %q", tt.name, err, tt.refused)
		}
	}
}
