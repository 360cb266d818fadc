package egress

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// In-namespace addresses of the door.
var (
	// FakeRange is where the DNS responder's answers come from (RFC 2544
	// benchmarking space, never a real destination). It is assigned to
	// the sandbox's lo.
	fakeNet = net.IPNet{IP: net.IPv4(198, 18, 0, 0).To4(), Mask: net.CIDRMask(15, 32)}
	// dnsAddr is the responder, named by the root's /etc/resolv.conf.
	dnsAddr = [4]byte{127, 0, 0, 53}
)

// ResolverAddr is the DNS responder inside a sandbox, as the root's
// /etc/resolv.conf names it.
const ResolverAddr = "127.0.0.53:53"

// DoorPort is the port the door's TCP listener uses on 127.0.0.1 inside
// the sandbox; every TCP connection the sandbox opens is redirected there.
const DoorPort = 1

// nftTable names the door's nftables table in the sandbox's netns.
const nftTable = "conductor_door"

// doorSockets are the door's sockets, created inside the sandbox's network
// namespace.
type doorSockets struct {
	tcp *net.TCPListener
	udp net.PacketConn
}

// setupNetNS enters the network namespace on a locked thread, assigns the
// fake range to lo, installs the redirect and filter, and creates the
// door's sockets. Root only: setns needs CAP_SYS_ADMIN in this process's
// user namespace (rootless is refused, see StartDoor).
func setupNetNS(target *os.File) (doorSockets, error) {
	type result struct {
		s   doorSockets
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("egress: open own network namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("egress: setns into the sandbox network namespace: %w", err)}
			return
		}
		s, werr := configureHere()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Deliberately no UnlockOSThread: this thread must die.
			s.close()
			ch <- result{err: fmt.Errorf("egress: setns back to the host network namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{s, werr}
	}()
	r := <-ch
	return r.s, r.err
}

func (s doorSockets) close() {
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.udp != nil {
		s.udp.Close()
	}
}

// configureHere does the work in the calling thread's network namespace.
func configureHere() (doorSockets, error) {
	if err := routeFakeRange(); err != nil {
		return doorSockets{}, err
	}
	if err := installFilter(); err != nil {
		return doorSockets{}, err
	}
	tcpFd, err := listenLoopback(DoorPort)
	if err != nil {
		return doorSockets{}, err
	}
	tcp, err := fileListener(tcpFd)
	if err != nil {
		return doorSockets{}, err
	}
	udp, err := listenDNS()
	if err != nil {
		tcp.Close()
		return doorSockets{}, err
	}
	return doorSockets{tcp: tcp, udp: udp}, nil
}

// routeFakeRange brings lo up, assigns the fake range to it (so a connect
// to any fake address is local) and routes everything else IPv4 to lo too,
// so a connect to any address reaches the redirect instead of failing
// with "network unreachable" (the filter drops whatever is not redirected).
func routeFakeRange() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("egress: netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("egress: lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("egress: lo up: %w", err)
	}
	fake := fakeNet
	if err := h.AddrAdd(lo, &netlink.Addr{IPNet: &fake}); err != nil {
		return fmt.Errorf("egress: assign %v to lo: %w", &fake, err)
	}
	def := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Scope: netlink.SCOPE_LINK}
	if err := h.RouteAdd(def); err != nil {
		return fmt.Errorf("egress: default route to lo: %w", err)
	}
	return nil
}

// installFilter installs, in the calling thread's network namespace:
//
//	table inet conductor_door {
//	  chain nat { type nat hook output priority -100;
//	    meta nfproto ipv4 meta l4proto tcp redirect to :DoorPort }
//	  chain out { type filter hook output priority 0; policy drop;
//	    ct state established,related accept
//	    ip daddr 127.0.0.1 tcp dport DoorPort accept
//	    ip daddr 127.0.0.53 udp dport 53 accept
//	    meta l4proto tcp reject with tcp reset }
//	}
//
// So every IPv4 TCP connection lands on the door, UDP reaches only the DNS
// responder, and everything else is dropped (EPERM to the sender: other
// UDP, ICMP, raw IPv6) — except TCP the redirect did not take (IPv6, as
// to [::1]): it is answered with a reset, so connect fails at once with
// ECONNREFUSED. A dropped SYN would make connect retransmit until the
// run's timeout instead.
func installFilter() error {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return fmt.Errorf("egress: nftables: %w", err)
	}
	defer c.CloseLasting()
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: nftTable})
	nat := c.AddChain(&nftables.Chain{
		Name: "nat", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
	})
	drop := nftables.ChainPolicyDrop
	out := c.AddChain(&nftables.Chain{
		Name: "out", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &drop,
	})
	port := binary.BigEndian.AppendUint16(nil, DoorPort)
	c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: concat(
		matchProto(unix.NFPROTO_IPV4, unix.IPPROTO_TCP),
		[]expr.Any{
			&expr.Immediate{Register: 1, Data: port},
			&expr.Redir{RegisterProtoMin: 1},
		},
	)})
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
			Xor:  []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: concat(
		matchProto(unix.NFPROTO_IPV4, unix.IPPROTO_TCP),
		matchDest([4]byte{127, 0, 0, 1}, port),
		[]expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}},
	)})
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: concat(
		matchProto(unix.NFPROTO_IPV4, unix.IPPROTO_UDP),
		matchDest(dnsAddr, binary.BigEndian.AppendUint16(nil, 53)),
		[]expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}},
	)})
	// Last: TCP still here was not redirected (IPv4 TCP always is, and is
	// accepted above), i.e. IPv6. A reset makes its connect fail at once.
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("egress: install the nftables redirect and filter: %w", err)
	}
	return nil
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// matchProto matches the network family and transport protocol.
func matchProto(family, l4 byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{family}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}},
	}
}

// matchDest matches the IPv4 destination address and the transport
// destination port (TCP and UDP both keep it at offset 2).
func matchDest(ip [4]byte, port []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
	}
}

// listenDNS creates the responder's UDP socket on 127.0.0.53:53.
func listenDNS() (net.PacketConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("egress: dns socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 53, Addr: dnsAddr}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("egress: bind 127.0.0.53:53 in the sandbox network namespace: %w", err)
	}
	f := os.NewFile(uintptr(fd), "egress-dns")
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("egress: dns socket: %w", err)
	}
	return pc, nil
}

// originalDst is the destination a redirected connection was made to
// (SO_ORIGINAL_DST, from conntrack).
func originalDst(c *net.TCPConn) (ip [4]byte, port int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return ip, 0, err
	}
	var gerr error
	cerr := rc.Control(func(fd uintptr) {
		// struct sockaddr_in is 16 bytes, as is struct ipv6_mreq.
		var m *unix.IPv6Mreq
		m, gerr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
		if gerr == nil {
			port = int(m.Multiaddr[2])<<8 | int(m.Multiaddr[3])
			copy(ip[:], m.Multiaddr[4:8])
		}
	})
	if cerr != nil {
		return ip, 0, cerr
	}
	return ip, port, gerr
}
