package upstream

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParseConfig: the upstream config decoder. Whatever the bytes, it
// returns a *ConfigError or a config whose servers are sorted, uniquely
// named, of a known transport with what that transport needs, and with
// valid header names; it is deterministic; and no error ever shows the
// value of a variable it substituted (the values are secrets).
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"mcpServers": {"m": {"command": "npx"}}}`,
		`{"mcpServers": {"memory": {"command": "npx", "args": ["-y", "x", "--token=${MY_TOKEN}"], "env": {"TOKEN": "${MY_TOKEN}", "PLAIN": "x$y"}, "cwd": "/tmp", "allowedTools": ["a", "b"], "disabled": false, "type": "stdio"}}}`,
		`{"mcpServers": {"remote": {"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer ${MY_TOKEN}"}}}}`,
		`{"mcpServers": {"s": {"type": "sse", "url": "http://127.0.0.1:1/sse", "requireApproval": ["a*"]}}}`,
		`{"mcpServers": {"s": {"url": "ftp://${MY_TOKEN}@x/"}}}`,
		`{"mcpServers": {"s": {"command": "x", "env": {"A": "${MY_TOKEN"}}}}`,
		`{"mcpServers": {"s": {"command": "x", "args": ["$${MY_TOKEN}", "${UNSET:-d}", "${EMPTY:-e}"]}}}`,
		`{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}`,
		`{"mcpServers": {"s": {"command": "x", "headers": {"Bad Name": "${MY_TOKEN}"}}}}`,
		`{"mcpServers": {"s": {"url": "http://127.0.0.1/", "headers": {"X": "${MY_TOKEN}\n"}}}}`,
		`{"mcpServers": {"s": {"command": "x", "allowedResources": ["file:///*"], "allowedPrompts": [], "requireApproval": true}}}`,
		`{"mcpServers": null}`, `[]`, `{"other": 1}`, "{\n\"mcpServers\": {\n\"x\": 1,\n}}",
	} {
		f.Add([]byte(s))
	}
	const secret = "tok-S3CR3T-value"
	env := mapEnv(map[string]string{"MY_TOKEN": secret, "EMPTY": "", "NL": "a\nb"})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("c.json", data, env)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
			}
			if strings.Contains(err.Error(), secret) && !strings.Contains(string(data), secret) {
				t.Fatalf("the error shows a substituted value: %v", err)
			}
			return
		}
		again, err := ParseConfig("c.json", data, env)
		if err != nil || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("parsing twice differs: %v", err)
		}
		names := map[string]bool{}
		for i, sc := range cfg.Servers {
			if i > 0 && cfg.Servers[i-1].Name > sc.Name {
				t.Fatalf("servers not sorted: %q before %q", cfg.Servers[i-1].Name, sc.Name)
			}
			if names[sc.Name] {
				t.Fatalf("server %q twice", sc.Name)
			}
			names[sc.Name] = true
			switch sc.Transport {
			case TransportStdio:
				if sc.Command == "" || sc.URL != "" {
					t.Fatalf("stdio server %q: command %q, url %q", sc.Name, sc.Command, sc.URL)
				}
			case TransportStreamableHTTP, TransportSSE:
				if sc.Command != "" || checkURL(sc.URL) != nil {
					t.Fatalf("%s server %q: command %q, url %q", sc.Transport, sc.Name, sc.Command, sc.URL)
				}
				for k := range sc.Headers {
					if !validHeaderName(k) {
						t.Fatalf("server %q: header name %q", sc.Name, k)
					}
				}
			default:
				t.Fatalf("server %q: transport %q", sc.Name, sc.Transport)
			}
			if sc.RequireApproval && len(sc.ApprovalTools) > 0 {
				t.Fatalf("server %q: both every tool and a list need approval", sc.Name)
			}
			for _, s := range sc.secrets {
				if s != secret && s != "a\nb" {
					t.Fatalf("server %q: %q taken as a secret", sc.Name, s)
				}
			}
			if strings.Contains(strings.Join(slices.Concat(sc.Args, []string{sc.URL, sc.Command, sc.Cwd}), " "), secret) &&
				!slices.Contains(sc.secrets, secret) && !strings.Contains(string(data), secret) {
				t.Fatalf("server %q uses the secret without redacting it", sc.Name)
			}
		}
	})
}
