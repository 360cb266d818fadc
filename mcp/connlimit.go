package mcp

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter is a listener that caps open connections, in total and per
// source address, so a client cannot exhaust the server's file descriptors.
//
// Over a cap, a new connection does not wait and is not simply refused:
// it evicts a connection that has not yet carried an authenticated request
// (from the same address for the per-address cap; for the total cap, from
// the address holding the most such connections). Only when every
// connection in the way is authenticated is the new one closed at once.
// Among the unauthenticated, those that have shown they are not a token
// holder go first, oldest first: a connection whose request was answered
// without authentication (a 401, a health check), or one that has sent no
// complete request within silentGrace (a real client sends its request as
// soon as it has connected). Only when none has shown that does the oldest
// unknown one go. So an attacker re-dialling from the token holder's own
// address, faster than the server authenticates a request, evicts its own
// answered connections and not the token holder's fresh one (a CI run
// under load lost the token holder's connection 23 ms after it opened,
// when plain oldest-first eviction was used).
// Waiting (netutil.LimitListener) would let an attacker who holds the cap
// with idle or half-sent connections keep the token holder in the accept
// queue; refusing would lock the token holder out for as long as the
// attacker keeps them open. Eviction lets an attacker hold nothing against a
// newcomer: its connections are unauthenticated, and the newest connection
// (the token holder's, which authenticates on its first request) is evicted
// last.
type connLimiter struct {
	net.Listener
	max, perIP int
	log        *slog.Logger
	now        func() time.Time

	mu    sync.Mutex
	total int
	byIP  map[string][]*limitedConn // open connections per source address, oldest first
}

func newConnLimiter(ln net.Listener, max, perIP int, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, perIP: perIP, log: log, now: time.Now, byIP: map[string][]*limitedConn{}}
}

// silentGrace is how long a new connection may stay silent (no complete
// request) before it counts as shown not to be a token holder.
const silentGrace = time.Second

// limitedConn is one accepted connection; trusted once a request on it
// passed authentication, answered once a request on it was served without.
type limitedConn struct {
	net.Conn
	l        *connLimiter
	ip       string
	opened   time.Time
	trusted  atomic.Bool
	answered atomic.Bool
	released atomic.Bool
}

// shown reports whether c is unauthenticated and has shown it is not a
// token holder (answered without authentication, or silent past the grace).
func (c *limitedConn) shown(now time.Time) bool {
	return !c.trusted.Load() && (c.answered.Load() || now.Sub(c.opened) >= silentGrace)
}

// Close releases the connection's slot and closes it.
func (c *limitedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// Accept returns the next connection within the caps; connections over a
// cap that nothing can make room for are closed here and never returned.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc, evicted := l.admit(c)
		for _, e := range evicted {
			l.log.Debug("HTTP connection cap reached: closed an unauthenticated connection to admit a new one",
				"evicted", e.RemoteAddr().String(), "new", c.RemoteAddr().String())
			_ = e.Conn.Close()
		}
		if lc != nil {
			return lc, nil
		}
		l.log.Debug("HTTP connection cap reached: every connection in the way is authenticated; closed the new one",
			"remote", c.RemoteAddr().String(), "max", l.max, "per_ip", l.perIP)
		_ = c.Close()
	}
}

// admit makes room for c if it can and returns it wrapped (nil when it must
// be closed) and the connections to close for it.
func (l *connLimiter) admit(c net.Conn) (*limitedConn, []*limitedConn) {
	ip := sourceIP(c.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var evicted []*limitedConn
	if ip != "" && len(l.byIP[ip]) >= l.perIP {
		v := victim(l.byIP[ip], now)
		if v == nil {
			return nil, nil
		}
		l.removeLocked(v)
		evicted = append(evicted, v)
	}
	if l.total >= l.max {
		v := l.globalVictimLocked(now)
		if v == nil {
			return nil, evicted
		}
		l.removeLocked(v)
		evicted = append(evicted, v)
	}
	lc := &limitedConn{Conn: c, l: l, ip: ip, opened: now}
	l.byIP[ip] = append(l.byIP[ip], lc)
	l.total++
	return lc, evicted
}

// globalVictimLocked is the victim among the connections of the source
// address holding the most unauthenticated ones.
func (l *connLimiter) globalVictimLocked(now time.Time) *limitedConn {
	var v *limitedConn
	most := 0
	for _, conns := range l.byIP {
		n := 0
		for _, c := range conns {
			if !c.trusted.Load() {
				n++
			}
		}
		if n > most {
			most, v = n, victim(conns, now)
		}
	}
	return v
}

// victim is the connection of conns (oldest first) to evict: the oldest
// that has shown it is not a token holder, else the oldest unauthenticated
// one; nil when all are authenticated.
func victim(conns []*limitedConn, now time.Time) *limitedConn {
	var unknown *limitedConn
	for _, c := range conns {
		if c.trusted.Load() {
			continue
		}
		if c.shown(now) {
			return c
		}
		if unknown == nil {
			unknown = c
		}
	}
	return unknown
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removeLocked(c)
}

func (l *connLimiter) removeLocked(c *limitedConn) {
	if c.released.Swap(true) {
		return
	}
	conns := l.byIP[c.ip]
	for i, x := range conns {
		if x == c {
			conns = append(conns[:i:i], conns[i+1:]...)
			break
		}
	}
	if len(conns) == 0 {
		delete(l.byIP, c.ip)
	} else {
		l.byIP[c.ip] = conns
	}
	l.total--
}

// open reports the connections counted now (for tests and logs).
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// sourceIP is the client's IP address; "" for addresses without one (unix
// sockets), which only the total cap covers.
func sourceIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return ""
}

type connKey struct{}

// withConn puts the limited connection into the request's context so the
// authentication step can mark it trusted.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// markAnswered records that a request on the request's connection was
// served without authentication (no effect once it is trusted).
func markAnswered(ctx context.Context) {
	if lc, ok := ctx.Value(connKey{}).(*limitedConn); ok {
		lc.answered.Store(true)
	}
}

// markTrusted records that the request's connection carried an
// authenticated request: the connection caps no longer evict it.
func markTrusted(ctx context.Context) {
	if lc, ok := ctx.Value(connKey{}).(*limitedConn); ok {
		lc.trusted.Store(true)
	}
}
