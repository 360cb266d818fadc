package config

import (
	"reflect"
	"slices"
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

func TestGrantProblems(t *testing.T) {
	inRoot := func(p string) bool { return p == "/usr" || p == "/usr/share/doc" || p == "/etc/ssl/certs" }
	readMissing := func(p, ws string) string {
		return "allow-read=" + p + " grants nothing: " + p + " is not in the sandbox, which holds only its read-only root (deno and the admin's tools), a fresh /tmp and the workspace (" + ws + ")"
	}
	writeRO := func(p, ws string) string {
		return "allow-write=" + p + " grants nothing: the sandbox's root is read-only; code can write only /tmp (fresh each run) and the workspace (" + ws + ")"
	}
	const noWS = "none: MCP_CONDUCTOR_WORKSPACE is unset"
	tests := []struct {
		name string
		s    Settings
		want []string
	}{
		{"no grants", Settings{}, nil},
		{"bare grants and allow-all", Settings{RunArgs: []string{"--allow-read", "--allow-write", "--allow-net"}}, nil},
		{"allow-all", Settings{RunArgs: []string{"--allow-all"}}, nil},
		{"the root's own paths", Settings{RunArgs: []string{"--allow-read=/usr,/etc/ssl/certs,/proc/self,/dev/null"}}, nil},
		{"tmp", Settings{RunArgs: []string{"--allow-read=/tmp", "--allow-write=/tmp/out,/dev/null"}}, nil},
		{"slash", Settings{RunArgs: []string{"--allow-read=/", "--allow-write=/"}}, nil},
		{"workspace, inside it and above it", Settings{Workspace: "/srv/ws", RunArgs: []string{"--allow-read=/srv,/srv/ws/in", "--allow-write=/srv/ws"}}, nil},
		{"a host directory not shared", Settings{RunArgs: []string{"--allow-read=/data"}}, []string{readMissing("/data", noWS)}},
		{"a sibling of the workspace", Settings{Workspace: "/srv/ws", RunArgs: []string{"--allow-read=/srv/ws2", "--allow-write=/srv/ws2"}},
			[]string{readMissing("/srv/ws2", "/srv/ws"), writeRO("/srv/ws2", "/srv/ws")}},
		{"writing the read-only root", Settings{RunArgs: []string{"--allow-read=/usr", "--allow-write=/usr/share/doc,/tmp"}}, []string{writeRO("/usr/share/doc", noWS)}},
		{"the outputs directory", Settings{OutputsSize: 1 << 20, RunArgs: []string{"--allow-read=/outputs", "--allow-write=/outputs/sub"}}, nil},
		{"the outputs directory, outputs off", Settings{RunArgs: []string{"--allow-write=/outputs"}}, []string{writeRO("/outputs", noWS)}},
		{"deny flags are not grants", Settings{RunArgs: []string{"--deny-read=/data", "--deny-write=/usr"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := GrantProblems(tc.s, inRoot)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCodeFlags(t *testing.T) {
	tests := []struct {
		runArgs []string
		size    int64
		want    []string
	}{
		{nil, 1 << 20, []string{"--allow-write=" + OutputsDir}},
		{[]string{"--allow-write=/tmp", "--allow-net"}, 1 << 20, []string{"--allow-write=/tmp," + OutputsDir, "--allow-net"}},
		{[]string{"--allow-all"}, 1 << 20, []string{"--allow-all"}},
		{[]string{"--allow-write=/tmp"}, 0, []string{"--allow-write=/tmp"}},
	}
	for _, tt := range tests {
		s := Settings{RunArgs: tt.runArgs, OutputsSize: tt.size}
		if got := s.CodeFlags(); !slices.Equal(got, tt.want) {
			t.Errorf("RunArgs %q, outputs %d: CodeFlags %q, want %q", tt.runArgs, tt.size, got, tt.want)
		}
	}
}
