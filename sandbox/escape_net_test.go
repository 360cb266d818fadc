package sandbox

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/egress"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

//go:embed testdata/escape/net.ts
var netProbeProgram string

// TestEscapeNetwork: deno's own net check bypassed with FFI (libc's socket,
// connect, sendto called directly), the door is the wall. With
// allow-net=127.0.0.1:<port> only that destination is reachable; with
// allow-all, loopback, private and metadata addresses stay unreachable
// (nothing dialed). In both, UDP reaches only the DNS responder, and raw
// and packet sockets and IPv6 are refused (IPv6 TCP with ECONNREFUSED).
func TestEscapeNetwork(t *testing.T) {
	httpPort, otherPort, otherHits := hostServers(t)
	hp := strconv.Itoa(httpPort)
	listed, err := egress.NewPolicy([]string{"127.0.0.1:" + hp}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	anyPublic, err := egress.NewPolicy(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	const reached = "hello from the host, GET /ffi"
	refused := func(v string) bool { return strings.HasPrefix(v, "E") }
	closedSock := func(v string) bool { return v == "E1" || v == "E13" || v == "E97" }
	variants := []struct {
		name   string
		flags  []string
		pol    egress.Policy
		checks map[string]func(string) bool
		dialed []string // what the door may dial
		recs   map[string]string
	}{
		{
			name:  "allow-net=127.0.0.1:port, FFI",
			flags: []string{"--allow-ffi", "--allow-read", "--allow-net=127.0.0.1:" + hp},
			pol:   listed,
			checks: map[string]func(string) bool{
				"tcp listed": func(v string) bool { return strings.Contains(v, reached) },
			},
			dialed: []string{"127.0.0.1:" + hp},
			recs: map[string]string{
				"127.0.0.1:" + strconv.Itoa(otherPort): "not in the server's allow-net",
				"127.0.0.2:" + hp:                      "not in the server's allow-net",
				"10.1.2.3:80":                          "not in the server's allow-net",
				"169.254.169.254:80":                   "not in the server's allow-net",
				"example.com:0":                        "not in the server's allow-net",
			},
		},
		{
			name:  "allow-all, FFI",
			flags: []string{"--allow-all"},
			pol:   anyPublic,
			checks: map[string]func(string) bool{
				"tcp listed": refused, // loopback is not public
			},
			recs: map[string]string{
				"127.0.0.1:" + hp:    "loopback",
				"10.1.2.3:80":        "private",
				"169.254.169.254:80": "metadata",
			},
		},
	}
	common := map[string]func(string) bool{
		"tcp unlisted port":         refused,
		"tcp 127.0.0.2 listed port": refused,
		"tcp 10.1.2.3:80":           refused,
		"tcp 169.254.169.254:80":    refused,
		"tcp6 [::1] listed port":    func(v string) bool { return v == "E111" }, // reset at once: ECONNREFUSED, no hang
		"udp 127.0.0.1:5353":        func(v string) bool { return v == "E1" },
		"udp 10.1.2.3:53":           func(v string) bool { return v == "E1" },
		"raw icmp socket":           closedSock,
		"packet socket":             closedSock,
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			h := &netHooks{}
			r := newNetRunner(t, v.flags, v.pol, h)
			params, _ := json.Marshal(map[string]any{"listed": httpPort, "other": otherPort,
				"wait": testenv.Scale(time.Second).Milliseconds()})
			res, err := r.Run(context.Background(), Job{Code: "const PARAMS = " + string(params) + ";\n" + netProbeProgram, Timeout: testenv.Scale(60 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != StatusSuccess {
				t.Fatalf("probe: %s %+v\nstderr: %s", res.Status, res.Error, lastLines(res.Stderr, 20))
			}
			var out map[string]string
			if err := json.Unmarshal(res.ReturnValue, &out); err != nil {
				t.Fatalf("report %s: %v", res.ReturnValue, err)
			}
			for name, ok := range common {
				if !ok(out[name]) {
					t.Errorf("%s = %q: reached or not refused as it should be", name, out[name])
				} else {
					t.Logf("%s -> %s", name, out[name])
				}
			}
			for name, ok := range v.checks {
				if !ok(out[name]) {
					t.Errorf("%s = %q; the door's records: %+v", name, out[name], res.Network)
				} else {
					t.Logf("%s -> %s", name, out[name])
				}
			}
			if !strings.HasPrefix(out["udp responder"], "OK ") {
				t.Errorf("udp to the DNS responder = %q, want an answer", out["udp responder"])
			}
			for k, why := range v.recs {
				host, port, _ := strings.Cut(k, ":")
				p, _ := strconv.Atoi(port)
				rec, ok := findRecord(res.Network, host, p)
				if !ok || rec.Allowed || !strings.Contains(rec.Reason, why) {
					t.Errorf("record %s = %+v (found %v), want refused: %q; all: %+v", k, rec, ok, why, res.Network)
				}
			}
			h.mu.Lock()
			dialed := append([]string(nil), h.dialed...)
			h.mu.Unlock()
			for _, d := range dialed {
				if _, err := netip.ParseAddrPort(d); err != nil || !contains(v.dialed, d) {
					t.Errorf("the door dialed %s; may dial only %v", d, v.dialed)
				}
			}
		})
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the unlisted host port got %d connections", n)
	}
}
