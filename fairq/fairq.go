// Package fairq admits work to a fixed number of slots through a bounded wait queue that serves
// the waiting keys (identities) round-robin and caps each key's share of the queue, so one key's
// burst can neither fill the queue nor keep the others waiting behind it.
package fairq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Acquire's refusals: the queue is full (ErrFull), or the key's share of it (ErrShare).
var (
	ErrFull  = errors.New("queue full")
	ErrShare = errors.New("the key's share of the queue is full")
)

// Queue is the scheduler. Its zero value is not usable: use New.
type Queue struct {
	slots, maxWait, share int

	mu       sync.Mutex
	running  int
	waiting  map[string][]*waiter // per key, oldest first
	ring     []string             // keys with waiters, in the order they are served next
	nWaiting int
}

type waiter struct {
	granted chan struct{} // closed when the waiter got a slot
}

// New is a Queue of slots running at once (at least 1) and maxWait waiting (0 = none wait);
// share caps how many of the waiting places one key may hold (0 = no cap beyond maxWait).
func New(slots, maxWait, share int) *Queue {
	return &Queue{slots: max(slots, 1), maxWait: max(maxWait, 0), share: max(share, 0), waiting: map[string][]*waiter{}}
}

// Acquire takes a slot for key: at once if one is free and nobody waits, else after waiting its
// turn (the keys waiting are served round-robin, each key's waiters in order). It refuses with an
// error wrapping ErrFull when the queue is full, ErrShare when key's share of it is, and returns ctx's error
// if ctx ends first. release gives the slot back (call it once); queued is the time waited.
func (q *Queue) Acquire(ctx context.Context, key string) (release func(), queued time.Duration, err error) {
	q.mu.Lock()
	if q.running < q.slots && q.nWaiting == 0 {
		q.running++
		q.mu.Unlock()
		return q.releaser(), 0, nil
	}
	if q.nWaiting >= q.maxWait {
		q.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: %d executions are running and %d waiting", ErrFull, q.slots, q.maxWait)
	}
	if q.share > 0 && len(q.waiting[key]) >= q.share {
		q.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: %q already has %d of the %d waiting places", ErrShare, key, q.share, q.maxWait)
	}
	w := &waiter{granted: make(chan struct{})}
	if len(q.waiting[key]) == 0 {
		q.ring = append(q.ring, key)
	}
	q.waiting[key] = append(q.waiting[key], w)
	q.nWaiting++
	q.mu.Unlock()

	t0 := time.Now()
	select {
	case <-w.granted:
		return q.releaser(), time.Since(t0), nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	select {
	case <-w.granted: // granted as ctx ended: give the slot on
		q.mu.Unlock()
		q.releaser()()
		return nil, 0, ctx.Err()
	default:
	}
	q.remove(key, w)
	q.mu.Unlock()
	return nil, 0, ctx.Err()
}

// remove takes w out of key's waiters; q.mu held.
func (q *Queue) remove(key string, w *waiter) {
	ws := q.waiting[key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	q.nWaiting--
	if len(ws) > 0 {
		q.waiting[key] = ws
		return
	}
	delete(q.waiting, key)
	for i, k := range q.ring {
		if k == key {
			q.ring = append(q.ring[:i:i], q.ring[i+1:]...)
			break
		}
	}
}

func (q *Queue) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.running--
			q.dispatch()
		})
	}
}

// dispatch grants free slots to waiters, the next key of the ring first; q.mu held.
func (q *Queue) dispatch() {
	for q.running < q.slots && len(q.ring) > 0 {
		key := q.ring[0]
		ws := q.waiting[key]
		w := ws[0]
		q.ring = q.ring[1:]
		q.nWaiting--
		q.running++
		if len(ws) > 1 {
			q.waiting[key] = ws[1:]
			q.ring = append(q.ring, key) // its next waiter comes after the other keys'
		} else {
			delete(q.waiting, key)
		}
		close(w.granted)
	}
}

// Waiting is how many wait now, and how many of them key's.
func (q *Queue) Waiting(key string) (all, ofKey int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nWaiting, len(q.waiting[key])
}
