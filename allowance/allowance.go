// Package allowance enforces each identity's quotas (identity.Quotas): concurrent executions,
// executions per minute, CPU-seconds per hour and upstream calls per minute, on sliding windows
// of an injectable clock.
package allowance

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/conductor-sandbox/conductor/identity"
)

// The quotas' names, as the config file writes them.
const (
	QuotaConcurrent    = "concurrent"
	QuotaExecutions    = "executions_per_minute"
	QuotaCPU           = "cpu_seconds_per_hour"
	QuotaUpstreamCalls = "upstream_calls_per_minute"
)

// ErrExceeded is wrapped by every *ExceededError.
var ErrExceeded = errors.New("quota exceeded")

// ExceededError says which of an identity's quotas refused a request and when it lets the next in.
type ExceededError struct {
	Identity string
	Quota    string // QuotaConcurrent, …
	Limit    int
	// ResetIn is how long until the quota admits the next request; 0 for QuotaConcurrent (one of
	// the identity's running executions has to end).
	ResetIn time.Duration
}

func (e *ExceededError) Error() string {
	per := map[string]string{QuotaConcurrent: "executions at once", QuotaExecutions: "executions per minute",
		QuotaCPU: "CPU-seconds per hour", QuotaUpstreamCalls: "upstream calls per minute"}[e.Quota]
	when := "it frees when one of its running executions ends"
	if e.Quota != QuotaConcurrent {
		when = fmt.Sprintf("it resets in %d s", int(math.Ceil(e.ResetIn.Seconds())))
	}
	return fmt.Sprintf("identity %q is at its quota %s (limit %d %s); %s. The admin sets quotas (\"identities\" in MCP_CONDUCTOR_CONFIG).",
		e.Identity, e.Quota, e.Limit, per, when)
}

// Is makes every *ExceededError match ErrExceeded.
func (e *ExceededError) Is(target error) bool { return target == ErrExceeded }

// Limiter counts each identity's use against the quotas its store holds now (a reload's new
// quotas apply at once; the use counted so far stays). Identities without quotas, or unknown to
// the store, are not counted. Safe for concurrent use.
type Limiter struct {
	store *identity.Store
	now   func() time.Time

	mu    sync.Mutex
	users map[string]*usage
}

// usage is one identity's counted use.
type usage struct {
	running int
	starts  []time.Time // executions started in the last minute (at most its quota's worth)
	calls   []time.Time // upstream calls in the last minute (idem)
	cpu     []charge    // CPU charged in the last hour, one entry per minute (at most 61)
}

type charge struct {
	minute time.Time
	cpu    time.Duration
}

// New is a Limiter of the quotas store holds; now is the clock (time.Now when nil).
func New(store *identity.Store, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{store: store, now: now, users: map[string]*usage{}}
}

func (l *Limiter) quotas(name string) (identity.Quotas, bool) {
	id, ok := l.store.Load().Lookup(name)
	if !ok || id.Quotas == (identity.Quotas{}) {
		return identity.Quotas{}, false
	}
	return id.Quotas, true
}

func (l *Limiter) user(name string) *usage {
	u := l.users[name]
	if u == nil {
		u = &usage{}
		l.users[name] = u
	}
	return u
}

// window drops the times older than d before now from ts.
func window(ts []time.Time, now time.Time, d time.Duration) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-d)) {
		i++
	}
	return ts[i:]
}

// Begin admits one execution of name, or refuses it with an *ExceededError. end must be called
// once when the execution has ended, with the CPU it used (charged to CPU-seconds per hour).
func (l *Limiter) Begin(name string) (end func(cpu time.Duration), err error) {
	q, ok := l.quotas(name)
	if !ok {
		return func(time.Duration) {}, nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.user(name)
	if q.Concurrent > 0 && u.running >= q.Concurrent {
		return nil, &ExceededError{Identity: name, Quota: QuotaConcurrent, Limit: q.Concurrent}
	}
	u.starts = window(u.starts, now, time.Minute)
	if q.ExecutionsPerMinute > 0 && len(u.starts) >= q.ExecutionsPerMinute {
		// The oldest start that must leave the window for one more to fit.
		oldest := u.starts[len(u.starts)-q.ExecutionsPerMinute]
		return nil, &ExceededError{Identity: name, Quota: QuotaExecutions, Limit: q.ExecutionsPerMinute, ResetIn: oldest.Add(time.Minute).Sub(now)}
	}
	if q.CPUSecondsPerHour > 0 {
		if reset, over := u.cpuOver(now, time.Duration(q.CPUSecondsPerHour)*time.Second); over {
			return nil, &ExceededError{Identity: name, Quota: QuotaCPU, Limit: q.CPUSecondsPerHour, ResetIn: reset}
		}
	}
	u.running++
	if q.ExecutionsPerMinute > 0 {
		u.starts = append(u.starts, now)
	}
	var once sync.Once
	return func(cpu time.Duration) {
		once.Do(func() {
			at := l.now()
			l.mu.Lock()
			defer l.mu.Unlock()
			u.running--
			if cpu > 0 {
				u.charge(at, cpu)
			}
		})
	}, nil
}

// charge adds cpu to the minute of at.
func (u *usage) charge(at time.Time, cpu time.Duration) {
	m := at.Truncate(time.Minute)
	if n := len(u.cpu); n > 0 && u.cpu[n-1].minute.Equal(m) {
		u.cpu[n-1].cpu += cpu
		return
	}
	u.cpu = append(u.cpu, charge{minute: m, cpu: cpu})
}

// cpuOver says whether the CPU charged in the hour before now is at or over limit, and if so how
// long until enough of it has left the window to be under.
func (u *usage) cpuOver(now time.Time, limit time.Duration) (time.Duration, bool) {
	i := 0
	for i < len(u.cpu) && !u.cpu[i].minute.Add(time.Minute).After(now.Add(-time.Hour)) {
		i++
	}
	u.cpu = u.cpu[i:]
	var total time.Duration
	for _, c := range u.cpu {
		total += c.cpu
	}
	if total < limit {
		return 0, false
	}
	for _, c := range u.cpu {
		total -= c.cpu
		if total < limit {
			return c.minute.Add(time.Minute + time.Hour).Sub(now), true
		}
	}
	return 0, true // not reached: total went to 0 < limit
}

// Call admits one upstream call of name, or refuses it with an *ExceededError.
func (l *Limiter) Call(name string) error {
	q, ok := l.quotas(name)
	if !ok || q.UpstreamCallsPerMinute == 0 {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.user(name)
	u.calls = window(u.calls, now, time.Minute)
	if len(u.calls) >= q.UpstreamCallsPerMinute {
		oldest := u.calls[len(u.calls)-q.UpstreamCallsPerMinute]
		return &ExceededError{Identity: name, Quota: QuotaUpstreamCalls, Limit: q.UpstreamCallsPerMinute, ResetIn: oldest.Add(time.Minute).Sub(now)}
	}
	u.calls = append(u.calls, now)
	return nil
}
