package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/cgroups"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/deps"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/quota"
	"github.com/conductor-sandbox/conductor/rootfs"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
	"github.com/conductor-sandbox/conductor/tools"
)

// check is one line of the doctor's report.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// doctorReport is what `conductor doctor --json` prints.
type doctorReport struct {
	OK       bool            `json:"ok"`
	Kernel   string          `json:"kernel"`
	Rootless bool            `json:"rootless"`
	Checks   []check         `json:"checks"`
	Cgroups  *cgroups.Report `json:"cgroups,omitempty"`
	Settings map[string]any  `json:"settings,omitempty"`
	// Upstreams are the MCP config's servers as doctor found them (doctor_upstream.go).
	Upstreams []upstreamReport `json:"upstreams,omitempty"`
}

func (r *doctorReport) add(c check) { r.Checks = append(r.Checks, c) }

// variablesCheck fails on MCP_CONDUCTOR_* variables conductor does not know: a typo leaves the
// setting the admin meant at its default, silently.
func variablesCheck(environ []string) check {
	probs := config.UnknownVariableProblems(environ)
	if len(probs) == 0 {
		return check{Name: "variables", OK: true, Detail: "every " + config.Prefix + "* variable is known"}
	}
	return check{Name: "variables", Detail: strings.Join(probs, "; "), Fix: "rename or remove them; README's settings table lists every variable"}
}

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	ups := fs.Bool("upstreams", true, "start every upstream MCP server of the MCP config, list it and report its state (with the last stderr lines of those that fail); -upstreams=false skips it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rep := diagnose(ctx, newLogger(slog.LevelError))
	checkUpstreams(ctx, rep, *ups)
	rep.finish()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printDoctor(rep, stdout)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

func diagnose(ctx context.Context, log *slog.Logger) *doctorReport {
	rep := &doctorReport{Rootless: os.Geteuid() != 0}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		rep.Kernel = unix.ByteSliceToString(uts.Sysname[:]) + " " + unix.ByteSliceToString(uts.Release[:])
	}

	s, src, err := config.LoadSources(os.LookupEnv)
	if err != nil {
		if isFileError(err) {
			rep.add(configCheck(s, src, err))
		} else {
			rep.add(check{Name: "settings", Detail: err.Error(), Fix: "fix the MCP_CONDUCTOR_* variables (or the config file's keys) named above"})
		}
		rep.finish()
		return rep
	}
	rep.add(check{Name: "settings", OK: true, Detail: settingsSummary(s)})
	rep.add(configCheck(s, src, nil))
	if s.Identities.Len() > 0 {
		rep.add(identitiesCheck(s.Identities))
	}
	rep.add(variablesCheck(os.Environ()))
	rep.add(auditCheck(s))
	rep.add(statelessCheck(s))
	if s.MetricsAddr != "" {
		rep.add(metricsCheck(s))
	}
	l := resolveLayout(s)
	limits := limitsFor(s)
	rep.Settings = map[string]any{
		"runArgs": s.RunArgs, "memoryBytes": limits.Memory, "pids": limits.Pids, "cpus": limits.CPUs,
		"maxOutputBytes": s.MaxOutput, "defaultTimeoutMs": s.DefaultTimeout.Milliseconds(),
		"maxTimeoutMs": s.MaxTimeout.Milliseconds(), "allowDegraded": s.AllowDegraded,
		"dataDir": l.dataDir, "stateDir": l.stateDir, "audit": s.Audit, "auditCode": s.AuditCode,
	}

	aa := hostAppArmor(rep.Rootless)
	rep.add(userNamespaceCheck(rep.Rootless, appArmorRestricts(aa.restrict)))
	rep.add(appArmorCheck(aa))
	rep.add(procCheck())
	rep.add(networkCheck(s))
	rep.add(seccompCheck())
	if s.Workspace != "" {
		c := workspaceCheck(ctx, s, log)
		if p := config.WorkspaceProblem(s); p != "" {
			// A warning, not a failure: nothing is unsafe, the workspace is only of no use to code.
			c.Detail = "WARNING: " + p + "; " + c.Detail
		}
		rep.add(c)
	}

	if s.Playbooks != "" {
		rep.add(playbooksCheck(s))
	}
	// Claim, not Detect: on cgroup v2 without delegation doctor obtains its own transient
	// scope exactly as serve does (harmless for a short-lived process) and so reports
	// what serve will do; it never moves into the server leaf (the smoke run's Start does).
	host, err := cgroups.Claim(ctx, cgroups.Options{Prefix: sandbox.IDPrefix, Delegated: s.CgroupParent, Log: log})
	if err != nil {
		rep.add(check{Name: "cgroups", Detail: err.Error()})
	} else {
		if c, ok := delegationCheck(host, s.AllowDegraded); ok {
			rep.add(c)
		}
		cg := host.Report(limits)
		rep.Cgroups = &cg
		missing := host.Missing(limits)
		c := check{Name: "limits", OK: len(missing) == 0, Detail: fmt.Sprintf("cgroup mode %s; memory, pids%s enforced", host.Mode, cpuWord(limits))}
		if len(missing) > 0 {
			var why, fix []string
			for _, m := range missing {
				why = append(why, m.Limit+": "+m.Reason)
				if !slices.Contains(fix, m.Fix) {
					fix = append(fix, m.Fix)
				}
			}
			c.Detail = "cannot enforce: " + strings.Join(why, "; ")
			c.Fix = strings.Join(fix, "\n")
			if s.AllowDegraded {
				c.OK = true
				c.Detail = "DEGRADED (MCP_CONDUCTOR_ALLOW_DEGRADED=1): " + c.Detail
			}
		}
		rep.add(c)
	}

	rep.add(denoCheck(ctx, l.deno))
	root, rootErr := rootfs.NewStore(l.rootfs).Current(ctx)
	switch {
	case rootErr != nil:
		fix := "run `make build` (or `conductor rootfs build`)"
		rep.add(check{Name: "rootfs", Detail: fmt.Sprintf("%s: %v", l.rootfs, rootErr), Fix: fix})
	default:
		if err := root.Verify(ctx); err != nil {
			rep.add(check{Name: "rootfs", Detail: err.Error(), Fix: "run `conductor rootfs build`"})
		} else {
			rep.add(check{Name: "rootfs", OK: true, Detail: fmt.Sprintf("%s (content hash %s, verified)", root.Path, short(root.Hash))})
			rep.add(grantsCheck(s, root.Path))
		}
	}

	if len(s.Tools) > 0 {
		rep.add(toolsCheck(ctx, s))
	}
	if rep.allOK() {
		rep.add(smokeCheck(ctx, log))
	}
	if rep.allOK() && len(s.Tools) > 0 {
		rep.add(toolsProof(ctx, log))
	}
	rep.add(runtimesCheck(ctx, s))
	if rep.allOK() {
		rep.add(runtimesProof(ctx, log))
	}
	if rep.allOK() && s.Network {
		rep.add(networkProof(ctx, log))
	}
	if rep.allOK() {
		rep.add(typeCheckProof(ctx, s, log))
	}
	// After the proofs: a package not yet installed is the admin's next step, not a reason to
	// leave the host unproven.
	rep.add(packagesCheck(ctx))
	rep.finish()
	return rep
}

