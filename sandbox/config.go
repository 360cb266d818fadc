package sandbox

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/conductor-sandbox/conductor/config"

	cgcfg "github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// In-sandbox paths of the channel the bootstrap opens.
const (
	channelOut = "/proc/self/fd/3" // sandbox -> host
	channelIn  = "/proc/self/fd/4" // host -> sandbox
)

// v8Headroom is the memory deno needs beyond V8's old space (code space, the
// Rust side, thread stacks). The old-space limit is the memory limit minus this,
// so a heap exhaustion ends as a clean "heap out of memory" instead of a cgroup
// kill when it can.
const v8Headroom = 170 << 20

// minOldSpaceMiB keeps tiny memory limits from producing a V8 flag deno rejects.
const minOldSpaceMiB = 32

// maskedPaths are hidden in /proc: runc's defaults (without /sys: there is
// no /sys), and /proc/cmdline, the host's kernel command line (boot options,
// sometimes tokens a hypervisor passes), which nothing in a sandbox needs.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/proc/cmdline",
}

// readonlyPaths are remounted read-only in /proc (runc's defaults).
var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// containerSpec is everything that varies between sandboxes of one runner.
type containerSpec struct {
	rootfs   string
	devNodes []string // in-root device mount points (rootfs.Root.DevNodes)
	// binds are the dependency cache's directories, read-only, and
	// StartOptions.Writable, read-write.
	binds []bindMount
	// workspace is a host directory mounted read-write at the same path;
	// "" = none. With wsOwner set (root mode), the mount is idmapped so the
	// owner's files are the sandbox root's and new files land as the owner.
	workspace string
	wsDest    string  // where the workspace is mounted; "" = workspace (its own path)
	wsOwner   *[2]int // host uid, gid of the workspace; nil = plain bind
	// trustSrc is a host directory of certificates mounted read-only at
	// trustDir; "" = none.
	trustSrc, trustDir string
	tmpSize            int64
	uid, gid           int // host ids the sandbox's root maps to
	rootless           bool
	cgroup             *cgcfg.Cgroup
	seccomp            *configs.Seccomp
	hostname           string
	workDir            *WorkDir // per-run working directory; nil = none
	outputsSize        int64    // bytes of the outputs directory (config.OutputsDir); 0 = none
}

// bindMount is a host directory bound into the sandbox, nosuid and nodev.
type bindMount struct {
	src, dst string
	writable bool    // read-write (StartOptions.Writable), else read-only
	exec     bool    // files may be executed or mapped executable, else noexec
	owner    *[2]int // writable, root mode: idmapped to the directory's owner
}

// buildConfig returns the libcontainer configuration of one sandbox.
func buildConfig(s containerSpec) *configs.Config {
	const (
		nodevNosuid = unix.MS_NOSUID | unix.MS_NODEV
		noexec      = nodevNosuid | unix.MS_NOEXEC
	)
	mounts := []*configs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: noexec},
	}
	mounts = append(mounts, devMounts(s.rootfs, s.devNodes)...)
	mounts = append(mounts,
		&configs.Mount{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: noexec, Data: fmt.Sprintf("mode=1777,size=%d", s.tmpSize)})
	if w := s.workDir; w != nil {
		flags := noexec
		if w.Exec {
			flags = nodevNosuid
		}
		mounts = append(mounts, &configs.Mount{Source: "tmpfs", Destination: w.Path, Device: "tmpfs", Flags: flags, Data: fmt.Sprintf("mode=0755,size=%d", w.Size)})
	}
	if s.outputsSize > 0 {
		mounts = append(mounts, &configs.Mount{Source: "tmpfs", Destination: config.OutputsDir, Device: "tmpfs", Flags: noexec, Data: fmt.Sprintf("mode=0755,size=%d", s.outputsSize)})
	}
	for _, b := range s.binds {
		flags := unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | noexec
		if b.writable {
			flags &^= unix.MS_RDONLY
		}
		if b.exec {
			flags &^= unix.MS_NOEXEC
		}
		m := &configs.Mount{Source: b.src, Destination: b.dst, Device: "bind", Flags: flags}
		if b.writable {
			m.IDMapping = ownerMapping(b.owner, s.uid, s.gid)
		}
		mounts = append(mounts, m)
	}
	if s.workspace != "" {
		m := &configs.Mount{
			Source: s.workspace, Destination: cmp.Or(s.wsDest, s.workspace), Device: "bind",
			Flags: unix.MS_BIND | unix.MS_REC | noexec,
		}
		m.IDMapping = ownerMapping(s.wsOwner, s.uid, s.gid)
		mounts = append(mounts, m)
	}
	if s.trustSrc != "" {
		mounts = append(mounts, &configs.Mount{
			Source: s.trustSrc, Destination: s.trustDir, Device: "bind",
			Flags: unix.MS_BIND | unix.MS_RDONLY | noexec,
		})
	}
	cfg := &configs.Config{
		Rootfs:            s.rootfs,
		Readonlyfs:        true,
		NoNewPrivileges:   true,
		ParentDeathSignal: int(unix.SIGKILL),
		Capabilities:      &configs.Capabilities{},
		Hostname:          s.hostname,
		Namespaces: configs.Namespaces{
			{Type: configs.NEWUSER}, {Type: configs.NEWNS}, {Type: configs.NEWNET},
			{Type: configs.NEWPID}, {Type: configs.NEWIPC}, {Type: configs.NEWUTS},
			{Type: configs.NEWCGROUP},
		},
		UIDMappings:   []configs.IDMap{{ContainerID: 0, HostID: int64(s.uid), Size: 1}},
		GIDMappings:   []configs.IDMap{{ContainerID: 0, HostID: int64(s.gid), Size: 1}},
		Mounts:        mounts,
		MaskPaths:     maskedPaths,
		ReadonlyPaths: readonlyPaths,
		Networks:      []*configs.Network{{Type: "loopback"}},
		Rlimits: []configs.Rlimit{
			{Type: unix.RLIMIT_CORE, Hard: 0, Soft: 0},
			{Type: unix.RLIMIT_NOFILE, Hard: 4096, Soft: 4096},
		},
		// 0022, explicitly (libcontainer's default today): with seccomp
		// refusing any umask that clears S_IWOTH, no file or directory the
		// sandbox creates is world-writable.
		Umask:           uint32Ptr(sandboxUmask),
		OomScoreAdj:     intPtr(1000),
		Seccomp:         s.seccomp,
		Cgroups:         s.cgroup,
		NoNewKeyring:    false,
		RootlessEUID:    s.rootless,
		RootlessCgroups: s.rootless,
		Version:         "1.3.0",
	}
	if cfg.Cgroups != nil && s.rootless {
		cfg.Cgroups.Rootless = true
	}
	return cfg
}

