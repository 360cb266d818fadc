package sandbox

import (
	"bytes"
	"io"
	"sync"
)

// cappedBuffer keeps the first max bytes written to it and counts the rest, so
// a sandbox flooding its output never grows the server's memory. It never
// returns an error from Write: the writer must keep draining the pipe, or the
// sandbox would block instead of finishing.
type cappedBuffer struct {
	mu    sync.Mutex
	max   int64
	buf   bytes.Buffer
	total int64
}

func newCappedBuffer(max int64) *cappedBuffer { return &cappedBuffer{max: max} }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total += int64(len(p))
	if room := c.max - int64(c.buf.Len()); room > 0 {
		if int64(len(p)) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
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
