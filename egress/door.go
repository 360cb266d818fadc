package egress

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// wireNetNS wires the namespace with setns as root; a rootless server,
// lacking CAP_SYS_ADMIN in its own user namespace, goes through the door
// helper, which joins the sandbox's user namespace first: setns(2) into a
// network namespace needs CAP_SYS_ADMIN over the namespace's owning user
// namespace AND in the caller's own, and a rootless server has only the
// first; a multi-threaded process (any Go program) cannot join the
// sandbox's user namespace itself.
func wireNetNS(ctx context.Context, nsFile *os.File) (doorSockets, string, error) {
	socks, err := setupNetNS(nsFile)
	if err == nil {
		return socks, "setns", nil
	}
	if !errors.Is(err, unix.EPERM) {
		return doorSockets{}, "", err
	}
	owner, oerr := ownerUserNS(nsFile)
	if oerr != nil {
		return doorSockets{}, "", fmt.Errorf("%w (and the owning user namespace is unavailable: %v)", err, oerr)
	}
	defer owner.Close()
	if same, _ := sameNS(owner, "/proc/self/ns/user"); same {
		return doorSockets{}, "", fmt.Errorf("%w: the network namespace belongs to this process's own user namespace, where it lacks CAP_SYS_ADMIN", err)
	}
	socks, herr := setupViaHelper(ctx, owner, nsFile)
	if herr != nil {
		return doorSockets{}, "", fmt.Errorf("%w; wiring it through the door helper failed too: %w", err, herr)
	}
	return socks, "helper", nil
}

// Door defaults: per door, which is per execution (a sandbox runs once).
const (
	DefaultDoorMaxConns   = 2048
	DefaultDoorMaxBytes   = 256 << 20
	DefaultDoorMaxNames   = 4096
	DefaultDoorMaxRecords = 200
)

// DoorOptions configure a door.
type DoorOptions struct {
	NetNS  string // /proc/<pid>/ns/net of the sandbox's init. Required.
	Policy Policy // what may be reached

	MaxConns   int   // connections per door; 0 = DefaultDoorMaxConns
	MaxBytes   int64 // bytes both ways, all connections; 0 = DefaultDoorMaxBytes
	MaxNames   int   // names the DNS responder hands fake addresses to; 0 = DefaultDoorMaxNames
	MaxRecords int   // entries Records keeps; 0 = DefaultDoorMaxRecords

	DialTimeout time.Duration // resolving + connecting; 0 = DefaultDialTimeout
	IdleTimeout time.Duration // a connection with no traffic either way; 0 = DefaultIdleTimeout

	Logger *slog.Logger
	// Resolver looks up a name on the host; nil = net.DefaultResolver. Only
	// called for names the policy allows.
	Resolver func(ctx context.Context, host string) ([]netip.Addr, error)
	// Dial connects upstream; addr is always a vetted "ip:port".
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Secrets, when set, are put in place of their placeholders in HTTPS
	// requests to their hosts (see "Secrets" in the package doc).
	Secrets *Secrets
	// UpstreamRoots verify secret hosts' certificates; nil = the host's
	// roots (tests).
	UpstreamRoots *x509.CertPool
}

// Record is one decision of the door, as the agent sees it.
type Record struct {
	Host     string `json:"host"`
	Port     int    `json:"port"` // 0 for a DNS lookup
	Allowed  bool   `json:"allowed"`
	Reason   string `json:"reason,omitempty"`
	BytesOut int64  `json:"bytesOut"` // sandbox -> destination
	BytesIn  int64  `json:"bytesIn"`
	// Secrets are the secrets whose real value the door put in on this
	// connection; Placeholders are those whose placeholder went out as is
	// (to a host the secret may not go to, or not where the door puts it).
	Secrets      []string `json:"secrets,omitempty"`
	Placeholders []string `json:"placeholders,omitempty"`
}

type record struct {
	mu      sync.Mutex
	r       Record
	out, in atomic.Int64
}

func (r *record) set(allowed bool, reason string) {
	r.mu.Lock()
	r.r.Allowed, r.r.Reason = allowed, reason
	r.mu.Unlock()
}

// Door is the network of one sandbox: a DNS responder and a TCP listener
// inside its network namespace, deciding and dialing on the host.
type Door struct {
	o    DoorOptions
	pol  *policy
	log  *slog.Logger
	s    doorSockets
	dns  *dns.Server
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	conns     map[net.Conn]struct{}
	names     map[string]netip.Addr // name -> fake address
	byFake    map[netip.Addr]string
	records   []*record
	dropped   int
	refusedNS map[string]bool // names whose refused lookup is recorded
	// transports are the HTTP clients to secret hosts, one per host.
	transports map[string]*http.Transport

	logLimit logLimiter // the sandbox decides how often refusals happen

	nConns atomic.Int64
	bytes  atomic.Int64
	once   sync.Once
}

