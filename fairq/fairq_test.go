package fairq

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// TestFairness: with one slot held, alice's burst gets only her share of the queue (the rest is
// refused at once), bob still finds a place, and as slots free the waiting identities are served
// alternately, not alice's burst first.
func TestFairness(t *testing.T) {
	for _, tc := range []struct {
		name       string
		slots      int
		maxWait    int
		share      int
		arrivals   []string // in order, while every slot is held
		refused    []string // the arrivals refused (ErrFull), in order
		servedNext []string // the order the waiters get slots as they free one by one
	}{
		{name: "burst then another", slots: 1, maxWait: 4, share: 2,
			arrivals: []string{"alice", "alice", "alice", "alice", "bob", "carol"},
			refused:  []string{"alice", "alice"}, servedNext: []string{"alice", "bob", "carol", "alice"}},
		{name: "no share cap", slots: 1, maxWait: 3, share: 0,
			arrivals: []string{"alice", "alice", "alice", "bob"},
			refused:  []string{"bob"}, servedNext: []string{"alice", "alice", "alice"}},
		{name: "round robin of three", slots: 2, maxWait: 6, share: 2,
			arrivals:   []string{"a", "a", "b", "b", "c", "c"},
			servedNext: []string{"a", "b", "c", "a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := New(tc.slots, tc.maxWait, tc.share)
				ctx := context.Background()
				var held []func()
				for range tc.slots {
					rel, _, err := q.Acquire(ctx, "holder")
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, rel)
				}
				var mu sync.Mutex
				var served []string
				var refused []string
				releases := make(chan func(), len(tc.arrivals))
				for _, who := range tc.arrivals {
					go func() {
						rel, _, err := q.Acquire(ctx, who)
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							if !errors.Is(err, ErrFull) && !errors.Is(err, ErrShare) {
								t.Errorf("%s: %v", who, err)
							}
							refused = append(refused, who)
							return
						}
						served = append(served, who)
						releases <- rel
					}()
					synctest.Wait() // it waits, or was refused, before the next arrives
				}
				if !slices.Equal(refused, tc.refused) {
					t.Fatalf("refused %v, want %v", refused, tc.refused)
				}
				// Free the slots one at a time: each frees one place for the next waiter.
				for _, rel := range held {
					rel()
					synctest.Wait() // the one it let in has recorded itself
				}
				for range tc.arrivals {
					select {
					case rel := <-releases:
						rel()
						synctest.Wait()
					default:
					}
				}
				if !slices.Equal(served[:min(len(served), len(tc.servedNext))], tc.servedNext) || len(served) != len(tc.servedNext) {
					t.Fatalf("served %v, want %v", served, tc.servedNext)
				}
			})
		})
	}
}

// TestCancelWhileWaiting: a waiter whose context ends gives its place back, and the next is
// served.
func TestCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(1, 2, 0)
		rel, _, _ := q.Acquire(context.Background(), "holder")
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, _, err := q.Acquire(ctx, "alice"); errc <- err }()
		got := make(chan string, 1)
		synctest.Wait()
		go func() {
			r, _, err := q.Acquire(context.Background(), "bob")
			if err == nil {
				got <- "bob"
				r()
			}
		}()
		synctest.Wait()
		if all, a := q.Waiting("alice"); all != 2 || a != 1 {
			t.Fatalf("waiting %d (alice %d), want 2 (1)", all, a)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v", err)
		}
		rel()
		if who := <-got; who != "bob" {
			t.Fatal(who)
		}
		synctest.Wait()
		if all, _ := q.Waiting("alice"); all != 0 {
			t.Fatalf("%d still waiting", all)
		}
	})
}