// grantsCheck fails on path grants a sandbox cannot honour (serve and exec refuse to start with
// them) and warns about allow-all, as serve does.
func grantsCheck(s config.Settings, root string) check {
	c := check{Name: "grants", OK: true, Detail: "every path granted in " + config.VarRunArgs + " is in the sandbox"}
	if probs := config.GrantProblems(s, rootHas(root)); len(probs) > 0 {
		c.OK = false
		c.Detail = strings.Join(probs, "; ")
		c.Fix = config.GrantFix + "; serve and exec refuse to start until then"
		return c
	}
	if s.AllowAll {
		c.Detail = "WARNING: allow-all: deno's own permission wall is open (every file the sandbox holds, every program in its root, " +
			"the network through the door); only the OS sandbox holds"
	}
	return c
}

// packagesCheck lists the allowed packages with the versions the cache view sandboxes mount holds
// of each; one not installed fails it (code importing it would fail).
func packagesCheck(ctx context.Context) check {
	c := check{Name: "packages"}
	cv, err := loadCurrentView(ctx)
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "fix " + config.VarAllowedPackages
		return c
	}
	c.OK = true
	if cv.key == nil {
		c.Detail = "none allowed: sandboxes mount no dependency cache"
		return c
	}
	views := deps.NewViews(cv.layout.deps)
	dir, _, _ := views.Inspect(*cv.key)
	var have, missing []string
	for _, st := range views.States(*cv.key) {
		if !st.Installed {
			missing = append(missing, st.Package.Specifier())
			continue
		}
		v := st.Package.Specifier()
		if len(st.Versions) > 0 {
			v += " (" + strings.Join(st.Versions, ", ") + ")"
		}
		have = append(have, v)
	}
	if len(missing) > 0 {
		c.OK = false
		c.Detail = fmt.Sprintf("NOT installed: %s; code importing them fails", strings.Join(missing, ", "))
		c.Fix = "run `conductor deps install` (serve also installs them at start); `conductor deps list` lists them"
		if len(have) > 0 {
			c.Detail += "; installed: " + strings.Join(have, ", ")
		}
		return c
	}
	c.Detail = fmt.Sprintf("all %d installed in %s: %s", len(have), dir, strings.Join(have, ", "))
	if cv.key.PyIndex != "" && len(cv.allow.PythonPackages()) > 0 {
		c.Detail += "; pypi from " + cv.key.PyIndex
	}
	return c
}

