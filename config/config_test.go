package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// env returns a LookupFunc over the given name/value pairs.
func env(kv ...string) LookupFunc {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// settingErrors returns every *Error in err, in order.
func settingErrors(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	var out []*Error
	for _, e := range list {
		var se *Error
		if !errors.As(e, &se) {
			t.Fatalf("error %v is not a *Error", e)
		}
		out = append(out, se)
	}
	return out
}

func TestLoadDefaults(t *testing.T) {
	got, err := Load(env())
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{
		Memory:         512 << 20,
		MaxOutput:      1 << 20,
		DefaultTimeout: 30 * time.Second,
		MaxTimeout:     300 * time.Second,
		MaxConcurrency: 2,
		MaxQueue:       16,
		MaxCode:        1 << 20,
		PoolSize:       2,

		SpillMax:            16 << 20,
		SpillTotal:          256 << 20,
		OutputsSize:         32 << 20,
		OutputsFiles:        32,
		HTTPMaxConns:        256,
		HTTPMaxConnsPerIP:   32,
		HTTPMaxSessions:     16,
		MCPMaxRequest:       1 << 20,
		MCPMaxInFlight:      8 << 20,
		MCPMaxInFlightTotal: 64 << 20,
		OutputsInline:       1 << 20,
		OutputsStoreSize:    256 << 20,
		OutputsRetention:    time.Hour,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load() = %+v, want %+v", got, want)
	}
}

func TestLoadEmptyIsUnset(t *testing.T) {
	var kv []string
	for _, v := range Variables() {
		kv = append(kv, v.Name, "")
	}
	got, err := Load(env(kv...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, defaults()) {
		t.Errorf("all empty: Load() = %+v, want defaults %+v", got, defaults())
	}
}

func TestLoadNilLookupUsesEnvironment(t *testing.T) {
	t.Setenv(VarMemory, "1G")
	t.Setenv(VarAllowDegraded, "yes")
	got, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Memory != 1<<30 || !got.AllowDegraded {
		t.Errorf("Load(nil) = %+v", got)
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name, value string
		field       func(Settings) any
		want        any
	}{
		{VarMemory, "64M", memory, int64(64 << 20)},
		{VarMetricsAddr, "127.0.0.1:9464", metricsAddr, "127.0.0.1:9464"},
		{VarMetricsAddr, "[::1]:9464", metricsAddr, "[::1]:9464"},
		{VarMetricsAddr, "localhost:1", metricsAddr, "localhost:1"},
		{VarMetricsAddr, ":65535", metricsAddr, ":65535"},
		{VarMetricsAddr, "0.0.0.0:9464", metricsAddr, "0.0.0.0:9464"},
		{VarMemory, "64G", memory, int64(64 << 30)},
		{VarMemory, "67108864", memory, int64(64 << 20)},
		{VarMemory, "512MiB", memory, int64(512 << 20)},
		{VarMemory, "1g", memory, int64(1 << 30)},
		{VarMemory, "1.5G", memory, int64(3 << 29)},
		{VarPids, "16", pids, int64(16)},
		{VarPids, "65536", pids, int64(65536)},
		{VarPids, "1024", pids, int64(1024)},
		{VarCPUs, "0", cpus, 0.0},
		{VarCPUs, "0.01", cpus, 0.01},
		{VarCPUs, "1024", cpus, 1024.0},
		{VarCPUs, "1.5", cpus, 1.5},
		{VarCPUs, "2", cpus, 2.0},
		{VarCPUs, "0.0", cpus, 0.0},
		{VarMaxOutput, "1K", maxOutput, int64(1 << 10)},
		{VarMaxOutput, "1024", maxOutput, int64(1 << 10)},
		{VarMaxOutput, "1G", maxOutput, int64(1 << 30)},
		{VarMaxOutput, "64k", maxOutput, int64(64 << 10)},
		{VarDefaultTimeout, "100", defaultTimeout, 100 * time.Millisecond},
		{VarDefaultTimeout, "300000", defaultTimeout, 300 * time.Second},
		{VarMaxTimeout, "86400000", maxTimeout, 24 * time.Hour},
		{VarMaxTimeout, "30000", maxTimeout, 30 * time.Second},
		{VarMaxTimeout, "100", maxTimeout, 100 * time.Millisecond},
		{VarAllowDegraded, "1", allowDegraded, true},
		{VarAllowDegraded, "0", allowDegraded, false},
		{VarAllowDegraded, "true", allowDegraded, true},
		{VarAllowDegraded, "false", allowDegraded, false},
		{VarAllowDegraded, "yes", allowDegraded, true},
		{VarAllowDegraded, "no", allowDegraded, false},
		{VarAllowDegraded, "TRUE", allowDegraded, true},
		{VarAllowDegraded, "No", allowDegraded, false},
		{VarStateDir, "/var/lib/conductor", stateDir, "/var/lib/conductor"},
		{VarStateDir, "/a", stateDir, "/a"},
		{VarCgroupParent, "/user.slice/user-1000.slice/user@1000.service/app.slice", cgroupParent, "/user.slice/user-1000.slice/user@1000.service/app.slice"},
		{VarCgroupParent, "/conductor", cgroupParent, "/conductor"},
		{VarCgroupParent, "conductor-alice", cgroupParent, "conductor-alice"},
		{VarMaxConcurrency, "1", func(s Settings) any { return s.MaxConcurrency }, 1},
		{VarMaxConcurrency, "256", func(s Settings) any { return s.MaxConcurrency }, 256},
		{VarMaxQueue, "0", func(s Settings) any { return s.MaxQueue }, 0},
		{VarMaxCode, "10M", func(s Settings) any { return s.MaxCode }, int64(10 << 20)},
		{VarHTTPToken, "0123456789abcdef", func(s Settings) any { return s.HTTPToken }, "0123456789abcdef"},
		{VarAllowedPackages, "npm:zod@^3,jsr:@std/path@^1", func(s Settings) any { return s.AllowedPackages }, "npm:zod@^3,jsr:@std/path@^1"},
		{VarCgroupParent, "/a:b", cgroupParent, "/a:b"},
		{VarRunArgs, "allow-read=/data,allow-net=a.com,b.com", runArgsField, []string{"--allow-read=/data", "--allow-net=a.com,b.com"}},
	}
	for _, tt := range tests {
		got, err := Load(env(tt.name, tt.value))
		if err != nil {
			t.Errorf("%s=%q: %v", tt.name, tt.value, err)
			continue
		}
		if g := tt.field(got); !reflect.DeepEqual(g, tt.want) {
			t.Errorf("%s=%q: got %v, want %v", tt.name, tt.value, g, tt.want)
		}
	}
}

func memory(s Settings) any         { return s.Memory }
func metricsAddr(s Settings) any    { return s.MetricsAddr }
func pids(s Settings) any           { return s.Pids }
func cpus(s Settings) any           { return s.CPUs }
func maxOutput(s Settings) any      { return s.MaxOutput }
func defaultTimeout(s Settings) any { return s.DefaultTimeout }
func maxTimeout(s Settings) any     { return s.MaxTimeout }
func allowDegraded(s Settings) any  { return s.AllowDegraded }
func stateDir(s Settings) any       { return s.StateDir }
func cgroupParent(s Settings) any   { return s.CgroupParent }
func runArgsField(s Settings) any   { return s.RunArgs }

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{VarMemory, "12Q", "not a size"},
		{VarMetricsAddr, "9464", "not HOST:PORT"},
		{VarMetricsAddr, "127.0.0.1", "not HOST:PORT"},
		{VarMetricsAddr, "127.0.0.1:0", "not a number from 1 to 65535"},
		{VarMetricsAddr, "127.0.0.1:65536", "not a number from 1 to 65535"},
		{VarMetricsAddr, "127.0.0.1:http", "not a number from 1 to 65535"},
		{VarMetricsAddr, "127.0.0.1:+80", "not a number from 1 to 65535"},
		{VarMetricsAddr, "127.0.0.1:080", "not a number from 1 to 65535"},
		{VarMetricsAddr, "metrics.example.com:9464", "neither a literal IP address nor localhost"},
		{VarMetricsAddr, "::1:9464", "not HOST:PORT"},
		{VarMemory, "63M", "63M is out of range"},
		{VarMemory, "67108863", "out of range"},
		{VarMemory, "65G", "out of range"},
		{VarMemory, "64G1", "unknown suffix"},
		{VarMemory, "0", "out of range"},
		{VarMemory, "-1", "negative"},
		{VarMemory, "1e9", "unknown suffix"},
		{VarMemory, "512 M", "unknown suffix"},
		{VarMemory, " 512M", "leading or trailing whitespace"},
		{VarMemory, "512M\n", "leading or trailing whitespace"},
		{VarMemory, "99999999999999999999G", "too large"},
		{VarPids, "15", "out of range"},
		{VarPids, "65537", "out of range"},
		{VarPids, "0", "out of range"},
		{VarPids, "-1", "not a whole number"},
		{VarPids, "+16", "not a whole number"},
		{VarPids, "1k", "not a whole number"},
		{VarPids, "16.0", "not a whole number"},
		{VarPids, "abc", "not a whole number"},
		{VarPids, "99999999999999999999", "out of range"},
		{VarCPUs, "0.001", "out of range"},
		{VarCPUs, "0.009", "out of range"},
		{VarCPUs, "1024.5", "out of range"},
		{VarCPUs, "-1", "not a decimal number"},
		{VarCPUs, "1e2", "not a decimal number"},
		{VarCPUs, "inf", "not a decimal number"},
		{VarCPUs, "NaN", "not a decimal number"},
		{VarCPUs, ".5", "not a decimal number"},
		{VarCPUs, "1.", "not a decimal number"},
		{VarCPUs, "1,5", "not a decimal number"},
		{VarCPUs, "0x1", "not a decimal number"},
		{VarCPUs, "1_0", "not a decimal number"},
		{VarMaxOutput, "1023", "out of range"},
		{VarMaxOutput, "1025M", "out of range"},
		{VarMaxOutput, "2G", "out of range"},
		{VarMaxOutput, "lots", "not a size"},
		{VarDefaultTimeout, "99", "out of range"},
		{VarDefaultTimeout, "86400001", "out of range"},
		{VarDefaultTimeout, "30s", "not a whole number"},
		{VarDefaultTimeout, "1.5", "not a whole number"},
		{VarDefaultTimeout, "-100", "not a whole number"},
		{VarMaxTimeout, "99", "out of range"},
		{VarMaxTimeout, "1e6", "not a whole number"},
		{VarMaxTimeout, "5m", "not a whole number"},
		{VarAllowDegraded, "2", "not a yes/no value"},
		{VarMaxConcurrency, "0", "out of range"},
		{VarPoolSize, "65", "out of range"},
		{VarPoolSize, "-1", "out of range"},
		{VarPoolMax, "0", "out of range"},
		{VarPoolMax, "65", "out of range"},
		{VarMaxConcurrency, "two", "not an integer"},
		{VarMaxQueue, "-1", "out of range"},
		{VarMaxCode, "100G", "out of range"},
		{VarAllowedPackages, "npm:zod@^3;rm", "contains"},
		{VarAllowedPackages, "npm:zod@^3, npm:x@1", "contains"},
		{VarMCPConfig, "a\nb", "newline"},
		{VarPython, "python3", "absolute"},
		{VarGo, "go", "absolute"},
		{VarGo, "/usr/local/go/", "absolute"},
		{VarSnippets, "rel/dir", "absolute"},
		{VarPlaybooks, "rel/dir", "absolute"},
		{VarPlaybooks, "/a/../b", "absolute"},
		{VarPlaybooksWritable, "maybe", "not a yes/no value"},
		{VarTypeCheck, "maybe", "yes/no"},
		{VarAllowDegraded, "on", "not a yes/no value"},
		{VarAllowDegraded, "off", "not a yes/no value"},
		{VarAllowDegraded, "y", "not a yes/no value"},
		{VarAllowDegraded, "tru", "not a yes/no value"},
		{VarStateDir, "relative", "not an absolute path"},
		{VarStateDir, "./x", "not an absolute path"},
		{VarStateDir, "/", "must not be / itself"},
		{VarStateDir, "/a/../b", `".." element`},
		{VarStateDir, "/a/", "not a clean path"},
		{VarStateDir, "/a b", "a space"},
		{VarStateDir, "/a\nb", "a newline"},
		{VarStateDir, "/a,b", `","`},
		{VarStateDir, "/a:b", `":"`},
		{VarCgroupParent, "/", "not / itself"},
		{VarCgroupParent, "/a/../b", `".." element`},
		{VarCgroupParent, "/..", `".." element`},
		{VarCgroupParent, "/a b", "a space"},
		{VarCgroupParent, "/a\tb", "control byte 0x09"},
		{VarCgroupParent, "/a\x00", "a NUL byte"},
		{VarCgroupParent, "/a//b", "not a clean path"},
		{VarCgroupParent, "/a/", "not a clean path"},
		{VarCgroupParent, "/a/./b", "not a clean path"},
		{VarCgroupParent, "/sys/fs/cgroup/user.slice", `without /sys/fs/cgroup: "/user.slice"`},
		{VarWorkspace, "relative", "not an absolute path"},
		{VarWorkspace, "/", "must not be / itself"},
		{VarWorkspace, "/nonexistent-conductor-test-dir", "does not exist"},
		{VarRunArgs, "allow-import", "remote imports are disabled"},
		{VarRunArgs, "allow-read=rel", "not an absolute path"},
		{VarRunArgs, "allow-read=/x --allow-all", "a space"},
	}
	for _, tt := range tests {
		_, err := Load(env(tt.name, tt.value))
		errs := settingErrors(t, err)
		if len(errs) != 1 {
			t.Errorf("%s=%q: got %d errors (%v), want 1", tt.name, tt.value, len(errs), err)
			continue
		}
		e := errs[0]
		if e.Var != tt.name || e.Value != tt.value {
			t.Errorf("%s=%q: error names %s=%q", tt.name, tt.value, e.Var, e.Value)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s=%q: error does not match ErrInvalid", tt.name, tt.value)
		}
		msg := e.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s=%q: error %q does not contain %q", tt.name, tt.value, msg, tt.want)
		}
		var wantAllowed string
		for _, v := range Variables() {
			if v.Name == tt.name {
				wantAllowed = v.Allowed
			}
		}
		if !strings.HasPrefix(msg, tt.name+"=") || !strings.HasSuffix(msg, "; allowed: "+wantAllowed) {
			t.Errorf("%s=%q: error %q does not start with the name and end with the allowed values", tt.name, tt.value, msg)
		}
		if strings.ContainsAny(msg, "\n\x00") {
			t.Errorf("%s=%q: error %q is not one line", tt.name, tt.value, msg)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Load(env(VarMemory, "12Q"))
	want := `MCP_CONDUCTOR_MEMORY="12Q": not a size: unknown suffix "Q"; allowed: bytes with optional K, M, G suffix (binary), between 64M and 64G`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Var != VarMemory || e.Value != "12Q" || e.Err == nil {
		t.Errorf("errors.As: %#v", e)
	}
	if errors.Unwrap(e) != e.Err {
		t.Error("Unwrap does not return Err")
	}
	if !errors.Is(e, ErrInvalid) {
		t.Error("*Error does not match ErrInvalid")
	}
	if errors.Is(e, os.ErrNotExist) {
		t.Error("*Error matches an unrelated error")
	}

	// A RUN_ARGS error with several problems stays on one line.
	_, err = Load(env(VarRunArgs, "allow-import,allow-read=rel"))
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, `item 1 "allow-import": `) || !strings.Contains(msg, `; item 2 "allow-read=rel": `) {
		t.Errorf("RUN_ARGS error = %q", msg)
	}

	// Values are quoted, so a newline cannot forge a log line.
	_, err = Load(env(VarPids, "1\nMCP_CONDUCTOR_OK=1"))
	if msg := err.Error(); !strings.HasPrefix(msg, `MCP_CONDUCTOR_PIDS="1\nMCP_CONDUCTOR_OK=1": `) {
		t.Errorf("error = %q", msg)
	}

	if got := (&Error{Var: "X", Value: "v"}).Error(); got != `X="v": invalid` {
		t.Errorf("zero Error = %q", got)
	}
}

