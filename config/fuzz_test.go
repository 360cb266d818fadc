package config

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRunArgs checks, for any input, that accepted output holds only
// allowlisted flags in the normalized form, with no byte outside the token
// character set and no empty or comma-bearing value; that a failure
// returns no arguments; and that parsing is idempotent on its own output.
func FuzzParseRunArgs(f *testing.F) {
	for _, s := range []string{
		"",
		"allow-read=/data",
		"allow-net=a.com,b.com:443,allow-read=/x",
		"allow-net=[::1]:8080,127.0.0.1",
		"allow-env=HOME,AWS_*,allow-sys=hostname",
		"allow-run=git,/usr/bin/env",
		"allow-all,deny-net",
		"deny-read=/etc,deny-import=a.com",
		"allow-read=/x --allow-all",
		"allow-read=/x;rm",
		"allow-net=$(id)",
		"allow-read=/x\nallow-all",
		"v8-flags=--jitless",
		"allow-import",
		"allow-read=/a/../b",
		"allow-read=/a,,b",
		"A,R=/x,-A,--allow-all",
		"allow-read,/data",
		"allow-all=1",
		"allow-net=unix:/x",
		"allow-read=/\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		args, err := ParseRunArgs(in)
		if err != nil {
			if args != nil {
				t.Fatalf("ParseRunArgs(%q) returned %q with error %v", in, args, err)
			}
			return
		}
		seen := map[string]bool{}
		var items []string
		for _, a := range args {
			rest, ok := strings.CutPrefix(a, "--")
			if !ok {
				t.Fatalf("ParseRunArgs(%q): %q has no leading --", in, a)
			}
			if c, bad := badByte(rest, func(c byte) bool { return c == ',' || tokenByte(c) }); bad {
				t.Fatalf("ParseRunArgs(%q): %q contains %s", in, a, c)
			}
			name, value, hasValue := strings.Cut(rest, "=")
			kind, ok := permFlags[name]
			if !ok {
				t.Fatalf("ParseRunArgs(%q): %q is not an allowlisted flag", in, a)
			}
			if name == "allow-import" {
				t.Fatalf("ParseRunArgs(%q) accepted allow-import", in)
			}
			if seen[name] {
				t.Fatalf("ParseRunArgs(%q): %s twice", in, name)
			}
			seen[name] = true
			if hasValue {
				if kind == kindNone {
					t.Fatalf("ParseRunArgs(%q): %q has a value", in, a)
				}
				for _, v := range strings.Split(value, ",") {
					if v == "" || strings.Contains(v, "=") {
						t.Fatalf("ParseRunArgs(%q): %q has a bad value %q", in, a, v)
					}
					if _, err := checkValue(kind, v); err != nil {
						t.Fatalf("ParseRunArgs(%q): %q value %q: %v", in, a, v, err)
					}
					if kind == kindPath && (!strings.HasPrefix(v, "/") || slices.Contains(strings.Split(v, "/"), "..")) {
						t.Fatalf("ParseRunArgs(%q): %q path %q", in, a, v)
					}
				}
			}
			items = append(items, rest)
		}
		again, err := ParseRunArgs(strings.Join(items, ","))
		if err != nil || !slices.Equal(again, args) {
			t.Fatalf("ParseRunArgs(%q) = %q, but reparsing gives %q, %v", in, args, again, err)
		}
		if seen["allow-all"] {
			for name := range seen {
				if name != "allow-all" && strings.HasPrefix(name, "allow-") {
					t.Fatalf("ParseRunArgs(%q): allow-all with %s", in, name)
				}
			}
		}
		r, _ := parseRunArgs(in)
		if r.allowAll != seen["allow-all"] {
			t.Fatalf("ParseRunArgs(%q): allowAll %v", in, r.allowAll)
		}
		if r.network && !seen["allow-all"] && !seen["allow-net"] {
			t.Fatalf("ParseRunArgs(%q): network without allow-net or allow-all", in)
		}
	})
}

// FuzzMetricsAddr checks that an accepted MCP_CONDUCTOR_METRICS_ADDR is a HOST:PORT whose port
// is a number from 1 to 65535 and whose host is empty, localhost or a literal IP address, and
// that what is kept is the value as given.
func FuzzMetricsAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9464", "[::1]:9464", ":1", "localhost:65535", "host:80", "1.2.3.4:0",
		"[fe80::1%eth0]:80", "127.0.0.1:9464\n", ":", "[]:80", "127.0.0.1:0x50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var s Settings
		if err := parseMetricsAddr(in, &s); err != nil {
			if s.MetricsAddr != "" {
				t.Fatalf("refused %q but kept %q", in, s.MetricsAddr)
			}
			return
		}
		if s.MetricsAddr != in {
			t.Fatalf("accepted %q as %q", in, s.MetricsAddr)
		}
		host, port, err := net.SplitHostPort(in)
		if err != nil {
			t.Fatalf("accepted %q, which is not HOST:PORT: %v", in, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("accepted %q with port %q", in, port)
		}
		if _, err := netip.ParseAddr(host); err != nil && host != "" && host != "localhost" {
			t.Fatalf("accepted %q with host %q", in, host)
		}
	})
}
