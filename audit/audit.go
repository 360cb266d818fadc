// Package audit writes conductor's audit log: one JSON line per execution and per upstream call,
// without ever blocking an execution.
//
// A Log is an event.Sink. Execution and UpstreamCall encode their line and put it in a bounded
// queue (Options.Lines lines, Options.Bytes bytes) that one writer goroutine drains; when the queue
// is full the line is dropped and counted, the count is logged (slog, at most every
// Options.WarnEvery) and written as a "dropped" line once the writer has caught up. Reopen swaps
// the file for a new one at the same path (logrotate's rename, then SIGHUP); Close writes what is
// queued, within a bounded time.
//
// What a line holds is documented on ExecutionLine, UpstreamCallLine and DroppedLine (and in the
// README's "Audit log"). Never written: outputs, return values, upstream arguments or results,
// secrets; the code only with Options.Code.
package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/event"
)

// Destinations besides a file path.
const (
	Stderr = "stderr"
	Stdout = "stdout"
)

// Defaults of Options.
const (
	DefaultLines     = 4096
	DefaultBytes     = 64 << 20
	DefaultWarnEvery = 10 * time.Second
	DefaultCloseWait = 5 * time.Second
)

// maxErrorBytes bounds an upstream call's error text in a line.
const maxErrorBytes = 1024

// ErrNotReopenable is Reopen's error for a Log that writes to a stream, not a file.
var ErrNotReopenable = errors.New("audit: the log is not a file")

// ErrCloseTimeout is Close's error when the queue could not be written within Options.CloseWait.
var ErrCloseTimeout = errors.New("audit: lines still queued at close")

// Options tune a Log; zero values take the defaults.
type Options struct {
	Code      bool          // write the code itself in execution lines (MCP_CONDUCTOR_AUDIT_CODE)
	Lines     int           // the most lines queued; DefaultLines
	Bytes     int64         // the most bytes queued; DefaultBytes
	WarnEvery time.Duration // the least time between two warnings about dropped lines; DefaultWarnEvery
	CloseWait time.Duration // how long Close waits for the queue to be written; DefaultCloseWait
	Logger    *slog.Logger  // nil = slog.Default()
}

