package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/conductor-sandbox/conductor/egress"
)

// TestReturnValueEncoding: the module's default export comes back in the
// documented JSON form, whatever its type.
func TestReturnValueEncoding(t *testing.T) {
	r := newTestRunner(t, nil)
	tests := []struct {
		name  string
		code  string
		want  string // canonical JSON
		trunc bool
	}{
		{"number", "export default 42", `42`, false},
		{"string", `export default "a\"b"`, `"a\"b"`, false},
		{"null", "export default null", `null`, false},
		{"undefined", "export default undefined", `{"$type":"undefined"}`, false},
		{"no default export", "const x = 1", `{"$type":"undefined"}`, false},
		{"NaN", "export default NaN", `{"$type":"number","value":"NaN"}`, false},
		{"-Infinity", "export default -Infinity", `{"$type":"number","value":"-Infinity"}`, false},
		{"negative zero", "export default -0", `{"$type":"number","value":"-0"}`, false},
		{"bigint", "export default 12345678901234567890n", `{"$type":"bigint","value":"12345678901234567890"}`, false},
		{"symbol", "export default Symbol('s')", `{"$type":"symbol","description":"s"}`, false},
		{"function", "export default function named() {}", `{"$type":"function","name":"named"}`, false},
		{"date", "export default new Date(0)", `{"$type":"Date","value":"1970-01-01T00:00:00.000Z"}`, false},
		{"invalid date", "export default new Date(NaN)", `{"$type":"Date","value":null}`, false},
		{"regexp", "export default /a+b/gi", `{"$type":"RegExp","source":"a+b","flags":"gi"}`, false},
		{"map", "export default new Map([[1, 'a'], ['k', {x: 1}]])", `{"$type":"Map","entries":[[1,"a"],["k",{"x":1}]]}`, false},
		{"set", "export default new Set([1, 2n])", `{"$type":"Set","values":[1,{"$type":"bigint","value":"2"}]}`, false},
		{"typed array", "export default new Uint8Array([1, 2, 255])", `{"$type":"Uint8Array","values":[1,2,255]}`, false},
		{"array buffer", "export default new Uint8Array([104, 105]).buffer", `{"$type":"ArrayBuffer","base64":"aGk="}`, false},
		{"nested undefined", "export default {a: undefined, b: [undefined]}", `{"a":{"$type":"undefined"},"b":[{"$type":"undefined"}]}`, false},
		{"circular", "const o: any = {name: 'o'}; o.self = o; export default o", `{"name":"o","self":{"$type":"circular","path":"$"}}`, false},
		{"shared, not circular", "const s = {v: 1}; export default [s, s]", `[{"v":1},{"v":1}]`, false},
		{"class instance", "class P { constructor(public x: number) {} }; export default new P(3)", `{"$type":"object","class":"P","value":{"x":3}}`, false},
		{"object with $type key", `export default {"$type": "x"}`, `{"$type":"object","value":{"$type":"x"}}`, false},
		{"promise is awaited", "export default Promise.resolve(7)", `7`, false},
		{"nested promise", "export default {p: Promise.resolve(1)}", `{"p":{"$type":"Promise"}}`, false},
		{"toJSON", "export default new URL('https://example.com/a?b=1')", `"https://example.com/a?b=1"`, false},
		{"throwing getter", "export default {get bad() { throw new Error('no') }}", `{"bad":{"$type":"unreadable","message":"no"}}`, false},
		{"huge string is cut", "export default 'x'.repeat(2_000_000)", ``, true},
		{"huge array is cut", "export default Array.from({length: 500000}, (_, i) => i)", ``, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runCode(t, r, tc.code, 20*time.Second)
			if res.Status != StatusSuccess {
				t.Fatalf("status %s: %+v %s", res.Status, res.Error, res.Stderr)
			}
			if res.ReturnTruncated != tc.trunc {
				t.Errorf("truncated = %v, want %v", res.ReturnTruncated, tc.trunc)
			}
			if len(res.ReturnValue) > DefaultResultLimit+4096 {
				t.Errorf("encoded result is %d bytes, over the %d limit", len(res.ReturnValue), DefaultResultLimit)
			}
			if tc.want == "" {
				return
			}
			if got := canonical(t, res.ReturnValue); got != canonical(t, []byte(tc.want)) {
				t.Errorf("returnValue = %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("error value", func(t *testing.T) {
		res := runCode(t, r, "const e = new TypeError('bad', {cause: 1});\nexport default e", 20*time.Second)
		var v struct {
			Type, Name, Message, Stack string
			Cause                      int
		}
		if err := json.Unmarshal(res.ReturnValue, &struct {
			Type    *string `json:"$type"`
			Name    *string `json:"name"`
			Message *string `json:"message"`
			Stack   *string `json:"stack"`
			Cause   *int    `json:"cause"`
		}{&v.Type, &v.Name, &v.Message, &v.Stack, &v.Cause}); err != nil {
			t.Fatal(err)
		}
		if v.Type != "Error" || v.Name != "TypeError" || v.Message != "bad" || v.Cause != 1 || !strings.Contains(v.Stack, "main.ts:1:") {
			t.Errorf("error encoded as %s", res.ReturnValue)
		}
	})
}

func TestGlobals(t *testing.T) {
	r := newTestRunner(t, nil)
	run := func(code, globals string) *Result {
		res, err := r.Run(context.Background(), Job{Code: code, Globals: json.RawMessage(globals), Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := run(`export default [city, globalThis.city, n + 1, Object.getOwnPropertyDescriptor(globalThis, "city")?.writable]`, `{"city": "Oslo", "n": 41}`)
	if got := canonical(t, res.ReturnValue); got != `["Oslo","Oslo",42,false]` {
		t.Fatalf("globals: %s (%+v)", got, res.Error)
	}
	res = run(`"use strict"; globalThis.city = "Bergen"; export default city`, `{"city": "Oslo"}`)
	if res.Status != StatusError || res.Error == nil || !strings.Contains(res.Error.Message, "read only") {
		t.Fatalf("assigning a read-only global: %s %+v", res.Status, res.Error)
	}
	res = run(`export default 1`, `{"Deno": 1}`)
	if res.Status != StatusError || res.Error == nil || !strings.Contains(res.Error.Message, "shadow") {
		t.Fatalf("a global shadowing Deno: %s %+v", res.Status, res.Error)
	}
}

func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestRewordPermission(t *testing.T) {
	tests := []struct {
		in, want string // want "" = kept as it is
	}{
		{`Requires net access to "example.com:443", run again with the --allow-net flag`,
			`net access to "example.com:443" was refused: this server does not grant it, and only its admin can (allow-net in MCP_CONDUCTOR_RUN_ARGS)`},
		{`Requires read access to "/etc/passwd", run again with the --allow-read flag`,
			`read access to "/etc/passwd" was refused: this server does not grant it, and only its admin can (allow-read in MCP_CONDUCTOR_RUN_ARGS)`},
		{`Requires env access to "HOME", run again with the --allow-env flag`, `env access to "HOME" was refused`},
		{`Requires run access to "git", run again with the --allow-run flag`, `and MCP_CONDUCTOR_TOOLS for the program itself`},
		{`Requires sys access to "hostname", run again with the --allow-sys flag`, `sys access to "hostname" was refused`},
		{`Requires ffi access, run again with the --allow-ffi flag`, `ffi access was refused`},
		{`Requires write access to "/x", run again with the --allow-write flag`, `write access to "/x" was refused`},
		{`Requires net access to "a", run again with the --allow-read flag`, ""}, // the flags disagree: not deno's shape
		{`Requires time access to "x", run again with the --allow-time flag`, ""},
		{`Requires net access to "a", run again with the --allow-net flag; and more`, ""},
		{`Requires net accessory`, ""},
		{`Something else`, ""},
	}
	for _, tc := range tests {
		got, ok := rewordPermission(tc.in)
		switch {
		case tc.want == "" && ok:
			t.Errorf("rewordPermission(%q) = %q; want it kept", tc.in, got)
		case tc.want != "" && (!ok || !strings.Contains(got, tc.want)):
			t.Errorf("rewordPermission(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		case ok && strings.Contains(got, "run again"):
			t.Errorf("rewordPermission(%q) = %q keeps deno's advice", tc.in, got)
		}
	}
}

// TestRewordNetwork: a failed connection's message says what the door decided and why, from
// the run's network records; deno's text is left to the caller to keep as the cause.
func TestRewordNetwork(t *testing.T) {
	const (
		notListed  = "not in the server's allow-net (MCP_CONDUCTOR_RUN_ARGS); only the admin can add it"
		fetchReset = "fetch failed: error sending request for url (http://%s/): client error (Connect): tcp connect error: Connection reset by peer (os error 104)"
		nonPublic  = "a loopback, private, link-local, CGNAT or metadata address: reachable only through an IP-literal allow-net entry or a range in MCP_CONDUCTOR_NET_PRIVATE, which only the admin sets"
	)
	refused := func(host string, port int, reason string) egress.Record {
		return egress.Record{Host: host, Port: port, Reason: reason}
	}
	allowed := egress.Record{Host: "127.0.0.1", Port: 8080, Allowed: true, BytesOut: 10, BytesIn: 20}
	tests := []struct {
		name    string
		e       ErrorInfo
		recs    []egress.Record
		want    string // "" = kept as it is
		without []string
	}{
		{
			name: "refused unresolvable host",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "TypeError", Message: fmt.Sprintf(fetchReset, "other.example")},
			recs: []egress.Record{allowed, refused("other.example", 80, "cannot resolve the name on the server: no such host")},
			want: "fetch failed: the server cannot resolve the name other.example: no such host (the server's network policy allows it)",
		},
		{
			name: "refused unlisted host",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "TypeError", Message: fmt.Sprintf(fetchReset, "unlisted.test:8080")},
			recs: []egress.Record{refused("unlisted.test", 0, "DNS lookup refused: "+notListed)},
			want: "fetch failed: the server's network policy refused the name unlisted.test (its DNS lookup): " + notListed,
		},
		{
			name: "refused unlisted port",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "TypeError", Message: fmt.Sprintf(fetchReset, "127.0.0.1:9999")},
			recs: []egress.Record{refused("127.0.0.1", 9999, notListed), allowed},
			want: "fetch failed: the server's network policy refused 127.0.0.1:9999: " + notListed,
		},
		{
			name:    "allowed host, connection refused",
			e:       ErrorInfo{Type: ErrorRuntime, Name: "TypeError", Message: fmt.Sprintf(fetchReset, "127.0.0.1:1234")},
			recs:    []egress.Record{refused("127.0.0.1", 1234, "cannot connect: connect: connection refused")},
			want:    "fetch failed: cannot connect to 127.0.0.1:1234: connection refused (the server's network policy allows it; the connection itself failed)",
			without: []string{"policy refused", "admin"},
		},
		{
			name: "Deno.connect names no host: the last refusal, and how many others",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "ConnectionReset", Message: "Connection reset by peer (os error 104)"},
			recs: []egress.Record{refused("10.1.2.3", 80, nonPublic), allowed, refused("127.0.0.1", 5432, nonPublic), allowed},
			want: "connection failed: the server's network policy refused 127.0.0.1:5432: " + nonPublic + " (the result's network list has 1 other refused destination(s) of this run)",
		},
		{
			name: "node's ECONNRESET names its destination",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "Error", Message: "connect ECONNRESET 10.1.2.3:80"},
			recs: []egress.Record{refused("10.1.2.3", 80, nonPublic), refused("127.0.0.1", 5432, nonPublic)},
			want: "connection failed: the server's network policy refused 10.1.2.3:80: " + nonPublic + " (the result's network list has 1 other refused destination(s) of this run)",
		},
		{
			name: "ECONNRESET before a path names no host (FuzzErrorText/econnreset-slash): the last refusal",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "Error", Message: "connect ECONNRESET /"},
			recs: []egress.Record{refused("10.1.2.3", 80, nonPublic)},
			want: "connection failed: the server's network policy refused 10.1.2.3:80: " + nonPublic,
		},
		{
			name: "the named host was allowed: the failure is not the door's",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "TypeError", Message: fmt.Sprintf(fetchReset, "127.0.0.1:8080")},
			recs: []egress.Record{refused("127.0.0.1", 9999, notListed), allowed},
		},
		{
			name: "IPv6 literal: the door has no record of it",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "TypeError", Message: "fetch failed: error sending request for url (http://[::1]:1234/): client error (Connect): tcp connect error: Connection refused (os error 111)"},
			recs: []egress.Record{refused("127.0.0.1", 9999, notListed)},
		},
		{
			name: "no refusal recorded",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "ConnectionReset", Message: "Connection reset by peer (os error 104)"},
			recs: []egress.Record{allowed},
		},
		{
			name: "a non-network error is untouched",
			e:    ErrorInfo{Type: ErrorRuntime, Name: "Error", Message: "boom"},
			recs: []egress.Record{refused("127.0.0.1", 9999, notListed)},
		},
		{
			name: "deno's permission refusal is not the door's",
			e:    ErrorInfo{Type: ErrorPermission, Name: "NotCapable", Message: `Requires net access to "127.0.0.1:9999", run again with the --allow-net flag`},
			recs: []egress.Record{refused("127.0.0.1", 9999, notListed)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := rewordNetwork(tc.e, tc.recs)
			switch {
			case tc.want == "" && ok:
				t.Errorf("reworded to %q; want it kept", got)
			case tc.want != "" && (!ok || got != tc.want):
				t.Errorf("got %q, %v\nwant %q", got, ok, tc.want)
			}
			for _, w := range tc.without {
				if strings.Contains(got, w) {
					t.Errorf("%q says %q", got, w)
				}
			}
		})
	}
}