func TestLoadReportsEveryBadVariable(t *testing.T) {
	ws := t.TempDir()
	file := filepath.Join(ws, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		VarRunArgs, "v8-flags=--jitless",
		VarMemory, "12Q",
		VarPids, "1",
		VarCPUs, "many",
		VarMaxOutput, "2G",
		VarDefaultTimeout, "30s",
		VarMaxTimeout, "0",
		VarAllowDegraded, "maybe",
		VarStateDir, "state",
		VarCgroupParent, "/a/../b",
		VarWorkspace, file,
	}
	_, err := Load(env(bad...))
	errs := settingErrors(t, err)
	var got, want []string
	for _, e := range errs {
		got = append(got, e.Var)
	}
	for i := 0; i < len(bad); i += 2 {
		want = append(want, bad[i])
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors name %q, want %q", got, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("joined error does not match ErrInvalid")
	}

	// Good variables alongside bad ones are not reported, and no settings
	// are returned.
	s, err := Load(env(VarMemory, "1G", VarPids, "1", VarCPUs, "2", VarAllowDegraded, "x"))
	errs = settingErrors(t, err)
	if len(errs) != 2 || errs[0].Var != VarPids || errs[1].Var != VarAllowDegraded {
		t.Errorf("got %v", err)
	}
	if !reflect.DeepEqual(s, Settings{}) {
		t.Errorf("settings returned with an error: %+v", s)
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		kv            []string
		wantDef, wMax time.Duration
		wantErr       string // Var in error, or ""
	}{
		{nil, 30 * time.Second, 300 * time.Second, ""},
		{[]string{VarDefaultTimeout, "5000"}, 5 * time.Second, 300 * time.Second, ""},
		{[]string{VarMaxTimeout, "10000"}, 10 * time.Second, 10 * time.Second, ""}, // unset default follows the max down
		{[]string{VarDefaultTimeout, "10000", VarMaxTimeout, "10000"}, 10 * time.Second, 10 * time.Second, ""},
		{[]string{VarDefaultTimeout, "600000", VarMaxTimeout, "3600000"}, 10 * time.Minute, time.Hour, ""},
		{[]string{VarDefaultTimeout, "20000", VarMaxTimeout, "10000"}, 0, 0, VarDefaultTimeout},
		{[]string{VarDefaultTimeout, "400000"}, 0, 0, VarDefaultTimeout},
		{[]string{VarDefaultTimeout, "400000", VarMaxTimeout, "x"}, 0, 0, VarMaxTimeout},   // no follow-on error
		{[]string{VarDefaultTimeout, "x", VarMaxTimeout, "1000"}, 0, 0, VarDefaultTimeout}, // only the parse error
	}
	for _, tt := range tests {
		s, err := Load(env(tt.kv...))
		if tt.wantErr == "" {
			if err != nil || s.DefaultTimeout != tt.wantDef || s.MaxTimeout != tt.wMax {
				t.Errorf("%q: got %v, %v, %v; want %v, %v", tt.kv, s.DefaultTimeout, s.MaxTimeout, err, tt.wantDef, tt.wMax)
			}
			continue
		}
		errs := settingErrors(t, err)
		if len(errs) != 1 || errs[0].Var != tt.wantErr {
			t.Errorf("%q: got %v, want one error for %s", tt.kv, err, tt.wantErr)
		}
	}
	_, err := Load(env(VarDefaultTimeout, "20000", VarMaxTimeout, "10000"))
	want := `MCP_CONDUCTOR_DEFAULT_TIMEOUT="20000": longer than the maximum timeout; allowed: at most MCP_CONDUCTOR_MAX_TIMEOUT (10000)`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestWorkspace(t *testing.T) {
	// The temporary directory may itself sit behind a symbolic link.
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(dir, "ws")
	file := filepath.Join(dir, "file")
	link := filepath.Join(dir, "link")
	for _, err := range []error{
		os.Mkdir(ws, 0o700),
		os.Mkdir(filepath.Join(ws, "sub"), 0o700),
		os.WriteFile(file, nil, 0o600),
		os.Symlink(ws, link),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	s, err := Load(env(VarWorkspace, ws))
	if err != nil || s.Workspace != ws {
		t.Fatalf("Load(%s) = %q, %v", ws, s.Workspace, err)
	}
	s, err = Load(env(VarWorkspace, ws+"/sub"))
	if err != nil || s.Workspace != ws+"/sub" {
		t.Fatalf("Load(%s/sub) = %q, %v", ws, s.Workspace, err)
	}

	tests := []struct{ value, want string }{
		{link, "symbolic link"},
		{link + "/sub", "symbolic link"},
		{file, "not a directory"},
		{filepath.Join(dir, "missing"), "does not exist"},
		{ws + "/", "not a clean path"},
		{ws + "/sub/..", `".." element`},
		{ws + "/./sub", "not a clean path"},
		{dir + "/ws dir", "a space"},
	}
	for _, tt := range tests {
		_, err := Load(env(VarWorkspace, tt.value))
		errs := settingErrors(t, err)
		if len(errs) != 1 || errs[0].Var != VarWorkspace || !strings.Contains(errs[0].Error(), tt.want) {
			t.Errorf("Load(%s=%q) = %v; want an error containing %q", VarWorkspace, tt.value, err, tt.want)
		}
	}
}

func TestRunArgsSettings(t *testing.T) {
	tests := []struct {
		value    string
		allowAll bool
		network  bool
		hosts    []string
	}{
		{"allow-read=/data", false, false, nil},
		{"allow-net=API.example.com:443,deno.land", false, true, []string{"api.example.com:443", "deno.land"}},
		{"allow-net", false, true, nil},
		{"allow-all", true, true, nil},
		{"allow-all,deny-net", true, false, nil},
	}
	for _, tt := range tests {
		s, err := Load(env(VarRunArgs, tt.value))
		if err != nil {
			t.Errorf("%q: %v", tt.value, err)
			continue
		}
		if s.AllowAll != tt.allowAll || s.Network != tt.network || !slices.Equal(s.NetHosts, tt.hosts) {
			t.Errorf("%q: AllowAll %v Network %v NetHosts %q; want %v %v %q", tt.value, s.AllowAll, s.Network, s.NetHosts, tt.allowAll, tt.network, tt.hosts)
		}
		want, _ := ParseRunArgs(tt.value)
		if !slices.Equal(s.RunArgs, want) {
			t.Errorf("%q: RunArgs %q, ParseRunArgs %q", tt.value, s.RunArgs, want)
		}
	}
}

func TestVariables(t *testing.T) {
	vs := Variables()
	wantNames := []string{
		VarRunArgs, VarMemory, VarPids, VarCPUs, VarMaxOutput, VarDefaultTimeout,
		VarMaxTimeout, VarAllowDegraded, VarStateDir, VarDataDir, VarCgroupParent, VarWorkspace,
		VarAllowedPackages, VarMaxConcurrency, VarMaxQueue, VarHTTPToken, VarMaxCode, VarMCPConfig, VarPython, VarGo, VarTypeCheck, VarSnippets, VarPlaybooks, VarPlaybooksWritable, VarPoolSize, VarPoolMax,
		VarSpillMax, VarSpillTotal, VarOutputsSize, VarOutputsFiles, VarOutputsFileSize, VarWorkspaceQuota, VarHTTPInsecureNoAuth, VarHTTPMaxConns,
		VarHTTPMaxConnsPerIP, VarHTTPMaxSessions, VarHTTPStateless, VarOutputsInline, VarOutputsStoreSize, VarOutputsRetention, VarMetricsAddr, VarMCPMaxRequest, VarMCPMaxInFlight, VarMCPMaxInFlightTotal,
		VarNetPrivate, VarNetSecrets, VarTools, VarAudit, VarAuditCode, VarConfig,
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
		if !strings.HasPrefix(v.Name, Prefix) || v.Allowed == "" || v.Description == "" {
			t.Errorf("incomplete documentation: %+v", v)
		}
		if v.Default == "" {
			continue
		}
		// The documented default parses to the real default.
		s, err := Load(env(v.Name, v.Default))
		if err != nil {
			t.Errorf("%s: documented default %q does not parse: %v", v.Name, v.Default, err)
		} else if !reflect.DeepEqual(s, defaults()) {
			t.Errorf("%s: documented default %q gives %+v, real default %+v", v.Name, v.Default, s, defaults())
		}
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("Variables() names = %q, want %q", names, wantNames)
	}
	// Callers get a copy.
	vs[0].Name = "changed"
	if Variables()[0].Name != VarRunArgs {
		t.Error("Variables() exposes the table")
	}
}

func TestUnknownVariables(t *testing.T) {
	got := UnknownVariables([]string{
		"PATH=/bin",
		"MCP_CONDUCTOR_MEMORY=1G",
		"MCP_CONDUCTOR_MEMROY=1G",
		"MCP_CONDUCTOR_RUNARGS=allow-all",
		"MCP_CONDUCTOR_MEMROY=2G",
		"MCP_CONDUCTOR_",
		"mcp_conductor_memory=1G",
	})
	want := []string{"MCP_CONDUCTOR_", "MCP_CONDUCTOR_MEMROY", "MCP_CONDUCTOR_RUNARGS"}
	if !slices.Equal(got, want) {
		t.Errorf("UnknownVariables = %q, want %q", got, want)
	}
}

// TestSecretValuesAreHidden covers the table's secret flag, which future
// variables such as a token will use.
func TestSecretValuesAreHidden(t *testing.T) {
	tab := []setting{{
		Variable: Variable{Name: Prefix + "TEST_TOKEN", Allowed: "at least 32 characters"},
		secret:   true,
		parse: func(v string, s *Settings) error {
			if len(v) < 32 {
				return errors.New("too short")
			}
			return nil
		},
	}}
	_, _, err := load(tab, nil, env(Prefix+"TEST_TOKEN", "hunter2"))
	if err == nil {
		t.Fatal("no error")
	}
	want := "MCP_CONDUCTOR_TEST_TOKEN (value hidden): too short; allowed: at least 32 characters"
	if err.Error() != want || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Value != "" {
		t.Errorf("secret value kept in Error.Value: %q", e.Value)
	}
}

// TestSecretNeverEchoed: a bad HTTP token is reported without its value.
func TestSecretNeverEchoed(t *testing.T) {
	for _, v := range []string{"short-secret", "has a space in it here"} {
		_, err := Load(env(VarHTTPToken, v))
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: err = %v, want ErrInvalid", v, err)
		}
		if strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), VarHTTPToken) || !strings.Contains(err.Error(), "value hidden") {
			t.Errorf("error %q must name the variable and hide the value", err)
		}
	}
}

