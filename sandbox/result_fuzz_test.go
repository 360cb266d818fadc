package sandbox

import (
	"strconv"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/egress"
)

// FuzzErrorText: an error's name and message come from the sandboxed code,
// which can throw anything. What the host rewords from them is bounded and
// says who can grant: a permission refusal only in deno's exact shape and
// with no advice to rerun left; a missing program's name quoted, short and
// on one line; a failed connection explained only by a destination the
// door refused, never by one it allowed.
func FuzzErrorText(f *testing.F) {
	for _, s := range [][2]string{
		{"NotCapable", `Requires net access to "example.com:443", run again with the --allow-net flag`},
		{"NotCapable", `Requires run access to "git", run again with the --allow-run flag`},
		{"NotCapable", `Requires write access, run again with the --allow-write flag`},
		{"NotCapable", `Requires net access to "x", run again with the --allow-read flag`},
		{"NotFound", "Failed to spawn 'git': entity not found"},
		{"Error", "spawn git ENOENT"},
		{"Error", "spawnSync " + strings.Repeat("p", 80) + " ENOENT"},
		{"TypeError", "fetch failed: error sending request for url (https://blocked.example/x)"},
		{"TypeError", "fetch failed: error sending request for url (https://ok.example/)"},
		{"ConnectionReset", "Connection reset by peer (os error 104)"},
		{"Error", "connect ECONNRESET [::1]:99999"},
	} {
		f.Add(s[0], s[1])
	}
	recs := []egress.Record{
		{Host: "blocked.example", Port: 443, Reason: "not in the server's allow-net (MCP_CONDUCTOR_RUN_ARGS); only the admin can add it"},
		{Host: "ok.example", Port: 443, Allowed: true},
	}
	f.Fuzz(func(t *testing.T, name, msg string) {
		if out, ok := rewordPermission(msg); ok {
			if !strings.Contains(out, "only its admin can (") || strings.Contains(out, "run again with") ||
				len(out) > len(msg)+200 || !strings.HasPrefix(msg, "Requires ") {
				t.Fatalf("rewordPermission(%q) = %q", msg, out)
			}
		}
		if prog, ok := missingProgram(ErrorInfo{Name: name, Message: msg}); ok {
			s, err := strconv.Unquote(prog)
			if err != nil || s == "" || len(s) > 64+len("...") || strings.ContainsAny(prog, " \n") {
				t.Fatalf("missingProgram(%q) = %s (%v)", msg, prog, err)
			}
		}
		if host, _, ok := namedDest(msg); ok {
			if host == "" || host != strings.ToLower(host) || strings.ContainsAny(host, " \t\n/") {
				t.Fatalf("namedDest(%q) = %q", msg, host)
			}
		}
		out, ok := rewordNetwork(ErrorInfo{Type: ErrorRuntime, Name: name, Message: msg}, recs)
		if !ok {
			return
		}
		if !strings.Contains(out, "blocked.example") || strings.Contains(out, "ok.example") || !strings.Contains(out, "admin") {
			t.Fatalf("rewordNetwork(%q) = %q", msg, out)
		}
		if host, _, named := namedDest(msg); named && host != "blocked.example" {
			t.Fatalf("%q names %q, yet was explained by blocked.example", msg, host)
		}
	})
}
