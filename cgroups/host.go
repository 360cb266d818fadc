package cgroups

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mode is the cgroup layout of the host.
type Mode string

const (
	ModeUnified Mode = "unified" // cgroup v2 only, mounted at /sys/fs/cgroup
	ModeHybrid  Mode = "hybrid"  // v1 hierarchies + cgroup2 (usually without controllers) at /sys/fs/cgroup/unified
	ModeLegacy  Mode = "legacy"  // v1 hierarchies only
	ModeNone    Mode = "none"    // no usable cgroup filesystem
)

// The limits conductor knows how to enforce and the controller each needs.
const (
	LimitMemory = "memory"
	LimitPids   = "pids"
	LimitCPU    = "cpu"
)

var limitNames = []string{LimitMemory, LimitPids, LimitCPU}

// serverLeaf is the name suffix (after Prefix) of the leaf cgroup PrepareDelegation moves
// conductor itself into on cgroup v2. Sweep never touches it.
const serverLeaf = "server"

// probeInfix marks the short-lived directories Detect creates to test writability:
// <prefix>probe-<pid>-<random>.
const probeInfix = "probe-"

// Host describes what this process can do with cgroups. Build it with Detect.
type Host struct {
	Mode        Mode
	Rootless    bool              // euid != 0
	Controllers map[string]bool   // "memory", "pids", "cpu": usable for limits by us
	Parent      map[string]string // v1: per controller ("name=systemd" for the named hierarchy, "" for the hybrid cgroup2 tree); v2: "" — cgroup path (relative to the mount) under which sandbox cgroups are created
	Delegated   string            // the delegated subtree in use ("" = none)
	Notes       []string          // human facts for doctor
	Scope       *Scope            // the transient scope Claim obtained (nil = none)
	ScopeErr    error             // why Claim could not obtain one (nil = not tried or obtained)

	prefix    string
	deleg     string // Options.Delegated, cleaned ("" = none)
	env       *sysEnv
	euid      int
	userName  string
	mounts    []mount
	own       procCgroup
	parentDir map[string]string     // same keys as Parent: absolute directory
	ctrlDir   map[string]string     // memory/pids/cpu: directory where its sandbox cgroups would go
	ctrlMount map[string]string     // memory/pids/cpu: mount point of its hierarchy
	why       map[string]LimitError // memory/pids/cpu: why it is not usable
	fixV1     bool                  // the reasons are v1 permission problems fixable by a root mkdir+chown
	how       map[string]string     // memory/pids/cpu: how it is enforced
	swapAcct  bool                  // v1: memory.memsw.* present (swap accounting on)
	form      pathForm
	v2own     string   // v2: our own cgroup path
	v2parent  string   // v2: cgroup path of the sandbox parent
	pending   []string // v2: controllers PrepareDelegation has to enable in the parent
	// v2: limits unusable only because our cgroup is not delegated to us (alone):
	// a delegated scope of our own would make them usable (Claim).
	undelegated map[string]bool
}

// Options tunes Detect.
type Options struct {
	// Prefix starts the name of every cgroup conductor creates (e.g. "conductor-").
	Prefix string
	// Delegated is an admin-provided cgroup (MCP_CONDUCTOR_CGROUP_PARENT) under which sandbox
	// cgroups are created instead of under conductor's own cgroup. Absolute paths are taken
	// inside each hierarchy's mount ("/conductor-alice" = /sys/fs/cgroup/memory/conductor-alice
	// on v1, /sys/fs/cgroup/conductor-alice on v2; a leading "/sys/fs/cgroup" is accepted on
	// v2); relative paths are taken relative to conductor's own cgroup in each hierarchy
	// (exactly how libcontainer resolves them).
	Delegated string
	// Log receives what Claim did (the scope it obtained, or why not); nil: slog.Default().
	Log *slog.Logger

	env *sysEnv // tests: fake cgroup tree
}

