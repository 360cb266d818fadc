// Package egress is the network of sandboxes: the door (StartDoor), which
// listens inside a sandbox's network namespace and decides, resolves and
// dials from the host's. Runs and dependency installs both go through it,
// with different policies (see Installs below).
//
// # The door
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
//     UDP, ICMP and IPv6 fail with EPERM, except IPv6 TCP (which the
//     redirect does not take), answered with a reset so that connect fails
//     at once with ECONNREFUSED instead of retransmitting its SYN until
//     the run's timeout.
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
// Rootless: entering a network namespace with setns(2) needs CAP_SYS_ADMIN
// over the namespace's owning user namespace AND in the caller's own user
// namespace. Root has both; a rootless server has only the first (it
// created the sandbox's user namespace) and gets EPERM. It would have to
// join the sandbox's user namespace first, which a multi-threaded process
// (any Go program) cannot do. StartDoor then re-executes its binary
// (/proc/self/exe) as the door helper: the C constructor (helper_cgo.go)
// joins the sandbox's user and network namespaces while the process is
// still single-threaded, the Go runtime starts inside them with the
// capabilities they grant, MaybeDoorHelper (called by sandbox.MaybeInit)
// installs the addresses, routes and nftables table, sends the two sockets
// back over SCM_RIGHTS, and exits; the table and the sockets outlive it.
// This needs a cgo build (the constructor lives in this package, so any
// binary importing it has it). Measured: ~10 ms.
//
// # Installs
//
// A dependency-install sandbox gets a door too, with a registry-only
// policy: its Allow is the npm registry's host:port and nothing else, no
// AnyPublic, no private grants (package sandbox: Runner.doorFor). deno
// reaches the registry as it would any host, through the responder and
// the redirect; no proxy variables are set.
//
// # Secrets
//
// Secrets (NewSecrets; MCP_CONDUCTOR_NET_SECRETS) let code use a credential
// it never holds. Code sees each secret's name as an environment variable
// holding a placeholder ("conductor-secret-NAME-<random>", made at server
// start). A connection to a name some secret may go to is intercepted
// (intercept.go): if the sandbox speaks TLS, the door terminates it with a
// certificate for that name from a per-server CA (ECDSA P-256, key only in
// this process's memory, constrained to DNS names; sandboxes trust its
// certificate through DENO_CERT, nothing else does), and proxies HTTP/1.1
// (net/http/httputil: hop-by-hop headers, upgrades, streaming) to the same
// name:port over its own resolve-vet-dial path and a TLS connection that
// verifies the upstream's certificate against the host's roots. It puts
// the real value in place of a placeholder in request headers only (Basic
// credentials included), never in the URL or body: an API that reflects
// a body or URL (a gist, an issue, an error page) would hand the value to
// the code. Real values in the answer (headers and a streamed body, which
// the door asks uncompressed; trailers too) go back as the placeholder;
// an answer in an encoding the door cannot read is refused (502). After a
// protocol upgrade (101, WebSocket) the stream is relayed unchecked: the
// value went out in the handshake's headers, an echo of it in frames
// would not be caught. A request on
// that connection for another Host gets 421, and a ClientHello naming
// another server fails the handshake: the connection is to the name the
// DNS answer was for. A placeholder sent to any other host, or over plain
// HTTP, goes out as the placeholder; the record lists it under
// Placeholders when the door can see it (not inside TLS to a host without
// secrets, which the door does not terminate: there it is only the
// placeholder). Only hosts with secrets are intercepted, so clients that
// pin or bring their own CA keep working everywhere else.
//
// Limits: outside secret hosts the door decides on the name and port, and
// does not see inside TLS, so a connection to an allowed host:port carries
// whatever the client sends there, including a different SNI/Host (domain
// fronting through a CDN that still permits it).
package egress