// TestIssue9Settings covers the limits added for the security review
// (issue 9): spill bounds, the workspace quota, HTTP limits and the
// mcpFactory request budget, with the checks that tie them together.
func TestIssue9Settings(t *testing.T) {
	ws := t.TempDir()
	tests := []struct {
		name    string
		kv      []string
		field   func(Settings) any
		want    any
		wantErr string // substring of the error; "" = valid
	}{
		{"outputs inline 64K", []string{VarOutputsInline, "64K"}, func(s Settings) any { return s.OutputsInlineTotal() }, int64(256 << 10), ""},
		{"outputs inline too big", []string{VarOutputsInline, "32M"}, nil, nil, VarOutputsInline + `="32M": 32M is out of range`},
		{"outputs store 1G", []string{VarOutputsStoreSize, "1G"}, func(s Settings) any { return s.OutputsStoreSize }, int64(1 << 30), ""},
		{"outputs retention 2s", []string{VarOutputsRetention, "2s"}, func(s Settings) any { return s.OutputsRetention }, 2 * time.Second, ""},
		{"outputs retention too short", []string{VarOutputsRetention, "500ms"}, nil, nil, VarOutputsRetention + `="500ms": 500ms is out of range`},
		{"outputs retention not a duration", []string{VarOutputsRetention, "3600"}, nil, nil,
			VarOutputsRetention + `="3600": not a duration such as 90s, 30m or 2h`},
		{"spill off", []string{VarSpillMax, "0"}, func(s Settings) any { return s.SpillMax }, int64(0), ""},
		{"spill 1M", []string{VarSpillMax, "1M"}, func(s Settings) any { return s.SpillMax }, int64(1 << 20), ""},
		{"spill too small", []string{VarSpillMax, "1K"}, nil, nil, VarSpillMax + `="1K": 1K is out of range`},
		{"spill total below spill max", []string{VarSpillMax, "64M", VarSpillTotal, "32M"}, nil, nil,
			VarSpillTotal + `="32M": ` + VarSpillTotal + " would be smaller than " + VarSpillMax},
		{"spill max above default total", []string{VarSpillMax, "512M"}, nil, nil,
			VarSpillMax + `="512M": ` + VarSpillTotal + " would be smaller than " + VarSpillMax},
		{"outputs off", []string{VarOutputsSize, "0"}, func(s Settings) any { return s.OutputsSize }, int64(0), ""},
		{"outputs 8M", []string{VarOutputsSize, "8M"}, func(s Settings) any { return s.OutputsSize }, int64(8 << 20), ""},
		{"outputs too large", []string{VarOutputsSize, "2G"}, nil, nil, VarOutputsSize + `="2G": 2G is out of range`},
		{"outputs files", []string{VarOutputsFiles, "100"}, func(s Settings) any { return s.OutputsFiles }, 100, ""},
		{"outputs files 0", []string{VarOutputsFiles, "0"}, nil, nil, VarOutputsFiles + `="0"`},
		{"outputs file size", []string{VarOutputsFileSize, "1M"}, func(s Settings) any { return s.OutputsFileSize }, int64(1 << 20), ""},
		{"outputs file size over size", []string{VarOutputsSize, "1M", VarOutputsFileSize, "2M"}, nil, nil,
			VarOutputsFileSize + `="2M": ` + VarOutputsFileSize + " would be larger than " + VarOutputsSize},
		{"outputs file size, outputs off", []string{VarOutputsSize, "0", VarOutputsFileSize, "2M"}, func(s Settings) any { return s.OutputsFileSize }, int64(2 << 20), ""},
		{"quota", []string{VarWorkspace, ws, VarWorkspaceQuota, "1G"}, func(s Settings) any { return s.WorkspaceQuota }, int64(1 << 30), ""},
		{"quota without workspace", []string{VarWorkspaceQuota, "1G"}, nil, nil, VarWorkspaceQuota + `="1G": ` + VarWorkspace + " is not set; allowed: only together with " + VarWorkspace},
		{"quota garbage", []string{VarWorkspace, ws, VarWorkspaceQuota, "lots"}, nil, nil, "not a size"},
		{"no auth", []string{VarHTTPInsecureNoAuth, "yes"}, func(s Settings) any { return s.HTTPInsecureNoAuth }, true, ""},
		{"no auth and token", []string{VarHTTPInsecureNoAuth, "1", VarHTTPToken, "0123456789abcdef"}, nil, nil,
			VarHTTPInsecureNoAuth + `="1": ` + VarHTTPToken + " is set too"},
		{"playbooks writable without a directory", []string{VarPlaybooksWritable, "1"}, nil, nil,
			VarPlaybooksWritable + `="1": ` + VarPlaybooks + " is not set"},
		{"playbooks writable", []string{VarPlaybooks, "/srv/pb", VarPlaybooksWritable, "yes"}, func(s Settings) any { return s.PlaybooksWritable }, true, ""},
		{"no auth off with token", []string{VarHTTPInsecureNoAuth, "0", VarHTTPToken, "0123456789abcdef"}, func(s Settings) any { return s.HTTPToken }, "0123456789abcdef", ""},
		{"max conns", []string{VarHTTPMaxConns, "10"}, func(s Settings) any { return s.HTTPMaxConns }, 10, ""},
		{"max conns zero", []string{VarHTTPMaxConns, "0"}, nil, nil, "0 is out of range"},
		{"per ip", []string{VarHTTPMaxConnsPerIP, "4"}, func(s Settings) any { return s.HTTPMaxConnsPerIP }, 4, ""},
		{"sessions", []string{VarHTTPMaxSessions, "2"}, func(s Settings) any { return s.HTTPMaxSessions }, 2, ""},
		{"stateless", []string{VarHTTPStateless, "yes"}, func(s Settings) any { return s.HTTPStateless }, true, ""},
		{"stateless not a bool", []string{VarHTTPStateless, "sometimes"}, nil, nil, "not a yes/no value"},
		{"request", []string{VarMCPMaxRequest, "64K"}, func(s Settings) any { return s.MCPMaxRequest }, int64(64 << 10), ""},
		{"request above in flight", []string{VarMCPMaxRequest, "16M"}, nil, nil, VarMCPMaxRequest + `="16M": ` + VarMCPMaxInFlight + " would be smaller than " + VarMCPMaxRequest},
		{"in flight above total", []string{VarMCPMaxInFlight, "128M"}, nil, nil, VarMCPMaxInFlight + `="128M": ` + VarMCPMaxInFlightTotal + " would be smaller than " + VarMCPMaxInFlight},
		{"in flight", []string{VarMCPMaxInFlight, "2M", VarMCPMaxInFlightTotal, "4M"}, func(s Settings) any { return s.MCPMaxInFlightTotal }, int64(4 << 20), ""},
		// Issue 10: the non-public ranges runs may reach.
		{"net private", []string{VarRunArgs, "allow-net=db.internal:5432", VarNetPrivate, "10.0.0.0/8,127.0.0.1/32,fd00::/8"}, func(s Settings) any { return fmt.Sprint(s.NetPrivate) }, "[10.0.0.0/8 127.0.0.1/32 fd00::/8]", ""},
		{"net private with allow-all", []string{VarRunArgs, "allow-all", VarNetPrivate, "192.168.0.0/16"}, func(s Settings) any { return len(s.NetPrivate) }, 1, ""},
		{"net private without network", []string{VarNetPrivate, "10.0.0.0/8"}, nil, nil, VarNetPrivate + `="10.0.0.0/8": ` + VarRunArgs + " grants no network"},
		{"net private host bits", []string{VarRunArgs, "allow-net", VarNetPrivate, "10.1.2.3/8"}, nil, nil, "host bits set (did you mean 10.0.0.0/8?)"},
		{"net private not a cidr", []string{VarRunArgs, "allow-net", VarNetPrivate, "10.0.0.1"}, nil, nil, `item 1 "10.0.0.1": not a CIDR`},
		{"net private empty item", []string{VarRunArgs, "allow-net", VarNetPrivate, "10.0.0.0/8,"}, nil, nil, `item 2 "": not a CIDR`},
		{"deny-net values kept for the door", []string{VarRunArgs, "allow-all,deny-net=evil.example,other.example:25"}, func(s Settings) any { return s.NetDeny }, []string{"evil.example", "other.example:25"}, ""},
		{"bare deny-net: no network, no deny list", []string{VarRunArgs, "allow-net,deny-net"}, func(s Settings) any { return s.NetDeny == nil && !s.Network }, true, ""},
		{"net private zone", []string{VarRunArgs, "allow-net", VarNetPrivate, "fe80::%eth0/64"}, nil, nil, "not a CIDR"},
		// Secrets: values come from the variables the entries name.
		{"secrets", []string{VarRunArgs, "allow-net", VarNetSecrets, "GITHUB_TOKEN=api.github.com,Uploads.GitHub.com.;K=api.example.com", "GITHUB_TOKEN", "ghp_0123456789", "K", "k-0123456789"},
			func(s Settings) any { return fmt.Sprint(s.NetSecrets) }, "[GITHUB_TOKEN=api.github.com,uploads.github.com K=api.example.com]", ""},
		{"secret value read", []string{VarRunArgs, "allow-net", VarNetSecrets, "K=api.example.com", "K", "k-0123456789"},
			func(s Settings) any { return s.NetSecrets[0].Value }, "k-0123456789", ""},
		{"secret variable unset", []string{VarRunArgs, "allow-net", VarNetSecrets, "K=api.example.com"}, nil, nil, "the server's environment has no K"},
		{"secret variable empty", []string{VarRunArgs, "allow-net", VarNetSecrets, "K=api.example.com", "K", ""}, nil, nil, "the server's environment has no K"},
		{"secret without network", []string{VarNetSecrets, "K=api.example.com", "K", "k-0123456789"}, nil, nil, VarNetSecrets + `="K=api.example.com": ` + VarRunArgs + " grants no network"},
		{"secret not an entry", []string{VarRunArgs, "allow-net", VarNetSecrets, "K"}, nil, nil, `entry 1 "K": not NAME=host`},
		{"secret twice", []string{VarRunArgs, "allow-net", VarNetSecrets, "K=a.example;K=b.example", "K", "k-0123456789"}, nil, nil, "K is given twice"},
		{"secret host with port", []string{VarRunArgs, "allow-net", VarNetSecrets, "K=a.example:443", "K", "k-0123456789"}, nil, nil, "without port or scheme"},
		{"secret host url", []string{VarRunArgs, "allow-net", VarNetSecrets, "K=https://a.example", "K", "k-0123456789"}, nil, nil, "without port or scheme"},
		// Issue 11: CLI tools, consistent with allow-run.
		{"tools", []string{VarTools, "git,curl,/opt/bin/gh", VarRunArgs, "allow-run=git,curl,/usr/bin/gh,deno"},
			func(s Settings) any { return fmt.Sprint(s.Tools, s.AllowRun, s.RunAny) }, "[git curl /opt/bin/gh] [git curl /usr/bin/gh deno] false", ""},
		{"tools with bare allow-run", []string{VarTools, "git", VarRunArgs, "allow-run"}, func(s Settings) any { return s.RunAny }, true, ""},
		{"tools with allow-all", []string{VarTools, "git", VarRunArgs, "allow-all"}, func(s Settings) any { return s.RunAny }, true, ""},
		{"allow-run deno only", []string{VarRunArgs, "allow-run=deno"}, func(s Settings) any { return s.AllowRun }, []string{"deno"}, ""},
		{"tool not in allow-run", []string{VarTools, "git,curl", VarRunArgs, "allow-run=git"}, nil, nil,
			VarTools + " lists curl, but " + VarRunArgs + " does not allow running it: list it in allow-run too"},
		{"tool without allow-run", []string{VarTools, "git"}, nil, nil, VarTools + " lists git, but " + VarRunArgs + " does not allow running it"},
		{"allow-run not a tool", []string{VarRunArgs, "allow-run=git"}, nil, nil,
			VarRunArgs + `="allow-run=git": allow-run lists git, which is not in the sandbox: add it to ` + VarTools},
		{"allow-run path outside tools dir", []string{VarTools, "/opt/bin/gh", VarRunArgs, "allow-run=/opt/bin/gh"}, nil, nil,
			"tools are at /usr/bin/<name> in the sandbox: write allow-run=gh"},
		{"tool duplicate base name", []string{VarTools, "gh,/opt/bin/gh", VarRunArgs, "allow-run"}, nil, nil, `item 2 "/opt/bin/gh": item 1 is also named gh`},
		{"tool deno", []string{VarTools, "deno", VarRunArgs, "allow-run"}, nil, nil, "deno is always in the sandbox"},
		{"tool bad name", []string{VarTools, "g it", VarRunArgs, "allow-run"}, nil, nil, "not a program name"},
		{"tool relative path", []string{VarTools, "bin/git", VarRunArgs, "allow-run"}, nil, nil, "not a program name"},
		{"tool unclean path", []string{VarTools, "/usr//bin/git", VarRunArgs, "allow-run"}, nil, nil, "not a clean path"},
		{"tool empty item", []string{VarTools, "git,", VarRunArgs, "allow-run"}, nil, nil, "item 2 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(env(tt.kv...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.field(s); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnknownVariableProblems(t *testing.T) {
	tests := []struct {
		env  string
		want string // "" = no problem
	}{
		{"MCP_CONDUCTOR_RUN_ARG=allow-net", "MCP_CONDUCTOR_RUN_ARG is not a conductor variable, so it is ignored; did you mean MCP_CONDUCTOR_RUN_ARGS?"},
		{"MCP_CONDUCTOR_MEMROY=1G", "did you mean MCP_CONDUCTOR_MEMORY?"},
		{"MCP_CONDUCTOR_RUNARGS=allow-all", "did you mean MCP_CONDUCTOR_RUN_ARGS?"},
		{"MCP_CONDUCTOR_allowed_packages=npm:zod@^3", "did you mean MCP_CONDUCTOR_ALLOWED_PACKAGES?"},
		{"MCP_CONDUCTOR_PID=64", "did you mean MCP_CONDUCTOR_PIDS?"},
		{"MCP_CONDUCTOR_DATADIR=/x", "did you mean MCP_CONDUCTOR_DATA_DIR?"},
		{"MCP_CONDUCTOR_FAVOURITE_COLOUR=blue", "MCP_CONDUCTOR_FAVOURITE_COLOUR is not a conductor variable, so it is ignored"},
		{"MCP_CONDUCTOR_=1", "MCP_CONDUCTOR_ is not a conductor variable, so it is ignored"},
		{"MCP_CONDUCTOR_DATA_DIR=/x", ""},
		{"MCP_CONDUCTOR_MEMORY=1G", ""},
		{"PATH=/bin", ""},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			got := UnknownVariableProblems([]string{tc.env})
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("problems %q; want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Errorf("problems %q; want one containing %q", got, tc.want)
			case strings.Contains(tc.want, "ignored") && !strings.Contains(tc.want, "did you mean") && len(got) == 1 && strings.Contains(got[0], "did you mean"):
				t.Errorf("problems %q suggest a name for something close to none", got)
			}
		})
	}
}

