package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/internal/leftovers"
	"github.com/conductor-sandbox/conductor/internal/sandboxtest"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"github.com/conductor-sandbox/conductor/sandbox"
)

func init() { sandbox.MaybeInit() }

func newEngine(t *testing.T, mutate func(*Options)) *Engine {
	t.Helper()
	allow, err := deps.ParseAllowlist("npm:zod@^3")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Sandboxes:      sandboxtest.Runner(t, nil),
		Allowlist:      allow,
		DefaultTimeout: 10 * time.Second,
		MaxTimeout:     20 * time.Second,
		MaxCodeBytes:   64 << 10,
		MaxConcurrency: 2,
		MaxQueue:       2,
	}
	if mutate != nil {
		mutate(&o)
	}
	e := New(o)
	t.Cleanup(e.Shutdown)
	return e
}

// TestRefusals: requests that must not reach a sandbox, each with a clear error.
func TestRefusals(t *testing.T) {
	e := newEngine(t, nil)
	tests := []struct {
		name    string
		req     Request
		sent    error
		mention []string
	}{
		{"empty code", Request{}, ErrInvalidRequest, []string{"empty"}},
		{"code too large", Request{Code: strings.Repeat("x", 70<<10)}, ErrInvalidRequest, []string{"71680 bytes", "65536"}},
		{"invalid UTF-8", Request{Code: "console.log('\xff')"}, ErrInvalidRequest, []string{"UTF-8"}},
		{"timeout above max", Request{Code: "1", Timeout: time.Minute}, ErrInvalidRequest, []string{"60000 ms", "20000 ms"}},
		{"globals not an object", Request{Code: "1", Globals: json.RawMessage(`[1]`)}, ErrInvalidRequest, []string{"JSON object"}},
		{"global name not an identifier", Request{Code: "1", Globals: json.RawMessage(`{"a-b": 1, "ok": 2}`)}, ErrInvalidRequest, []string{`"a-b"`}},
		{"several problems at once", Request{Code: "1", Timeout: time.Hour, Globals: json.RawMessage(`{"1x": 0}`)}, ErrInvalidRequest, []string{"timeout", `"1x"`}},
		{"unlisted import", Request{Code: "import x from 'npm:left-pad'; x"}, ErrDependency, []string{"main.ts:1:15", "left-pad", "npm:zod@^3"}},
		{"other version", Request{Code: "import { z } from 'npm:zod@^2'; z"}, ErrDependency, []string{"^2", "npm:zod@^3"}},
		{"remote import", Request{Code: "import x from 'https://example.com/x.ts'"}, ErrDependency, []string{"https://example.com/x.ts"}},
		{"computed dynamic import", Request{Code: "const m = 'npm:zod'; await import(m)"}, ErrDependency, []string{"string literal"}},
		{"unlisted dependency", Request{Code: "1", Dependencies: []string{"npm:axios"}}, ErrDependency, []string{"axios", "npm:zod@^3"}},
		{"injection in a dependency", Request{Code: "1", Dependencies: []string{"npm:zod@^3;rm -rf /"}}, ErrDependency, []string{"zod"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Execute(context.Background(), tc.req)
			if !errors.Is(err, tc.sent) || res != nil {
				t.Fatalf("Execute = %v, %v; want %v", res, err, tc.sent)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestPositionsInUserCode(t *testing.T) {
	e := newEngine(t, nil)
	tests := []struct {
		name       string
		code       string
		line, col  int
		errType    string
		returnJSON string
	}{
		{"throw after a top-level return rewrite", "const a = 1;\nif (!a) return 0;\nthrow new Error('here')", 3, 7, sandbox.ErrorRuntime, ""},
		{"error inside the returned expression", "const o: any = null;\nreturn o.field", 2, 10, sandbox.ErrorRuntime, ""},
		{"syntax error", "const x = 1;\nconst y = ;", 2, 11, sandbox.ErrorSyntax, ""},
		{"node builtin import is fine", "import { join } from 'node:path';\njoin('a', 'b')", 0, 0, "", `"a/b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Execute(context.Background(), Request{Code: tc.code})
			if err != nil {
				t.Fatal(err)
			}
			if tc.returnJSON != "" {
				if res.Status != sandbox.StatusSuccess || string(res.ReturnValue) != tc.returnJSON {
					t.Fatalf("status %s return %s error %+v", res.Status, res.ReturnValue, res.Error)
				}
				return
			}
			if res.Error == nil || res.Error.Type != tc.errType || res.Error.Line != tc.line || res.Error.Column != tc.col {
				t.Fatalf("error %+v; want %s at %d:%d", res.Error, tc.errType, tc.line, tc.col)
			}
		})
	}
}

func TestBusyAndShutdown(t *testing.T) {
	e := newEngine(t, func(o *Options) { o.MaxConcurrency, o.MaxQueue = 1, 0 })
	var wg sync.WaitGroup
	var long *Result
	var longErr error
	running := make(chan struct{})
	var once sync.Once
	wg.Add(1)
	go func() {
		defer wg.Done()
		long, longErr = e.Execute(context.Background(), Request{
			Code: "console.log('running'); while (true) {}", Timeout: 15 * time.Second,
			OnOutput: func(string, []byte) { once.Do(func() { close(running) }) },
		})
	}()
	select {
	case <-running:
	case <-time.After(testenv.Scale(15 * time.Second)):
		t.Fatalf("the long execution never started: %v", longErr)
	}
	_, err := e.Execute(context.Background(), Request{Code: "1"})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "try again") {
		t.Fatalf("second request while one runs with no queue = %v, want ErrBusy", err)
	}
	e.Shutdown()
	wg.Wait()
	if long == nil || long.Status != sandbox.StatusCancelled {
		t.Fatalf("running execution after Shutdown: %+v %v, want cancelled", long, longErr)
	}
	if _, err := e.Execute(context.Background(), Request{Code: "1"}); !errors.Is(err, ErrShutdown) {
		t.Fatalf("after Shutdown: %v, want ErrShutdown", err)
	}
}

func TestOutputObserver(t *testing.T) {
	e := newEngine(t, nil)
	var mu sync.Mutex
	var seen strings.Builder
	res, err := e.Execute(context.Background(), Request{
		Code: "console.log('one'); console.error('two')",
		OnOutput: func(stream string, b []byte) {
			mu.Lock()
			defer mu.Unlock()
			seen.WriteString(stream + ":" + string(b))
		},
	})
	if err != nil || res.Status != sandbox.StatusSuccess {
		t.Fatalf("%v %+v", err, res)
	}
	got := seen.String()
	if !strings.Contains(got, "stdout:one\n") || !strings.Contains(got, "stderr:two\n") {
		t.Fatalf("observer saw %q", got)
	}
}

// TestShutdownWaitsForTeardown: a result goes back before its sandbox is
// removed; Shutdown returns only once every used sandbox is gone (state,
// cgroups, processes).
func TestShutdownWaitsForTeardown(t *testing.T) {
	var stateDir string
	r := sandboxtest.Runner(t, func(o *sandbox.Options) { stateDir = o.StateDir })
	e := New(Options{Sandboxes: r, DefaultTimeout: 10 * time.Second, MaxTimeout: 20 * time.Second, MaxConcurrency: 2, MaxQueue: 2})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			res, err := e.Execute(context.Background(), Request{Code: "setTimeout(() => console.log('late'), 50); " + strconv.Itoa(i)})
			if err != nil || res.Status != sandbox.StatusSuccess || res.Stdout != "late\n" {
				t.Errorf("execution %d: %v %+v", i, err, res)
			}
		})
	}
	wg.Wait()
	e.Shutdown()
	entries, err := os.ReadDir(filepath.Join(stateDir, r.Instance()))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if de.IsDir() {
			t.Errorf("container state %s remains after Shutdown", de.Name())
		}
	}
	if pids := leftovers.Processes(r.Instance()); len(pids) > 0 {
		t.Errorf("sandbox processes remain after Shutdown: %v", pids)
	}
	if dirs := leftovers.CgroupDirs(r.Instance()); len(dirs) > 0 {
		t.Errorf("cgroups remain after Shutdown: %v", dirs)
	}
}

// TestOnIdle: OnIdle runs once after each busy spell of real executions (their teardowns
// included), never while one runs. TestOnIdleTiming times it exactly, without sandboxes.
func TestOnIdle(t *testing.T) {
	const idleAfter = 50 * time.Millisecond
	idle := make(chan struct{}, 8)
	running := make(chan struct{})
	e := newEngine(t, func(o *Options) {
		o.IdleAfter = idleAfter
		o.OnIdle = func() { idle <- struct{}{} }
	})
	for spell := range 2 {
		var once sync.Once
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err := e.Execute(context.Background(), Request{
				Code:     "console.log('go'); await new Promise((r) => setTimeout(r, 300)); 1",
				OnOutput: func(string, []byte) { once.Do(func() { running <- struct{}{} }) },
			})
			if err != nil || res.Status != sandbox.StatusSuccess {
				t.Errorf("spell %d: %v %+v", spell, err, res)
			}
		}()
		select {
		case <-running:
		case <-time.After(testenv.Scale(15 * time.Second)):
			t.Fatalf("spell %d never started", spell)
		}
		select {
		case <-idle:
			t.Fatalf("spell %d: OnIdle ran while an execution was running", spell)
		case <-done:
		}
		select {
		case <-idle:
		case <-time.After(testenv.Scale(10 * time.Second)):
			t.Fatalf("spell %d: OnIdle did not run after the execution ended", spell)
		}
	}
	// A window for a second run to show, not a wait for an event (nothing signals a call that
	// should not happen): four times IdleAfter.
	time.Sleep(4 * idleAfter)
	if n := len(idle); n != 0 {
		t.Errorf("OnIdle ran %d more times with nothing happening; want once per busy spell", n)
	}
}

// TestPendingTimerDoesNotHoldTheSlot: with one execution slot, code that
// returns while a timer is pending gives its value and frees the slot for
// the next request at once instead of running into its timeout (issue 9).
func TestPendingTimerDoesNotHoldTheSlot(t *testing.T) {
	e := newEngine(t, func(o *Options) { o.MaxConcurrency = 1; o.MaxQueue = 1 })
	const timeout = 20 * time.Second // the engine's largest
	var wg sync.WaitGroup
	results := make([]*Result, 2)
	for i := range 2 {
		wg.Go(func() {
			res, err := e.Execute(context.Background(), Request{Code: "setTimeout(() => {}, 600000);\nreturn " + strconv.Itoa(i), Timeout: timeout})
			if err != nil {
				t.Errorf("execution %d: %v", i, err)
				return
			}
			results[i] = res
		})
	}
	wg.Wait()
	for i, res := range results {
		if res == nil {
			continue
		}
		if res.Status != sandbox.StatusSuccess || string(res.ReturnValue) != strconv.Itoa(i) || !res.PendingStopped {
			t.Errorf("execution %d: status %s value %s pendingWorkStopped %v error %+v", i, res.Status, res.ReturnValue, res.PendingStopped, res.Error)
		}
		// Held by the timer, it would have run into its timeout (a bound
		// set by the request, not a speed: under TCG emulation in the v2
		// VM a run takes 9 s).
		if res.DurationMs >= float64(timeout.Milliseconds()) {
			t.Errorf("execution %d took %.0f ms, its whole timeout: the pending timer held it (and the slot)", i, res.DurationMs)
		}
	}
}