func cpuWord(l cgroups.Limits) string {
	if l.CPUs > 0 {
		return ", cpu"
	}
	return ""
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func (r *doctorReport) allOK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func (r *doctorReport) finish() { r.OK = r.allOK() }

func settingsSummary(s config.Settings) string {
	perms := "none (deno's default: no permissions)"
	if len(s.RunArgs) > 0 {
		perms = strings.Join(s.RunArgs, " ")
	}
	return fmt.Sprintf("permissions: %s; memory %d MiB; timeout %s (max %s); %s", perms, s.Memory>>20, s.DefaultTimeout, s.MaxTimeout, httpAuthSummary(s))
}

// httpAuthSummary says how `serve --http` authenticates clients.
func httpAuthSummary(s config.Settings) string {
	switch {
	case s.HTTPInsecureNoAuth:
		return "HTTP: NO authentication (" + config.VarHTTPInsecureNoAuth + "): anyone who can connect runs code with these permissions"
	case s.HTTPToken != "":
		return "HTTP: bearer token from " + config.VarHTTPToken
	default:
		return "HTTP: bearer token generated at each start (the log names its file)"
	}
}

// workspaceCheck says how the workspace's disk use is bounded on this host:
// the spill bounds, and whether the quota is enforced while code writes
// (project quota) or checked before each run, and why. It sets the quota up
// as serve does, so a quota serve would refuse fails here too.
func workspaceCheck(ctx context.Context, s config.Settings, log *slog.Logger) check {
	spill := "spills off"
	if s.SpillMax > 0 {
		spill = fmt.Sprintf("spills at most %s per run, %s in all (oldest removed first)", quota.FormatSize(s.SpillMax), quota.FormatSize(s.SpillTotal))
	}
	c := check{Name: "workspace", OK: true}
	if s.WorkspaceQuota <= 0 {
		c.Detail = fmt.Sprintf("%s; no quota (%s unset); %s", s.Workspace, config.VarWorkspaceQuota, spill)
		return c
	}
	q, err := quota.Setup(ctx, s.Workspace, s.WorkspaceQuota, log)
	if err != nil {
		c.OK = false
		c.Detail = err.Error()
		c.Fix = "fix the filesystem's project quotas, or unset " + config.VarWorkspaceQuota
		return c
	}
	c.Detail = q.Describe() + "; " + spill
	if err := q.Check(ctx); err != nil {
		c.OK = false
		c.Detail += "; " + err.Error()
		c.Fix = "clean the workspace, or raise " + config.VarWorkspaceQuota
	}
	return c
}

// userNamespaceCheck creates a user namespace the way the sandbox will. apparmor: AppArmor
// restricts unprivileged user namespaces (appArmorCheck says whether conductor's profile applies).
func userNamespaceCheck(rootless, apparmor bool) check {
	c := check{Name: "user namespaces"}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		c.Detail = "disabled: /proc/sys/user/max_user_namespaces is 0"
		c.Fix = "sysctl -w user.max_user_namespaces=15000"
		return c
	}
	var notes []string
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" && rootless {
		c.Detail = "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)"
		c.Fix = "sysctl -w kernel.unprivileged_userns_clone=1, or run conductor as root"
		return c
	}
	cmd := exec.Command("/proc/self/exe", "version")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		c.Detail = fmt.Sprintf("cannot create a user namespace: %v %s", err, strings.TrimSpace(string(out)))
		if seccompFiltered() {
			// A container runtime's default seccomp profile (containerd's, CRI-O's, Docker's) refuses
			// clone and unshare with namespace flags to a process without CAP_SYS_ADMIN.
			c.Detail = strings.TrimSpace(c.Detail) + " (this process runs under a seccomp filter: a container runtime's default profile refuses " +
				"namespace-creating clone/unshare without CAP_SYS_ADMIN)"
			c.Fix = seccompFix
			return c
		}
		if apparmor && rootless {
			c.Fix = "AppArmor restricts unprivileged user namespaces: load conductor's AppArmor profile (the apparmor line below names the command), or run conductor as root"
		}
		return c
	}
	c.OK = true
	c.Detail = "available"
	if rootless {
		if extra := extraGroups(); len(extra) > 0 {
			notes = append(notes, fmt.Sprintf("rootless, sandboxes keep this user's supplementary groups %v "+
				"(an unprivileged user namespace cannot drop them); they reach only what conductor mounts, "+
				"run it as a user without extra groups, or as root, to drop them", extra))
		}
	}
	if len(notes) > 0 {
		c.Detail += " (" + strings.Join(notes, "; ") + ")"
	}
	return c
}

