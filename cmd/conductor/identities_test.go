package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/identity"
)

// TestIdentityHash: `conductor identity hash` prints the token's SHA-256 as the config file's
// line (the newline after the token is not part of it), and refuses what cannot be a token.
func TestIdentityHash(t *testing.T) {
	token := "abcdefghijklmnopq"
	for _, tc := range []struct {
		name, in string
		args     []string
		code     int
		out, err string
	}{
		{"line", token + "\n", []string{"hash"}, 0, `"token_sha256": "` + identity.Hash(token) + `"` + "\n", ""},
		{"no newline", token, []string{"hash"}, 0, `"token_sha256": "` + identity.Hash(token) + `"` + "\n", ""},
		{"crlf", token + "\r\n", []string{"hash"}, 0, `"token_sha256": "` + identity.Hash(token) + `"` + "\n", ""},
		{"short", "abc\n", []string{"hash"}, 1, "", "at least 16 characters"},
		{"two lines", token + "\n" + token + "\n", []string{"hash"}, 1, "", "one line"},
		{"long", strings.Repeat("a", maxTokenBytes+1), []string{"hash"}, 1, "", "longer than 4096"},
		{"no verb", token, nil, 2, "", "usage: conductor identity hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"identity"}, tc.args...), strings.NewReader(tc.in), &out, &errb)
			if code != tc.code || out.String() != tc.out || !strings.Contains(errb.String(), tc.err) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errb.String(), tc.code, tc.out, tc.err)
			}
		})
	}
}

// TestIdentitiesCheck: doctor lists the identities with their quotas, never their hashes.
func TestIdentitiesCheck(t *testing.T) {
	s, err := identity.Parse([]byte(`[{"name":"alice","token_sha256":"` + identity.Hash("alice-token-123456") + `","quotas":{"concurrent":2,"cpu_seconds_per_hour":60}},{"name":"stdio"}]`))
	if err != nil {
		t.Fatal(err)
	}
	c := identitiesCheck(s)
	want := "alice (concurrent 2, cpu_seconds_per_hour 60), stdio (no quotas); HTTP clients authenticate with their identity's token"
	if !c.OK || c.Detail != want || strings.Contains(c.Detail, identity.Hash("alice-token-123456")) {
		t.Fatalf("check %+v, want detail %q", c, want)
	}
}

// TestWorkspaceFor: with identities that have tokens and a workspace, each known identity gets its
// own, one with "workspace": false none, stdio its own even unlisted, and an unknown one none.
func TestWorkspaceFor(t *testing.T) {
	set, err := identity.Parse([]byte(`[{"name":"alice","token_sha256":"` + identity.Hash("a") + `"},{"name":"bob","token_sha256":"` + identity.Hash("b") + `","workspace":false}]`))
	if err != nil {
		t.Fatal(err)
	}
	a := &app{identities: identity.NewStore(set)}
	if workspaceFor(a, config.Settings{Identities: set}) != nil {
		t.Fatal("a choice without a workspace")
	}
	f := workspaceFor(a, config.Settings{Identities: set, Workspace: "/srv/ws"})
	for _, tc := range []struct {
		who  string
		sub  string
		none bool
	}{{"alice", "alice", false}, {"bob", "", true}, {"stdio", "stdio", false}, {"mallory", "", true}, {"", "", true}} {
		sub, none := f(event.WithScope(context.Background(), event.Scope{Identity: tc.who}))
		if sub != tc.sub || none != tc.none {
			t.Errorf("%q: %q, %v; want %q, %v", tc.who, sub, none, tc.sub, tc.none)
		}
	}
}
