package config

import (
	"reflect"
	"testing"
)

func TestGrantPath(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"no flags", nil, []string{"--allow-read=/p"}},
		{"merges into a list", []string{"--allow-read=/data", "--allow-net"}, []string{"--allow-read=/data,/p", "--allow-net"}},
		{"global grant untouched", []string{"--allow-read"}, []string{"--allow-read"}},
		{"allow-all untouched", []string{"--allow-all"}, []string{"--allow-all"}},
		{"other perms untouched", []string{"--allow-write=/x"}, []string{"--allow-write=/x", "--allow-read=/p"}},
		{"prefix lookalike is not merged", []string{"--allow-readx=/y"}, []string{"--allow-readx=/y", "--allow-read=/p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := GrantPath(tc.flags, "read", "/p"); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("GrantPath = %v, want %v", got, tc.want)
			}
		})
	}
}