// seccompFix is what to change when a container's seccomp profile stops conductor.
const seccompFix = "run conductor's container without the runtime's default seccomp profile: in Kubernetes, the container's " +
	"securityContext.seccompProfile type Unconfined (or a Localhost profile that allows clone, unshare and setns with namespace flags), " +
	"as deploy/kubernetes/deployment.yaml does; with docker/podman, --security-opt seccomp=unconfined. conductor filters every sandbox itself"

// seccompFiltered reports whether this process runs under a seccomp filter
// (Seccomp: 2 in /proc/self/status), as every container of a runtime's
// default profile does.
func seccompFiltered() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v) == "2"
		}
	}
	return false
}

// extraGroups lists this process's supplementary groups other than its
// own gid.
func extraGroups() []int {
	gids, _ := os.Getgroups()
	return slices.DeleteFunc(gids, func(g int) bool { return g == os.Getegid() })
}

// seccompCheck confirms the kernel has seccomp filters with kill-process.
func seccompCheck() check {
	c := check{Name: "seccomp"}
	b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	if err != nil {
		c.Detail = "the kernel has no seccomp filter support: " + err.Error()
		c.Fix = "use a kernel built with CONFIG_SECCOMP_FILTER"
		return c
	}
	if !strings.Contains(string(b), "kill_process") {
		c.Detail = "the kernel lacks SECCOMP_RET_KILL_PROCESS (needs Linux >= 4.14)"
		return c
	}
	c.OK = true
	c.Detail = "filters available; policy: allowlist, default EPERM, native ABI only (others kill the process); " +
		"no set-id, world-writable or capability file can be written to the workspace"
	return c
}

func denoCheck(ctx context.Context, deno string) check {
	c := check{Name: "deno"}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, deno, "--version").Output()
	if err != nil {
		c.Detail = fmt.Sprintf("%s: %v", deno, err)
		c.Fix = "run `make build` (fetches deno from the npm registry) or `DENO=/path/to/deno make build`"
		return c
	}
	c.OK = true
	c.Detail = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0] + " at " + deno
	return c
}

// smokeCheck runs a real sandbox: the only proof that the policy holds here.
// delegationCheck reports the transient scope Claim obtained, or why it could not
// (then the limits check carries the fix; with degraded mode allowed that is not a
// failure, as there); ok is false when Claim did not try.
func delegationCheck(h *cgroups.Host, allowDegraded bool) (check, bool) {
	c := check{Name: "cgroup delegation"}
	switch {
	case h.Scope != nil:
		c.OK = true
		c.Detail = fmt.Sprintf("transient scope %s (Delegate=yes) obtained through the %s bus: %s", h.Scope.Unit, h.Scope.Bus, h.Scope.Path)
	case h.ScopeErr != nil:
		c.Detail = "no delegated cgroup, and conductor could not obtain a transient scope with Delegate=yes: " + h.ScopeErr.Error()
		c.Fix = "see the limits check below"
		if allowDegraded {
			c.OK = true
			c.Detail = "DEGRADED (MCP_CONDUCTOR_ALLOW_DEGRADED=1): " + c.Detail
		}
	default:
		return c, false
	}
	return c, true
}

