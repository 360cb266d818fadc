package mcp_test

// Identities end to end (issue 17, must show 1): the built `conductor serve --http` with a
// config file of identities, go-sdk clients each with its identity's token, real sandboxes.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/identity"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// identitiesConfig is a config file's text with the named identities, tokens "<name>-token";
// quotas maps a name to its quotas' JSON; ws, when not "", is the workspace, which code may read
// and write.
func identitiesConfig(ws string, names []string, quotas map[string]string) string {
	var items []string
	for _, n := range names {
		q := quotas[n]
		if q == "" {
			q = "{}"
		}
		items = append(items, fmt.Sprintf(`{"name": %q, "token_sha256": %q, "quotas": %s}`, n, identity.Hash(n+"-token"), q))
	}
	extra := ""
	if ws != "" {
		extra = fmt.Sprintf(`"workspace": %q, "run_args": ["allow-read=%s", "allow-write=%s"], `, ws, ws, ws)
	}
	return `{"pool_size": 1, "max_concurrency": 2, ` + extra + `"identities": [` + strings.Join(items, ", ") + `]}`
}

// postWithToken sends an initialize to /mcp with token and returns the status and body.
func postWithToken(t *testing.T, url, token string) (int, string) {
	return postAs(t, url, token, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)
}

// postAs sends body to /mcp with token (and an Mcp-Session-Id when session is not "").
func postAs(t *testing.T, url, token, session, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestE2EIdentities: alice (executions_per_minute 2) and bob (no quotas) each connect with their
// own token. A burst of three of alice's calls: the third is refused with error.type quota and a
// message naming the quota, its limit, alice, when it resets and the admin; bob's three calls all
// run. A wrong token and no token get 401 saying what to send; bob's token on alice's session
// gets 403. A reload adds carol: her token
// then works, and alice's and bob's SAME sessions keep working (bob runs, alice's session answers
// with its quota); a second reload removes carol: her token is refused from then on, her open
// session's next call too. /metrics counts the executions by identity.
func TestE2EIdentities(t *testing.T) {
	file := filepath.Join(t.TempDir(), "conductor.json")
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	ws, _ = filepath.EvalSymlinks(ws)
	quotas := map[string]string{"alice": `{"executions_per_minute": 2}`}
	writeAtomic(t, file, identitiesConfig(ws, []string{"alice", "bob"}, quotas))
	s := startHTTPWith(t, httpStart{env: []string{"MCP_CONDUCTOR_CONFIG=" + file}, noToken: true})

	alice := mustConnectHTTP(t, s, "alice-token", nil)
	bob := mustConnectHTTP(t, s, "bob-token", nil)
	hello := map[string]any{"deno_code": "1 + 1"}

	// Each identity sees only its own workspace: <ws>/<identity>/ on the host, at ws inside.
	for _, tc := range []struct {
		who string
		cs  *sdk.ClientSession
	}{{"alice", alice}, {"bob", bob}} {
		code := fmt.Sprintf(`Deno.writeTextFileSync(%q, "mine");
const names = []; for await (const e of Deno.readDir(%q)) names.push(e.name); names.sort().join(",")`, ws+"/"+tc.who+".txt", ws)
		if r := run(t, tc.cs, map[string]any{"deno_code": code}); r.out["returnValue"] != tc.who+".txt" {
			t.Errorf("%s's workspace: %v; want only %s.txt", tc.who, r, tc.who)
		}
	}

	for i, tc := range []struct {
		who   string
		cs    *sdk.ClientSession
		quota bool // refused by the quota
	}{
		{"alice", alice, false}, {"bob", bob, false},
		{"alice", alice, true}, {"bob", bob, false}, {"bob", bob, false},
	} {
		r := run(t, tc.cs, hello)
		if !tc.quota {
			expectSuccess(t, r)
			continue
		}
		msg, _ := r.errField("message").(string)
		if r.errField("type") != "quota" || !r.res.IsError {
			t.Fatalf("call %d (%s): %v; want error.type quota", i, tc.who, r)
		}
		for _, want := range []string{`identity "alice"`, "executions_per_minute", "limit 2 executions per minute", "resets in ", "The admin sets quotas"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the quota's message %q lacks %q", msg, want)
			}
		}
	}

	for who, want := range map[string]string{"alice": "alice.txt", "bob": "bob.txt"} {
		st, err := os.Stat(filepath.Join(ws, who))
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("the host's %s/%s: %v, %v; want a 0700 directory", ws, who, st, err)
		}
		if _, err := os.Stat(filepath.Join(ws, who, want)); err != nil {
			t.Errorf("%s's file is not in %s/%s/: %v", who, ws, who, err)
		}
	}
	if entries, _ := os.ReadDir(ws); len(entries) != 2 {
		t.Errorf("the workspace holds %d entries, want only alice/ and bob/", len(entries))
	}

	for _, tc := range []struct{ name, token, want string }{
		{"wrong token", "nope", "no identity's"},
		{"no token", "", "send Authorization: Bearer <token>"},
		{"the hash as token", identity.Hash("alice-token"), "no identity's"},
	} {
		if code, body := postWithToken(t, s.url, tc.token); code != http.StatusUnauthorized || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q; want 401 with %q", tc.name, code, body, tc.want)
		}
	}

	// A session is bound to its identity: bob's token cannot use alice's session.
	if code, body := postAs(t, s.url, "bob-token", alice.ID(), `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}`); code != http.StatusForbidden {
		t.Errorf("bob's token on alice's session: %d %q; want 403 (session user mismatch)", code, body)
	}

	// A reload adds carol.
	writeAtomic(t, file, identitiesConfig(ws, []string{"alice", "bob", "carol"}, quotas))
	testenv.WaitFor(t, "the reload adding carol", 20*time.Second, func() bool {
		return strings.Contains(s.stderr.String(), "changed=identities")
	})
	carol := mustConnectHTTP(t, s, "carol-token", nil)
	expectSuccess(t, run(t, carol, hello))
	expectSuccess(t, run(t, bob, hello))
	if r := run(t, alice, hello); r.errField("type") != "quota" {
		t.Errorf("alice's session after the reload: %v; want her quota still counted (error.type quota)", r)
	}

	// Another removes her: her token stops working, for her open session too.
	writeAtomic(t, file, identitiesConfig(ws, []string{"alice", "bob"}, quotas))
	testenv.WaitFor(t, "the reload removing carol", 20*time.Second, func() bool {
		return strings.Count(s.stderr.String(), "changed=identities") >= 2
	})
	if code, body := postWithToken(t, s.url, "carol-token"); code != http.StatusUnauthorized {
		t.Errorf("carol's token after her removal: %d %q; want 401", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := carol.CallTool(ctx, &sdk.CallToolParams{Name: toolName, Arguments: hello}); err == nil {
		t.Error("carol's open session still runs code after her identity was removed")
	}
	expectSuccess(t, run(t, bob, hello))

	m := scrapeMetrics(t, s.base+"/metrics", "bob-token")
	for series, want := range map[string]float64{
		`conductor_executions_total{identity="bob",status="success",tool="run_deno_code"}`:             6,
		`conductor_executions_total{identity="alice",status="success",tool="run_deno_code"}`:           2,
		`conductor_execution_refusals_total{error_type="quota",identity="alice",tool="run_deno_code"}`: 2,
		`conductor_executions_total{identity="carol",status="success",tool="run_deno_code"}`:           1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
}
