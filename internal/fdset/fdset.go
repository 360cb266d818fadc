// Package fdset gives the files a start path opens one owner, so that no
// path closes them by hand.
//
// The one-owner-per-fd rule: every file has exactly one owner at a time, and
// only its owner closes it. A function that opens files for a process it
// starts (pipe ends, sockets) fills a Set as it opens them; the Set is their
// owner until the function hands each one on:
//
//   - Pipe and Add: the Set owns the new files.
//   - CloseFiles closes some of them now and forgets them: the parent's
//     copies of the ends a child inherited, once the child has started (or
//     failed to start) — the child holds its own copies from then on.
//   - Keep hands some of them to a new owner (a struct field, a goroutine
//     that closes them when it is done) and forgets them.
//   - Release hands every file still held to the caller: the function
//     succeeded.
//   - Close, deferred right after the Set is declared, closes whatever is
//     still held. On an early return that is exactly what was opened and not
//     yet handed on, each file once; after Release it is nothing.
//
// The Set never closes a file it does not hold, and forgets a file once it
// has closed it, so nothing is closed twice through it. A Set belongs to
// the one goroutine that fills it; its zero value is empty and ready.
package fdset

import (
	"errors"
	"os"
	"slices"
)

// Set owns the files a function opened and has not handed on yet.
type Set struct {
	files []*os.File
}

// Add makes the Set the owner of f (nil is ignored) and returns f.
func (s *Set) Add(f *os.File) *os.File {
	if f != nil && !slices.Contains(s.files, f) {
		s.files = append(s.files, f)
	}
	return f
}

// Pipe opens a pipe (os.Pipe) whose two ends the Set owns.
func (s *Set) Pipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	s.Add(r)
	s.Add(w)
	return r, w, nil
}

// Keep hands fs to another owner: the Set forgets them and will not close
// them. Files the Set does not hold are ignored.
func (s *Set) Keep(fs ...*os.File) {
	s.files = slices.DeleteFunc(s.files, func(f *os.File) bool { return slices.Contains(fs, f) })
}

// CloseFiles closes those of fs the Set holds, now, and forgets them; files
// it does not hold are left alone. It returns the errors of the closes.
func (s *Set) CloseFiles(fs ...*os.File) error {
	var errs []error
	s.files = slices.DeleteFunc(s.files, func(f *os.File) bool {
		if !slices.Contains(fs, f) {
			return false
		}
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
		return true
	})
	return errors.Join(errs...)
}

// Release hands every file the Set still holds to the caller: Close closes
// nothing after it.
func (s *Set) Release() { s.files = nil }

// Close closes every file the Set still holds, in the order they were
// added, and forgets them: a second Close closes nothing. It returns the
// errors of the closes.
func (s *Set) Close() error {
	fs := s.files
	s.files = nil
	var errs []error
	for _, f := range fs {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Len is the number of files the Set holds.
func (s *Set) Len() int { return len(s.files) }
