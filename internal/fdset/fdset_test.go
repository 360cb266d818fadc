package fdset

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// isClosed reports whether f was closed (through any owner).
func isClosed(f *os.File) bool {
	_, err := f.Stat()
	return errors.Is(err, os.ErrClosed)
}

// TestSet: what each hand-off leaves the Set to close, checked on real pipes: after the steps and
// a final Close, exactly the files named closed are closed, every Close and CloseFiles reports no
// error (a file closed twice would report os.ErrClosed), and no fd of the process is left open
// but those handed on.
func TestSet(t *testing.T) {
	// Each case works on two pipes, p[0] and p[1]: files 0..3 are p[0].r, p[0].w, p[1].r, p[1].w.
	tests := []struct {
		name   string
		steps  func(s *Set, f []*os.File) error
		closed []int // files closed at the end
		held   int   // Len before the final Close
	}{
		{"early return closes all", func(s *Set, f []*os.File) error { return nil }, []int{0, 1, 2, 3}, 4},
		{"nothing closed after release", func(s *Set, f []*os.File) error { s.Release(); return nil }, nil, 0},
		{"keep hands on only those kept", func(s *Set, f []*os.File) error { s.Keep(f[0], f[3]); return nil }, []int{1, 2}, 2},
		{"child's ends closed after start, the rest released", func(s *Set, f []*os.File) error {
			err := s.CloseFiles(f[1], f[2]) // the parent's copies of what a child inherited
			if !isClosed(f[1]) || !isClosed(f[2]) || isClosed(f[0]) || isClosed(f[3]) {
				return errors.New("CloseFiles did not close exactly its files at once")
			}
			s.Release()
			return err
		}, []int{1, 2}, 0},
		{"double close safe", func(s *Set, f []*os.File) error {
			return errors.Join(s.CloseFiles(f[0]), s.CloseFiles(f[0]), s.Close(), s.Close())
		}, []int{0, 1, 2, 3}, 0},
		{"a file added twice is closed once", func(s *Set, f []*os.File) error { s.Add(f[0]); s.Add(nil); return nil }, []int{0, 1, 2, 3}, 4},
		{"a file not held is never closed", func(s *Set, f []*os.File) error {
			s.Keep(f[2], f[3])
			err := s.CloseFiles(f[2]) // no longer the Set's
			s.Keep(f[2])
			return err
		}, []int{0, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testenv.OpenFDs(t)
			var s Set
			var files []*os.File
			for range 2 {
				r, w, err := s.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, r, w)
			}
			if err := tt.steps(&s, files); err != nil {
				t.Fatalf("steps: %v", err)
			}
			if s.Len() != tt.held {
				t.Errorf("Len = %d before Close, want %d", s.Len(), tt.held)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if s.Len() != 0 {
				t.Errorf("Len = %d after Close, want 0", s.Len())
			}
			want := map[int]bool{}
			for _, i := range tt.closed {
				want[i] = true
			}
			var open []*os.File
			for i, f := range files {
				if isClosed(f) != want[i] {
					t.Errorf("file %d closed = %v, want %v", i, isClosed(f), want[i])
				}
				if !isClosed(f) {
					open = append(open, f)
				}
			}
			for _, f := range open { // the new owner's job
				f.Close()
			}
			testenv.AssertNoNewFDs(t, before, 0)
		})
	}
}

// TestSetChildEnds: the parent's copies of a child's ends, closed by CloseFiles once the child has
// started, are the only reason the parent's read end sees EOF when the child exits — a copy left
// open would hold the pipe (the read would hang).
func TestSetChildEnds(t *testing.T) {
	cat, err := exec.LookPath("cat")
	if err != nil {
		testenv.Unavailable(t, "no cat on PATH: %v", err)
	}
	before := testenv.OpenFDs(t)
	var s Set
	defer s.Close()
	inR, inW, err := s.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := s.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: cat, Args: []string{"cat"}, Stdin: inR, Stdout: outW}
	err = cmd.Start()
	if cerr := s.CloseFiles(inR, outW); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Keep(inW, outR)
	if s.Len() != 0 {
		t.Fatalf("Len = %d after the hand-off, want 0", s.Len())
	}
	if _, err := inW.WriteString("through the child"); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	got := make(chan string, 1)
	go func() { b, _ := io.ReadAll(outR); got <- string(b) }()
	select {
	case g := <-got:
		if g != "through the child" {
			t.Errorf("read %q from the child", g)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no EOF from the child's stdout: a copy of its write end is still open")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("cat: %v", err)
	}
	outR.Close()
	testenv.AssertNoNewFDs(t, before, time.Second)
}