// sandboxUmask is the sandbox process's umask. seccomp allows umask only
// with S_IWOTH set (seccomp/table.go modeRules), so code can tighten it but
// never make O_CREAT or mkdir produce a world-writable entry.
const sandboxUmask = 0o022

func intPtr(v int) *int { return &v }

func uint32Ptr(v uint32) *uint32 { return &v }

// ownerMapping idmaps a writable bind mount: ids on disk (the mapping's
// "container" side) map to the ids of the processes using it (the "host"
// side), so the owner's files belong to the sandbox's root and what the
// sandbox creates is stored as the owner. nil owner = a plain bind.
func ownerMapping(owner *[2]int, uid, gid int) *configs.MountIDMapping {
	if owner == nil {
		return nil
	}
	return &configs.MountIDMapping{
		UIDMappings: []configs.IDMap{{ContainerID: int64(owner[0]), HostID: int64(uid), Size: 1}},
		GIDMappings: []configs.IDMap{{ContainerID: int64(owner[1]), HostID: int64(gid), Size: 1}},
	}
}

// devMounts makes the sandbox's /dev exactly the root's: the root's own /dev
// directory (device mount points and the fd/std* symlinks, see rootfs)
// bound read-only onto itself, then the host's device node bound over each
// mount point. Binding /dev is the way libcontainer offers to opt out of
// its own /dev setup (needsSetupDev in runc's libcontainer/rootfs_linux.go:
// a "bind" mount at /dev means the caller provides /dev), which would
// otherwise create config.Devices, /dev/ptmx, the fd/std* symlinks and,
// on every host whose kernel has /proc/kcore (stock distribution kernels),
// a /dev/core symlink to it. In a user namespace libcontainer binds device
// nodes from the host anyway, so the nodes are the same as before; they
// are named here instead of in config.Devices, which stays empty. The
// devices cgroup rules come from package cgroups, independently.
func devMounts(rootfs string, nodes []string) []*configs.Mount {
	const nosuidNoexec = unix.MS_NOSUID | unix.MS_NOEXEC
	out := []*configs.Mount{{
		Source: filepath.Join(rootfs, "dev"), Destination: "/dev", Device: "bind",
		Flags: unix.MS_BIND | unix.MS_RDONLY | unix.MS_NODEV | nosuidNoexec,
	}}
	for _, n := range nodes {
		// No MS_NODEV here: these mounts are the device nodes.
		out = append(out, &configs.Mount{Source: n, Destination: n, Device: "bind", Flags: unix.MS_BIND | nosuidNoexec})
	}
	return out
}

// oldSpaceMiB is the V8 heap (old space) limit deno gets under a memory limit of memory bytes.
func oldSpaceMiB(memory int64) int64 {
	return max((memory-v8Headroom)>>20, minOldSpaceMiB)
}

