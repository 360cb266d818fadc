package mcp

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/playbook"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// TestCallsRouting: NewCalls is nil with nothing to call and the factory alone without playbooks;
// the combined handler says which globals it serves and routes playbooks.* to the playbooks.
func TestCallsRouting(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "one.ts"), []byte("/* ---\n{\"name\":\"one\",\"description\":\"d\"}\n--- */\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := playbook.Open(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb := playbook.NewCalls(d, nil)
	f := NewFactory(nil, nil)
	if h := NewCalls(nil, nil); h != nil {
		t.Errorf("NewCalls(nil, nil) = %v, want nil", h)
	}
	if h := NewCalls(f, nil); h != sandbox.CallHandler(f) {
		t.Errorf("NewCalls(f, nil) = %T, want the factory itself", h)
	}
	for _, c := range []struct {
		name                string
		h                   sandbox.CallHandler
		mcpFactory, globals bool
	}{
		{"nothing", nil, false, false},
		{"factory", f, true, false},
		{"playbooks", NewCalls(nil, pb), false, true},
		{"both", NewCalls(f, pb), true, true},
	} {
		if got := sandbox.Serves(c.h, sandbox.GlobalMCPFactory); got != c.mcpFactory {
			t.Errorf("%s: serves mcpFactory = %v", c.name, got)
		}
		if got := sandbox.Serves(c.h, sandbox.GlobalPlaybooks); got != c.globals {
			t.Errorf("%s: serves playbooks = %v", c.name, got)
		}
	}
	ctx := context.Background()
	only := NewCalls(nil, pb)
	if v, err := only.Call(ctx, "playbooks.list", nil); err != nil {
		t.Errorf("playbooks.list: %v", err)
	} else if b, _ := json.Marshal(v); !strings.Contains(string(b), `"name":"one"`) {
		t.Errorf("playbooks.list = %s", b)
	}
	if _, err := only.Call(ctx, "callTool", json.RawMessage(`{"server":"x","tool":"y"}`)); err == nil || !strings.Contains(err.Error(), "MCP_CONDUCTOR_MCP_CONFIG") {
		t.Errorf("an mcpFactory call without upstreams = %v, want a refusal naming MCP_CONDUCTOR_MCP_CONFIG", err)
	}
	noPB := &Calls{Factory: f}
	if _, err := noPB.Call(ctx, "playbooks.run", json.RawMessage(`{"name":"one"}`)); err == nil || !strings.Contains(err.Error(), "MCP_CONDUCTOR_PLAYBOOKS") {
		t.Errorf("a playbooks call without playbooks = %v, want a refusal naming MCP_CONDUCTOR_PLAYBOOKS", err)
	}
}
