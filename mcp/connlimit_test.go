package mcp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnLimiterEviction: over a cap an unauthenticated connection is
// closed — one that was answered without authentication or stayed silent
// past the grace first, else the oldest — (from the new one's address for the per-address cap,
// from the address holding the most for the total cap); authenticated
// connections are never evicted, and when only they stand in the way the
// new connection is closed instead. Real TCP connections on loopback.
func TestConnLimiterEviction(t *testing.T) {
	type step struct {
		from    string        // source address of a new connection
		trust   bool          // mark it authenticated once accepted
		answer  bool          // mark it answered without authentication once accepted
		later   time.Duration // advance the limiter's clock by this before the step
		admit   bool          // want it accepted
		evicted int           // index of the connection it evicts; -1 none
	}
	st := func(from string, trust, admit bool, evicted int) step {
		return step{from: from, trust: trust, admit: admit, evicted: evicted}
	}
	tests := []struct {
		name       string
		max, perIP int
		steps      []step
	}{
		{"per address: the oldest unauthenticated goes", 10, 2, []step{
			st("127.0.0.2", false, true, -1),
			st("127.0.0.2", false, true, -1),
			st("127.0.0.2", false, true, 0),
		}},
		{"per address: authenticated ones stay", 10, 2, []step{
			st("127.0.0.2", true, true, -1),
			st("127.0.0.2", false, true, -1),
			st("127.0.0.2", false, true, 1),
			st("127.0.0.3", false, true, -1), // another address is unaffected
		}},
		{"per address: all authenticated, the new one is closed", 10, 2, []step{
			st("127.0.0.2", true, true, -1),
			st("127.0.0.2", true, true, -1),
			st("127.0.0.2", false, false, -1),
		}},
		{"total: from the address with the most unauthenticated", 3, 3, []step{
			st("127.0.0.1", false, true, -1),
			st("127.0.0.2", false, true, -1),
			st("127.0.0.2", false, true, -1),
			st("127.0.0.3", false, true, 1),
		}},
		{"per address: an answered connection goes before an older silent one", 10, 3, []step{
			st("127.0.0.2", false, true, -1),
			{from: "127.0.0.2", answer: true, admit: true, evicted: -1},
			st("127.0.0.2", false, true, -1),
			st("127.0.0.2", false, true, 1),
			st("127.0.0.2", false, true, 0), // no answered one left: the oldest
		}},
		{"per address: silent past the grace counts as answered", 10, 3, []step{
			st("127.0.0.2", false, true, -1),
			{from: "127.0.0.2", later: silentGrace, answer: true, admit: true, evicted: -1},
			st("127.0.0.2", false, true, -1),
			st("127.0.0.2", false, true, 0), // older than the answered one, and shown
			st("127.0.0.2", false, true, 1),
		}},
		{"total: an answered connection of the fullest address", 3, 3, []step{
			st("127.0.0.2", false, true, -1),
			{from: "127.0.0.2", answer: true, admit: true, evicted: -1},
			st("127.0.0.3", false, true, -1),
			st("127.0.0.4", false, true, 1),
		}},
		{"total: all authenticated, the new one is closed", 2, 2, []step{
			st("127.0.0.1", true, true, -1),
			st("127.0.0.2", true, true, -1),
			st("127.0.0.3", false, false, -1),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := newConnLimiter(ln, tc.max, tc.perIP, slog.New(slog.DiscardHandler))
			var skew atomic.Int64
			start := time.Now()
			l.now = func() time.Time { return start.Add(time.Duration(skew.Load())) }
			defer l.Close()
			accepted := make(chan net.Conn, 16)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			var clients []net.Conn
			for i, st := range tc.steps {
				skew.Add(int64(st.later))
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(st.from)}}
				c, err := d.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
				select {
				case sc := <-accepted:
					if !st.admit {
						t.Fatalf("step %d: connection from %s admitted; want it closed", i, st.from)
					}
					if st.trust {
						markTrusted(withConn(context.Background(), sc))
					}
					if st.answer {
						markAnswered(withConn(context.Background(), sc))
					}
				case <-time.After(500 * time.Millisecond):
					if st.admit {
						t.Fatalf("step %d: connection from %s not admitted", i, st.from)
					}
					if !closedSoon(c) {
						t.Errorf("step %d: refused connection still open", i)
					}
				}
				if st.evicted >= 0 && !closedSoon(clients[st.evicted]) {
					t.Errorf("step %d: connection %d not evicted", i, st.evicted)
				}
			}
			// Nothing else was evicted.
			gone := map[int]bool{}
			for i, st := range tc.steps {
				if st.evicted >= 0 {
					gone[st.evicted] = true
				}
				if !st.admit {
					gone[i] = true
				}
			}
			for i, c := range clients {
				if !gone[i] && closedSoon(c) {
					t.Errorf("connection %d was closed; want it open", i)
				}
			}
		})
	}
}

// closedSoon reports whether the server closed c within 200 ms.
func closedSoon(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	_ = c.SetReadDeadline(time.Time{})
	return err == io.EOF || (err != nil && !isTimeout(err))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
