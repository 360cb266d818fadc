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

func TestPathAccess(t *testing.T) {
	tests := []struct {
		name        string
		flags       []string
		read, write bool
	}{
		{"none", nil, false, false},
		{"exact paths", []string{"--allow-read=/srv/ws", "--allow-write=/srv/ws"}, true, true},
		{"a parent", []string{"--allow-read=/srv", "--allow-write=/srv/"}, true, true},
		{"root", []string{"--allow-read=/"}, true, false},
		{"bare grants", []string{"--allow-read", "--allow-write"}, true, true},
		{"allow-all", []string{"--allow-all"}, true, true},
		{"among others", []string{"--allow-net", "--allow-read=/tmp,/srv/ws"}, true, false},
		{"a sibling with the same prefix", []string{"--allow-read=/srv/w", "--allow-write=/srv/ws2"}, false, false},
		{"a subdirectory only", []string{"--allow-read=/srv/ws/sub"}, false, false},
		{"write only", []string{"--allow-write=/srv/ws"}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r, w := PathAccess(tc.flags, "/srv/ws"); r != tc.read || w != tc.write {
				t.Errorf("PathAccess(%q) = %v, %v; want %v, %v", tc.flags, r, w, tc.read, tc.write)
			}
		})
	}
}

func TestWorkspaceProblem(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want string
	}{
		{"no workspace", Settings{RunArgs: []string{"--allow-read"}}, ""},
		{"covered", Settings{Workspace: "/srv/ws", RunArgs: []string{"--allow-read=/srv/ws", "--allow-write=/srv/ws"}}, ""},
		{"nothing granted", Settings{Workspace: "/srv/ws"},
			"MCP_CONDUCTOR_WORKSPACE is /srv/ws, but MCP_CONDUCTOR_RUN_ARGS does not grant allow-read=/srv/ws or allow-write=/srv/ws: code is refused there (add it to MCP_CONDUCTOR_RUN_ARGS)"},
		{"write missing", Settings{Workspace: "/srv/ws", RunArgs: []string{"--allow-read=/srv"}},
			"MCP_CONDUCTOR_WORKSPACE is /srv/ws, but MCP_CONDUCTOR_RUN_ARGS does not grant allow-write=/srv/ws: code is refused there (add it to MCP_CONDUCTOR_RUN_ARGS)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := WorkspaceProblem(tc.s); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}