func smokeCheck(ctx context.Context, log *slog.Logger) check {
	c := check{Name: "sandbox run"}
	a, err := newApp(ctx, log)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer a.Close()
	res, err := a.runner.Run(ctx, sandbox.Job{Code: `console.log(Deno.version.deno)`, Timeout: 30 * time.Second})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	if res.Status != sandbox.StatusSuccess {
		msg := string(res.Status)
		if res.Error != nil {
			msg += ": " + res.Error.Message
		}
		c.Detail = msg
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("deno %s ran in a sandbox in %.1f ms", strings.TrimSpace(res.Stdout), res.DurationMs)
	if len(res.Degraded) > 0 {
		c.Detail += "; DEGRADED: " + strings.Join(res.Degraded, "; ")
	}
	return c
}

// toolsCheck finds the admin's CLI tools on this host and names each one's
// version (`<tool> --version`, run on the host).
func toolsCheck(ctx context.Context, s config.Settings) check {
	c := check{Name: "tools"}
	ts, err := tools.Resolve(ctx, s.Tools, tools.Options{})
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "install the tool on this host, or remove it from " + config.VarTools
		return c
	}
	var parts []string
	for _, t := range ts.Tools {
		v, err := t.Version(ctx)
		if err != nil || v == "" {
			v = "version unknown"
		}
		parts = append(parts, fmt.Sprintf("%s (%s: %s)", t.Name, t.Host, v))
	}
	c.OK = true
	c.Detail = strings.Join(parts, "; ")
	if ts.CABundle != "" {
		c.Detail += "; CA bundle " + ts.CABundle
	}
	return c
}

// toolsProofCode runs each tool named in the global TOOLS with --version
// through Deno.Command, as code would, and prints one line per tool.
const toolsProofCode = `for (const t of TOOLS) {
  const r = await new Deno.Command(t, { args: ["--version"], stdin: "null" }).output();
  const line = new TextDecoder().decode(r.stdout).split("\n")[0];
  console.log(JSON.stringify([t, r.code, line]));
}`

// toolsProof runs every CLI tool in a real sandbox: a tool that is in the
// root but cannot start there (a missing library, a refused system call)
// fails the doctor instead of failing the model.
func toolsProof(ctx context.Context, log *slog.Logger) check {
	c := check{Name: "tools run"}
	a, err := newApp(ctx, log)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer a.Close()
	names := a.tools.Names()
	globals, err := json.Marshal(map[string]any{"TOOLS": names})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	res, err := a.runner.Run(ctx, sandbox.Job{Code: toolsProofCode, Globals: globals, Timeout: 60 * time.Second})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	if res.Status != sandbox.StatusSuccess {
		c.Detail = string(res.Status)
		if res.Error != nil {
			c.Detail += ": " + res.Error.Message
		}
		c.Detail += "; stderr: " + strings.TrimSpace(res.Stderr)
		return c
	}
	var ran, failed []string
	for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var row []any
		if json.Unmarshal([]byte(l), &row) != nil || len(row) != 3 {
			continue
		}
		name, _ := row[0].(string)
		if code, _ := row[1].(float64); code == 0 {
			ran = append(ran, name)
		} else {
			failed = append(failed, fmt.Sprintf("%s exited %v", name, row[1]))
		}
	}
	if len(failed) > 0 || len(ran) != len(names) {
		c.Detail = fmt.Sprintf("ran %v of %v; %s; stderr: %s", ran, names, strings.Join(failed, "; "), strings.TrimSpace(res.Stderr))
		c.Fix = "a tool that cannot run in the sandbox: check its libraries with `ldd`, or remove it from " + config.VarTools
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("%s --version ran in a sandbox through Deno.Command", strings.Join(ran, ", "))
	return c
}

// runtimesCheck finds execute_code's runtimes on this host and names each language with its
// runtime's version.
func runtimesCheck(ctx context.Context, s config.Settings) check {
	c := check{Name: "runtimes"}
	rs, err := runtimes.Resolve(ctx, runtimes.Options{DenoPath: "/usr/bin/deno", DenoFlags: s.CodeFlags(), Memory: s.Memory, Python: s.Python, Go: s.Go})
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "install that interpreter or toolchain, or change or unset the variable the message names (" + config.VarPython + ", " + config.VarGo + ")"
		return c
	}
	var parts []string
	for _, r := range rs.Runtimes {
		v := r.Version
		if v == "" {
			v = "see deno above"
		}
		parts = append(parts, fmt.Sprintf("%s (%s, %s)", strings.Join(languageNames(r), ", "), r.Program(), v))
	}
	if _, _, ok := rs.Language("python"); !ok {
		parts = append(parts, "no python (none on PATH, or "+config.VarPython+"="+config.PythonOff+")")
	}
	if _, _, ok := rs.Language("go"); !ok {
		parts = append(parts, "no go (none on PATH, or "+config.VarGo+"="+config.GoOff+")")
	} else if s.Memory != 0 && s.Memory < config.DefaultMemory {
		parts = append(parts, fmt.Sprintf("go run was proven with %d MiB per sandbox; with %s=%d MiB, larger Go builds may be killed for memory (the admin can raise it)",
			config.DefaultMemory>>20, config.VarMemory, s.Memory>>20))
	}
	c.OK = true
	c.Detail = strings.Join(parts, "; ")
	return c
}

