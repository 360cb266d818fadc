package mcp

import (
	"strings"
	"testing"
)

func TestProgressLines(t *testing.T) {
	type chunk struct{ stream, data string }
	tests := []struct {
		name   string
		chunks []chunk
		want   string
	}{
		{"nothing yet", nil, ""},
		{"partial line waits", []chunk{{"stdout", "abc"}}, ""},
		{"line split over chunks", []chunk{{"stdout", "ab"}, {"stdout", "c\nd"}}, "abc"},
		{"stderr marked", []chunk{{"stderr", "oops\n"}, {"stdout", "fine\n"}}, "[stderr] oops\nfine"},
		{"streams do not mix partial lines", []chunk{{"stdout", "a"}, {"stderr", "b\n"}, {"stdout", "c\n"}}, "[stderr] b\nac"},
		{"blank lines kept", []chunk{{"stdout", "\n\nx\n"}}, "\n\nx"},
		{"line bound", []chunk{{"stdout", strings.Repeat("l\n", 25)}}, strings.TrimSuffix(strings.Repeat("l\n", 20), "\n") + "\n(5 more lines)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProgress()
			for _, c := range tc.chunks {
				p.observe(c.stream, []byte(c.data))
			}
			if got := p.take(); got != tc.want {
				t.Fatalf("take() = %q, want %q", got, tc.want)
			}
			if again := p.take(); again != "" {
				t.Fatalf("second take() = %q, want nothing new", again)
			}
		})
	}
	t.Run("a huge line is bounded", func(t *testing.T) {
		p := newProgress()
		p.observe("stdout", []byte(strings.Repeat("x", 1<<20)+"\n"))
		if got := p.take(); len(got) > progressMaxBytes+8 {
			t.Fatalf("message of %d bytes, bound %d", len(got), progressMaxBytes)
		}
	})
}