// sysEnv is everything Detect reads from the system; tests substitute a fake tree.
type sysEnv struct {
	root       string // cgroup root, /sys/fs/cgroup
	mountinfo  func() ([]byte, error)
	selfCgroup func() ([]byte, error)
	isCgroup2  func(path string) (bool, error)
	euid       int
	pid        int
	// write writes a cgroup control file (no create, truncate).
	write func(path, data string) error
	// delegateXattr reports whether systemd marked dir as delegated (Delegate=yes).
	delegateXattr func(dir string) bool
	// mkdir creates one cgroup directory; writable reports whether we may create entries in dir.
	mkdir    func(path string) error
	rmdir    func(path string) error
	writable func(dir string) bool
	// owner returns the uid owning path, -1 if it cannot be determined.
	owner func(path string) int
	// systemd reports whether systemd is PID 1 (/run/systemd/system exists).
	systemd func() bool
	// getenv reads this process's environment (the user bus address).
	getenv func(string) string
	// startScope asks systemd for a transient Delegate=yes scope holding the process
	// and returns its cgroup directory (Claim).
	startScope func(ctx context.Context, r scopeRequest) (string, error)
}

func defaultEnv() *sysEnv {
	return &sysEnv{
		root:       "/sys/fs/cgroup",
		mountinfo:  func() ([]byte, error) { return os.ReadFile("/proc/self/mountinfo") },
		selfCgroup: func() ([]byte, error) { return os.ReadFile("/proc/self/cgroup") },
		isCgroup2: func(p string) (bool, error) {
			var st unix.Statfs_t
			if err := unix.Statfs(p, &st); err != nil {
				return false, err
			}
			return st.Type == unix.CGROUP2_SUPER_MAGIC, nil
		},
		euid: os.Geteuid(),
		pid:  os.Getpid(),
		write: func(path, data string) error {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString(data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		},
		delegateXattr: func(dir string) bool {
			buf := make([]byte, 8)
			for _, name := range []string{"trusted.delegate", "user.delegate"} {
				if n, err := unix.Getxattr(dir, name, buf); err == nil && n > 0 && buf[0] == '1' {
					return true
				}
			}
			return false
		},
		mkdir:    func(p string) error { return os.Mkdir(p, 0o755) },
		rmdir:    unix.Rmdir,
		writable: writableDir,
		owner: func(p string) int {
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				return -1
			}
			return int(st.Uid)
		},
		systemd:    func() bool { st, err := os.Stat("/run/systemd/system"); return err == nil && st.IsDir() },
		getenv:     os.Getenv,
		startScope: startScopeSystemd,
	}
}

// libcontainerSubsystems are the v1 hierarchies libcontainer's fs manager creates
// directories in (opencontainers/cgroups fs.subsystems). Mounted ones get a Parent entry
// so that Sweep covers everything libcontainer may leave behind.
var libcontainerSubsystems = map[string]bool{
	"cpuset": true, "devices": true, "memory": true, "cpu": true, "cpuacct": true, "pids": true,
	"blkio": true, "hugetlb": true, "net_cls": true, "net_prio": true, "perf_event": true,
	"freezer": true, "rdma": true, "name=systemd": true, "misc": true,
}

// pathForm is how Config names the sandbox cgroup for libcontainer.
type pathForm int

const (
	formRelPath    pathForm = iota // Path = name: under our own cgroup in every v1 hierarchy (root)
	formDelegPath                  // Path = <delegated>/name (root with a delegated parent)
	formParentName                 // Parent = <delegated>, Name = name (rootless v1: hierarchies we cannot write are skipped by libcontainer)
	formNameOnly                   // Name = name only (rootless with nothing writable: libcontainer ignores EPERM, runs without a cgroup)
	formAbsV2                      // Path = /<v2 parent>/name (cgroup v2)
)

