package textdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStamp(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a")
	if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	s0 := Stamp(dir)
	if s0 != Stamp(dir) {
		t.Fatalf("Stamp changed with nothing changed")
	}
	for _, c := range []struct {
		name   string
		change func() error
	}{
		{"edited in place, same size", func() error {
			if err := os.WriteFile(f, []byte("2"), 0o644); err != nil {
				return err
			}
			// A later modification time, set: a write within the file system's timestamp
			// granularity (a jiffy, up to 10 ms) keeps the old one, and a sleep only made that rare.
			st, err := os.Stat(f)
			if err != nil {
				return err
			}
			later := st.ModTime().Add(time.Second)
			return os.Chtimes(f, later, later)
		}},
		{"a file added", func() error { return os.WriteFile(filepath.Join(dir, "b"), nil, 0o644) }},
		{"a file removed", func() error { return os.Remove(filepath.Join(dir, "b")) }},
	} {
		before := Stamp(dir)
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		if Stamp(dir) == before {
			t.Errorf("%s: Stamp did not change", c.name)
		}
	}
	if got := Stamp(filepath.Join(dir, "nope")); got != "missing" {
		t.Errorf("Stamp of a missing directory = %q", got)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		max        int64
		want, err  string
	}{
		{"a small file", ok, 5, "hello", ""},
		{"over the limit", ok, 4, "", "5 bytes; the limit is 4"},
		{"a link", link, 100, "", "too many levels of symbolic links"},
		{"a directory", dir, 100, "", "not a regular file"},
		{"missing", filepath.Join(dir, "nope"), 100, "", "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadFile(c.path, c.max)
			if c.err == "" {
				if err != nil || got != c.want {
					t.Errorf("ReadFile = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ReadFile = %q, %v; want an error containing %q", got, err, c.err)
			}
			if c.name == "over the limit" && !errors.Is(err, ErrTooLarge) {
				t.Errorf("over the limit: %v is not ErrTooLarge", err)
			}
		})
	}
}