// TestMCPConfigFile: the upstream servers file is MCP_CONDUCTOR_MCP_CONFIG when set (explicit),
// else ~/.mcp-conductor/mcp-config.json, else none (a system service without a home directory:
// no upstream servers, not a refusal to start; found on a real systemd host, issue 18).
func TestMCPConfigFile(t *testing.T) {
	for _, tc := range []struct {
		name, home, set string
		want            string
		explicit        bool
	}{
		{name: "set", home: "/home/x", set: "/etc/conductor/mcp.json", want: "/etc/conductor/mcp.json", explicit: true},
		{name: "default", home: "/home/x", want: "/home/x/.mcp-conductor/mcp-config.json"},
		{name: "no home", home: "", want: ""},
		{name: "set without home", home: "", set: "/srv/mcp.json", want: "/srv/mcp.json", explicit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", tc.home)
			env := map[string]string{}
			if tc.set != "" {
				env[VarMCPConfig] = tc.set
			}
			s, err := Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			path, explicit := s.MCPConfigFile()
			if path != tc.want || explicit != tc.explicit {
				t.Fatalf("MCPConfigFile() = %q, %v; want %q, %v", path, explicit, tc.want, tc.explicit)
			}
		})
	}
}

// TestPoolLimit: POOL_MAX when set (refused below POOL_SIZE); else the CPUs within the memory
// budget (one sandbox's memory limit at PoolSandboxMiB each), never below POOL_SIZE; 0 when the
// pool is off.
func TestPoolLimit(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		cpus    int
		want    int
		wantErr string
	}{
		{"default on 2 CPUs", nil, 2, 2, ""},
		{"default on 8 CPUs: 512 MiB holds 12", nil, 8, 8, ""},
		{"default on 32 CPUs: the memory budget", nil, 32, 12, ""},
		{"small memory: never below the size", []string{VarMemory, "64M", VarPoolSize, "3"}, 8, 3, ""},
		{"1 CPU: the size", []string{VarPoolSize, "2"}, 1, 2, ""},
		{"explicit", []string{VarPoolMax, "20"}, 2, 20, ""},
		{"pool off", []string{VarPoolSize, "0"}, 8, 0, ""},
		{"below the size", []string{VarPoolSize, "4", VarPoolMax, "3"}, 8, 0, "would be smaller than " + VarPoolSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(env(tc.env...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), VarPoolMax) {
					t.Fatalf("err %v, want one naming %s and %q", err, VarPoolMax, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.PoolLimit(tc.cpus); got != tc.want {
				t.Fatalf("PoolLimit(%d) = %d, want %d", tc.cpus, got, tc.want)
			}
		})
	}
}