// Detect inspects the host's cgroup setup from this process's point of view.
func Detect(ctx context.Context, o Options) (*Host, error) {
	env := o.env
	if env == nil {
		env = defaultEnv()
	}
	if err := validPrefix(o.Prefix); err != nil {
		return nil, err
	}
	h := &Host{
		Controllers: map[string]bool{},
		Parent:      map[string]string{},
		prefix:      o.Prefix,
		env:         env,
		euid:        env.euid,
		Rootless:    env.euid != 0,
		parentDir:   map[string]string{},
		ctrlDir:     map[string]string{},
		ctrlMount:   map[string]string{},
		why:         map[string]LimitError{},
		how:         map[string]string{},
		undelegated: map[string]bool{},
	}
	h.userName = strconv.Itoa(h.euid)
	if u, err := user.LookupId(h.userName); err == nil {
		h.userName = u.Username
	}
	if o.Delegated != "" {
		d := filepath.Clean(o.Delegated)
		if d == "." || d == "/" || d == ".." || strings.HasPrefix(d, "../") {
			return nil, fmt.Errorf("cgroups: delegated cgroup %q: must name a cgroup below the root", o.Delegated)
		}
		h.deleg = d
	}

	cgText, err := env.selfCgroup()
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	h.own, err = parseProcCgroup(cgText)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	known := map[string]bool{}
	for c := range h.own.V1 {
		known[c] = true
	}
	miText, err := env.mountinfo()
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	h.mounts, err = parseMountinfo(miText, known)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	rootV2, err := env.isCgroup2(env.root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cgroups: statfs %s: %w", env.root, err)
	}
	var notes []string
	h.Mode, notes = classifyMode(env.root, rootV2, h.mounts)
	h.Notes = append(h.Notes, notes...)

	switch h.Mode {
	case ModeUnified:
		h.detectV2()
	case ModeHybrid, ModeLegacy:
		if err := h.detectV1(ctx); err != nil {
			return nil, err
		}
	default:
		for _, l := range limitNames {
			h.why[l] = LimitError{
				Limit:  l,
				Reason: fmt.Sprintf("no cgroup filesystem is mounted at %s", env.root),
				Fix:    fmt.Sprintf("mount one (as root: mount -t cgroup2 none %s), or run conductor on a host or container that has %s mounted", env.root, env.root),
			}
		}
		h.Notes = append(h.Notes, fmt.Sprintf("no cgroup hierarchy under %s: libcontainer cannot create sandboxes here", env.root))
	}
	return h, nil
}

func validPrefix(p string) error {
	if p == "" || strings.ContainsAny(p, "/\x00") || p == "." || p == ".." {
		return fmt.Errorf("cgroups: invalid prefix %q: must be a non-empty name without '/'", p)
	}
	return nil
}

// v1mountFor returns the v1 mount whose hierarchy carries controller c.
func (h *Host) v1mountFor(c string) (mount, bool) {
	for _, m := range h.mounts {
		if m.FSType == "cgroup" && filepath.Dir(m.Point) == h.env.root && slices.Contains(m.Controllers, c) {
			return m, true
		}
	}
	return mount{}, false
}

// v1ParentDir resolves where libcontainer will put sandbox cgroups in hierarchy m.
func (h *Host) v1ParentDir(m mount) (string, bool) {
	if h.deleg != "" && filepath.IsAbs(h.deleg) {
		// libcontainer: <root>/<basename of mount>/<path> — the mount's root is not consulted.
		return filepath.Join(m.Point, h.deleg), true
	}
	ownCg := ""
	for _, c := range m.Controllers {
		if p, ok := h.own.V1[c]; ok {
			ownCg = p
			break
		}
	}
	if ownCg == "" {
		return "", false
	}
	dir, ok := fsPath(m, ownCg)
	if !ok {
		return "", false
	}
	return filepath.Join(dir, h.deleg), true
}

