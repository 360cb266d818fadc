package upstream

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseConfig(t *testing.T) {
	env := mapEnv(map[string]string{
		"MY_TOKEN": "tok-1234",
		"API_KEY":  "key-5678",
		"PORT":     "3001",
		"EMPTY":    "",
		"NL":       "a\nb",
	})
	type valid struct {
		name string
		json string
		want []ServerConfig // secrets are not compared
	}
	valids := []valid{
		{"stdio minimal", `{"mcpServers": {"m": {"command": "npx"}}}`,
			[]ServerConfig{{Name: "m", Transport: TransportStdio, Command: "npx"}}},
		{"stdio full", `{"mcpServers": {"memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory", "--token=${MY_TOKEN}"],
			"env": {"TOKEN": "${MY_TOKEN}", "PLAIN": "x$y"}, "cwd": "/tmp", "allowedTools": ["a", "b"], "disabled": false, "type": "stdio"}}}`,
			[]ServerConfig{{Name: "memory", Transport: TransportStdio, Command: "npx",
				Args: []string{"-y", "@modelcontextprotocol/server-memory", "--token=tok-1234"},
				Env:  map[string]string{"TOKEN": "tok-1234", "PLAIN": "x$y"}, Cwd: "/tmp", AllowedTools: []string{"a", "b"}}}},
		{"url means streamable http", `{"mcpServers": {"remote": {"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer ${API_KEY}"}}}}`,
			[]ServerConfig{{Name: "remote", Transport: TransportStreamableHTTP, URL: "http://127.0.0.1:3001/mcp",
				Headers: map[string]string{"Authorization": "Bearer key-5678"}}}},
		{"type http", `{"mcpServers": {"r": {"url": "https://example.invalid/mcp", "type": "http"}}}`,
			[]ServerConfig{{Name: "r", Transport: TransportStreamableHTTP, URL: "https://example.invalid/mcp"}}},
		{"type streamable-http", `{"mcpServers": {"r": {"url": "http://[::1]:8080/mcp", "type": "streamable-http"}}}`,
			[]ServerConfig{{Name: "r", Transport: TransportStreamableHTTP, URL: "http://[::1]:8080/mcp"}}},
		{"type sse", `{"mcpServers": {"legacy": {"url": "http://127.0.0.1:3002/sse", "type": "sse"}}}`,
			[]ServerConfig{{Name: "legacy", Transport: TransportSSE, URL: "http://127.0.0.1:3002/sse"}}},
		{"url with a variable", `{"mcpServers": {"r": {"url": "http://127.0.0.1:${PORT}/mcp"}}}`,
			[]ServerConfig{{Name: "r", Transport: TransportStreamableHTTP, URL: "http://127.0.0.1:3001/mcp"}}},
		{"defaults", `{"mcpServers": {"d": {"command": "x", "env": {"A": "${UNSET:-fallback}", "B": "${EMPTY:-e}", "C": "${EMPTY}", "D": "${PORT:-9}"}}}}`,
			[]ServerConfig{{Name: "d", Transport: TransportStdio, Command: "x",
				Env: map[string]string{"A": "fallback", "B": "e", "C": "", "D": "3001"}}}},
		{"escaped", `{"mcpServers": {"e": {"command": "x", "args": ["$${NOT_A_VAR}", "$HOME", "cost: 5$"]}}}`,
			[]ServerConfig{{Name: "e", Transport: TransportStdio, Command: "x", Args: []string{"${NOT_A_VAR}", "$HOME", "cost: 5$"}}}},
		{"disabled: not expanded", `{"mcpServers": {"off": {"command": "x", "env": {"T": "${NOT_SET}"}, "disabled": true}}}`,
			[]ServerConfig{{Name: "off", Transport: TransportStdio, Command: "x", Disabled: true, Env: map[string]string{"T": "${NOT_SET}"}}}},
		{"empty allowedTools allows none", `{"mcpServers": {"n": {"command": "x", "allowedTools": []}}}`,
			[]ServerConfig{{Name: "n", Transport: TransportStdio, Command: "x", AllowedTools: []string{}}}},
		{"resource and prompt patterns", `{"mcpServers": {"p": {"url": "http://127.0.0.1/mcp", "allowedTools": ["echo"],
			"allowedResources": ["demo://resource/static/*", "file:///etc/motd"], "allowedPrompts": ["simple-*", "*"]}}}`,
			[]ServerConfig{{Name: "p", Transport: TransportStreamableHTTP, URL: "http://127.0.0.1/mcp", AllowedTools: []string{"echo"},
				AllowedResources: []string{"demo://resource/static/*", "file:///etc/motd"}, AllowedPrompts: []string{"simple-*", "*"}}}},
		{"empty resource and prompt lists allow none", `{"mcpServers": {"n": {"command": "x", "allowedResources": [], "allowedPrompts": []}}}`,
			[]ServerConfig{{Name: "n", Transport: TransportStdio, Command: "x", AllowedResources: []string{}, AllowedPrompts: []string{}}}},
		{"sorted by name", `{"mcpServers": {"b": {"command": "x"}, "A_1": {"command": "y"}, "a-2": {"command": "z"}}}`,
			[]ServerConfig{{Name: "A_1", Transport: TransportStdio, Command: "y"}, {Name: "a-2", Transport: TransportStdio, Command: "z"}, {Name: "b", Transport: TransportStdio, Command: "x"}}},
		{"no servers", `{"mcpServers": {}}`, nil},
		{"empty object", `{}`, nil},
		{"64-character name", `{"mcpServers": {"` + strings.Repeat("n", 64) + `": {"command": "x"}}}`,
			[]ServerConfig{{Name: strings.Repeat("n", 64), Transport: TransportStdio, Command: "x"}}},
	}
	for _, c := range valids {
		t.Run("valid/"+c.name, func(t *testing.T) {
			cfg, err := ParseConfig("/etc/c.json", []byte(c.json), env)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Servers
			for i := range got {
				got[i].secrets = nil
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}

	type invalid struct {
		name, json    string
		server, field string
		msg           string
	}
	invalids := []invalid{
		{"syntax", "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",}\n}}", "", "", "invalid JSON at line 2, column"},
		{"not an object", `["x"]`, "", "", "must hold a JSON object"},
		{"unknown top-level field", `{"mcpServers": {}, "servers": {}}`, "", "servers", "unknown top-level field"},
		{"mcpServers not an object", `{"mcpServers": []}`, "", "mcpServers", "must be a JSON object, not an array"},
		{"server not an object", `{"mcpServers": {"a": "npx"}}`, "a", "", "must be a JSON object, not a string"},
		{"bad name", `{"mcpServers": {"my server": {"command": "x"}}}`, "my server", "", "invalid server name"},
		{"long name", `{"mcpServers": {"` + strings.Repeat("n", 65) + `": {"command": "x"}}}`, strings.Repeat("n", 65), "", "invalid server name"},
		{"empty name", `{"mcpServers": {"": {"command": "x"}}}`, "", "", "invalid server name"},
		{"unknown field", `{"mcpServers": {"a": {"command": "x", "transport": "stdio"}}}`, "a", "transport", "unknown field"},
		{"command type", `{"mcpServers": {"a": {"command": 5}}}`, "a", "command", "must be a string, not a number"},
		{"args type", `{"mcpServers": {"a": {"command": "x", "args": "-y"}}}`, "a", "args", "must be an array of strings, not a string"},
		{"args element", `{"mcpServers": {"a": {"command": "x", "args": ["-y", 3]}}}`, "a", "args[1]", "must be a string, not a number"},
		{"env value", `{"mcpServers": {"a": {"command": "x", "env": {"N": 1}}}}`, "a", "env.N", "must be a string, not a number"},
		{"env not object", `{"mcpServers": {"a": {"command": "x", "env": ["A=1"]}}}`, "a", "env", "must be a JSON object, not an array"},
		{"env name", `{"mcpServers": {"a": {"command": "x", "env": {"A=B": "1"}}}}`, "a", "env.A=B", "not a valid environment variable name"},
		{"both", `{"mcpServers": {"a": {"command": "x", "url": "http://127.0.0.1/"}}}`, "a", "command", "both"},
		{"neither", `{"mcpServers": {"a": {"args": []}}}`, "a", "command", "neither"},
		{"url scheme", `{"mcpServers": {"a": {"url": "ftp://127.0.0.1/"}}}`, "a", "url", "http:// or https://"},
		{"url host", `{"mcpServers": {"a": {"url": "http:///mcp"}}}`, "a", "url", "has no host"},
		{"url parse", `{"mcpServers": {"a": {"url": "http://127.0.0.1:port/"}}}`, "a", "url", "not a valid URL"},
		{"unknown type", `{"mcpServers": {"a": {"url": "http://127.0.0.1/", "type": "websocket"}}}`, "a", "type", `unknown transport "websocket"`},
		{"empty type", `{"mcpServers": {"a": {"command": "x", "type": ""}}}`, "a", "type", "is empty"},
		{"sse without url", `{"mcpServers": {"a": {"command": "x", "type": "sse"}}}`, "a", "type", `is "sse" but there is no "url"`},
		{"stdio with url", `{"mcpServers": {"a": {"url": "http://127.0.0.1/", "type": "stdio"}}}`, "a", "type", `is "stdio" but there is no "command"`},
		{"headers on stdio", `{"mcpServers": {"a": {"command": "x", "headers": {"A": "b"}}}}`, "a", "headers", "HTTP servers only"},
		{"env on http", `{"mcpServers": {"a": {"url": "http://127.0.0.1/", "env": {"A": "b"}}}}`, "a", "env", "stdio servers only"},
		{"missing variable", `{"mcpServers": {"github": {"command": "x", "env": {"TOKEN": "${GITHUB_TOKEN}"}}}}`, "github", "env.TOKEN", "${GITHUB_TOKEN} is not set"},
		{"missing variable in header", `{"mcpServers": {"r": {"url": "http://127.0.0.1/", "headers": {"Authorization": "Bearer ${NOPE}"}}}}`, "r", "headers.Authorization", "${NOPE} is not set"},
		{"missing variable in args", `{"mcpServers": {"a": {"command": "x", "args": ["ok", "${NOPE}"]}}}`, "a", "args[1]", "${NOPE} is not set"},
		{"unterminated", `{"mcpServers": {"a": {"command": "x", "env": {"T": "${MY_TOKEN"}}}}`, "a", "env.T", "unterminated ${"},
		{"bad variable name", `{"mcpServers": {"a": {"command": "x", "env": {"T": "${1X}"}}}}`, "a", "env.T", "not a valid variable reference"},
		{"relative cwd", `{"mcpServers": {"a": {"command": "x", "cwd": "work"}}}`, "a", "cwd", "absolute path"},
		{"reserved header", `{"mcpServers": {"a": {"url": "http://127.0.0.1/", "headers": {"mcp-session-id": "x"}}}}`, "a", "headers.mcp-session-id", "set by the MCP transport"},
		{"header name", `{"mcpServers": {"a": {"url": "http://127.0.0.1/", "headers": {"Bad Header": "x"}}}}`, "a", "headers.Bad Header", "not a valid HTTP header name"},
		{"header value newline", `{"mcpServers": {"a": {"url": "http://127.0.0.1/", "headers": {"X-A": "${NL}"}}}}`, "a", "headers.X-A", "line break"},
		{"duplicate server", `{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}`, "a", "", "defined twice"},
		{"duplicate field", `{"mcpServers": {"a": {"command": "x", "command": "y"}}}`, "a", "command", "appears twice"},
		{"disabled type", `{"mcpServers": {"a": {"command": "x", "disabled": "yes"}}}`, "a", "disabled", "must be true or false"},
		{"allowedTools element", `{"mcpServers": {"a": {"command": "x", "allowedTools": ["ok", ""]}}}`, "a", "allowedTools[1]", "is empty"},
		{"allowedTools type", `{"mcpServers": {"a": {"command": "x", "allowedTools": "echo"}}}`, "a", "allowedTools", "must be an array"},
		{"allowedResources element", `{"mcpServers": {"a": {"command": "x", "allowedResources": ["demo://*", ""]}}}`, "a", "allowedResources[1]", "is empty"},
		{"allowedResources type", `{"mcpServers": {"a": {"command": "x", "allowedResources": "demo://*"}}}`, "a", "allowedResources", "must be an array"},
		{"allowedResources control", `{"mcpServers": {"a": {"command": "x", "allowedResources": ["demo://a\nb"]}}}`, "a", "allowedResources[0]", "control character"},
		{"allowedResources long", `{"mcpServers": {"a": {"command": "x", "allowedResources": ["` + strings.Repeat("r", 1025) + `"]}}}`, "a", "allowedResources[0]", "longer than 1024"},
		{"allowedPrompts element", `{"mcpServers": {"a": {"url": "http://127.0.0.1/", "allowedPrompts": [""]}}}`, "a", "allowedPrompts[0]", "is empty"},
		{"allowedPrompts element type", `{"mcpServers": {"a": {"command": "x", "allowedPrompts": [3]}}}`, "a", "allowedPrompts[0]", "must be a string, not a number"},
		{"allowedPrompts type", `{"mcpServers": {"a": {"command": "x", "allowedPrompts": {"simple": true}}}}`, "a", "allowedPrompts", "must be an array"},
		{"allowedprompts typo", `{"mcpServers": {"a": {"command": "x", "allowedprompts": ["*"]}}}`, "a", "allowedprompts", "unknown field"},
		{"null field", `{"mcpServers": {"a": {"command": "x", "args": null}}}`, "a", "args", "not null"},
		{"empty command", `{"mcpServers": {"a": {"command": ""}}}`, "a", "command", "is empty"},
		{"disabled still checked", `{"mcpServers": {"a": {"command": "x", "disabled": true, "colour": "red"}}}`, "a", "colour", "unknown field"},
	}
	for _, c := range invalids {
		t.Run("invalid/"+c.name, func(t *testing.T) {
			_, err := ParseConfig("/etc/conductor/c.json", []byte(c.json), env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *ConfigError, got %v", err)
			}
			if ce.File != "/etc/conductor/c.json" || ce.Server != c.server || ce.Field != c.field {
				t.Errorf("file/server/field = %q/%q/%q, want %q/%q/%q (%v)", ce.File, ce.Server, ce.Field, "/etc/conductor/c.json", c.server, c.field, err)
			}
			msg := err.Error()
			for _, want := range []string{"/etc/conductor/c.json", c.msg} {
				if !strings.Contains(msg, want) {
					t.Errorf("%q lacks %q", msg, want)
				}
			}
			if c.server != "" && !strings.Contains(msg, `server "`+c.server+`"`) {
				t.Errorf("%q does not name the server", msg)
			}
			if c.field != "" && !strings.Contains(msg, `field "`+c.field+`"`) {
				t.Errorf("%q does not name the field", msg)
			}
		})
	}
	if n := len(valids) + len(invalids); n < 25 {
		t.Fatalf("only %d cases", n)
	}
}

// Expanded values are secrets: kept for redaction.
func TestConfigSecrets(t *testing.T) {
	cfg, err := ParseConfig("c.json", []byte(`{"mcpServers": {"a": {"command": "x", "env": {"T": "${MY_TOKEN}", "S": "${SHORT}", "D": "${U:-default-value}"}}}}`),
		mapEnv(map[string]string{"MY_TOKEN": "tok-1234", "SHORT": "ab"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Servers[0].secrets; !reflect.DeepEqual(got, []string{"tok-1234"}) {
		// Map iteration is not involved: env is expanded in file order.
		t.Fatalf("secrets %v, want [tok-1234] (short values and defaults are not secrets)", got)
	}
	if got := redact("Bearer tok-1234 failed", cfg.Servers[0].secrets); got != "Bearer [redacted] failed" {
		t.Fatal(got)
	}
}

func TestLoadConfigFiles(t *testing.T) {
	dir := t.TempDir()
	none := filepath.Join(dir, "none", "mcp-config.json")

	cfg, err := LoadConfig(none, false, mapEnv(nil))
	if err != nil || len(cfg.Servers) != 0 {
		t.Fatalf("missing file at the default path: want an empty config, got %v %v", cfg, err)
	}
	_, err = LoadConfig(none, true, mapEnv(nil))
	if err == nil || !strings.Contains(err.Error(), none) || !strings.Contains(err.Error(), "MCP_CONDUCTOR_MCP_CONFIG") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file at an explicit path: %v", err)
	}
	_, err = LoadConfig(dir, true, mapEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("a directory: %v", err)
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"mcpServers": {"m": {"command": "npx", "env": {"T": "${T}"}}}}`), 0o600)
	cfg, err = LoadConfig(good, true, mapEnv(map[string]string{"T": "value"}))
	if err != nil || cfg.Path != good || len(cfg.Servers) != 1 || cfg.Servers[0].Env["T"] != "value" {
		t.Fatalf("good file: %+v %v", cfg, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"mcpServers": {"m": {"command": "npx", "env": {"T": "${T}"}}}}`), 0o600)
	// A file that exists is read even at the default path, and its errors count.
	_, err = LoadConfig(bad, false, mapEnv(nil))
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `server "m"`) {
		t.Fatalf("bad file at the default path: %v", err)
	}
}
