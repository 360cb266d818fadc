package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDoctorUpstreams: `conductor doctor` checks the MCP config (an invalid
// one fails it: serve would refuse to start), starts the upstreams and shows
// the admin what code never sees — how a failing one ended and its last
// stderr lines — and fails on it; -upstreams=false leaves them alone.
func TestDoctorUpstreams(t *testing.T) {
	secret := "doctor-secret-4711"
	write := func(t *testing.T, cfg string) string {
		p := filepath.Join(t.TempDir(), "mcp-config.json")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write(t, `{"mcpServers": {
		"broken": {"command": "sh", "args": ["-c", "printf '%s' \"$TOKEN\" | base64 >&2; echo 'broken: cannot start without a database' >&2; exit 3"],
		           "env": {"TOKEN": "${DOCTOR_TOKEN}"}, "requireApproval": ["create", "drop"]},
		"off": {"command": "nothing", "disabled": true, "requireApproval": true}}}`)
	env := []string{"MCP_CONDUCTOR_MCP_CONFIG=" + good, "DOCTOR_TOKEN=" + secret}

	t.Run("config only", func(t *testing.T) {
		out, errOut, code := conductor(t, "", env, "doctor", "--json", "-upstreams=false")
		var rep doctorReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
		}
		i := slices.IndexFunc(rep.Checks, func(c check) bool { return c.Name == "mcp config" })
		if code != 0 || i < 0 || !rep.Checks[i].OK || !strings.Contains(rep.Checks[i].Detail, "not started: -upstreams=false") || len(rep.Upstreams) != 0 {
			t.Fatalf("exit %d, checks %+v, upstreams %+v", code, rep.Checks, rep.Upstreams)
		}
	})

	t.Run("started", func(t *testing.T) {
		out, errOut, code := conductor(t, "", env, "doctor", "--json")
		var rep doctorReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("doctor --json: %v\n%s\n%s", err, out, errOut)
		}
		i := slices.IndexFunc(rep.Checks, func(c check) bool { return c.Name == "upstream broken" })
		if code != 1 || rep.OK || i < 0 || rep.Checks[i].OK ||
			!strings.HasPrefix(rep.Checks[i].Detail, "stdio, failed within 45s: ") ||
			!strings.Contains(rep.Checks[i].Detail, "its stderr ends: ") || !strings.Contains(rep.Checks[i].Detail, "broken: cannot start without a database") ||
			!strings.Contains(rep.Checks[i].Fix, good) {
			t.Errorf("a failing upstream: exit %d, checks %+v", code, rep.Checks)
		}
		if slices.ContainsFunc(rep.Checks, func(c check) bool { return c.Name == "upstream off" }) {
			t.Errorf("a disabled upstream has a check: %+v", rep.Checks)
		}
		byName := map[string]upstreamReport{}
		for _, u := range rep.Upstreams {
			byName[u.Name] = u
		}
		b := byName["broken"]
		if b.State != "failed" || !strings.Contains(b.Error, "exit status 3") ||
			!slices.Contains(b.Stderr, "broken: cannot start without a database") ||
			!slices.Contains(b.Stderr, base64.StdEncoding.EncodeToString([]byte(secret))) {
			t.Errorf("broken: %+v", b)
		}
		if off := byName["off"]; off.State != "disabled" || off.RequireApproval != "every tool" {
			t.Errorf("off: %+v", off)
		}
		if b.RequireApproval != "create, drop" {
			t.Errorf("broken's requireApproval %q, want the two tools", b.RequireApproval)
		}
		text, _, _ := conductor(t, "", env, "doctor")
		if !strings.Contains(text, "stderr: broken: cannot start without a database") {
			t.Errorf("the text report lacks the stderr line:\n%s", text)
		}
		if !strings.Contains(text, "calls from code ask the user's approval (MCP elicitation) for: create, drop") {
			t.Errorf("the text report does not say which calls need approval:\n%s", text)
		}
	})

	t.Run("invalid config", func(t *testing.T) {
		bad := write(t, `{"mcpServers": {"a": {"command": "x", "allowedPrompts": [""]}}}`)
		out, _, code := conductor(t, "", []string{"MCP_CONDUCTOR_MCP_CONFIG=" + bad}, "doctor")
		if code == 0 || !strings.Contains(out, "mcp config") || !strings.Contains(out, `field "allowedPrompts[0]"`) {
			t.Fatalf("doctor with an invalid MCP config: exit %d\n%s", code, out)
		}
	})
}
