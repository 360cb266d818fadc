package tools

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// needTools stops the test (fails under CI=true) when the host lacks a program it resolves.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testenv.Unavailable(t, "%s is not installed: %v", n, err)
		}
	}
}

func TestResolve(t *testing.T) {
	needTools(t, "git", "curl")
	gitExec, err := firstLine(context.Background(), "git", "--exec-path")
	if err != nil {
		t.Fatal(err)
	}
	curl, _ := exec.LookPath("curl")
	tests := []struct {
		name     string
		entries  []string
		cas      []string
		wantName []string
		wantData map[string][]string // tool -> data paths that must be there
		wantEnv  bool
		wantErr  string // with ErrNotInstalled
	}{
		{name: "git and curl", entries: []string{"git", "curl"}, cas: []string{"/nonexistent.pem", "/etc/ssl/certs/ca-certificates.crt"},
			wantName: []string{"git", "curl"}, wantData: map[string][]string{"git": {gitExec, "/etc/ssl/certs/ca-certificates.crt"}}, wantEnv: true},
		{name: "absolute path", entries: []string{curl}, cas: []string{"/nonexistent.pem"}, wantName: []string{"curl"}},
		{name: "missing", entries: []string{"git", "no-such-tool-xyz", "/opt/none/gh"}, wantErr: `"no-such-tool-xyz"`},
		{name: "missing path", entries: []string{"/opt/none/gh"}, wantErr: `"/opt/none/gh"`},
		{name: "none", entries: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Resolve(context.Background(), tt.entries, Options{CABundles: tt.cas})
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "MCP_CONDUCTOR_TOOLS") {
					t.Fatalf("err %v, want ErrNotInstalled naming %s and MCP_CONDUCTOR_TOOLS", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Names(), tt.wantName) {
				t.Errorf("names %v, want %v", s.Names(), tt.wantName)
			}
			for _, tool := range s.Tools {
				if tool.Program.Path != "/usr/bin/"+tool.Name || !strings.HasPrefix(tool.Program.Host, "/") {
					t.Errorf("%s: program %+v", tool.Name, tool.Program)
				}
				for _, d := range tt.wantData[tool.Name] {
					if !slices.Contains(tool.Program.Data, d) {
						t.Errorf("%s: data %v lacks %s", tool.Name, tool.Program.Data, d)
					}
				}
			}
			if vars := s.CAVars(); (len(vars) == 3) != tt.wantEnv {
				t.Errorf("CA variables %v, want them: %v", vars, tt.wantEnv)
			}
			if tt.wantEnv && (!slices.Contains(s.CAVars(), "GIT_SSL_CAINFO") || s.CABundle != "/etc/ssl/certs/ca-certificates.crt") {
				t.Errorf("CA variables %v for %q", s.CAVars(), s.CABundle)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	needTools(t, "git")
	s, err := Resolve(context.Background(), []string{"git"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Tools[0].Version(context.Background())
	if err != nil || !strings.HasPrefix(v, "git version ") {
		t.Fatalf("version %q, %v", v, err)
	}
}
