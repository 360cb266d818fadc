package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/conductor-sandbox/conductor/identity"
)

// TestDecodeFile: each value type becomes the variable's text, lists are joined, and every shape
// error names the place, the key and what is wrong (with the closest key for a typo).
func TestDecodeFile(t *testing.T) {
	tests := []struct {
		name, file, data string
		want             map[string]string
		errs             []string // substrings of the error, all required
	}{
		{name: "types", file: "c.json", data: `{"pool_size": 4, "cpus": 0.5, "allow_degraded": true, "workspace": "/srv/ws", "memory": "1G"}`,
			want: map[string]string{VarPoolSize: "4", VarCPUs: "0.5", VarAllowDegraded: "true", VarWorkspace: "/srv/ws", VarMemory: "1G"}},
		{name: "lists", file: "c.json", data: `{"run_args": ["allow-env=HOME", "allow-net=a.com,b.com"], "tools": ["git"], "net_secrets": ["A_TOKEN=a.com", "B_TOKEN=b.com"]}`,
			want: map[string]string{VarRunArgs: "allow-env=HOME,allow-net=a.com,b.com", VarTools: "git", VarNetSecrets: "A_TOKEN=a.com;B_TOKEN=b.com"}},
		{name: "list as string", file: "c.json", data: `{"run_args": "allow-env=HOME"}`, want: map[string]string{VarRunArgs: "allow-env=HOME"}},
		{name: "empty object", file: "c.json", data: " {}\n", want: map[string]string{}},
		{name: "unknown key", file: "c.json", data: "{\n  \"pool_sise\": 4\n}", errs: []string{`c.json:2:3: key "pool_sise": not a setting; did you mean pool_size?`}},
		{name: "upper case key", file: "c.json", data: `{"POOL_SIZE": 4}`, errs: []string{`key "POOL_SIZE": not a setting; did you mean pool_size?`}},
		{name: "far key", file: "c.json", data: `{"zzzzzzzzzzzz": 4}`, errs: []string{`not a setting (keys are`}},
		{name: "duplicate", file: "c.json", data: "{\"pool_size\": 4,\n \"pool_size\": 5}", errs: []string{`c.json:2:2: key "pool_size": given twice (first at 1:2)`}},
		{name: "identities not a list", file: "c.json", data: `{"identities": {"alice": {}}}`, errs: []string{`key "identities": invalid identities: want an array`}},
		{name: "identities", file: "c.json", data: `{"identities": [{"name": "stdio", "quotas": {"concurrent": 1}}]}`,
			want: map[string]string{KeyIdentities: `[{"name":"stdio","quotas":{"concurrent":1}}]`}},
		{name: "identities bad name", file: "c.json", data: `{"identities": [{"name": "Al"}]}`, errs: []string{`key "identities": invalid identities: identity 1 ("Al"): name must be`}},
		{name: "config key", file: "c.json", data: `{"config": "/x.json"}`, errs: []string{`key "config": not allowed in the file`}},
		{name: "object value", file: "c.json", data: `{"memory": {"a": 1}}`, errs: []string{`key "memory": an object, not a string, number or boolean`}},
		{name: "null", file: "c.json", data: `{"memory": null}`, errs: []string{`key "memory": null, not`}},
		{name: "array for one value", file: "c.json", data: `{"memory": ["1G"]}`, errs: []string{`an array, but this setting is one value`}},
		{name: "array of numbers", file: "c.json", data: `{"tools": ["git", 3]}`, errs: []string{`key "tools": item 2 is a number, not a string`}},
		{name: "syntax", file: "c.json", data: "{\n  \"pool_size\": 4,\n  \"memory\" \"1G\"\n}", errs: []string{`c.json:3:`, `not valid JSON`}},
		{name: "truncated", file: "c.json", data: `{"pool_size": 4`, errs: []string{`not valid JSON: unexpected end`}},
		{name: "not an object", file: "c.json", data: `[1]`, errs: []string{`not a JSON object`}},
		{name: "trailing", file: "c.json", data: `{} {}`, errs: []string{`more after the object`}},
		{name: "two errors", file: "c.json", data: `{"pool_sise": 4, "identities": 1}`, errs: []string{`pool_sise`, `identities`}},
		{name: "toml", file: "c.toml", data: "pool_size = 4\ncpus = 0.5\nrun_args = [\"allow-env=HOME\"]\nallow_degraded = true\n",
			want: map[string]string{VarPoolSize: "4", VarCPUs: "0.5", VarRunArgs: "allow-env=HOME", VarAllowDegraded: "true"}},
		{name: "toml duplicate", file: "c.toml", data: "pool_size = 4\npool_size = 5\n", errs: []string{`c.toml:2:`, `not valid TOML`}},
		{name: "toml unknown", file: "c.toml", data: "pool_sise = 4\n", errs: []string{`did you mean pool_size?`}},
		{name: "toml table", file: "c.toml", data: "[identities.alice]\nx = 1\n", errs: []string{`key "identities": invalid identities: want an array`}},
		{name: "toml identities", file: "c.toml", data: "[[identities]]\nname = \"stdio\"\nquotas = {executions_per_minute = 5}\n",
			want: map[string]string{KeyIdentities: `[{"name":"stdio","quotas":{"executions_per_minute":5}}]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFile(tt.file, []byte(tt.data))
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !maps.Equal(got, tt.want) {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %q", got)
			}
			if !errors.Is(err, ErrFile) || got != nil {
				t.Errorf("error %v (got %q): not an ErrFile with nothing decoded", err, got)
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestLoadFile: the file's values go through the same table (a bad value names the variable, the
// key and the file), the environment overrides the file, and Sources says which gave each.
func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"pool_size": 4, "max_queue": 7, "run_args": ["allow-env=HOME"]}`)
	badValue := write("bad.json", `{"pool_size": "many"}`)
	broken := write("broken.json", `{"pool_size": 4,}`)
	tests := []struct {
		name    string
		env     []string
		check   func(t *testing.T, s Settings, src Sources)
		errs    []string
		errFile bool
	}{
		{name: "file", env: []string{VarConfig, good}, check: func(t *testing.T, s Settings, src Sources) {
			if s.PoolSize != 4 || s.MaxQueue != 7 || strings.Join(s.RunArgs, " ") != "--allow-env=HOME" || s.ConfigFile != good {
				t.Errorf("settings %+v", s)
			}
			if src.Of(VarPoolSize) != SourceFile || src.Of(VarConfig) != SourceEnv || src.Of(VarMemory) != SourceDefault {
				t.Errorf("sources %v", src)
			}
		}},
		{name: "env overrides", env: []string{VarConfig, good, VarPoolSize, "1"}, check: func(t *testing.T, s Settings, src Sources) {
			if s.PoolSize != 1 || s.MaxQueue != 7 || src.Of(VarPoolSize) != SourceEnv || src.Of(VarMaxQueue) != SourceFile {
				t.Errorf("settings %+v, sources %v", s, src)
			}
		}},
		{name: "empty env does not override", env: []string{VarConfig, good, VarPoolSize, ""}, check: func(t *testing.T, s Settings, src Sources) {
			if s.PoolSize != 4 {
				t.Errorf("pool size %d", s.PoolSize)
			}
		}},
		{name: "bad value", env: []string{VarConfig, badValue}, errs: []string{VarPoolSize + " (key pool_size in " + badValue + `)="many"`}},
		{name: "bad value overridden", env: []string{VarConfig, badValue, VarPoolSize, "3"}, check: func(t *testing.T, s Settings, src Sources) {
			if s.PoolSize != 3 {
				t.Errorf("pool size %d", s.PoolSize)
			}
		}},
		{name: "broken", env: []string{VarConfig, broken}, errs: []string{broken + ":1:", "not valid JSON"}, errFile: true},
		{name: "missing", env: []string{VarConfig, filepath.Join(dir, "none.json")}, errs: []string{"cannot read it"}, errFile: true},
		{name: "relative", env: []string{VarConfig, "c.json"}, errs: []string{VarConfig + `="c.json"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, src, err := LoadSources(env(tt.env...))
			if tt.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, s, src)
				return
			}
			if err == nil {
				t.Fatalf("no error: %+v", s)
			}
			if errors.Is(err, ErrFile) != tt.errFile {
				t.Errorf("errors.Is(%v, ErrFile) = %v", err, !tt.errFile)
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// FuzzDecodeFile: for any bytes, DecodeFile either fails with a one-line-per-problem ErrFile and
// no values, or gives values only for known variables (never MCP_CONDUCTOR_CONFIG), in valid UTF-8.
func FuzzDecodeFile(f *testing.F) {
	for _, s := range []string{
		`{"pool_size": 4, "run_args": ["allow-env=HOME"]}`,
		`{"pool_size": 4, "pool_size": 4}`,
		`{"identities": {}}`,
		`{"a": [[[[[]]]]]}`,
		`{"memory": "1G"`,
		"{\"memory\": \"\\u0000\"}",
		`{"config": "/x"}`,
		`[]`, `null`, `"x"`, ``, "\xff",
		`{"cpus": 1e400}`,
	} {
		f.Add("c.json", []byte(s))
		f.Add("c.toml", []byte(s))
	}
	f.Add("c.toml", []byte("pool_size = 4\nrun_args = ['a']\n[x]\ny=1"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		got, err := DecodeFile(name, data)
		if err != nil {
			if got != nil || !errors.Is(err, ErrFile) {
				t.Fatalf("error %v with values %q", err, got)
			}
			return
		}
		for k, v := range got {
			if k == KeyIdentities {
				if _, err := identity.Parse([]byte(v)); err != nil {
					t.Fatalf("identities %q do not parse again: %v", v, err)
				}
				continue
			}
			if fileRow(FileKey(k)) == nil || k == VarConfig {
				t.Fatalf("value for %q", k)
			}
			if !utf8.ValidString(v) && strings.HasSuffix(name, ".toml") {
				t.Fatalf("invalid UTF-8 %q from TOML", v)
			}
		}
	})
}

// TestREADMEConfigExample: the README's example config file decodes, every key a setting.
func TestREADMEConfigExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "### Config file and reload")
	_, block, ok2 := strings.Cut(sec, "```json\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no ```json block under ### Config file and reload")
	}
	got, err := DecodeFile("README.json", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 10 || got[VarRunArgs] == "" {
		t.Errorf("decoded %q", got)
	}
}

// TestSourcesChanged: a reload's changed settings are those set, unset or given another value, in
// the table's order, wherever the value came from.
func TestSourcesChanged(t *testing.T) {
	base := Sources{VarPoolSize: {SourceFile, "2"}, VarMemory: {SourceEnv, "1G"}}
	tests := []struct {
		name string
		next Sources
		want []string
	}{
		{"same", Sources{VarPoolSize: {SourceFile, "2"}, VarMemory: {SourceEnv, "1G"}}, nil},
		{"same value from elsewhere", Sources{VarPoolSize: {SourceEnv, "2"}, VarMemory: {SourceFile, "1G"}}, nil},
		{"changed", Sources{VarPoolSize: {SourceFile, "3"}, VarMemory: {SourceEnv, "1G"}}, []string{VarPoolSize}},
		{"unset and set", Sources{VarPoolSize: {SourceFile, "2"}, VarRunArgs: {SourceFile, "allow-env"}}, []string{VarRunArgs, VarMemory}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := base.Changed(tt.next); !slices.Equal(got, tt.want) {
				t.Errorf("Changed = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestIdentityChecks: identities with tokens refuse the other ways to authenticate HTTP clients,
// but not a workspace (each identity gets its own in it); the stdio identity alone refuses none.
func TestIdentityChecks(t *testing.T) {
	withTokens := `{"identities": [{"name": "alice", "token_sha256": "` + identity.Hash("a") + `"}]}`
	stdioOnly := `{"identities": [{"name": "stdio", "quotas": {"concurrent": 1}}]}`
	ws := t.TempDir()
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		err        string // "" = valid
	}{
		{"token", withTokens, map[string]string{VarHTTPToken: "secret-0123456789abcdef"}, VarHTTPToken + " (value hidden)"},
		{"no auth", withTokens, map[string]string{VarHTTPInsecureNoAuth: "1"}, VarHTTPInsecureNoAuth},
		{"workspace", withTokens, map[string]string{VarWorkspace: ws}, ""},
		{"identities alone", withTokens, nil, ""},
		{"stdio with all", stdioOnly, map[string]string{VarHTTPToken: "secret-0123456789abcdef", VarWorkspace: ws}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.json")
			if err := os.WriteFile(file, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{VarConfig: file}
			maps.Copy(env, tc.env)
			s, err := Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && s.Identities.Len() != 1:
				t.Fatalf("%d identities, want 1", s.Identities.Len())
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want %q", err, tc.err)
			case tc.err != "" && strings.Contains(err.Error(), "secret"):
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
}

// TestREADMEIdentitiesExample: the README's identities example decodes and validates.
func TestREADMEIdentitiesExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "### Identities and quotas")
	_, block, ok2 := strings.Cut(sec, "```json\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no ```json block under ### Identities and quotas")
	}
	got, err := DecodeFile("README.json", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	set, err := identity.Parse([]byte(got[KeyIdentities]))
	if err != nil || set.Len() != 3 {
		t.Fatalf("%v, %d identities; want 3", err, set.Len())
	}
}