// StartDoor wires a sandbox's network namespace (see the package doc) and
// serves it until Close (ctx bounds the setup only). Call it before the
// sandbox runs code.
func StartDoor(ctx context.Context, o DoorOptions) (*Door, error) {
	pol, err := compilePolicy(o.Policy)
	if err != nil {
		return nil, err
	}
	if o.NetNS == "" {
		return nil, errors.New("egress: DoorOptions.NetNS is required")
	}
	setDoorDefaults(&o)
	nsFile, err := os.OpenFile(o.NetNS, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("egress: open network namespace: %w", err)
	}
	defer nsFile.Close()
	if t, err := unix.IoctlRetInt(int(nsFile.Fd()), unix.NS_GET_NSTYPE); err != nil || t != unix.CLONE_NEWNET {
		return nil, fmt.Errorf("egress: %s is not a network namespace", o.NetNS)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	socks, method, err := wireNetNS(ctx, nsFile)
	if err != nil {
		return nil, err
	}
	o.Logger.Debug("egress door wired", "netns", o.NetNS, "via", method)
	dctx, stop := context.WithCancel(context.Background())
	d := &Door{
		o: o, pol: pol, log: o.Logger, s: socks, ctx: dctx, stop: stop,
		conns: map[net.Conn]struct{}{}, names: map[string]netip.Addr{},
		byFake: map[netip.Addr]string{}, refusedNS: map[string]bool{},
	}
	d.dns = &dns.Server{PacketConn: socks.udp, Handler: dns.HandlerFunc(d.serveDNS)}
	started := make(chan struct{})
	d.dns.NotifyStartedFunc = func() { close(started) }
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		if err := d.dns.ActivateAndServe(); err != nil && d.ctx.Err() == nil {
			d.log.Warn("egress door: DNS responder stopped", "err", err)
		}
	}()
	go d.acceptLoop()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		d.Close()
		return nil, errors.New("egress: the DNS responder did not start")
	}
	return d, nil
}

func setDoorDefaults(o *DoorOptions) {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultDoorMaxConns
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultDoorMaxBytes
	}
	if o.MaxNames <= 0 {
		o.MaxNames = DefaultDoorMaxNames
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultDoorMaxRecords
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Resolver == nil {
		o.Resolver = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		o.Dial = d.DialContext
	}
}

// Records returns the door's decisions so far (at most MaxRecords) and how
// many more were not kept.
func (d *Door) Records() ([]Record, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Record, len(d.records))
	for i, r := range d.records {
		r.mu.Lock()
		out[i] = r.r
		out[i].Secrets = slices.Clone(r.r.Secrets)
		out[i].Placeholders = slices.Clone(r.r.Placeholders)
		r.mu.Unlock()
		out[i].BytesOut, out[i].BytesIn = r.out.Load(), r.in.Load()
	}
	return out, d.dropped
}

// Close stops the door: the listeners close, so the sandbox's connections
// and lookups fail from then on (the redirect and filter stay: nothing
// falls back to open). It is safe to call more than once.
func (d *Door) Close() error {
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		conns := make([]net.Conn, 0, len(d.conns))
		for c := range d.conns {
			conns = append(conns, c)
		}
		d.mu.Unlock()
		d.stop()
		_ = d.dns.Shutdown()
		d.s.close()
		for _, c := range conns {
			c.Close()
		}
		d.mu.Lock()
		ts := make([]*http.Transport, 0, len(d.transports))
		for _, t := range d.transports {
			ts = append(ts, t)
		}
		d.mu.Unlock()
		for _, t := range ts { // their connections untrack themselves
			t.CloseIdleConnections()
		}
	})
	d.wg.Wait()
	return nil
}

func (d *Door) newRecord(host string, port int) *record {
	r := &record{r: Record{Host: host, Port: port}}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.records) < d.o.MaxRecords {
		d.records = append(d.records, r)
	} else {
		d.dropped++
	}
	return r
}

// track registers a connection, and a goroutine serving it (so Close
// waits for it), unless the door is closed.
func (d *Door) track(c net.Conn, goroutine bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.conns[c] = struct{}{}
	if goroutine {
		d.wg.Add(1)
	}
	return true
}

