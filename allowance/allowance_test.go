package allowance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/identity"
)

// clock is a settable time for the Limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func store(t *testing.T, js string) *identity.Store {
	t.Helper()
	s, err := identity.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return identity.NewStore(s)
}

// step is one thing done to the limiter: wait, start an execution (kept running or ended with
// cpu), or make an upstream call; want is the quota that must refuse it ("" = admitted) and
// reset the ResetIn it must state.
type step struct {
	wait  time.Duration
	do    string // "run" (ends at once), "hold" (keeps running), "release" (ends the oldest held), "call"
	cpu   time.Duration
	want  string
	reset time.Duration
}

func TestLimiter(t *testing.T) {
	const ids = `[{"name":"alice","token_sha256":"` + "%s" + `","quotas":%s},{"name":"bob","token_sha256":"%s"}]`
	for _, tc := range []struct {
		name   string
		quotas string
		steps  []step
	}{
		{name: "executions per minute, sliding", quotas: `{"executions_per_minute":2}`, steps: []step{
			{do: "run"}, {wait: 10 * time.Second, do: "run"},
			{wait: 5 * time.Second, do: "run", want: QuotaExecutions, reset: 45 * time.Second},
			{wait: 45 * time.Second, do: "run"}, // the first left the window
			{do: "run", want: QuotaExecutions, reset: 10 * time.Second},
		}},
		{name: "concurrent", quotas: `{"concurrent":2}`, steps: []step{
			{do: "hold"}, {do: "hold"}, {do: "run", want: QuotaConcurrent}, {do: "release"}, {do: "hold"},
		}},
		{name: "cpu per hour", quotas: `{"cpu_seconds_per_hour":10}`, steps: []step{
			{do: "run", cpu: 6 * time.Second}, {wait: 30 * time.Minute, do: "run", cpu: 4 * time.Second},
			{do: "run", want: QuotaCPU, reset: 31 * time.Minute}, // the first minute's 6 s leave at 1h01
			{wait: 31 * time.Minute, do: "run"},
		}},
		{name: "upstream calls per minute", quotas: `{"upstream_calls_per_minute":3}`, steps: []step{
			{do: "call"}, {do: "call"}, {wait: 20 * time.Second, do: "call"},
			{do: "call", want: QuotaUpstreamCalls, reset: 40 * time.Second},
			{wait: 40 * time.Second, do: "call"}, {do: "call"}, {do: "call", want: QuotaUpstreamCalls, reset: 20 * time.Second},
		}},
		{name: "no quotas", quotas: `{}`, steps: []step{{do: "run"}, {do: "run"}, {do: "hold"}, {do: "hold"}, {do: "call"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
			js := strings.Replace(strings.Replace(strings.Replace(ids, "%s", identity.Hash("a"), 1), "%s", tc.quotas, 1), "%s", identity.Hash("b"), 1)
			l := New(store(t, js), c.now)
			var held []func(time.Duration)
			for i, s := range tc.steps {
				c.add(s.wait)
				var err error
				switch s.do {
				case "run", "hold":
					var end func(time.Duration)
					end, err = l.Begin("alice")
					if err == nil && s.do == "run" {
						end(s.cpu)
					} else if err == nil {
						held = append(held, end)
					}
				case "release":
					held[0](0)
					held = held[1:]
				case "call":
					err = l.Call("alice")
				}
				var ex *ExceededError
				switch {
				case s.want == "" && err != nil:
					t.Fatalf("step %d (%s): refused: %v", i, s.do, err)
				case s.want != "" && !errors.As(err, &ex):
					t.Fatalf("step %d (%s): err = %v, want the %s quota", i, s.do, err, s.want)
				case s.want != "":
					if ex.Quota != s.want || ex.ResetIn != s.reset || ex.Identity != "alice" || !errors.Is(err, ErrExceeded) {
						t.Fatalf("step %d: %+v, want quota %s reset %s", i, ex, s.want, s.reset)
					}
					if !strings.Contains(err.Error(), `identity "alice" is at its quota `+s.want) || !strings.Contains(err.Error(), "admin") {
						t.Fatalf("step %d: message %q", i, err)
					}
				}
				// bob has no quotas: never refused.
				if end, err := l.Begin("bob"); err != nil {
					t.Fatalf("bob refused: %v", err)
				} else {
					end(time.Hour)
				}
			}
		})
	}
}

// TestLimiterReload: a new Set's quotas apply at once to the use counted so far.
func TestLimiterReload(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	st := store(t, `[{"name":"stdio","quotas":{"executions_per_minute":5}}]`)
	l := New(st, c.now)
	for range 3 {
		end, err := l.Begin("stdio")
		if err != nil {
			t.Fatal(err)
		}
		end(0)
	}
	next, _ := identity.Parse([]byte(`[{"name":"stdio","quotas":{"executions_per_minute":3}}]`))
	st.Swap(next)
	if _, err := l.Begin("stdio"); !errors.Is(err, ErrExceeded) || !strings.Contains(err.Error(), "resets in 60 s") {
		t.Fatalf("after lowering the quota: %v", err)
	}
	st.Swap(nil)
	if _, err := l.Begin("stdio"); err != nil {
		t.Fatalf("without identities: %v", err)
	}
}
