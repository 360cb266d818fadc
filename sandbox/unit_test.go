package sandbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

func TestDenoArgs(t *testing.T) {
	tests := []struct {
		name     string
		memory   int64
		flags    []string
		contains []string
		absent   []string
	}{
		{"hardening flags and channel", 512 << 20, nil,
			[]string{"--no-prompt", "--cached-only", "--no-remote", "--allow-read=" + channelIn, "--allow-write=" + channelOut, "--v8-flags=--max-old-space-size=342"}, nil},
		{"no memory limit, no v8 flag", 0, nil, nil, []string{"--v8-flags=--max-old-space-size=342"}},
		{"tiny memory clamps old space", 64 << 20, nil, []string{"--v8-flags=--max-old-space-size=32"}, nil},
		{"admin list merged", 512 << 20, []string{"--allow-read=/data"}, []string{"--allow-read=/data," + channelIn}, []string{"--allow-read=/data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := denoArgs("/usr/bin/deno", "/conductor/bootstrap.js", tc.flags, tc.memory, nil)
			if args[0] != "/usr/bin/deno" || args[1] != "run" || args[len(args)-1] != "/conductor/bootstrap.js" {
				t.Fatalf("args shape: %v", args)
			}
			joined := "\x00" + strings.Join(args, "\x00") + "\x00"
			for _, c := range tc.contains {
				if !strings.Contains(joined, "\x00"+c+"\x00") {
					t.Errorf("args %v lack %q", args, c)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(joined, "\x00"+a+"\x00") {
					t.Errorf("args %v contain %q", args, a)
				}
			}
		})
	}
}

func TestBuildConfigHardening(t *testing.T) {
	cfg := buildConfig(containerSpec{rootfs: "/r", binds: []bindMount{{src: "/cache", dst: "/deno-dir"}}, tmpSize: 1 << 20, uid: 65534, gid: 65534, hostname: "sandbox"})
	if !cfg.Readonlyfs || !cfg.NoNewPrivileges || cfg.ParentDeathSignal != int(unix.SIGKILL) {
		t.Fatalf("readonly %v nnp %v pdeathsig %d", cfg.Readonlyfs, cfg.NoNewPrivileges, cfg.ParentDeathSignal)
	}
	c := cfg.Capabilities
	if c == nil || len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
		t.Fatalf("capabilities not empty: %+v", c)
	}
	for _, ns := range []configs.NamespaceType{configs.NEWUSER, configs.NEWNS, configs.NEWNET, configs.NEWPID, configs.NEWIPC, configs.NEWUTS, configs.NEWCGROUP} {
		if !cfg.Namespaces.Contains(ns) {
			t.Errorf("namespace %s missing", ns)
		}
	}
	if len(cfg.UIDMappings) != 1 || cfg.UIDMappings[0].HostID != 65534 || cfg.UIDMappings[0].Size != 1 {
		t.Errorf("uid map %+v, want container 0 -> 65534, size 1", cfg.UIDMappings)
	}
	mounts := map[string]*configs.Mount{}
	for _, m := range cfg.Mounts {
		mounts[m.Destination] = m
		if m.Destination == "/sys" || strings.HasPrefix(m.Destination, "/sys/") {
			t.Errorf("/sys must not be mounted: %+v", m)
		}
	}
	if m := mounts["/tmp"]; m == nil || m.Flags&unix.MS_NOEXEC == 0 || m.Flags&unix.MS_NOSUID == 0 || m.Flags&unix.MS_NODEV == 0 || !strings.Contains(m.Data, "size=1048576") {
		t.Errorf("/tmp mount %+v: want noexec,nosuid,nodev tmpfs with size", m)
	}
	if m := mounts["/deno-dir"]; m == nil || m.Flags&unix.MS_RDONLY == 0 || m.Flags&unix.MS_BIND == 0 {
		t.Errorf("/deno-dir mount %+v: want a read-only bind", m)
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/cmdline"} {
		if !contains(cfg.MaskPaths, p) {
			t.Errorf("%s not masked", p)
		}
	}
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger"} {
		if !contains(cfg.ReadonlyPaths, p) {
			t.Errorf("%s not read-only", p)
		}
	}
	if len(cfg.Networks) != 1 || cfg.Networks[0].Type != "loopback" {
		t.Errorf("networks %+v, want loopback only", cfg.Networks)
	}
	env := strings.Join(sandboxEnv("/deno-dir", ""), "\n")
	for _, want := range []string{"DENO_DIR=/deno-dir", "DENO_EMIT_CACHE_MODE=disable", "DENO_NO_UPDATE_CHECK=1"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s", want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestCappedBuffer(t *testing.T) {
	tests := []struct {
		name      string
		max       int64
		writes    []string
		kept      string
		truncated bool
		total     int64
	}{
		{"under cap", 10, []string{"abc", "de"}, "abcde", false, 5},
		{"exactly cap", 5, []string{"abcde"}, "abcde", false, 5},
		{"split write", 4, []string{"ab", "cdef"}, "abcd", true, 6},
		{"after cap", 2, []string{"ab", "cd", "ef"}, "ab", true, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newCappedBuffer(tc.max)
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v: the writer must always drain", n, err)
				}
			}
			kept, trunc, total := b.Result()
			if kept != tc.kept || trunc != tc.truncated || total != tc.total {
				t.Fatalf("got %q %v %d, want %q %v %d", kept, trunc, total, tc.kept, tc.truncated, tc.total)
			}
		})
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, map[string]string{"type": "run", "code": "x"}); err != nil {
		t.Fatal(err)
	}
	body, err := readFrame(&buf, 100)
	if err != nil || string(body) != `{"code":"x","type":"run"}` {
		t.Fatalf("round trip: %q %v", body, err)
	}
	if _, err := readFrame(&buf, 100); !errors.Is(err, io.EOF) {
		t.Fatalf("clean end = %v, want io.EOF", err)
	}
	hdr := make([]byte, 4)
	binary.BigEndian.PutUint32(hdr, 1<<30)
	if _, err := readFrame(bytes.NewReader(hdr), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized = %v, want ErrFrameTooLarge", err)
	}
	binary.BigEndian.PutUint32(hdr, 10)
	if _, err := readFrame(bytes.NewReader(append(hdr, 'a')), 100); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("truncated body = %v, want a non-EOF error", err)
	}
	// A header and then nothing (found by FuzzReadFrame): not a clean end either.
	if _, err := readFrame(bytes.NewReader(hdr), 100); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("header without body = %v, want a non-EOF error", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0}), 100); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("truncated header = %v, want a non-EOF error", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		in   ErrorInfo
		want string
	}{
		{ErrorInfo{Name: "SyntaxError", Message: "Unexpected token"}, ErrorSyntax},
		{ErrorInfo{Name: "TypeError", Message: "SyntaxError: Expression expected"}, ErrorSyntax},
		{ErrorInfo{Name: "NotCapable", Message: "Requires read access"}, ErrorPermission},
		{ErrorInfo{Name: "TypeError", Message: `npm package not found in cache: "zod", --cached-only is specified.`}, ErrorDependency},
		{ErrorInfo{Name: "TypeError", Message: "Cannot read properties of undefined"}, ErrorRuntime},
		{ErrorInfo{Name: "Error", Message: "boom"}, ErrorRuntime},
	}
	for _, tc := range tests {
		if got := classify(tc.in); got != tc.want {
			t.Errorf("classify(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckReachable(t *testing.T) {
	top, err := os.MkdirTemp("", "reach-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	blocker := top + "/blocker"
	inner := blocker + "/root"
	for _, d := range []string{blocker, inner} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for d, mode := range map[string]os.FileMode{top: 0o755, blocker: 0o700} {
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	const nobody = 65534
	if os.Geteuid() == nobody {
		t.Fatal("run the test as any user but nobody")
	}
	err = checkReachable(inner, nobody, nobody)
	if err == nil || !strings.Contains(err.Error(), blocker+" ") || !strings.Contains(err.Error(), "65534") {
		t.Fatalf("checkReachable through a 0700 dir = %v, want an error naming %s and the uid", err, blocker)
	}
	if err := os.Chmod(blocker, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := checkReachable(inner, nobody, nobody); err != nil {
		t.Fatalf("after chmod o+x: %v", err)
	}
}

func TestCappedBufferSpill(t *testing.T) {
	tests := []struct {
		name      string
		max       int64
		spillMax  int64
		writes    []string
		spilled   string
		spillCut  bool
		openCalls int
	}{
		{"never overflows: no file", 10, 100, []string{"abc"}, "", false, 0},
		{"first write overflows", 3, 100, []string{"abcdef", "gh"}, "abcdefgh", false, 1},
		{"overflow mid-stream", 4, 100, []string{"ab", "cd", "ef", "g"}, "abcdefg", false, 1},
		{"spill file cut at its own limit", 2, 5, []string{"abc", "defgh"}, "abcde", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spill")
			opens := 0
			run := &spillRun{}
			run.left.Store(tc.spillMax)
			b := newCappedBuffer(tc.max).withSpill(func() (*os.File, string, error) {
				opens++
				f, err := os.Create(path)
				return f, path, err
			}, run.take)
			var all string
			for _, w := range tc.writes {
				all += w
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			kept, _, total := b.Result()
			if kept != all[:min(len(all), int(tc.max))] || total != int64(len(all)) {
				t.Errorf("inline %q total %d", kept, total)
			}
			got, cut, err := b.Spill()
			if err != nil || opens != tc.openCalls || cut != tc.spillCut {
				t.Fatalf("Spill = %q cut=%v err=%v opens=%d", got, cut, err, opens)
			}
			if tc.spilled == "" {
				if got != "" {
					t.Fatalf("spilled to %s without overflowing", got)
				}
				return
			}
			data, _ := os.ReadFile(path)
			if string(data) != tc.spilled {
				t.Errorf("spill file %q, want %q", data, tc.spilled)
			}
		})
	}
}

// TestDevSuppressesLibcontainerDefaults: libcontainer sets up /dev itself
// (device nodes, /dev/ptmx, /dev/fd, /dev/std*, and /dev/core whenever the
// host has /proc/kcore) unless the configuration bind-mounts /dev. The
// sandbox's /dev must be exactly the root's, so the configuration must take
// that path, leaving libcontainer nothing to add, and bind each device node
// the root has a mount point for from the host.
func TestDevSuppressesLibcontainerDefaults(t *testing.T) {
	nodes := []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
	cfg := buildConfig(containerSpec{rootfs: "/r", devNodes: nodes, tmpSize: 1 << 20})
	if len(cfg.Devices) != 0 {
		t.Errorf("config.Devices %v: want none (libcontainer would create them)", cfg.Devices)
	}
	var dev *configs.Mount
	var binds []string
	for i, m := range cfg.Mounts {
		switch {
		case m.Destination == "/dev":
			dev = m
		case strings.HasPrefix(m.Destination, "/dev/"):
			if dev == nil {
				t.Errorf("mount %d at %s comes before /dev's", i, m.Destination)
			}
			if m.Device != "bind" || m.Source != m.Destination || m.Flags&unix.MS_NODEV != 0 ||
				m.Flags&(unix.MS_NOSUID|unix.MS_NOEXEC) != unix.MS_NOSUID|unix.MS_NOEXEC {
				t.Errorf("device mount %+v: want the host's node bound nosuid,noexec (not nodev)", m)
			}
			binds = append(binds, m.Destination)
		}
	}
	if dev == nil || dev.Device != "bind" {
		t.Fatalf("/dev mount %+v: want a bind mount (libcontainer then adds no /dev entries of its own)", dev)
	}
	const want = unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if dev.Source != "/r/dev" || dev.Flags != want {
		t.Errorf("/dev mount %s flags %#x: want the root's /r/dev with %#x", dev.Source, dev.Flags, want)
	}
	if !reflect.DeepEqual(binds, nodes) {
		t.Errorf("device binds %v, want %v", binds, nodes)
	}
}

// TestMissingProgram: only the exact shapes of "program not found" earn the hint naming
// MCP_CONDUCTOR_TOOLS; the name is quoted and bounded.
func TestMissingProgram(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, c := range []struct {
		e    ErrorInfo
		want string // "" = not recognized
	}{
		{ErrorInfo{Name: "NotFound", Message: "Failed to spawn 'git': entity not found"}, `"git"`},
		{ErrorInfo{Name: "NotFound", Message: "Failed to spawn '/opt/gh': No such file or directory (os error 2)"}, `"/opt/gh"`},
		{ErrorInfo{Name: "Error", Message: "spawnSync jq ENOENT"}, `"jq"`},
		{ErrorInfo{Name: "Error", Message: "spawn curl ENOENT"}, `"curl"`},
		{ErrorInfo{Name: "NotFound", Message: "Failed to spawn '" + long + "': entity not found"}, strconv.Quote(long[:64] + "...")},
		{ErrorInfo{Name: "NotFound", Message: "Failed to spawn 'a\"b': entity not found"}, `"a\"b"`},
		{ErrorInfo{Name: "Error", Message: "Failed to spawn 'git': entity not found"}, ""}, // not deno's NotFound
		{ErrorInfo{Name: "NotFound", Message: "Failed to spawn 'git': permission denied"}, ""},
		{ErrorInfo{Name: "NotFound", Message: "No such file or directory (os error 2): readfile '/x'"}, ""},
		{ErrorInfo{Name: "Error", Message: "spawn a b ENOENT"}, ""},
	} {
		got, ok := missingProgram(c.e)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%+v: got %q %v, want %q", c.e, got, ok, c.want)
		}
	}
}

// TestCheckEnv: extra environment entries are data, but never replace the sandbox's own.
func TestCheckEnv(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string // "" = accepted
	}{
		{[]string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "GIT_SSL_CAINFO=/x"}, ""},
		{[]string{"PATH=/evil"}, "replace the sandbox's own PATH"},
		{[]string{"HOME=/x"}, "replace the sandbox's own HOME"},
		{[]string{"DENO_V8_FLAGS=--x"}, "replace the sandbox's own DENO_V8_FLAGS"},
		{[]string{"NOEQUALS"}, "not NAME=value"},
		{[]string{"1X=y"}, "not NAME=value"},
		{[]string{"A=b\nc"}, "not NAME=value"},
	} {
		err := checkEnv(c.env)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.env, err, c.want)
		}
	}
}