func (h *Host) detectV1(ctx context.Context) error {
	root := h.env.root
	// Parents for every hierarchy libcontainer will create directories in.
	for _, m := range h.mounts {
		if m.FSType != "cgroup" || filepath.Dir(m.Point) != root {
			continue
		}
		var keys []string
		for _, c := range m.Controllers {
			if libcontainerSubsystems[c] {
				keys = append(keys, c)
			}
		}
		if len(keys) == 0 {
			continue
		}
		dir, ok := h.v1ParentDir(m)
		if !ok {
			h.Notes = append(h.Notes, fmt.Sprintf("our own cgroup in the %s hierarchy is not visible under %s", strings.Join(m.Controllers, ","), m.Point))
			continue
		}
		if h.Rootless && !h.env.writable(dir) {
			continue // libcontainer skips hierarchies a rootless user cannot write (with Parent/Name)
		}
		for _, k := range keys {
			h.Parent[k] = cgRel(m.Point, dir)
			h.parentDir[k] = dir
		}
	}
	if h.Mode == ModeHybrid {
		u := filepath.Join(root, "unified")
		// libcontainer's hybrid support joins <root>/unified/<path> for relative paths too
		// (GetOwnCgroupPath("") returns the mount point), i.e. below the v2 root, not below
		// our own v2 cgroup.
		dir := filepath.Join(u, h.deleg)
		if !h.Rootless || h.env.writable(dir) {
			h.Parent[""] = cgRel(u, dir)
			h.parentDir[""] = dir
		}
		ctrls, _ := os.ReadFile(filepath.Join(u, "cgroup.controllers"))
		if c := strings.Fields(string(ctrls)); len(c) == 0 {
			h.Notes = append(h.Notes, fmt.Sprintf("cgroup v2 at %s has no controllers (hybrid host): limits are enforced through the v1 hierarchies", u))
		} else {
			h.Notes = append(h.Notes, fmt.Sprintf("cgroup v2 at %s has controllers %s, but libcontainer's v1 manager (used on hybrid hosts) never sets v2 limits", u, strings.Join(c, " ")))
		}
		if h.own.HasV2 && h.own.V2 != "/" && !h.Rootless {
			h.Notes = append(h.Notes, fmt.Sprintf("our cgroup v2 path is %s, but libcontainer creates the sandbox's v2 cgroup at %s/%s, below the v2 root", h.own.V2, u, filepath.Join(h.deleg, "<name>")))
		}
	}

	for _, l := range limitNames {
		if err := ctx.Err(); err != nil {
			return err
		}
		h.probeV1(l)
	}
	if h.Controllers[LimitMemory] && !h.swapAcct {
		h.Notes = append(h.Notes, "swap accounting is off (no memory.memsw.limit_in_bytes; boot with swapaccount=1 to enable): the memory limit caps RAM only, so conductor sets memory.swappiness=0 instead")
	}
	if !h.Rootless && h.deleg == "" {
		h.Notes = append(h.Notes, "as root, libcontainer creates each sandbox cgroup under our own cgroup in every mounted v1 hierarchy (and removes it on Destroy)")
	}
	switch {
	case h.Rootless && h.deleg == "":
		h.Notes = append(h.Notes, fmt.Sprintf("cgroup v1 has no unprivileged delegation: as uid %d conductor can only use cgroup directories root created and chowned to it (MCP_CONDUCTOR_CGROUP_PARENT)", h.euid))
		h.form = formNameOnly
	case h.Rootless:
		h.Delegated = h.deleg
		h.form = formParentName
	case h.deleg != "":
		h.Delegated = h.deleg
		h.form = formDelegPath
		var absent []string
		for _, d := range h.parentDir {
			if !exists(d) {
				absent = append(absent, d)
			}
		}
		if len(absent) > 0 {
			slices.Sort(absent)
			absent = slices.Compact(absent)
			h.Notes = append(h.Notes, fmt.Sprintf("libcontainer will create (and never remove) the delegated parent in hierarchies where it is missing: %s", strings.Join(absent, " ")))
		}
	default:
		h.form = formRelPath
	}
	return nil
}