func (o Options) withDefaults() Options {
	if o.Lines <= 0 {
		o.Lines = DefaultLines
	}
	if o.Bytes <= 0 {
		o.Bytes = DefaultBytes
	}
	if o.WarnEvery <= 0 {
		o.WarnEvery = DefaultWarnEvery
	}
	if o.CloseWait <= 0 {
		o.CloseWait = DefaultCloseWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Log is the audit log. Its methods are safe for concurrent use.
type Log struct {
	o     Options
	where string // the destination, for messages

	queue  chan []byte
	queued atomic.Int64 // bytes in queue
	drops  atomic.Int64 // lines dropped and not yet reported in a dropped line
	total  atomic.Int64 // lines dropped since the start
	warned atomic.Int64 // unix nanoseconds of the last warning

	stop    chan struct{} // closed by Close
	done    chan struct{} // closed by the writer when it is finished
	closing sync.Once

	mu   sync.Mutex // guards w and f (the writer holds it while writing)
	w    io.Writer
	f    *os.File // nil for a stream
	path string   // "" for a stream
}

// Open opens the audit log at dest: Stderr, Stdout (with the process's streams) or an absolute
// file path, appended to and created with mode 0600 when absent (its directory must exist).
func Open(dest string, o Options) (*Log, error) {
	switch dest {
	case Stderr:
		return New(os.Stderr, Stderr, o), nil
	case Stdout:
		return New(os.Stdout, Stdout, o), nil
	}
	f, err := OpenFile(dest)
	if err != nil {
		return nil, err
	}
	l := New(f, dest, o)
	l.f, l.path = f, dest
	return l, nil
}

// OpenFile opens path for appending, creating it with mode 0600 when absent.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: cannot open %s for appending: %w", path, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() && st.Mode()&os.ModeCharDevice == 0 {
		err = fmt.Errorf("audit: %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// New is a Log writing to w, named where in messages. Reopen does nothing useful for it.
func New(w io.Writer, where string, o Options) *Log {
	o = o.withDefaults()
	l := &Log{o: o, where: where, w: w, queue: make(chan []byte, o.Lines), stop: make(chan struct{}), done: make(chan struct{})}
	go l.write()
	return l
}

// Where is the destination: Stderr, Stdout or the file's path.
func (l *Log) Where() string { return l.where }

// Dropped is how many lines were dropped since the start.
func (l *Log) Dropped() int64 { return l.total.Load() }

// Execution queues e's line; it never blocks.
func (l *Log) Execution(e event.Execution) { l.enqueue(EncodeExecution(e, l.o.Code)) }

// UpstreamCall queues c's line; it never blocks.
func (l *Log) UpstreamCall(c event.UpstreamCall) { l.enqueue(EncodeUpstreamCall(c)) }

func (l *Log) enqueue(line []byte) {
	n := int64(len(line))
	select {
	case <-l.stop:
		l.drop()
		return
	default:
	}
	if l.queued.Add(n) > l.o.Bytes {
		l.queued.Add(-n)
		l.drop()
		return
	}
	select {
	case l.queue <- line:
	default:
		l.queued.Add(-n)
		l.drop()
	}
}

// drop counts a dropped line and warns, at most every WarnEvery, without waiting for the log
// handler (it may write to a blocked stream too).
func (l *Log) drop() {
	l.drops.Add(1)
	total := l.total.Add(1)
	now := time.Now().UnixNano()
	last := l.warned.Load()
	if now-last < int64(l.o.WarnEvery) || !l.warned.CompareAndSwap(last, now) {
		return
	}
	go l.o.Logger.Warn("audit log: lines dropped (the destination is slower than conductor makes lines)",
		"destination", l.where, "dropped_total", total, "queue_lines", l.o.Lines)
}

// write is the writer goroutine: it writes queued lines and, whenever it has caught up, the
// count of lines dropped meanwhile; after stop it writes what is queued and ends.
func (l *Log) write() {
	defer close(l.done)
	for {
		select {
		case line := <-l.queue:
			l.put(line)
			continue
		default:
		}
		l.reportDrops()
		select {
		case line := <-l.queue:
			l.put(line)
		case <-l.stop:
			for {
				select {
				case line := <-l.queue:
					l.put(line)
				default:
					l.reportDrops()
					return
				}
			}
		}
	}
}

func (l *Log) put(line []byte) {
	l.queued.Add(-int64(len(line)))
	l.writeLine(line)
}

func (l *Log) reportDrops() {
	if n := l.drops.Swap(0); n > 0 {
		l.writeLine(EncodeDropped(time.Now(), n))
	}
}

func (l *Log) writeLine(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(line); err != nil {
		l.o.Logger.Warn("audit log: write failed", "destination", l.where, "err", err)
	}
}

// Reopen opens the file at the log's path anew (creating it) and writes every later line there,
// then closes the old one: after logrotate renamed the file, lines go to a new one at the path.
// Lines already queued go to the new file. A failure keeps the old file.
func (l *Log) Reopen() error {
	if l.path == "" {
		return ErrNotReopenable
	}
	f, err := OpenFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f, l.w = f, f
	l.mu.Unlock()
	return old.Close()
}

// Close writes what is queued (waiting at most Options.CloseWait) and closes the file. Lines that
// come later are dropped and counted.
func (l *Log) Close() error {
	var err error
	l.closing.Do(func() {
		close(l.stop)
		t := time.NewTimer(l.o.CloseWait)
		defer t.Stop()
		select {
		case <-l.done:
		case <-t.C:
			// The writer is stuck in a write: leave it (and the file) to the process's exit.
			err = fmt.Errorf("%w: %d more lines queued for %s, the writer stuck for %s", ErrCloseTimeout, len(l.queue), l.where, l.o.CloseWait)
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.f != nil {
			err = l.f.Close()
		}
	})
	return err
}

// Check says whether Open(dest) would succeed, without creating anything: a stream always; a
// file when it exists and can be opened for appending, or when its directory exists and this
// process may create files in it.
func Check(dest string) error {
	if dest == Stderr || dest == Stdout {
		return nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND, 0)
	switch {
	case err == nil:
		st, err := f.Stat()
		_ = f.Close()
		if err == nil && !st.Mode().IsRegular() && st.Mode()&os.ModeCharDevice == 0 {
			return fmt.Errorf("audit: %s is not a regular file (%s)", dest, st.Mode().Type())
		}
		return err
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("audit: cannot open %s for appending: %w", dest, err)
	}
	dir := filepath.Dir(dest)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("audit: cannot create %s: its directory: %w", dest, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("audit: cannot create %s: %s is not a directory", dest, dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("audit: cannot create %s: directory %s: %w", dest, dir, err)
	}
	return nil
}