func (d *Door) untrack(c net.Conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

// serveDNS answers one query: a fake A record for an allowed name, no data
// for its other types, NXDOMAIN for a name the policy does not allow.
func (d *Door) serveDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	defer func() { _ = w.WriteMsg(m) }()
	if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		m.Rcode = dns.RcodeRefused
		return
	}
	qq := q.Question[0]
	name, kind := normalizeHost(qq.Name)
	if kind != hostName || qq.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeNameError
		return
	}
	if !d.pol.lookupAllowed(name) {
		m.Rcode = dns.RcodeNameError
		d.recordRefusedLookup(name)
		return
	}
	if qq.Qtype != dns.TypeA {
		return // NODATA: only IPv4 leaves the sandbox, through fake addresses
	}
	a, ok := d.fakeFor(name)
	if !ok {
		m.Rcode = dns.RcodeServerFailure
		d.recordRefusedLookupReason(name, fmt.Sprintf("more than %d distinct names looked up in one execution (the door's limit)", d.o.MaxNames))
		return
	}
	m.Answer = append(m.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   a.AsSlice(),
	})
}

func (d *Door) recordRefusedLookup(name string) {
	d.recordRefusedLookupReason(name, "DNS lookup refused: "+reasonNotListed)
}

func (d *Door) recordRefusedLookupReason(name, reason string) {
	d.mu.Lock()
	seen := d.refusedNS[name]
	if !seen && len(d.refusedNS) < d.o.MaxRecords {
		d.refusedNS[name] = true
	}
	d.mu.Unlock()
	if seen {
		return
	}
	d.newRecord(name, 0).set(false, reason)
}

// fakeFor returns the name's fake address, allocating the next one.
func (d *Door) fakeFor(name string) (netip.Addr, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.names[name]; ok {
		return a, true
	}
	if len(d.names) >= d.o.MaxNames {
		return netip.Addr{}, false
	}
	n := uint32(len(d.names) + 1) // 198.18.0.1, 198.18.0.2, ...
	base := netip.AddrFrom4([4]byte(fakeNet.IP.To4()))
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + n
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	d.names[name] = a
	d.byFake[a] = name
	return a, true
}

func (d *Door) acceptLoop() {
	defer d.wg.Done()
	for {
		c, err := d.s.tcp.AcceptTCP()
		if err != nil {
			if d.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Warn("egress door: accept failed", "err", err)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-d.ctx.Done():
				return
			}
			continue
		}
		if !d.track(c, true) {
			c.Close()
			return
		}
		go d.serveConn(c)
	}
}

// serveConn decides one redirected connection, then dials and relays, or
// resets it.
func (d *Door) serveConn(c *net.TCPConn) {
	defer d.wg.Done()
	defer d.untrack(c)
	defer c.Close()
	ip4, port, err := originalDst(c)
	if err != nil {
		d.log.Warn("egress door: no original destination", "err", err)
		reset(c)
		return
	}
	ip := netip.AddrFrom4(ip4)
	host, kind := ip.String(), hostIP
	if fakePrefix.Contains(ip) {
		d.mu.Lock()
		name, ok := d.byFake[ip]
		d.mu.Unlock()
		if !ok {
			d.newRecord(host, port).set(false, "an address in the door's fake range that no DNS answer of this execution gave out")
			reset(c)
			return
		}
		host, kind = name, hostName
	}
	rec := d.newRecord(host, port)
	if n := d.nConns.Add(1); n > int64(d.o.MaxConns) {
		rec.set(false, fmt.Sprintf("over the limit of %d connections per execution (the door's limit)", d.o.MaxConns))
		reset(c)
		return
	}
	if kind == hostName && d.o.Secrets.any(host) {
		if ok, reason := d.pol.destAllowed(host, kind, port); !ok {
			rec.set(false, reason)
			d.logRefusal(host, port, reason)
			reset(c)
			return
		}
		d.intercept(c, host, port, rec)
		return
	}
	up, reason := d.open(host, kind, port)
	d.relayTo(c, up, reason, rec, nil, "")
}

// relayTo relays c to up, first sending prefix (bytes already read from
// c), noting note in the record; with no up it records the refusal reason
// and resets c.
func (d *Door) relayTo(c *net.TCPConn, up net.Conn, reason string, rec *record, prefix []byte, note string) {
	if up == nil {
		rec.set(false, reason)
		d.logRefusal(rec.r.Host, rec.r.Port, reason)
		reset(c)
		return
	}
	if !d.track(up, false) {
		up.Close()
		return
	}
	defer d.untrack(up)
	defer up.Close()
	rec.set(true, note)
	if len(prefix) > 0 {
		if _, err := up.Write(prefix); err != nil {
			return
		}
	}
	if err := d.relay(c, up, rec); err != nil {
		rec.appendReason("ended: " + strings.ReplaceAll(err.Error(), "\n", "; "))
	}
}