func languageNames(r *runtimes.Runtime) []string {
	var out []string
	for _, l := range r.Languages {
		out = append(out, l.Name)
	}
	return out
}

// helloPrograms are the doctor's execute_code proofs, one per language.
var helloPrograms = map[string]string{
	"python":     "import sys\nprint('hello from', sys.implementation.name)",
	"javascript": "console.log('hello from', 'javascript')",
	"typescript": "const who: string = 'typescript';\nconsole.log('hello from', who)",
	"go":         "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from\", \"go\") }\n",
}

// runtimesProof runs a hello program of every execute_code language in a real sandbox, through
// the engine, as the tool does.
func runtimesProof(ctx context.Context, log *slog.Logger) check {
	c := check{Name: "execute_code"}
	a, err := newApp(ctx, log)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer a.Close()
	var ran []string
	for _, lang := range a.runtimes.Names() {
		res, err := a.engine.ExecuteCode(ctx, engine.CodeRequest{Language: lang, Entrypoint: engine.File{Content: helloPrograms[lang]}, Timeout: 60 * time.Second})
		switch {
		case err != nil:
			c.Detail = fmt.Sprintf("%s: %v", lang, err)
		case res.Status != sandbox.StatusSuccess || !strings.HasPrefix(res.Stdout, "hello from "):
			c.Detail = fmt.Sprintf("%s: %s, stdout %q, stderr %q", lang, res.Status, res.Stdout, lastLine(res.Stderr))
			if res.Error != nil {
				c.Detail += ": " + res.Error.Message
			}
		default:
			ran = append(ran, fmt.Sprintf("%s (%.0f ms)", lang, res.DurationMs))
			continue
		}
		c.Fix = "a runtime that cannot run in the sandbox: check its libraries and standard library, or set " + config.VarPython + "=" + config.PythonOff +
			" or " + config.VarGo + "=" + config.GoOff + " (Go builds need memory and threads: raise " + config.VarMemory + " or " + config.VarPids + " if go was killed for them)"
		return c
	}
	c.OK = true
	c.Detail = "hello ran in a sandbox: " + strings.Join(ran, ", ")
	return c
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func printDoctor(r *doctorReport, w io.Writer) {
	var b bytes.Buffer
	mode := "root"
	if r.Rootless {
		mode = "rootless"
	}
	fmt.Fprintf(&b, "conductor doctor: %s, running as %s\n", r.Kernel, mode)
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  [%s] %-16s %s\n", mark, c.Name, c.Detail)
		if c.Fix != "" {
			for _, line := range strings.Split(c.Fix, "\n") {
				fmt.Fprintf(&b, "         %-16s fix: %s\n", "", line)
			}
		}
	}
	printUpstreams(&b, r.Upstreams)
	if cg := r.Cgroups; cg != nil {
		fmt.Fprintf(&b, "  cgroups: %s; %s\n", cg.Mode, cg.Delegation)
		for _, l := range cg.Limits {
			switch {
			case l.Requested == "":
				fmt.Fprintf(&b, "    %-7s not configured (available: %v)\n", l.Limit, l.Enforceable)
			case l.Enforceable:
				fmt.Fprintf(&b, "    %-7s %s: %s\n", l.Limit, l.Requested, l.How)
			default:
				fmt.Fprintf(&b, "    %-7s %s: NOT ENFORCEABLE: %s\n", l.Limit, l.Requested, l.Reason)
			}
		}
		for _, n := range cg.Notes {
			fmt.Fprintf(&b, "    note: %s\n", n)
		}
	}
	if r.OK {
		fmt.Fprintln(&b, "The configured policy is enforceable on this host.")
	} else {
		fmt.Fprintln(&b, "The configured policy CANNOT be enforced on this host; conductor will refuse to run.")
	}
	_, _ = w.Write(b.Bytes())
}