// TestBuildConfigWorkDir: a per-run working directory is a size-capped tmpfs at its path,
// nosuid and nodev always, noexec unless the runtime needs exec; without one there is none.
func TestBuildConfigWorkDir(t *testing.T) {
	tests := []struct {
		name   string
		w      *WorkDir
		noexec bool
	}{
		{"none", nil, false},
		{"noexec", &WorkDir{Path: "/conductor/work", Size: 2 << 20}, true},
		{"exec", &WorkDir{Path: "/conductor/work", Size: 2 << 20, Exec: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := buildConfig(containerSpec{rootfs: "/r", tmpSize: 1 << 20, uid: 65534, gid: 65534, workDir: tc.w})
			var m *configs.Mount
			for _, x := range cfg.Mounts {
				if x.Destination == "/conductor/work" {
					m = x
				}
			}
			if tc.w == nil {
				if m != nil {
					t.Fatalf("a working directory without WorkDir: %+v", m)
				}
				return
			}
			if m == nil || m.Device != "tmpfs" || !strings.Contains(m.Data, "size=2097152") || m.Flags&unix.MS_NOSUID == 0 || m.Flags&unix.MS_NODEV == 0 {
				t.Fatalf("working directory mount %+v: want a nosuid,nodev tmpfs of 2 MiB", m)
			}
			if got := m.Flags&unix.MS_NOEXEC != 0; got != tc.noexec {
				t.Errorf("noexec = %v, want %v", got, tc.noexec)
			}
		})
	}
}