// denoArgs returns deno's command line: the fixed hardening flags, the
// admin's permission flags, access to the two channel paths, and the
// bootstrap.
func denoArgs(denoPath, bootstrap string, adminFlags []string, memory int64, importMap []byte) []string {
	args := []string{denoPath, "run", "--no-prompt", "--cached-only", "--no-remote", "--no-config", "--no-lock"}
	if len(importMap) > 0 {
		// A data: URL needs no file in the read-only root and is accepted
		// with --no-remote.
		args = append(args, "--import-map=data:application/json;base64,"+base64.StdEncoding.EncodeToString(importMap))
	}
	if memory > 0 {
		args = append(args, fmt.Sprintf("--v8-flags=--max-old-space-size=%d", oldSpaceMiB(memory)))
	}
	flags := config.GrantPath(adminFlags, "read", channelIn)
	flags = config.GrantPath(flags, "write", channelOut)
	args = append(args, flags...)
	return append(args, bootstrap)
}

// checkStartOptions checks the data of a sandbox that runs a Command or
// mounts a Writable directory: absolute paths (a clean in-root one), and
// Files only with a Writable directory, named by base names.
func checkStartOptions(so StartOptions) error {
	if so.Command != nil && (len(so.Command) == 0 || so.Command[0] == "") {
		return errors.New("start options: an empty command")
	}
	if w := so.Writable; w != nil && (!filepath.IsAbs(w.Host) || !path.IsAbs(w.Path) || path.Clean(w.Path) != w.Path) {
		return fmt.Errorf("start options: writable directory %q at %q: want absolute paths", w.Host, w.Path)
	}
	if len(so.Files) > 0 && so.Writable == nil {
		return errors.New("start options: files without a writable directory to write them into")
	}
	for name := range so.Files {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
			return fmt.Errorf("start options: file name %q is not a base name", name)
		}
	}
	return nil
}

// checkEnv refuses extra environment entries that are not NAME=value or that
// would replace one of the sandbox's own variables.
func checkEnv(env []string) error {
	own := map[string]bool{"DENO_CERT": true}
	for _, kv := range sandboxEnv("/", "x") {
		name, _, _ := strings.Cut(kv, "=")
		own[name] = true
	}
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		valid := ok && name != "" && !strings.ContainsAny(kv, "\x00\n")
		for i := 0; valid && i < len(name); i++ {
			c := name[i]
			valid = c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9'
		}
		switch {
		case !valid:
			return fmt.Errorf("sandbox: environment entry %q is not NAME=value", kv)
		case own[name] || strings.HasPrefix(name, "DENO_"):
			return fmt.Errorf("sandbox: environment entry %s would replace the sandbox's own %s", kv, name)
		}
	}
	return nil
}

// checkCABundle checks Options.CABundle and CABundleEnv: a clean absolute
// in-root path of a file the root holds, named by valid variables that are
// not the sandbox's own.
func checkCABundle(o Options) error {
	if o.CABundle == "" {
		if len(o.CABundleEnv) > 0 {
			return errors.New("sandbox: Options.CABundleEnv without a CABundle")
		}
		return nil
	}
	if !path.IsAbs(o.CABundle) || path.Clean(o.CABundle) != o.CABundle {
		return fmt.Errorf("sandbox: CA bundle %q is not a clean absolute in-root path", o.CABundle)
	}
	if st, err := os.Stat(filepath.Join(o.Root.Path, o.CABundle)); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("sandbox: CA bundle %s is not a file in the root (%v)", o.CABundle, err)
	}
	return checkEnv(append(caBundleEnv(o, false, ""), o.Env...))
}

// caBundleEnv names the CA bundle to the tools: the root's, or when the
// sandbox trusts the door's secrets CA (its trust dir mounted) the copy
// with that CA.
func caBundleEnv(o Options, trusted bool, trustDir string) []string {
	bundle := o.CABundle
	if trusted {
		bundle = path.Join(trustDir, CABundleName)
	}
	env := make([]string, len(o.CABundleEnv))
	for i, n := range o.CABundleEnv {
		env[i] = n + "=" + bundle
	}
	return env
}

// sandboxEnv is the sandbox's whole environment: nothing of the server's
// environment enters it. The npm registry, when set, must be the same for
// installing and running: deno keys its cache by the registry's host.
func sandboxEnv(denoDir, npmRegistry string) []string {
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=/tmp",
		"TMPDIR=/tmp",
		"DENO_DIR=" + denoDir,
		"DENO_EMIT_CACHE_MODE=disable",
		"DENO_NO_UPDATE_CHECK=1",
		"DENO_NO_PROMPT=1",
		"NO_COLOR=1",
	}
	if npmRegistry != "" {
		env = append(env, "NPM_CONFIG_REGISTRY="+npmRegistry)
	}
	return env
}
