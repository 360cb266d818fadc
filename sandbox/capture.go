package sandbox

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// cappedBuffer keeps the first max bytes written to it and counts the rest, so
// a sandbox flooding its output never grows the server's memory. It never
// returns an error from Write: the writer must keep draining the pipe, or the
// sandbox would block instead of finishing.
//
// With a spill function, the whole stream also goes to a file once it first
// overflows, as far as the run's spill budget allows (take hands out bytes
// of it; both streams of a run share it), so the output stays retrievable.
type cappedBuffer struct {
	mu    sync.Mutex
	max   int64
	buf   bytes.Buffer
	total int64

	observe func([]byte) // sees every chunk as it arrives (progress); nil = none

	spill     func() (*os.File, string, error) // opens the spill file; nil = no spilling
	take      func(n int64) int64              // claims up to n bytes of the spill budget
	spillFile *os.File
	spillPath string
	spillErr  error
	spilled   int64
}

func newCappedBuffer(max int64) *cappedBuffer { return &cappedBuffer{max: max} }

// withSpill makes the buffer spill the stream to the file open returns, as
// far as take grants bytes.
func (c *cappedBuffer) withSpill(open func() (*os.File, string, error), take func(int64) int64) *cappedBuffer {
	c.spill, c.take = open, take
	return c
}

// setObserver makes f see every chunk from now on.
func (c *cappedBuffer) setObserver(f func([]byte)) {
	c.mu.Lock()
	c.observe = f
	c.mu.Unlock()
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.observe != nil {
		c.observe(p)
	}
	c.total += int64(len(p))
	kept := 0
	if room := c.max - int64(c.buf.Len()); room > 0 {
		kept = int(min(room, int64(len(p))))
		c.buf.Write(p[:kept])
	}
	if c.spill != nil && c.spillErr == nil && c.total > c.max {
		if c.spillFile == nil {
			// First overflow: the file starts with everything kept so far.
			if c.spillFile, c.spillPath, c.spillErr = c.spill(); c.spillErr != nil {
				return len(p), nil
			}
			c.put(c.buf.Bytes())
			c.put(p[kept:])
		} else {
			c.put(p)
		}
	}
	return len(p), nil
}

func (c *cappedBuffer) put(p []byte) {
	if len(p) == 0 {
		return
	}
	room := c.take(int64(len(p)))
	if room <= 0 {
		return
	}
	p = p[:room]
	n, err := c.spillFile.Write(p)
	c.spilled += int64(n)
	if err != nil {
		c.spillErr = err
	}
}

// Spill returns where the full stream went ("" = nowhere), whether the spill
// file itself was cut at the run's spill budget, and why spilling failed, if it did.
func (c *cappedBuffer) Spill() (path string, cut bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spillFile != nil {
		c.spillFile.Close()
		c.spillFile = nil
	}
	return c.spillPath, c.spilled < c.total && c.spillPath != "", c.spillErr
}

// Result returns the kept bytes, whether anything was dropped, and the total.
func (c *cappedBuffer) Result() (string, bool, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.total > int64(c.buf.Len()), c.total
}

// drain copies r into w with a fixed buffer until EOF or error.
func drain(w io.Writer, r io.Reader) {
	buf := make([]byte, 64<<10)
	_, _ = io.CopyBuffer(w, r, buf)
}
