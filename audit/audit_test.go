package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

var t0 = time.Date(2026, 12, 4, 23, 1, 2, 123456789, time.FixedZone("CET", 3600))

func sampleExecution(code string) event.Execution {
	return event.Execution{
		Time:     t0,
		Scope:    event.Scope{Identity: "alice", Session: "S1", Tool: "run_deno_code"},
		Language: "typescript", CodeSHA256: event.Hash(code), CodeBytes: len(code), Code: code,
		Status: "error", ErrorType: "runtime", Refused: false,
		Queued: 1500 * time.Microsecond, Start: 2 * time.Millisecond, Duration: 40 * time.Millisecond,
		CPU: 30 * time.Millisecond, MemoryPeakBytes: 1 << 20, LimitHit: "memory",
		NetAllowed: 2, NetDenied: 1, Calls: 3,
	}
}

// decode parses one line into a map, failing on anything but one JSON object and a newline.
func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("line %q is not one line ending in a newline", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return m
}

// TestEncode: each kind of line has every documented field, with its value; the code only when
// asked; times in RFC 3339 with nanoseconds, UTC.
func TestEncode(t *testing.T) {
	code := "console.log(\"secret-free\")\n"
	long := strings.Repeat("é", 2000)
	tests := []struct {
		name    string
		line    []byte
		want    map[string]any
		without []string // fields that must be absent
	}{
		{"execution without code", EncodeExecution(sampleExecution(code), false), map[string]any{
			"type": "execution", "time": "2026-12-04T22:01:02.123456789Z", "identity": "alice", "session": "S1",
			"tool": "run_deno_code", "language": "typescript", "code_sha256": event.Hash(code), "code_bytes": float64(len(code)),
			"status": "error", "error_type": "runtime", "refused": false, "queued_ms": 1.5, "start_ms": 2.0,
			"duration_ms": 40.0, "cpu_ms": 30.0, "memory_peak_bytes": float64(1 << 20), "limit_hit": "memory",
			"net_allowed": 2.0, "net_denied": 1.0, "upstream_calls": 3.0,
		}, []string{"code"}},
		{"execution with code", EncodeExecution(sampleExecution(code), true), map[string]any{
			"type": "execution", "code": code, "code_sha256": event.Hash(code),
		}, nil},
		{"refused execution, empty fields kept", EncodeExecution(event.Execution{Time: t0, Scope: event.Scope{Identity: "stdio"},
			Status: "error", ErrorType: "invalid", Refused: true}, false), map[string]any{
			"type": "execution", "identity": "stdio", "session": "", "refused": true, "error_type": "invalid",
			"limit_hit": "", "queued_ms": 0.0, "upstream_calls": 0.0,
		}, []string{"code"}},
		{"upstream call", EncodeUpstreamCall(event.UpstreamCall{Time: t0, Scope: event.Scope{Identity: "bob", Session: "S2", Tool: "execute_code"},
			Method: "callTool", Server: "github", Tool: "search", Duration: 250 * time.Microsecond, Outcome: "tool_error", IsError: true, Error: "no such repo"}),
			map[string]any{
				"type": "upstream_call", "time": "2026-12-04T22:01:02.123456789Z", "identity": "bob", "session": "S2", "tool": "execute_code",
				"method": "callTool", "server": "github", "upstream_tool": "search", "duration_ms": 0.25, "outcome": "tool_error",
				"is_error": true, "error": "no such repo",
			}, nil},
		{"upstream call error cut to 1 KiB", EncodeUpstreamCall(event.UpstreamCall{Time: t0, Outcome: "error", IsError: true, Error: long}),
			map[string]any{"type": "upstream_call", "error": truncate(long, maxErrorBytes)}, nil},
		{"dropped", EncodeDropped(t0, 7), map[string]any{"type": "dropped", "time": "2026-12-04T22:01:02.123456789Z", "dropped": 7.0}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, tc.line)
			for k, v := range tc.want {
				if got, ok := m[k]; !ok || got != v {
					t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, v)
				}
			}
			for _, k := range tc.without {
				if _, ok := m[k]; ok {
					t.Errorf("field %s is present; it must not be", k)
				}
			}
			if ts, ok := m["time"].(string); ok {
				if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
					t.Errorf("time %q is not RFC 3339 in UTC: %v", ts, err)
				}
			}
		})
	}
	// Every field of the documented structs is in a line, even when empty.
	for _, tc := range []struct {
		line []byte
		v    any
	}{
		{EncodeExecution(event.Execution{}, true), ExecutionLine{}},
		{EncodeUpstreamCall(event.UpstreamCall{}), UpstreamCallLine{}},
	} {
		m := decode(t, tc.line)
		var all map[string]any
		b, _ := json.Marshal(tc.v)
		_ = json.Unmarshal(b, &all)
		for k := range all {
			if _, ok := m[k]; !ok {
				t.Errorf("line %s lacks field %s", tc.line, k)
			}
		}
	}
	if got := truncate(long, maxErrorBytes); len(got) > maxErrorBytes || !strings.HasSuffix(got, "…") || !utf8Valid(got) {
		t.Errorf("truncate: %d bytes, valid UTF-8 %v", len(got), utf8Valid(got))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// blockingWriter blocks every Write until release is closed; entered gets a value as each Write
// starts.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *blockingWriter) lines(t *testing.T) []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
	for sc.Scan() {
		out = append(out, decode(t, append(sc.Bytes(), '\n')))
	}
	return out
}

