package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/conductor-sandbox/conductor/event"
)

// TestSlotQueue: with one execution slot and one queue place, a request takes the free slot at
// once, the next waits for it (and its queued time is exactly that wait), one more is refused as
// busy, and a waiting request whose context ends gives its queue place back. In synctest
// bubbles: admission is channels and the clock, no sandbox.
func TestSlotQueue(t *testing.T) {
	tests := []struct {
		name       string
		holdFor    time.Duration // how long the first request holds the slot
		cancelWait bool          // the waiting request's context ends before the slot frees
	}{
		{"waits for the slot", 5 * time.Second, false},
		{"longer hold", 90 * time.Second, false},
		{"cancelled while waiting", 5 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := New(Options{MaxConcurrency: 1, MaxQueue: 1})
				defer e.Shutdown()
				release, queued, err := e.slot(context.Background())
				if err != nil || queued != 0 {
					t.Fatalf("the free slot: queued %s, %v", queued, err)
				}
				type got struct {
					queued time.Duration
					err    error
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				waiter := make(chan got, 1)
				go func() {
					rel, q, err := e.slot(ctx)
					if err == nil {
						rel()
					}
					waiter <- got{q, err}
				}()
				synctest.Wait()
				select {
				case g := <-waiter:
					t.Fatalf("the second request did not wait for the slot: %+v", g)
				default:
				}
				if _, _, err := e.slot(context.Background()); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "1 executions are running and 1 waiting; try again shortly") {
					t.Fatalf("a third request: %v, want ErrBusy saying the limits", err)
				}
				time.Sleep(tc.holdFor)
				if tc.cancelWait {
					cancel()
					if g := <-waiter; !errors.Is(g.err, context.Canceled) {
						t.Fatalf("the cancelled waiter: %+v", g)
					}
					// Its queue place is free again: one more may wait.
					go func() { rel, q, err := e.slot(context.Background()); rel(); waiter <- got{q, err} }()
					synctest.Wait()
					release()
					if g := <-waiter; g.err != nil || g.queued != 0 {
						t.Fatalf("after the cancel, a new waiter: %+v, want the slot as soon as it freed", g)
					}
					return
				}
				release()
				if g := <-waiter; g.err != nil || g.queued != tc.holdFor {
					t.Fatalf("the waiter: queued %s (%v), want exactly %s", g.queued, g.err, tc.holdFor)
				}
			})
		})
	}
}

// TestOnIdleTiming: OnIdle runs IdleAfter after the last work left, not a moment earlier, once;
// work that comes back in time postpones it, and Shutdown stops an armed one.
func TestOnIdleTiming(t *testing.T) {
	const idleAfter = 2 * time.Second
	tests := []struct {
		name     string
		back     time.Duration // when work comes back after leaving (0: never)
		shutdown bool          // Shutdown just after the work left
		want     int           // OnIdle calls within the hour
	}{
		{"once after a busy spell", 0, false, 1},
		{"postponed by work that comes back", time.Second, false, 1},
		{"work coming back after it ran", 3 * time.Second, false, 2},
		{"stopped by Shutdown", 0, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var at []time.Duration // when OnIdle ran, since t0
				t0 := time.Now()
				e := New(Options{IdleAfter: idleAfter, OnIdle: func() {
					mu.Lock()
					defer mu.Unlock()
					at = append(at, time.Since(t0))
				}})
				calls := func() int {
					mu.Lock()
					defer mu.Unlock()
					return len(at)
				}
				time.Sleep(time.Hour)
				if n := calls(); n != 0 {
					t.Fatalf("OnIdle ran %d times before any work", n)
				}
				mu.Lock()
				t0 = time.Now()
				mu.Unlock()
				spell := func() {
					_, done, err := e.enter(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Second)
					done()
				}
				spell() // ends at 1 s
				if tc.shutdown {
					e.Shutdown()
				}
				if tc.back > 0 {
					time.Sleep(tc.back)
					spell()
				}
				time.Sleep(time.Hour)
				mu.Lock()
				defer mu.Unlock()
				if n := len(at); n != tc.want {
					t.Fatalf("OnIdle ran %d times (at %v), want %d", n, at, tc.want)
				}
				// Each run is exactly IdleAfter after a spell's end.
				ends := []time.Duration{time.Second}
				if tc.back > 0 {
					ends = append(ends, 2*time.Second+tc.back)
				}
				for _, a := range at {
					ok := false
					for _, end := range ends {
						ok = ok || a == end+idleAfter
					}
					if !ok {
						t.Errorf("OnIdle ran at %s; the spells ended at %v and IdleAfter is %s", a, ends, idleAfter)
					}
				}
				e.Shutdown()
			})
		})
	}
}

// TestSlotQueueShare: with identities, one identity's burst holds at most its share of the queue
// (refused as busy, naming the identity, its share and who sets it), another still gets a place,
// and as the slot frees they are served alternately.
func TestSlotQueueShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(Options{MaxConcurrency: 1, MaxQueue: 4, MaxQueueShare: 2})
		defer e.Shutdown()
		as := func(who string) context.Context {
			return event.WithScope(context.Background(), event.Scope{Identity: who})
		}
		release, _, err := e.slot(as("alice"))
		if err != nil {
			t.Fatal(err)
		}
		order := make(chan string, 4)
		wait := func(who string) {
			go func() {
				rel, _, err := e.slot(as(who))
				if err != nil {
					t.Errorf("%s: %v", who, err)
					return
				}
				order <- who
				rel()
			}()
			synctest.Wait()
		}
		wait("alice")
		wait("alice")
		if _, _, err := e.slot(as("alice")); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), `identity "alice" already has 2 requests waiting, its share of the 4 queue places`) ||
			!strings.Contains(err.Error(), "set by the admin") {
			t.Fatalf("alice's third waiting request: %v, want ErrBusy naming her share", err)
		}
		wait("bob")
		release()
		var got []string
		for range 3 {
			got = append(got, <-order)
		}
		if strings.Join(got, ",") != "alice,bob,alice" {
			t.Fatalf("served %v, want alice, bob, alice (round-robin)", got)
		}
	})
}
