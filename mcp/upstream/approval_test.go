package upstream

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestRequireApproval covers "requireApproval": its three valid shapes and
// every bad one, each refused naming the file, server, field and what is
// allowed.
func TestRequireApproval(t *testing.T) {
	cases := []struct {
		name      string
		value     string // the JSON of requireApproval; "" leaves it out
		all       bool
		tools     []string
		field     string // "" = valid
		msg       string
		needs     []string // tools that need approval
		needsNone []string // tools that do not
	}{
		{name: "absent", needsNone: []string{"echo"}},
		{name: "true", value: `true`, all: true, needs: []string{"echo", "anything"}},
		{name: "false", value: `false`, needsNone: []string{"echo"}},
		{name: "list", value: `["echo", "get-sum"]`, tools: []string{"echo", "get-sum"}, needs: []string{"echo", "get-sum"}, needsNone: []string{"get-env", "Echo"}},
		{name: "empty list", value: `[]`, tools: []string{}, needsNone: []string{"echo"}},
		{name: "string", value: `"echo"`, field: "requireApproval", msg: "must be true (every tool), false, or an array of tool names, not a string"},
		{name: "number", value: `1`, field: "requireApproval", msg: "not a number"},
		{name: "null", value: `null`, field: "requireApproval", msg: "not null"},
		{name: "object", value: `{"echo": true}`, field: "requireApproval", msg: "not an object"},
		{name: "element type", value: `["echo", 2]`, field: "requireApproval[1]", msg: "must be a tool name (a string), not a number"},
		{name: "empty name", value: `[""]`, field: "requireApproval[0]", msg: `is empty (use "requireApproval": true for every tool)`},
		{name: "control character", value: `["ec\u0001ho"]`, field: "requireApproval[0]", msg: "control character"},
		{name: "duplicate", value: `["echo", "echo"]`, field: "requireApproval[1]", msg: `names "echo" twice`},
		{name: "too long", value: `["` + strings.Repeat("x", 1025) + `"]`, field: "requireApproval[0]", msg: "longer than 1024 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := `{"command": "x"`
			if c.value != "" {
				srv += `, "requireApproval": ` + c.value
			}
			cfg, err := ParseConfig("/etc/c.json", []byte(`{"mcpServers": {"s": `+srv+`}}}`), mapEnv(nil))
			if c.field != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("want a *ConfigError, got %v", err)
				}
				if ce.Server != "s" || ce.Field != c.field || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got server %q field %q: %v; want field %q and %q", ce.Server, ce.Field, err, c.field, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sc := cfg.Servers[0]
			if sc.RequireApproval != c.all || !slices.Equal(sc.ApprovalTools, c.tools) || (sc.ApprovalTools == nil) != (c.tools == nil) {
				t.Fatalf("RequireApproval %v ApprovalTools %#v, want %v %#v", sc.RequireApproval, sc.ApprovalTools, c.all, c.tools)
			}
			for _, tool := range c.needs {
				if !sc.NeedsApproval(tool) {
					t.Errorf("NeedsApproval(%q) = false", tool)
				}
			}
			for _, tool := range c.needsNone {
				if sc.NeedsApproval(tool) {
					t.Errorf("NeedsApproval(%q) = true", tool)
				}
			}
		})
	}
}
