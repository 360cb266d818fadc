package main

import (
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/config"
)

// TestHTTPAuthSummary: doctor says how HTTP clients are authenticated, and
// says it loudly when they are not.
func TestHTTPAuthSummary(t *testing.T) {
	tests := []struct {
		name string
		s    config.Settings
		want string
	}{
		{"generated", config.Settings{}, "token generated at each start"},
		{"admin's token", config.Settings{HTTPToken: "0123456789abcdef"}, "bearer token from " + config.VarHTTPToken},
		{"opt-out", config.Settings{HTTPInsecureNoAuth: true}, "NO authentication (" + config.VarHTTPInsecureNoAuth + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := settingsSummary(tt.s)
			if !strings.Contains(got, tt.want) {
				t.Errorf("settings line %q lacks %q", got, tt.want)
			}
			if strings.Contains(got, "0123456789abcdef") {
				t.Errorf("settings line %q shows the token", got)
			}
		})
	}
}
