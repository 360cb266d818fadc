package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// desktopConfig is the client config of README's Desktop section.
type desktopConfig struct {
	MCPServers map[string]struct {
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	} `json:"mcpServers"`
}

// readmeDesktopConfig parses the first ```json block of README.md's "## Desktop"
// section (../../README.md: the checkout, or the VM payload's copy).
func readmeDesktopConfig(t *testing.T) desktopConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Desktop\n")
	if !ok {
		t.Fatal("README.md has no \"## Desktop\" section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	m := regexp.MustCompile("(?s)```json\n(.*?)\n```").FindStringSubmatch(sec)
	if m == nil {
		t.Fatal("README.md's Desktop section has no ```json block")
	}
	var c desktopConfig
	if err := json.Unmarshal([]byte(m[1]), &c); err != nil {
		t.Fatalf("README.md's Desktop config: %v\n%s", err, m[1])
	}
	if s, ok := c.MCPServers["conductor"]; !ok || !strings.HasPrefix(s.Command, "/path/to/conductor/") {
		t.Fatalf("README.md's Desktop config has no conductor server started from /path/to/conductor/…: %+v", c)
	}
	return c
}

// TestReadmeDesktopConfig: the README's Desktop config, which phase d of `make test-vm`
// starts, is there and parses on every host.
func TestReadmeDesktopConfig(t *testing.T) {
	c := readmeDesktopConfig(t)
	if s := c.MCPServers["conductor"]; len(s.Args) == 0 || s.Args[0] != "serve" {
		t.Fatalf("README Desktop config args %v, want serve", s.Args)
	}
}
