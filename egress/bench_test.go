package egress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkConnectSetup: one CONNECT tunnel set up and used for a 1-byte
// round trip, from inside the namespace, vs the same round trip on a direct
// host loopback connection.
func BenchmarkConnectSetup(b *testing.B) {
	requireRoot(b)
	ns := newNetNS(b)
	echo := newEcho(b)
	p := startProxy(b, ns, nil, Options{Allow: []Rule{loopRule(echo.port)}, MaxConns: 1024})
	one := []byte{'x'}
	b.Run("proxied", func(b *testing.B) {
		var failed error
		err := ns.inNS(func() {
			buf := make([]byte, 1)
			for i := 0; i < b.N; i++ {
				c, err := net.Dial("tcp", p.Addr())
				if err != nil {
					failed = err
					return
				}
				fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\n", echo.addr)
				br := bufio.NewReader(c)
				if code, _, err := readHead(br); err != nil || code != 200 {
					failed = fmt.Errorf("CONNECT: %d %v", code, err)
					return
				}
				c.Write(one)
				if _, err := io.ReadFull(br, buf); err != nil {
					failed = err
					return
				}
				c.Close()
			}
		})
		if err != nil || failed != nil {
			b.Fatal(err, failed)
		}
	})
	b.Run("direct", func(b *testing.B) {
		buf := make([]byte, 1)
		for i := 0; i < b.N; i++ {
			c, err := net.Dial("tcp", echo.addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Write(one)
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// BenchmarkThroughput: bulk download through one tunnel vs directly.
func BenchmarkThroughput(b *testing.B) {
	requireRoot(b)
	ns := newNetNS(b)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() { // an endless source
		chunk := make([]byte, 256<<10)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
		}
	}()
	src := ln.Addr().String()
	p := startProxy(b, ns, nil, Options{Allow: []Rule{loopRule(portOf(ln))}})
	const per = 1 << 20
	b.Run("proxied", func(b *testing.B) {
		var c net.Conn
		if err := ns.inNS(func() { c, err = net.Dial("tcp", p.Addr()) }); err != nil || c == nil {
			b.Fatal(err)
		}
		defer c.Close()
		code, br := connect(b, c, src)
		if code != 200 {
			b.Fatal(code)
		}
		b.SetBytes(per)
		b.ResetTimer()
		if _, err := io.CopyN(io.Discard, br, int64(b.N)*per); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("direct", func(b *testing.B) {
		c, err := net.Dial("tcp", src)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.SetBytes(per)
		b.ResetTimer()
		if _, err := io.CopyN(io.Discard, c, int64(b.N)*per); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkStart: creating the in-namespace listener and starting to serve.
func BenchmarkStart(b *testing.B) {
	requireRoot(b)
	ns := newNetNS(b)
	for i := 0; i < b.N; i++ {
		p, err := Start(context.Background(), Options{NetNS: ns.path})
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}
