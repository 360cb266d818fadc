package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseRunArgs(t *testing.T) {
	long := strings.Repeat("a", 63) + ".example" // longest label
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"allow-read=/data", []string{"--allow-read=/data"}},
		{"allow-read=/", []string{"--allow-read=/"}},
		{"allow-read=/data,allow-net=api.example.com", []string{"--allow-read=/data", "--allow-net=api.example.com"}},
		{"allow-net=a.com,b.com,allow-read=/x", []string{"--allow-net=a.com,b.com", "--allow-read=/x"}},
		{"allow-read=/a,/b,/c,allow-write=/b", []string{"--allow-read=/a,/b,/c", "--allow-write=/b"}},
		{"allow-read=/data/my-dir_1/v2.0+x@y", []string{"--allow-read=/data/my-dir_1/v2.0+x@y"}},
		{"allow-net", []string{"--allow-net"}},
		{"allow-read,allow-write=/tmp", []string{"--allow-read", "--allow-write=/tmp"}},
		{"allow-all", []string{"--allow-all"}},
		{"allow-all,deny-net", []string{"--allow-all", "--deny-net"}},
		{"deny-read=/etc,allow-all,deny-env=SECRET", []string{"--deny-read=/etc", "--allow-all", "--deny-env=SECRET"}},
		{"allow-env=HOME,PATH,AWS_*,_X,x1", []string{"--allow-env=HOME,PATH,AWS_*,_X,x1"}},
		{"allow-env=A", []string{"--allow-env=A"}},
		{"allow-env=HOME,A,R", []string{"--allow-env=HOME,A,R"}}, // letters after a list flag are values
		{"allow-sys=hostname,osRelease,systemMemoryInfo", []string{"--allow-sys=hostname,osRelease,systemMemoryInfo"}},
		{"allow-run=git,/usr/bin/python3,git-upload-pack,c++", []string{"--allow-run=git,/usr/bin/python3,git-upload-pack,c++"}},
		{"allow-ffi=/usr/lib/libfoo.so", []string{"--allow-ffi=/usr/lib/libfoo.so"}},
		{
			"allow-net=127.0.0.1,127.0.0.1:8080,[::1],[::1]:443,localhost:3000,API.Example.COM,xn--bcher-kva.de:1,a.com:65535",
			[]string{"--allow-net=127.0.0.1,127.0.0.1:8080,[::1],[::1]:443,localhost:3000,api.example.com,xn--bcher-kva.de:1,a.com:65535"},
		},
		{"allow-net=[2001:db8::1]:8443,[::ffff:10.0.0.1]", []string{"--allow-net=[2001:db8::1]:8443,[::ffff:10.0.0.1]"}},
		{"allow-net=a1.example,1a.example,0.0.0.0", []string{"--allow-net=a1.example,1a.example,0.0.0.0"}},
		{"deny-import=evil.example:443", []string{"--deny-import=evil.example:443"}},
		{
			"deny-read=/etc,/root,deny-write,deny-net=10.0.0.1,deny-env=SECRET_*,deny-sys,deny-run,deny-ffi",
			[]string{"--deny-read=/etc,/root", "--deny-write", "--deny-net=10.0.0.1", "--deny-env=SECRET_*", "--deny-sys", "--deny-run", "--deny-ffi"},
		},
		{"allow-net=" + long, []string{"--allow-net=" + long}},
	}

	for _, tt := range tests {
		got, err := ParseRunArgs(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseRunArgs(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRunArgsErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Injection attempts.
		{"space then flag", "allow-read=/x --allow-all", "a space"},
		{"semicolon", "allow-read=/x;rm", `";"`},
		{"command substitution", "allow-net=$(id)", `"$"`},
		{"backticks", "allow-read=/x`id`", "\"`\""},
		{"pipe", "allow-read=/x|sh", `"|"`},
		{"ampersand", "allow-read=/x&", `"&"`},
		{"redirect", "allow-read=/x>/y", `">"`},
		{"single quotes", "allow-read='/x'", `"'"`},
		{"double quotes", `allow-read="/x"`, `"\""`},
		{"backslash", `allow-read=/x\y`, `"\\"`},
		{"newline", "allow-read=/x\nallow-all", "a newline"},
		{"carriage return", "allow-read=/x\r", "control byte 0x0d"},
		{"tab", "allow-read=/x\ty", "control byte 0x09"},
		{"NUL", "allow-read=/x\x00", "a NUL byte"},
		{"DEL", "allow-read=/x\x7f", "control byte 0x7f"},
		{"non-ASCII", "allow-read=/caf\u00e9", "non-ASCII byte 0xc3"},
		{"invalid UTF-8", "allow-read=/\xff", "non-ASCII byte 0xff"},
		{"tilde", "allow-read=~/x", `"~"`},
		{"hash", "allow-read=/x#y", `"#"`},
		{"v8-flags with value", "v8-flags=--max-old-space-size=1", "deno runtime option"},
		{"v8-flags bare", "v8-flags", "deno runtime option"},
		{"v8-flags as continuation", "allow-run=deno,v8-flags", "deno runtime option"},
		{"config", "config=/tmp/deno.json", "deno runtime option"},
		{"import-map", "import-map=/x.json", "deno runtime option"},
		{"unstable-ffi", "unstable-ffi", "deno runtime option"},
		{"unstable", "unstable", "deno runtime option"},
		{"inspect", "inspect=0.0.0.0:9229", "deno runtime option"},
		{"allow-scripts", "allow-scripts", "allow-scripts is not accepted"},
		{"allow-import bare", "allow-import", "remote imports are disabled"},
		{"allow-import list", "allow-import=deno.land,esm.sh", "remote imports are disabled"},
		{"permission-set", "permission-set=x", "permission-set is not accepted"},
		{"ignore-read", "ignore-read=/x", "ignore-read is not accepted"},
		{"ignore-env", "ignore-env", "ignore-env is not accepted"},
		{"no-prompt", "no-prompt", "no-prompt is not accepted"},
		{"removed allow-hrtime", "allow-hrtime", `unknown flag "allow-hrtime"`},
		{"unknown flag", "allow-everything=1", `unknown flag "allow-everything"`},
		{"a flag in another case, after a value list", "allow-net=a,allOw-r", `unknown flag "allOw-r"`},
		{"unknown name with =", "FOO=bar", `unknown flag "FOO"`},
		{"short A", "A", "short flags are not accepted; write allow-all"},
		{"short R with value", "R=/data", "short flags are not accepted; write allow-read"},
		{"short P", "P=x", "write permission-set"},
		{"dash A", "-A", "without leading dashes"},
		{"dashes", "--allow-read=/x", "without leading dashes"},
		{"dashes in continuation", "allow-net=a.com,--allow-all", "without leading dashes"},
		{"value before any flag", "/data", "no flag that takes values comes before it"},
		{"allow-all with allow-net", "allow-net=a.com,allow-all", `item 1 "allow-net=a.com": allow-all already grants every permission and deno refuses it alongside allow-net`},
		{"allow-all with bare allow-read", "allow-all,allow-read", "alongside allow-read"},
		{"given twice", "allow-read=/a,allow-read=/b", "allow-read is given twice"},
		{"bare then list", "allow-read,allow-read=/b", "allow-read is given twice"},
		{"allow-all value", "allow-all=true", "allow-all takes no value"},
		{"allow-all continuation", "allow-all,/x", "allow-all takes no values"},
		{"allow-all then A", "allow-all,A", "allow-all takes no values"},
		{"bare flag then value", "allow-read,/data", `allow-read was given without "=" (all paths); to list values write allow-read=/data`},
		{"empty value", "allow-read=", "empty value"},
		{"empty item", "allow-read=/a,,b", "empty item"},
		{"doubled comma", "allow-read=/a,,/b", "empty item"},
		{"leading comma", ",allow-all", "empty item"},
		{"trailing comma", "allow-all,", "empty item"},
		{"only a comma", ",", "empty item"},

		// Paths.
		{"dotdot", "allow-read=/data/../etc", `contains a ".." element`},
		{"dotdot relative", "allow-read=../etc", "not an absolute path"},
		{"dotdot end", "allow-write=/data/..", `".." element`},
		{"relative", "allow-read=data", "not an absolute path"},
		{"dot relative", "allow-read=./data", "not an absolute path"},
		{"relative continuation", "allow-read=/a,b", `"b" is not an absolute path`},
		{"trailing slash", "allow-read=/x/", `not a clean path`},
		{"double slash", "allow-write=/x//y", `write "/x/y"`},
		{"dot element", "allow-ffi=/x/./y", "not a clean path"},
		{"equals in path", "allow-read=/a=b", `"="`},
		{"star in path", "allow-read=/x*", `"*"`},
		{"colon in path", "allow-read=/a:b", `":"`},
		{"brackets in path", "allow-read=/[a]", `"["`},

		// Hosts.
		{"port 0", "allow-net=a.com:0", `port "0"`},
		{"port too big", "allow-net=a.com:65536", `port "65536"`},
		{"port leading zero", "allow-net=a.com:080", `port "080"`},
		{"port empty", "allow-net=a.com:", `port ""`},
		{"port range", "allow-net=a.com:1-5", `port "1-5"`},
		{"port plus", "allow-net=a.com:+80", `port "+80"`},
		{"bare IPv6", "allow-net=::1", "must be written in brackets"},
		{"IPv6 unclosed", "allow-net=[::1", "no closing ]"},
		{"IPv4 in brackets", "allow-net=[1.2.3.4]", "is not an IPv6 address"},
		{"IPv6 zone", "allow-net=[fe80::1%eth0]", `"%"`},
		{"text after bracket", "allow-net=[::1]x", "text after ]"},
		{"wildcard host", "allow-net=*.a.com", "not a valid host name"},
		{"underscore host", "allow-net=a_b.com", "not a valid host name"},
		{"leading hyphen label", "allow-net=a.-b.com", "not a valid host name"},
		{"trailing hyphen label", "allow-net=a-.com", "not a valid host name"},
		{"trailing dot", "allow-net=a.com.", "not a valid host name"},
		{"empty host", "allow-net=:443", "empty host"},
		{"label too long", "allow-net=" + strings.Repeat("a", 64) + ".com", "not a valid host name"},
		{"name too long", "allow-net=" + strings.Repeat("a.", 127) + "aa", "longer than 253"},
		{"short IPv4", "allow-net=1.2.3", "not a valid IPv4 address"},
		{"IPv4 out of range", "allow-net=256.1.1.1", "not a valid IPv4 address"},
		{"IPv4 leading zero", "allow-net=01.2.3.4", "not a valid IPv4 address"},
		{"numeric host", "allow-net=123", "not a valid IPv4 address"},
		{"unix socket", "allow-net=unix:/var/run/docker.sock", "unix socket"},
		{"URL", "allow-net=http://a.com", `port "//a.com"`},
		{"deny-net bad host", "deny-net=a..b", "not a valid host name"},
		{"deny-import bad host", "deny-import=a b", "a space"},

		// Other value kinds.
		{"env digit first", "allow-env=1X", "not an environment variable name"},
		{"env hyphen", "allow-env=A-B", "not an environment variable name"},
		{"env star only", "allow-env=*", "not an environment variable name"},
		{"env star middle", "allow-env=A*B", "not an environment variable name"},
		{"env path", "allow-env=/x", "not an environment variable name"},
		{"sys unknown", "allow-sys=inspector", "not a deno system API name"},
		{"sys case", "allow-sys=HOSTNAME", "not a deno system API name"},
		{"run relative path", "allow-run=bin/x", "not a program name"},
		{"run dot path", "allow-run=./x", "not a program name"},
		{"run dotdot path", "allow-run=../bin/x", "not a program name"},
		{"run abs dotdot", "allow-run=/usr/../bin/x", `".." element`},
		{"run dash", "allow-run=-rf", "not a program name"},
		{"run dash continuation", "allow-run=git,-rf", "without leading dashes"},
		{"run at", "allow-run=a@b", "not a program name"},
		{"run star", "allow-run=*", "not a program name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRunArgs(tt.in)
			if err == nil {
				t.Fatalf("ParseRunArgs(%q) = %q, nil; want error containing %q", tt.in, got, tt.want)
			}
			if got != nil {
				t.Errorf("ParseRunArgs(%q) returned %q with an error; want nil", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRunArgs(%q) error:\n%v\nwant it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

// TestParseRunArgsReportsAll checks that every bad item is reported, not
// just the first, and that follow-on items of a refused flag are not.
func TestParseRunArgsReportsAll(t *testing.T) {
	tests := []struct {
		in   string
		want []string // one substring per reported problem, in order
	}{
		{
			"allow-import=a.com,b.com,v8-flags=x,allow-read=rel,/ok,also-rel,allow-net=$(id)",
			[]string{`item 1 "allow-import=a.com"`, `item 3 "v8-flags=x"`, `item 4 "allow-read=rel"`, `item 6 "also-rel"`, `item 7 "allow-net=$(id)"`},
		},
		{
			"allow-read=/a,,b,allow-env=1,2",
			[]string{`item 2 ""`, `item 3 "b"`, `item 4 "allow-env=1"`, `item 5 "2"`},
		},
		{
			"allow-read=/a,allow-all,allow-env=1",
			[]string{`item 1 "allow-read=/a": allow-all already grants`, `item 3 "allow-env=1": allow-env value`, `item 3 "allow-env=1": allow-all already grants`},
		},
		{
			"A,allow-read=/a,allow-read=/b,/c,deny-sys=x,y",
			[]string{`item 1 "A"`, `item 3 "allow-read=/b"`, `item 5 "deny-sys=x"`, `item 6 "y"`},
		},
	}
	for _, tt := range tests {
		_, err := ParseRunArgs(tt.in)
		j, ok := err.(interface{ Unwrap() []error })
		if !ok {
			t.Errorf("ParseRunArgs(%q) error %v is not a joined error", tt.in, err)
			continue
		}
		errs := j.Unwrap()
		if len(errs) != len(tt.want) {
			t.Errorf("ParseRunArgs(%q) reported %d problems, want %d:\n%v", tt.in, len(errs), len(tt.want), err)
			continue
		}
		for i, e := range errs {
			if !strings.HasPrefix(e.Error(), tt.want[i]) {
				t.Errorf("ParseRunArgs(%q) problem %d = %q, want prefix %q", tt.in, i, e, tt.want[i])
			}
		}
	}
}

func TestRunArgsNetwork(t *testing.T) {
	tests := []struct {
		in       string
		allowAll bool
		network  bool
		hosts    []string
	}{
		{"", false, false, nil},
		{"allow-read=/x,allow-run,allow-ffi,allow-sys,allow-env", false, false, nil},
		{"allow-net", false, true, nil},
		{"allow-net=a.com,B.com:443", false, true, []string{"a.com", "b.com:443"}},
		{"allow-all", true, true, nil},
		{"allow-net=a.com,deny-net", false, false, nil},
		{"allow-all,deny-net", true, false, nil},
		{"allow-net,deny-net=a.com", false, true, nil},
		{"allow-net=a.com,b.com,deny-net=b.com", false, true, []string{"a.com", "b.com"}},
		{"deny-net", false, false, nil},
		{"deny-import=a.com", false, false, nil},
	}
	for _, tt := range tests {
		r, err := parseRunArgs(tt.in)
		if err != nil {
			t.Errorf("parseRunArgs(%q): %v", tt.in, err)
			continue
		}
		if r.allowAll != tt.allowAll || r.network != tt.network || !slices.Equal(r.netHosts, tt.hosts) || (r.netHosts == nil) != (tt.hosts == nil) {
			t.Errorf("parseRunArgs(%q) = allowAll %v, network %v, hosts %q; want %v, %v, %q",
				tt.in, r.allowAll, r.network, r.netHosts, tt.allowAll, tt.network, tt.hosts)
		}
	}
}

// TestRunArgsTables keeps the flag tables consistent with each other.
func TestRunArgsTables(t *testing.T) {
	if len(permOrder) != len(permFlags) {
		t.Errorf("permOrder has %d names, permFlags %d", len(permOrder), len(permFlags))
	}
	for _, name := range permOrder {
		if _, ok := permFlags[name]; !ok {
			t.Errorf("permOrder names %q, which is not in permFlags", name)
		}
		if _, ok := refusedFlags[name]; ok {
			t.Errorf("%q is both accepted and refused", name)
		}
		if slices.Contains(runtimeOptions, name) {
			t.Errorf("%q is both accepted and a runtime option", name)
		}
		if !looksLikeFlag(name) {
			t.Errorf("looksLikeFlag(%q) = false", name)
		}
	}
	for name := range refusedFlags {
		if !looksLikeFlag(name) {
			t.Errorf("looksLikeFlag(%q) = false", name)
		}
	}
	for short, long := range shortForms {
		if _, ok := permFlags[long]; !ok && refusedFlags[long] == "" {
			t.Errorf("short form %s maps to %q, which is neither accepted nor refused", short, long)
		}
	}
}

func TestParseRunArgsRefusedFlagSwallowsValues(t *testing.T) {
	// A refused flag's continuation values are not reported again as
	// separate problems, and the output is nil.
	got, err := ParseRunArgs("allow-import=a.com,b.com,c.com")
	if got != nil || err == nil {
		t.Fatalf("got %q, %v", got, err)
	}
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) || len(j.Unwrap()) != 1 {
		t.Errorf("want exactly one problem, got %v", err)
	}
}
