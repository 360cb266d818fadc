// Package egress is the network of sandboxes: the door of run sandboxes
// (StartDoor) and the allowlisting HTTP/CONNECT proxy of install sandboxes
// (Start). Both listen inside a sandbox's network namespace and dial from
// the host's.
//
// # The door (runs)
//
// One Policy: the admin's allow-net entries (deno's syntax: names,
// name:port, IP literals; no port = every port) are deno's flag AND what
// the door enforces below deno, so allow-all with FFI, or a deno bug, still
// reaches only what is listed. Bare allow-net or allow-all is AnyPublic:
// any name, any public address, any port. Loopback, private, link-local,
// CGNAT, multicast and metadata addresses are dialed only for an IP-literal
// entry, or inside a range the admin grants (Policy.Private,
// MCP_CONDUCTOR_NET_PRIVATE); a name resolving only to other such
// addresses is refused at connect time (DNS rebinding).
//
// StartDoor wires the sandbox's otherwise empty network namespace before
// deno runs (root: setns on a locked thread):
//
//   - 198.18.0.0/15 (RFC 2544 benchmarking space) is assigned to lo, and a
//     default route points at lo, so every IPv4 connect is local;
//   - a DNS responder (github.com/miekg/dns) on 127.0.0.53:53, which the
//     root's /etc/resolv.conf names, answers a name the policy allows with
//     a fake address from that range (one per name, per execution; AAAA
//     and other types get no data) and NXDOMAIN for any other name, which
//     is never resolved anywhere. Deno.resolveDns works (the sandbox's
//     deno is granted the responder's address);
//   - an nftables table (github.com/google/nftables, over netlink: no
//     binary) redirects every IPv4 TCP connection to the door's listener
//     on 127.0.0.1:DoorPort, and its output filter (policy drop) lets
//     through only replies, that redirect, and UDP to the responder: other
//     UDP, ICMP and all IPv6 fail with EPERM.
//
// The listener is served from the host: SO_ORIGINAL_DST gives the address
// the sandbox dialed; a fake address maps back to its name. The door then
// decides name:port (or ip:port) on the policy alone, resolves a name on
// the host, vets every address, dials, and relays, counting bytes; a
// refusal resets the connection and is recorded with its reason (Records:
// the result's network list). Limits per door, i.e. per execution:
// connections (MaxConns), bytes both ways (MaxBytes), names (MaxNames),
// records kept (MaxRecords), and an idle timeout.
//
// Why a redirect and not listeners per fake-ip:port (the getsockname
// trick, verified too): allow-net without a port means every port, and an
// any-public policy every address, which no fixed set of listeners covers;
// one redirect rule covers them, and the same table is where UDP and IPv6
// are closed. The sandbox's own loopback servers are therefore not
// reachable over TCP when network is on (127.0.0.1 means the host's, as
// the admin's allow-net does). Fail closed: the table outlives the door, so
// when the door is closed or dies, connections are refused and lookups
// fail; nothing falls back to open.
//
// Measured (2 shared CPUs, 10 starts each): StartDoor takes 5 ms median
// (3–12 ms): netlink, one nftables batch, two sockets, the responder; a
// sandbox start with the door was within noise of one without (74–84 ms
// vs 77–80 ms median).
//
// Rootless: setns into the sandbox's network namespace needs CAP_SYS_ADMIN
// in the server's own user namespace, which a rootless server lacks (see
// below). StartDoor then re-executes its binary as the door helper: the C
// constructor (helper_cgo.go) joins the sandbox's user and network
// namespaces while the process is single-threaded, the Go runtime starts
// inside them with the capabilities they grant, MaybeDoorHelper (called by
// sandbox.MaybeInit) installs the addresses, routes and nftables table and
// sends the two sockets back over SCM_RIGHTS, and exits; the table and the
// sockets outlive it. Measured: ~10 ms.
//
// # The install proxy
//
// Installs go through the door too, with the registry-only allowlist:
// package sandbox no longer uses this proxy (Start). It is kept, with its
// tests, until the integrator decides to remove it.
//
// A sandbox's network namespace holds only lo: there is no route anywhere.
// Start creates a TCP listener on 127.0.0.1:<port> INSIDE that namespace (a
// socket keeps the namespace it was created in) and serves it from the host
// process; deno in the sandbox is pointed at it with HTTP_PROXY/HTTPS_PROXY
// (ProxyEnv). Only destinations matching an allow Rule are forwarded.
//
//	p, err := egress.Start(ctx, egress.Options{
//		NetNS: fmt.Sprintf("/proc/%d/ns/net", initPid),
//		Port:  3128,
//		Allow: []egress.Rule{{Host: "registry.npmjs.org", Port: 443}},
//	})
//	defer p.Close()
//
// What it accepts, per connection (one request per connection):
//
//   - CONNECT host:port → 200 and a byte tunnel if allowed, else 403.
//   - An absolute-form plain HTTP request (GET http://host[:port]/path) →
//     forwarded in origin form if allowed, hop-by-hop headers stripped, Host
//     set from the URL (never the client's Host header), Connection: close.
//   - Anything else → 400 (origin-form requests to the proxy itself, https://
//     absolute-form, userinfo, percent-encoded or numeric-shorthand hosts),
//     417/505 for an unsupported Expect or HTTP version, 431 for a
//     request head over MaxHeaderBytes, 408 if it is not sent within
//     HeaderTimeout, 503 over MaxConns.
//
// The policy is decided on the request text alone, before any DNS lookup or
// dial: a denied name is never resolved. An allowed name is resolved on the
// host, every resolved address is vetted (no loopback, private, link-local,
// CGNAT, ... unless AllowPrivate), and only a vetted IP is dialed, so DNS
// rebinding cannot turn an allowed name into the host's own services. An IP
// literal is reachable only through an IP-literal rule.
//
// Rootless: entering a network namespace with setns(2) needs CAP_SYS_ADMIN
// over the namespace's owning user namespace AND in the caller's own user
// namespace. Root has both; a rootless server has only the first (it created
// the sandbox's user namespace) and gets EPERM. It would have to join the
// sandbox's user namespace first, which multi-threaded processes cannot do.
// Start then re-executes its own binary (/proc/self/exe) as a helper whose C
// constructor joins the user and network namespaces before the Go runtime
// starts, creates the listener and hands it back over a socketpair; the
// proxy itself still runs in the server. This needs a cgo build (the
// constructor lives in this package, so any binary importing it has it).
//
// Limits: the proxy cannot see inside TLS, so a CONNECT tunnel to an allowed
// host:port carries whatever the client sends there, including a different
// SNI/Host (domain fronting through a CDN that still permits it).
package egress
