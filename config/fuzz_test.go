package config

import (
	"slices"
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