// TestUncaughtErrorCause: an uncaught error's message carries its cause chain (an Error's
// message or a string) when the message does not already hold it, bounded; name and stack stay
// the error's own.
func TestUncaughtErrorCause(t *testing.T) {
	r := newTestRunner(t, nil)
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name, code, message string
	}{
		{"Error cause", `throw new TypeError("fetch failed", { cause: new Error("Connection refused (os error 111)") })`,
			"fetch failed: Connection refused (os error 111)"},
		{"string cause", `throw new Error("outer", { cause: "a string" })`, "outer: a string"},
		{"a chain", `throw new Error("a", { cause: new Error("b", { cause: new RangeError("c") }) })`, "a: b: c"},
		{"cause already in the message", `throw new Error("load failed: disk full", { cause: new Error("disk full") })`,
			"load failed: disk full"},
		{"other causes are not text", `throw new Error("outer", { cause: { code: 7 } })`, "outer"},
		{"no cause", `throw new Error("plain")`, "plain"},
		{"a long cause is cut", `throw new Error("outer", { cause: "` + long + `" })`, "outer: " + long[:500] + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runCode(t, r, tc.code, 20*time.Second)
			if res.Status != StatusError || res.Error == nil {
				t.Fatalf("status %s, error %+v", res.Status, res.Error)
			}
			if res.Error.Message != tc.message {
				t.Errorf("message = %q, want %q", res.Error.Message, tc.message)
			}
			if first, _, _ := strings.Cut(res.Error.Stack, "\n"); strings.Contains(first, "cause") || !strings.Contains(res.Error.Stack, "main.ts:1:") ||
				(tc.name == "Error cause" && (res.Error.Name != "TypeError" || first != "TypeError: fetch failed")) {
				t.Errorf("name %q, stack %q: want the error's own", res.Error.Name, res.Error.Stack)
			}
		})
	}
}