// logRefusal logs a refusal at info, rate-limited.
func (d *Door) logRefusal(host string, port int, reason string) {
	ok, suppressed := d.logLimit.allow(time.Now())
	if suppressed > 0 {
		d.log.Warn("egress door: refusal records suppressed (rate limit)", "count", suppressed)
	}
	if ok {
		d.log.Info("egress door: refused", "dest", net.JoinHostPort(host, strconv.Itoa(port)), "reason", reason)
	}
}

var fakePrefix = netip.MustParsePrefix("198.18.0.0/15")

// reset closes with RST, so the client fails at once.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	c.Close()
}

// open decides a destination on the policy alone (a refused name is never
// resolved), then dials it; on refusal or failure it says why.
func (d *Door) open(host string, kind hostKind, port int) (net.Conn, string) {
	if ok, reason := d.pol.destAllowed(host, kind, port); !ok {
		return nil, reason
	}
	return d.dial(host, kind, port)
}

// dial resolves a name on the host (never in the sandbox), vets every
// address, and dials the first that answers.
func (d *Door) dial(host string, kind hostKind, port int) (net.Conn, string) {
	ctx, cancel := context.WithTimeout(d.ctx, d.o.DialTimeout)
	defer cancel()
	var addrs []netip.Addr
	if kind == hostIP {
		addrs = []netip.Addr{netip.MustParseAddr(host)}
	} else {
		res, err := d.o.Resolver(ctx, host)
		if err != nil {
			return nil, "cannot resolve the name on the server: " + shortErr(err)
		}
		var blocked []string
		for _, a := range res {
			if d.pol.dialable(a) {
				addrs = append(addrs, a.Unmap())
			} else {
				blocked = append(blocked, a.Unmap().String())
			}
		}
		if len(addrs) == 0 {
			if len(blocked) > 0 {
				return nil, fmt.Sprintf("the name resolves only to %s: %s", strings.Join(blocked, ", "), reasonNonPublic)
			}
			return nil, "the name has no addresses"
		}
	}
	var lastErr error
	for _, a := range addrs {
		up, err := d.o.Dial(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return up, ""
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return nil, "connecting timed out"
	}
	return nil, "cannot connect: " + shortErr(lastErr)
}

var errByteCap = errors.New("over the door's byte limit per execution")

// relay copies both ways until both sides finish or one fails.
func (d *Door) relay(c *net.TCPConn, up net.Conn, rec *record) error {
	var last atomic.Int64 // unix nanos of the last byte either way
	last.Store(time.Now().UnixNano())
	errc := make(chan error, 1)
	var scan *scanOut
	if d.o.Secrets != nil {
		scan = &scanOut{s: d.o.Secrets, rec: rec}
	}
	go func() {
		err := d.pipe(up, c, &rec.out, &last, scan)
		if err == nil {
			closeWrite(up)
		} else {
			c.Close()
			up.Close()
		}
		errc <- err
	}()
	err := d.pipe(c, up, &rec.in, &last, nil)
	if err == nil {
		closeWrite(c)
	} else {
		c.Close()
		up.Close()
	}
	return errors.Join(err, <-errc)
}

// pipe copies src to dst, counting; it ends on EOF (nil), an error, the
// byte limit, or when neither direction moved for IdleTimeout.
func (d *Door) pipe(dst, src net.Conn, n, last *atomic.Int64, scan *scanOut) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		_ = src.SetReadDeadline(time.Now().Add(max(d.o.IdleTimeout/4, time.Millisecond)))
		k, rerr := src.Read(buf)
		if k > 0 {
			last.Store(time.Now().UnixNano())
			n.Add(int64(k))
			scan.scan(buf[:k])
			if d.bytes.Add(int64(k)) > d.o.MaxBytes {
				return fmt.Errorf("%w (%d bytes)", errByteCap, d.o.MaxBytes)
			}
			_ = dst.SetWriteDeadline(time.Now().Add(d.o.IdleTimeout))
			if _, err := dst.Write(buf[:k]); err != nil {
				return err
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				if time.Now().UnixNano()-last.Load() < int64(d.o.IdleTimeout) {
					continue
				}
				return errIdle
			}
			if errors.Is(rerr, net.ErrClosed) {
				return nil
			}
			return rerr
		}
	}
}