// TestBuildConfigOutputs: the outputs directory is a noexec, nosuid, nodev tmpfs of its size at
// config.OutputsDir, and absent at size 0.
func TestBuildConfigOutputs(t *testing.T) {
	for _, size := range []int64{0, 3 << 20} {
		cfg := buildConfig(containerSpec{rootfs: "/r", tmpSize: 1 << 20, uid: 65534, gid: 65534, outputsSize: size})
		var m *configs.Mount
		for _, x := range cfg.Mounts {
			if x.Destination == config.OutputsDir {
				m = x
			}
		}
		switch {
		case size == 0 && m != nil:
			t.Errorf("an outputs directory at size 0: %+v", m)
		case size > 0 && (m == nil || m.Device != "tmpfs" || !strings.Contains(m.Data, "size=3145728") ||
			m.Flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC) != unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC):
			t.Errorf("outputs mount %+v: want a noexec,nosuid,nodev tmpfs of 3 MiB", m)
		}
	}
}

// TestBuildConfigBinds: the dependency cache's binds are nosuid and nodev always, read-only
// unless an install's, noexec unless a run's exec mount (compiled extension modules), and an
// install's is idmapped to its owner.
func TestBuildConfigBinds(t *testing.T) {
	cfg := buildConfig(containerSpec{rootfs: "/r", tmpSize: 1 << 20, uid: 65534, gid: 65534, binds: []bindMount{
		{src: "/v/deno-dir", dst: "/deno-dir"},
		{src: "/v/pypi", dst: "/conductor/pypi", exec: true},
		{src: "/v/inst", dst: "/conductor/inst", writable: true, owner: &[2]int{0, 0}},
	}})
	want := map[string]struct{ ro, noexec, idmap bool }{
		"/deno-dir":       {true, true, false},
		"/conductor/pypi": {true, false, false},
		"/conductor/inst": {false, true, true},
	}
	for _, m := range cfg.Mounts {
		w, ok := want[m.Destination]
		if !ok {
			continue
		}
		delete(want, m.Destination)
		if m.Flags&unix.MS_NOSUID == 0 || m.Flags&unix.MS_NODEV == 0 || m.Flags&unix.MS_BIND == 0 ||
			(m.Flags&unix.MS_RDONLY != 0) != w.ro || (m.Flags&unix.MS_NOEXEC != 0) != w.noexec || (m.IDMapping != nil) != w.idmap {
			t.Errorf("%s: flags %#x idmap %v, want read-only %v, noexec %v, idmapped %v", m.Destination, m.Flags, m.IDMapping != nil, w.ro, w.noexec, w.idmap)
		}
	}
	if len(want) > 0 {
		t.Errorf("binds not mounted: %v", want)
	}
}

