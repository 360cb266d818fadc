package mcp

import (
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/outputs"
)

// TestOutputsDescription: the descriptions name the outputs directory, its caps and the helpers
// of the tool's languages, or say that there is none and who can turn it on.
func TestOutputsDescription(t *testing.T) {
	tests := []struct {
		name    string
		limits  outputs.Limits
		helpers int
		want    []string
		not     []string
	}{
		{"off", outputs.Limits{}, helpersDeno | helpersPython,
			[]string{"no outputs directory", config.VarOutputsSize}, []string{"display"}},
		{"deno", outputs.Limits{TotalBytes: 8 << 20, Files: 5}, helpersDeno,
			[]string{"/outputs", "$" + config.OutputsEnv, "at most 5 files, 8 MiB", "await display(", "display.workspaceFile"}, []string{"display_file", "matplotlib"}},
		{"python, default count", outputs.Limits{TotalBytes: 32 << 20}, helpersPython,
			[]string{"at most 32 files, 32 MiB", "display(obj", "display_file(path)", "figure-<n>.png"}, []string{"display.workspaceFile"}},
	}
	for _, tt := range tests {
		s := &Server{}
		s.cur.Store(&Options{Outputs: tt.limits})
		d := s.outputsDescription(tt.helpers)
		for _, w := range tt.want {
			if !strings.Contains(d, w) {
				t.Errorf("%s: %q lacks %q", tt.name, d, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(d, n) {
				t.Errorf("%s: %q has %q", tt.name, d, n)
			}
		}
	}
}