// probeV1 decides whether limit l (its controller) is usable by creating and removing a
// probe child in the parent directory.
func (h *Host) probeV1(l string) {
	m, ok := h.v1mountFor(l)
	if !ok {
		h.why[l] = LimitError{Limit: l,
			Reason: fmt.Sprintf("no cgroup v1 %s hierarchy is mounted under %s", l, h.env.root),
			Fix: fmt.Sprintf("as root: mkdir -p %s/%s && mount -t cgroup -o %s cgroup %s/%s (if the kernel lacks it, boot with cgroup_enable=%s)",
				h.env.root, l, l, h.env.root, l, l)}
		return
	}
	h.ctrlMount[l] = m.Point
	dir, ok := h.v1ParentDir(m)
	if !ok {
		h.why[l] = LimitError{Limit: l,
			Reason: fmt.Sprintf("our own %s cgroup (%s) is not visible under %s (mount root %s)", l, h.own.V1[l], m.Point, m.Root),
			Fix:    "run conductor where its own cgroup is visible (in a container: use a private cgroup namespace, e.g. docker run --cgroupns=private)"}
		return
	}
	h.ctrlDir[l] = dir
	if h.deleg != "" {
		if _, err := os.Stat(dir); err != nil {
			h.fixV1 = true
			h.why[l] = LimitError{Limit: l, Reason: fmt.Sprintf("the delegated cgroup %s does not exist in the %s hierarchy (%s)", h.deleg, l, dir)}
			return
		}
	}
	probe, err := h.mkProbe(dir)
	if err != nil {
		if h.Rootless && errors.Is(err, fs.ErrPermission) {
			h.fixV1 = true
			what := "its own " + l + " cgroup"
			if h.deleg != "" {
				what = "the delegated cgroup " + h.deleg
			}
			h.why[l] = LimitError{Limit: l, Reason: fmt.Sprintf("cgroup v1 (%s host): uid %d cannot create cgroups under %s (%s: permission denied)", h.Mode, h.euid, what, dir)}
			return
		}
		h.why[l] = LimitError{Limit: l,
			Reason: fmt.Sprintf("cannot create a cgroup under %s: %v", dir, err),
			Fix:    "give conductor a writable cgroup filesystem (in a container: run it privileged or with a writable /sys/fs/cgroup and a private cgroup namespace)"}
		return
	}
	defer func() { _ = h.env.rmdir(probe) }()
	switch l {
	case LimitCPU:
		if !exists(filepath.Join(probe, "cpu.cfs_quota_us")) {
			h.why[l] = LimitError{Limit: l,
				Reason: "the kernel has no CFS bandwidth control (cpu.cfs_quota_us is missing)",
				Fix:    "use a kernel built with CONFIG_CFS_BANDWIDTH=y, or drop the CPU limit"}
			return
		}
		h.how[l] = fmt.Sprintf("cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us in %s/<sandbox>", dir)
	case LimitMemory:
		h.swapAcct = exists(filepath.Join(probe, "memory.memsw.limit_in_bytes"))
		if h.swapAcct {
			h.how[l] = fmt.Sprintf("cgroup v1 memory.limit_in_bytes = memory.memsw.limit_in_bytes (no swap) in %s/<sandbox>", dir)
		} else {
			h.how[l] = fmt.Sprintf("cgroup v1 memory.limit_in_bytes with memory.swappiness=0 in %s/<sandbox> (swap accounting off)", dir)
		}
	case LimitPids:
		h.how[l] = fmt.Sprintf("cgroup v1 pids.max in %s/<sandbox>", dir)
	}
	h.Controllers[l] = true
}

// mkProbe creates <dir>/<prefix>probe-<pid>-<rand>; the caller removes it.
func (h *Host) mkProbe(dir string) (string, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := filepath.Join(dir, fmt.Sprintf("%s%s%d-%s", h.prefix, probeInfix, h.env.pid, hex.EncodeToString(b[:])))
	if err := h.env.mkdir(p); err != nil {
		return "", err
	}
	return p, nil
}