// TestAuditSettings: MCP_CONDUCTOR_AUDIT takes an absolute clean path, stderr or stdout (serve
// decides whether stdout may be used); AUDIT_CODE needs AUDIT.
func TestAuditSettings(t *testing.T) {
	tests := []struct {
		name    string
		kv      []string
		want    Settings // Audit and AuditCode
		wantErr string
	}{
		{"unset", nil, Settings{}, ""},
		{"file", []string{VarAudit, "/var/log/conductor/audit.log"}, Settings{Audit: "/var/log/conductor/audit.log"}, ""},
		{"stderr with code", []string{VarAudit, "stderr", VarAuditCode, "1"}, Settings{Audit: "stderr", AuditCode: true}, ""},
		{"stdout", []string{VarAudit, "stdout"}, Settings{Audit: "stdout"}, ""},
		{"code off without audit", []string{VarAuditCode, "0"}, Settings{}, ""},
		{"relative", []string{VarAudit, "audit.log"}, Settings{}, VarAudit + `="audit.log": not an absolute clean path; allowed: an absolute clean path`},
		{"unclean", []string{VarAudit, "/var/log/../audit.log"}, Settings{}, "not an absolute clean path"},
		{"root", []string{VarAudit, "/"}, Settings{}, "must name a file"},
		{"newline", []string{VarAudit, "/tmp/a\nb"}, Settings{}, "not an absolute clean path"},
		{"other stream", []string{VarAudit, "syslog"}, Settings{}, "stderr, or stdout (only with serve --http)"},
		{"code without audit", []string{VarAuditCode, "yes"}, Settings{}, VarAuditCode + `="yes": ` + VarAudit + " is not set; allowed: only with " + VarAudit},
		{"code not a bool", []string{VarAudit, "stderr", VarAuditCode, "all"}, Settings{}, "not a yes/no value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(env(tc.kv...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Audit != tc.want.Audit || s.AuditCode != tc.want.AuditCode {
				t.Errorf("Audit %q AuditCode %v, want %q %v", s.Audit, s.AuditCode, tc.want.Audit, tc.want.AuditCode)
			}
		})
	}
}
