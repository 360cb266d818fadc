package egress

import (
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// Timeouts of the door's upstream connections (DoorOptions).
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultIdleTimeout = 2 * time.Minute
)

// errIdle ends a relay with no traffic either way for IdleTimeout.
var errIdle = errors.New("idle timeout")

// copyBufSize is the relay's buffer, one per direction of a connection.
const copyBufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// closeWrite half-closes c if it can (TCP), so the other side sees EOF.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// infoLogsPerSecond bounds the info records one door writes: the sandbox
// decides how often refusals happen.
const infoLogsPerSecond = 20

type logLimiter struct {
	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

// allow reports whether a record may be written now, and how many were
// suppressed in the window that just ended (to be reported once).
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var report int
	if now.Sub(l.window) >= time.Second {
		report, l.suppressed = l.suppressed, 0
		l.window, l.n = now, 0
	}
	if l.n >= infoLogsPerSecond {
		l.suppressed++
		return false, report
	}
	l.n++
	return true, report
}

// sanitize bounds and cleans text that came from outside the server (an
// upstream's error) for records and logs.
func sanitize(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// shortErr is the part of a lookup or dial error worth recording: never
// the server's resolver address.
func shortErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
