package artifacts

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func open(t *testing.T, max int64, retention time.Duration) *Store {
	t.Helper()
	s, err := Open(Options{Dir: filepath.Join(t.TempDir(), "outputs"), MaxBytes: max, Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRetention: an output is read back until its retention ends, then the timer has removed
// its file and a read says "expired"; the tombstone itself goes a retention time later.
func TestRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(Options{Dir: filepath.Join(t.TempDir(), "outputs"), MaxBytes: 1 << 20, Retention: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		uri, err := s.Put("alice", "data.csv", "text/csv", []byte("a,b\n1,2\n"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Minute)
		if _, got, err := s.Read("alice", uri); err != nil || string(got) != "a,b\n1,2\n" {
			t.Fatalf("before expiry: %q, %v", got, err)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if _, _, err := s.Read("alice", uri); !errors.Is(err, ErrExpired) {
			t.Fatalf("after expiry: %v, want ErrExpired", err)
		}
		if n := files(t, s.dir); n != 0 {
			t.Errorf("%d files left after expiry", n)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if _, _, err := s.Read("alice", uri); !errors.Is(err, ErrNotFound) {
			t.Fatalf("long after expiry: %v, want ErrNotFound (tombstone dropped)", err)
		}
	})
}

func files(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != lockName {
			n++
		}
		return nil
	})
	return n
}

// TestSizeEviction: the oldest outputs of the same identity go first to fit the cap; another
// identity's are untouched; one output over the cap is refused.
func TestSizeEviction(t *testing.T) {
	s := open(t, 100, time.Hour)
	var uris []string
	for i := range 3 {
		u, err := s.Put("alice", "f"+string(rune('0'+i)), "application/octet-stream", bytes.Repeat([]byte{'a'}, 40))
		if err != nil {
			t.Fatal(err)
		}
		uris = append(uris, u)
	}
	bob, err := s.Put("bob", "b", "text/plain", bytes.Repeat([]byte{'b'}, 90))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Read("alice", uris[0]); !errors.Is(err, ErrEvicted) {
		t.Errorf("oldest: %v, want ErrEvicted", err)
	}
	for _, u := range uris[1:] {
		if _, _, err := s.Read("alice", u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, _, err := s.Read("bob", bob); err != nil {
		t.Errorf("bob's: %v", err)
	}
	if _, err := s.Put("alice", "big", "text/plain", make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the cap: %v, want ErrTooLarge", err)
	}
	if s.used["alice"] != 80 || s.used["bob"] != 90 {
		t.Errorf("used %v", s.used)
	}
}

// TestIdentityIsolation: another identity's output and reference are not found, the same
// error as a URI that never existed.
func TestIdentityIsolation(t *testing.T) {
	s := open(t, 1<<20, time.Hour)
	uri, err := s.Put("alice", "secret.txt", "text/plain", []byte("alice's"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.Reference("alice", "report.md", "text/markdown", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{uri, ref, OutputsPrefix + "00000000000000000000000000000000/secret.txt"} {
		if _, _, err := s.Read("bob", u); !errors.Is(err, ErrNotFound) {
			t.Errorf("bob reads %s: %v, want ErrNotFound", u, err)
		}
	}
	if it, _, err := s.Read("alice", ref); err != nil || !it.Workspace || it.Name != "report.md" {
		t.Errorf("alice's reference: %+v, %v", it, err)
	}
	if _, err := s.Put("../x", "n", "text/plain", nil); err == nil {
		t.Error("an identity with a slash was accepted")
	}
}

// TestURINames: names with odd characters are escaped in the URI and read back by it exactly;
// the same id with another name is not found.
func TestURINames(t *testing.T) {
	s := open(t, 1<<20, time.Hour)
	for _, name := range []string{"plot.png", "dir/with space.csv", "percent%41.txt", "q?uery#frag.json", "ünï/çødé.md", "a+b=c&d.txt"} {
		t.Run(name, func(t *testing.T) {
			uri, err := s.Put("alice", name, "text/plain", []byte(name))
			if err != nil {
				t.Fatal(err)
			}
			rest := strings.TrimPrefix(uri, OutputsPrefix)
			if strings.ContainsAny(rest, " ?#") || (strings.Contains(name, "%") && !strings.Contains(rest, "%25")) {
				t.Errorf("unescaped URI %q", uri)
			}
			if u, err := url.Parse(uri); err != nil || u.Scheme != "conductor" || u.Host != "outputs" || !strings.HasSuffix(u.Path, "/"+name) {
				t.Errorf("URI %q does not parse back to the name: %+v, %v", uri, u, err)
			}
			it, got, err := s.Read("alice", uri)
			if err != nil || string(got) != name || it.Name != name {
				t.Fatalf("read %s: %+v %q %v", uri, it, got, err)
			}
			id, _, _ := strings.Cut(rest, "/")
			if _, _, err := s.Read("alice", OutputsPrefix+id+"/other"); !errors.Is(err, ErrNotFound) {
				t.Errorf("the id under another name: %v", err)
			}
		})
	}
}

// TestOpenSweeps: a store left by a process that is gone is removed at Open; a live one is not.
func TestOpenSweeps(t *testing.T) {
	root := filepath.Join(t.TempDir(), "outputs")
	live, err := Open(Options{Dir: root, MaxBytes: 1 << 20, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(root); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("store dir: %v, %v", st, err)
	}
	dead := filepath.Join(root, instancePrefix+"dead")
	if err := os.MkdirAll(filepath.Join(dead, "alice"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, lockName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(Options{Dir: root, MaxBytes: 1 << 20, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead store kept: %v", err)
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("live store removed: %v", err)
	}
	s2.Close()
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("another store's Close removed a live store: %v", err)
	}
	live.Close()
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the last store's Close left %s: %v", root, err)
	}

}

// TestReadBeneath: regular files below the root are read; links, FIFOs, directories, escapes
// and files over the cap are refused, and a FIFO does not block.
func TestReadBeneath(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "sub"), 0o700))
	must(os.WriteFile(filepath.Join(root, "sub", "ok.csv"), []byte("x,y\n"), 0o600))
	must(os.WriteFile(filepath.Join(root, "big.bin"), make([]byte, 2048), 0o600))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "passwd")))
	must(os.Symlink("sub", filepath.Join(root, "linkdir")))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	tests := []struct {
		rel  string
		want error
	}{
		{"sub/ok.csv", nil},
		{"big.bin", ErrFileTooLarge},
		{"passwd", ErrNotRegular},
		{"linkdir/ok.csv", ErrNotRegular},
		{"fifo", ErrNotRegular},
		{"sub", ErrNotRegular},
		{"../etc/passwd", ErrNotFound},
		{"missing", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			got, err := ReadBeneath(root, tt.rel, 1024)
			if !errors.Is(err, tt.want) || (tt.want == nil && string(got) != "x,y\n") {
				t.Errorf("ReadBeneath(%q) = %q, %v; want %v", tt.rel, got, err, tt.want)
			}
		})
	}
}