// TestNeverBlocks: with the writer stuck in a write, Execution and UpstreamCall still return at
// once; lines beyond the queue's bound are dropped and counted (and warned about); once the
// writer is unblocked the queued lines are written and then a dropped line with the count.
func TestNeverBlocks(t *testing.T) {
	tests := []struct {
		name   string
		queue  int
		bytes  int64
		extra  int  // lines sent once the queue is full
		queued int  // lines the queue holds
		mixed  bool // every other line an upstream call (else all executions, of one size)
	}{
		{"line bound", 4, 0, 10, 4, true},
		{"byte bound", 100, int64(3 * len(EncodeExecution(sampleExecution("x"), false))), 5, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &blockingWriter{entered: make(chan struct{}, 1000), release: make(chan struct{})}
			var logged testenv.SyncBuffer
			l := New(w, "test", Options{Lines: tc.queue, Bytes: tc.bytes, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			l.Execution(sampleExecution("x"))
			<-w.entered // the writer holds the first line, stuck
			for i := range tc.queued + tc.extra {
				done := make(chan struct{})
				go func() {
					defer close(done)
					if !tc.mixed || i%2 == 0 {
						l.Execution(sampleExecution("x"))
					} else {
						l.UpstreamCall(event.UpstreamCall{Time: t0, Outcome: "ok"})
					}
				}()
				select {
				case <-done:
				case <-time.After(testenv.Scale(10 * time.Second)):
					t.Fatalf("call %d blocked behind a stuck writer", i)
				}
			}
			if got := l.Dropped(); got != int64(tc.extra) {
				t.Errorf("Dropped() = %d, want %d", got, tc.extra)
			}
			testenv.WaitFor(t, "a warning about dropped lines", 10*time.Second, func() bool {
				return strings.Contains(logged.String(), "lines dropped")
			})
			close(w.release)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := w.lines(t)
			if len(lines) != 1+tc.queued+1 {
				t.Fatalf("%d lines written, want %d (the stuck one, the queued, one dropped line): %v", len(lines), 1+tc.queued+1, lines)
			}
			last := lines[len(lines)-1]
			if last["type"] != TypeDropped || last["dropped"] != float64(tc.extra) {
				t.Errorf("last line %v, want a dropped line with %d", last, tc.extra)
			}
			for _, m := range lines[:len(lines)-1] {
				if m["type"] == TypeDropped {
					t.Errorf("a dropped line before the queued lines were written: %v", lines)
				}
			}
		})
	}
}

// TestCloseTimeout: Close returns after CloseWait when the writer is stuck, saying so; later
// lines are dropped, not queued.
func TestCloseTimeout(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}, 10), release: make(chan struct{})}
	defer close(w.release)
	l := New(w, "test", Options{CloseWait: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	l.Execution(sampleExecution("x"))
	<-w.entered
	if err := l.Close(); !errors.Is(err, ErrCloseTimeout) {
		t.Fatalf("Close with a stuck writer = %v, want ErrCloseTimeout", err)
	}
	l.Execution(sampleExecution("y"))
	if l.Dropped() != 1 {
		t.Errorf("a line after Close: Dropped() = %d, want 1", l.Dropped())
	}
}

// readLines is the lines of the file at path.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, s := range strings.SplitAfter(string(b), "\n") {
		if s != "" {
			out = append(out, decode(t, []byte(s)))
		}
	}
	return out
}