// TestCheckStartOptions refuses an empty command, a writable directory with relative paths, files
// without a writable directory or with a name that is not a base name.
func TestCheckStartOptions(t *testing.T) {
	ok := StartOptions{Command: []string{"/usr/bin/deno"}, Writable: &Mount{Host: "/v/deno-dir", Path: "/deno-dir"}, Files: map[string][]byte{".install-1.ts": nil}}
	if err := checkStartOptions(ok); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	if err := checkStartOptions(StartOptions{}); err != nil {
		t.Fatalf("a run's options: %v", err)
	}
	for name, mut := range map[string]func(*StartOptions){
		"empty command":      func(s *StartOptions) { s.Command = []string{} },
		"empty program":      func(s *StartOptions) { s.Command = []string{""} },
		"relative host":      func(s *StartOptions) { s.Writable = &Mount{Host: "v/deno-dir", Path: "/deno-dir"} },
		"relative path":      func(s *StartOptions) { s.Writable = &Mount{Host: "/v/deno-dir", Path: "deno-dir"} },
		"unclean path":       func(s *StartOptions) { s.Writable = &Mount{Host: "/v/deno-dir", Path: "/deno-dir/../etc"} },
		"files, no writable": func(s *StartOptions) { s.Writable = nil },
		"file in a dir":      func(s *StartOptions) { s.Files = map[string][]byte{"../x": nil} },
		"file ..":            func(s *StartOptions) { s.Files = map[string][]byte{"..": nil} },
	} {
		s := ok
		mut(&s)
		if err := checkStartOptions(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLimitMessages: an out-of-memory or pids message names the limit that was hit, its size and
// the setting the admin raises it with; deno's advice for a container runtime's flag is replaced.
func TestLimitMessages(t *testing.T) {
	tests := []struct {
		name    string
		got     string
		want    []string
		notWant []string
	}{
		{"heap of the sandbox's deno", oomMessage(true, 512<<20, true), []string{"JavaScript heap", "342 MiB", "512 MiB", "MCP_CONDUCTOR_MEMORY", "admin"}, nil},
		{"heap of a launched program", oomMessage(true, 256<<20, false), []string{"a JavaScript heap limit", "256 MiB", "MCP_CONDUCTOR_MEMORY"}, []string{"86 MiB"}},
		{"cgroup kill", oomMessage(false, 1<<30, true), []string{"memory limit of 1 GiB", "killed", "MCP_CONDUCTOR_MEMORY", "admin"}, []string{"heap"}},
		{"no limit known", oomMessage(false, 0, true), []string{"out of memory"}, []string{"MCP_CONDUCTOR_MEMORY", "0 B"}},
		{"pids", pidsLimitNote(80), []string{"limit of 80 processes and threads", "MCP_CONDUCTOR_PIDS", "admin"}, nil},
		{
			"deno's advice reworded",
			rewordPidsAdvice("\n====\nDeno could not start: unable to create worker threads.\n\n"+denoPidsAdvice+"\n\nPlatform: linux\n", 40),
			[]string{"Deno could not start: unable to create worker threads.\n\nThe sandbox's limit of 40 processes and threads was reached; only the server's admin can raise it, with MCP_CONDUCTOR_PIDS.\n\nPlatform: linux"},
			[]string{"--pids-limit", "container"},
		},
		{
			"deno's advice interleaved with another process's lines",
			rewordPidsAdvice("Deno could not start: unable to create worker threads.\n\n"+denoPidsAdvice1+"\nDeno could not start: unable to create worker threads.\n"+denoPidsAdvice2+"40).\n\n"+denoPidsAdvice+"\n", 24),
			[]string{"Deno could not start: unable to create worker threads.\n\nDeno could not start: unable to create worker threads.\nThe sandbox's limit of 24 processes and threads was reached; only the server's admin can raise it, with MCP_CONDUCTOR_PIDS.\n\nThe sandbox's limit of 24"},
			[]string{"--pids-limit", "container"},
		},
		{"other stderr kept", rewordPidsAdvice("Try increasing the limit (e.g. --pids-limit=40).", 40), []string{"--pids-limit=40"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				if !strings.Contains(tc.got, w) {
					t.Errorf("%q does not contain %q", tc.got, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(tc.got, w) {
					t.Errorf("%q contains %q", tc.got, w)
				}
			}
		})
	}
}
