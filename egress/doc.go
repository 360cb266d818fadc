// Package egress is an allowlisting HTTP/CONNECT proxy that listens inside a
// sandbox's network namespace and dials from the host's.
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