// TestReopen: after the file is renamed and Reopen called, lines go to a new file at the path
// (mode 0600); the old file and the new hold every line, in order, none lost or doubled.
func TestReopen(t *testing.T) {
	tests := []struct{ before, after int }{{0, 5}, {50, 50}, {1000, 1}}
	for _, tc := range tests {
		t.Run("", func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.log")
			l, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			exec := func(n int) { l.Execution(event.Execution{Time: t0, CodeBytes: n}) }
			for i := range tc.before {
				exec(i)
			}
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			if err := l.Reopen(); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatalf("no new file after Reopen: %v", err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("new file mode %v, want 0600", st.Mode().Perm())
			}
			for i := range tc.after {
				exec(tc.before + i)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			old, cur := readLines(t, path+".1"), readLines(t, path)
			all := append(old, cur...)
			if len(all) != tc.before+tc.after {
				t.Fatalf("%d lines in the old and new file, want %d", len(all), tc.before+tc.after)
			}
			for i, m := range all {
				if m["code_bytes"] != float64(i) {
					t.Fatalf("line %d is %v: lines lost, doubled or out of order", i, m)
				}
			}
			if len(cur) < tc.after {
				t.Errorf("only %d lines in the new file; the %d made after Reopen belong there", len(cur), tc.after)
			}
		})
	}
}

// TestOpen: where a Log can and cannot write, and Check agrees beforehand without creating anything.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.log")
	if err := os.WriteFile(existing, []byte("{\"type\":\"old\"}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dest    string
		wantErr string
	}{
		{Stderr, ""},
		{Stdout, ""},
		{filepath.Join(dir, "new.log"), ""},
		{existing, ""},
		{filepath.Join(dir, "missing", "audit.log"), "no such file or directory"},
		{dir, "is a directory"},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.dest), func(t *testing.T) {
			_, statErr := os.Stat(tc.dest)
			checkErr := Check(tc.dest)
			if (checkErr == nil) != (tc.wantErr == "") {
				t.Errorf("Check(%q) = %v; Open is to fail: %v", tc.dest, checkErr, tc.wantErr != "")
			}
			if _, err := os.Stat(tc.dest); (err == nil) != (statErr == nil) {
				t.Errorf("Check(%q) created or removed it", tc.dest)
			}
			l, err := Open(tc.dest, Options{Logger: slog.New(slog.DiscardHandler)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.dest) {
					t.Fatalf("Open(%q) = %v, want an error naming the path and %q", tc.dest, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Where() != tc.dest {
				t.Errorf("Where() = %q", l.Where())
			}
			if tc.dest == Stderr || tc.dest == Stdout {
				if err := l.Reopen(); !errors.Is(err, ErrNotReopenable) {
					t.Errorf("Reopen of %s = %v, want ErrNotReopenable", tc.dest, err)
				}
				_ = l.Close()
				return
			}
			l.UpstreamCall(event.UpstreamCall{Time: t0, Outcome: "ok"})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, tc.dest)
			if last := lines[len(lines)-1]; last["type"] != TypeUpstreamCall {
				t.Errorf("last line %v, want the upstream call appended", last)
			}
			if tc.dest == existing && lines[0]["type"] != "old" {
				t.Errorf("the existing file's line is gone: appending must keep it")
			}
		})
	}
}

var _ io.Writer = (*blockingWriter)(nil)