func (h *Host) detectV2() {
	root := h.env.root
	u := mount{Point: root, Root: "/", FSType: "cgroup2"}
	for _, m := range h.mounts {
		if m.FSType == "cgroup2" && m.Point == root {
			u = m
		}
	}
	setAll := func(reason, fix string) {
		for _, l := range limitNames {
			h.why[l] = LimitError{Limit: l, Reason: reason, Fix: fix}
		}
	}
	if !h.own.HasV2 {
		setAll("/proc/self/cgroup has no cgroup v2 (0::) entry", "run conductor on a host whose /proc/self/cgroup lists its cgroup v2 path")
		return
	}
	h.v2own = h.own.V2
	deleg := h.deleg
	if r := strings.TrimPrefix(deleg, root); r != deleg && (r == "" || r[0] == '/') {
		deleg = "/" + strings.TrimPrefix(r, "/")
	}
	switch {
	case deleg != "" && filepath.IsAbs(deleg):
		h.v2parent = deleg
	case deleg != "":
		h.v2parent = filepath.Join(h.v2own, deleg)
	case filepath.Base(h.v2own) == h.prefix+serverLeaf:
		// PrepareDelegation already ran (e.g. a second Detect): the leaf's parent is ours.
		h.v2parent = filepath.Dir(h.v2own)
	default:
		h.v2parent = h.v2own
	}
	dir, ok := fsPath(u, h.v2parent)
	if !ok {
		setAll(fmt.Sprintf("cgroup %s is not visible under %s (mount root %s)", h.v2parent, u.Point, u.Root),
			"run conductor where its own cgroup is visible (in a container: use a private cgroup namespace)")
		return
	}
	h.Parent[""] = h.v2parent
	h.parentDir[""] = dir
	for _, l := range limitNames {
		h.ctrlDir[l] = dir
		h.ctrlMount[l] = u.Point
	}

	owner := h.env.owner(dir)
	ownedFile := func(name string) bool { return h.env.owner(filepath.Join(dir, name)) == h.euid }
	owned := !h.Rootless || (owner == h.euid && ownedFile("cgroup.procs") && ownedFile("cgroup.subtree_control"))
	delegated := h.deleg != "" || (h.Rootless && owned) || (!h.Rootless && h.env.delegateXattr(dir))
	if delegated {
		h.Delegated = h.v2parent
	}
	inside := h.v2own == h.v2parent || strings.HasPrefix(h.v2own, strings.TrimSuffix(h.v2parent, "/")+"/")
	avail := fieldSet(readString(filepath.Join(dir, "cgroup.controllers")))
	enabled := fieldSet(readString(filepath.Join(dir, "cgroup.subtree_control")))
	var foreign []int
	if h.v2own == h.v2parent && h.v2parent != "/" {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, p := range parseProcs(b) {
			if p != h.env.pid {
				foreign = append(foreign, p)
			}
		}
	}

	probeErr := error(nil)
	if probe, err := h.mkProbe(dir); err != nil {
		probeErr = err
	} else {
		_ = h.env.rmdir(probe)
	}
	if probeErr == nil {
		h.form = formAbsV2
	} else if h.Rootless {
		h.form = formNameOnly
	} else {
		h.form = formAbsV2
	}

	delegFix := fmt.Sprintf("start conductor in a delegated scope: systemd-run --user --scope -p Delegate=yes conductor … (needs the user's systemd instance: as root, loginctl enable-linger %s); or have root create a cgroup owned by %s, with the controllers enabled in its parent's cgroup.subtree_control, start conductor inside it and set MCP_CONDUCTOR_CGROUP_PARENT=<that cgroup>", h.userName, h.userName)
	rootFix := fmt.Sprintf("run conductor as a systemd service with Delegate=yes (unit: [Service] Delegate=yes, or: systemd-run -p Delegate=yes --unit=conductor conductor …) and call PrepareDelegation at startup (conductor then moves itself into %s/%s%s and enables the controllers); or set MCP_CONDUCTOR_CGROUP_PARENT to an empty cgroup dedicated to conductor", h.v2parent, h.prefix, serverLeaf)
	for _, l := range limitNames {
		switch {
		case probeErr != nil && h.Rootless && errors.Is(probeErr, fs.ErrPermission):
			h.undelegated[l] = true
			h.why[l] = LimitError{Limit: l,
				Reason: fmt.Sprintf("cgroup v2: uid %d cannot create cgroups under %s (owned by uid %d): it has not been delegated to us", h.euid, dir, owner),
				Fix:    delegFix}
		case probeErr != nil:
			h.why[l] = LimitError{Limit: l,
				Reason: fmt.Sprintf("cannot create a cgroup under %s: %v", dir, probeErr),
				Fix:    "give conductor a writable cgroup filesystem (in a container: run it with a writable /sys/fs/cgroup and a private cgroup namespace)"}
		case h.Rootless && !inside:
			h.undelegated[l] = true
			h.why[l] = LimitError{Limit: l,
				Reason: fmt.Sprintf("cgroup v2 lets uid %d move a sandbox from its cgroup %s into %s only if it owns their common ancestor; %s is not inside %s", h.euid, h.v2own, h.v2parent, h.v2own, h.v2parent),
				Fix:    fmt.Sprintf("start conductor inside the delegated cgroup (e.g. a wrapper doing: echo $$ > %s/cgroup.procs; exec conductor …), or use systemd-run --user --scope -p Delegate=yes conductor …", dir)}
		case enabled[l]:
			h.Controllers[l] = true
			h.how[l] = fmt.Sprintf("cgroup v2 %s in %s/<sandbox> (enabled in %s/cgroup.subtree_control)", v2File(l), dir, dir)
		case !avail[l]:
			// A scope delegated to us alone may well have it (systemd enables the
			// controllers a Delegate=yes unit asks for along its path): Claim tries.
			if !delegated || !owned || len(foreign) > 0 {
				h.undelegated[l] = true
			}
			fix := fmt.Sprintf("enable %s in the cgroup.subtree_control of every ancestor of %s", l, dir)
			if h.Rootless {
				fix = fmt.Sprintf("as root, let systemd delegate it to users: mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload; then log in again (or: systemctl restart user@%d.service)", h.euid)
			}
			h.why[l] = LimitError{Limit: l,
				Reason: fmt.Sprintf("cgroup v2: controller %s is not available in %s (cgroup.controllers: %q)", l, dir, strings.TrimSpace(readString(filepath.Join(dir, "cgroup.controllers")))),
				Fix:    fix}
		case !delegated || !owned:
			h.undelegated[l] = true
			h.why[l] = LimitError{Limit: l,
				Reason: fmt.Sprintf("cgroup v2: %s is not enabled in %s/cgroup.subtree_control and that cgroup was not delegated to conductor (no Delegate=yes), so conductor may not enable it", l, dir),
				Fix:    rootFix}
			if h.Rootless {
				h.why[l] = LimitError{Limit: l, Reason: h.why[l].Reason, Fix: delegFix}
			}
		case len(foreign) > 0:
			h.undelegated[l] = true
			h.why[l] = LimitError{Limit: l,
				Reason: fmt.Sprintf("cgroup v2: %s also holds processes conductor did not start (pids %v), so %s cannot be enabled for children (no-internal-processes rule)", h.v2parent, foreign, l),
				Fix:    "start conductor alone in its own delegated cgroup: systemd-run --user --scope -p Delegate=yes conductor … (root: systemd-run -p Delegate=yes --unit=conductor conductor …)"}
		default:
			h.Controllers[l] = true
			h.pending = append(h.pending, l)
			h.how[l] = fmt.Sprintf("cgroup v2 %s in %s/<sandbox>, once PrepareDelegation has enabled %s in %s/cgroup.subtree_control", v2File(l), dir, l, dir)
		}
	}
	if len(h.pending) > 0 {
		h.Notes = append(h.Notes, fmt.Sprintf("cgroup v2 delegation: %s is ours; PrepareDelegation must move conductor into %s/%s%s and enable +%s before the first sandbox", h.v2parent, h.v2parent, h.prefix, serverLeaf, strings.Join(h.pending, " +")))
	}
	if !h.Rootless {
		h.Notes = append(h.Notes, "libcontainer's cgroup v2 manager writes \"+<all available controllers>\" to cgroup.subtree_control of every ancestor of the sandbox cgroup, from the root down")
	}
}

func v2File(l string) string {
	switch l {
	case LimitMemory:
		return "memory.max (memory.swap.max=0)"
	case LimitPids:
		return "pids.max"
	default:
		return "cpu.max"
	}
}

// cgRel returns dir as a cgroup path relative to mount point mnt ("/a/b").
func cgRel(mnt, dir string) string {
	r, err := filepath.Rel(mnt, dir)
	if err != nil || r == "." {
		return "/"
	}
	return "/" + r
}

func writableDir(dir string) bool {
	return unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS) == nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func fieldSet(s string) map[string]bool {
	m := map[string]bool{}
	for f := range strings.FieldsSeq(s) {
		m[strings.TrimPrefix(f, "+")] = true
	}
	return m
}
