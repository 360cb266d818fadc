// Package sandbox runs one execution of Deno code inside a fresh libcontainer
// container: new user, mount, network (loopback only), pid, ipc, uts and cgroup
// namespaces; a read-only root holding deno and the admin's programs (see
// rootfs; the sandbox knows none of them by name); runc's masked /proc paths; no
// /sys; a minimal /dev; a size-limited noexec tmpfs /tmp; no capabilities;
// no_new_privs; a seccomp allowlist; cgroup memory and pid limits.
//
// /dev is exactly the root's (see rootfs): its /dev directory, bound
// read-only onto itself, with the host's null, zero, full, random, urandom
// and tty bound over their mount points, and the fd/stdin/stdout/stderr
// symlinks into /proc/self/fd. Bind-mounting /dev is how libcontainer lets
// the caller own /dev; otherwise it adds entries of its own, among them
// /dev/core -> /proc/kcore on hosts whose kernel has it (devMounts).
//
// The workspace (Options.Workspace) is a host directory bind-mounted at the
// same path, idmapped to its owner as root. nosuid there holds only inside
// the sandbox, so nothing the sandbox writes may carry set-id bits, be
// world-writable, or carry a file capability: the seccomp policy refuses
// those modes on every chmod, open/creat and mkdir path, and every xattr
// setter, and the process starts with umask 0022 (sandboxUmask), which code
// can tighten but not clear S_IWOTH from (see seccomp's modeRules).
// TestEscapeSetID proves it from inside with allow-all and FFI, then walks
// the workspace on the host.
//
// Inside, deno runs a fixed bootstrap (bootstrap.js) that receives the user's
// code over an inherited pipe pair (fd 4: host to sandbox, fd 3: sandbox to
// host), so a sandbox can be started before its code is known. Messages on the
// pipes are frames: a 4-byte big-endian length followed by that many bytes of
// JSON. The host side treats every frame as hostile input.
//
// A run's outcome is decided in two steps (result.go): gatherFacts reads
// the world once deno has exited (output, frames, exit status, cgroup
// limit events, the door's records) into a facts value, and verdict, a pure
// function of those facts, sets the status, limit hit and error (its
// rewording included). TestVerdict covers it without a sandbox.
//
// With a workspace, output beyond the inline cap is spilled to
// <workspace>/.conductor/output in files named by 128 random bits, created
// exclusively (openat2, no links followed). One run spills at most
// Options.SpillMax bytes over both streams; after a run's spill closes the
// oldest spill files are removed until all fit in Options.SpillTotal (never
// that run's, nor an open one's, and only regular files with spill names).
// As root the output directory belongs to a uid the sandbox's idmapped mount
// does not map, mode 0711, checked at every use; a link or sandbox-made
// directory in its place is moved aside. Options.WorkspaceQuota is set up by
// package quota at New (fail closed) and, where the kernel does not enforce
// it, checked by Sandbox.Run before the code is sent (ErrorQuota).
//
// With a CallHandler the code has the globals mcpFactory and servers
// (servers.<server>.<tool>(args) is mcpFactory.load(server).callTool(tool,
// args); frozen proxies that are never thenable). Calls are bounded by CallLimits: calls per execution, calls
// in flight, reply bytes, and request bytes — one call's encoded parameters
// (checked before they are copied or decoded), one execution's in flight,
// and all executions' in flight through a shared Budget. A call over a
// limit is refused at once with the limit and the variable the admin sets
// it with. A CallHandler error wrapping ErrEndExecution ends the execution:
// the sandbox is killed and the result is status "killed" with the reason.
// A handler's ctx carries the values of the ctx Run was given (what the
// request put there: whom to ask for an approval) but ends with the
// execution, not with that ctx; RecordCall on it adds a CallDetail to the
// result's mcpCallDetails (at most MaxCallDetails).
// The bootstrap defines the globals the job's CallHandler answers (Serves:
// mcpFactory by default; a handler implementing Globals names them, e.g.
// playbooks), and those only.
//
// Network: a run sandbox's namespace holds only its lo. With Options.Net
// (the admin's allow-net, see egress.Policy) every run sandbox gets a door
// (egress.StartDoor) wired after the container's init exists and before
// deno is exec'd, so a pooled sandbox has it when it is handed out: DNS
// from a responder at 127.0.0.53 (deno is granted that address so
// Deno.resolveDns works), every IPv4 TCP connection redirected to the door,
// which decides, dials from the host and relays; other UDP and IPv6
// refused (IPv6 TCP with a reset: connect fails at once). Result.Network
// lists each decision (host, port, allowed, reason, bytes); a run whose
// error is a failed connection the door refused says what and why
// (rewordNetwork), deno's text in ErrorInfo.Cause. Rootless, egress wires it through its helper. A sandbox
// with its own StartOptions.Network goes through the same door with that
// policy (Runner.doorFor): one network mechanism for all.
//
// A sandbox may run a program of its own instead of the bootstrap, as
// data, behind the same walls: StartOptions.Command (the argv, started at
// once, no channel use), Env (entries added), Writable (one host directory
// mounted read-write at an in-root mount point, noexec unless Exec), Files
// (written into it, removed at Close), Network (its policy through the
// door) and Isolated (none of the runner's shared state: no dependency
// cache or Options.Mounts, no workspace or spill, no Options.Env or CA
// bundle variables). The sandbox knows no such program by name (package
// install runs the package installers on this). Run sandboxes mount
// Options.DepsCache at the root's DENO_DIR and Options.Mounts (the Python
// packages) read-only.
//
// Environment: the sandbox's own (PATH=/usr/bin:/bin, HOME=/tmp — a per-run
// tmpfs, so a tool's dotfiles never outlive the run — TMPDIR, DENO_*) plus
// Options.Env, entries that come as data with the root's programs, which may
// not replace the sandbox's own, and Options.CABundleEnv, the variables that
// name the CLI tools' CA bundle: the root's, or, when the door stands in for
// secret hosts, a copy in the trust dir with the door's CA appended, so
// tools (curl, git, gh) reach secret hosts as deno does.
// Starting a program the root does not hold fails with an error the result
// extends with who can add it (MCP_CONDUCTOR_TOOLS, the admin).
//
// Per sandbox, StartOptions may replace deno's permission flags (DenoFlags)
// and add a working directory (WorkDir: a size-capped tmpfs at a mount point
// the root holds, deno's cwd, noexec unless Exec): that is all execute_code's
// launcher needs, as data; the sandbox knows no runtime by name. Anything a
// sandbox's processes spawn inherits the channel's fds 3 and 4, so a program
// the launcher runs can write frames too: the host treats them as hostile
// like every frame, and they can forge at most that run's own result.
//
// Outputs: with Options.Outputs (its TotalBytes, the size) every run sandbox (not a Command's)
// gets an outputs directory, a size-capped noexec tmpfs at config.OutputsDir that its
// environment names (config.OutputsEnv). start opens it from the host as
// /proc/<init pid>/root/outputs (package outputs' OpenDir: O_PATH, checked to be a tmpfs) once
// the init exists and before any code arrived, so a pooled sandbox holds the fd of the tmpfs
// its config mounted; the fd pins it after the sandbox is gone. Run collects it after deno, the
// pid namespace's init, has exited (so nothing writes any more), never entering the sandbox:
// Result.Outputs, with the workspace files the code named (outputs.Workspace, resolved under
// this run's workspace). Close closes the fd. The bootstrap imports display.js (Display, beside
// it in the root): code's display() global, which only writes that directory.
//
// Lifecycle: Runner.Start creates and starts a container and boots deno into
// the bootstrap; Sandbox.Run sends code and waits for the result; Sandbox.Close
// destroys the container. Runner.Run does all three. Every path leaves no
// container, process, cgroup or state directory behind; Runner.New sweeps what
// a dead server instance left. Each pipe end has one owner (internal/fdset):
// the start path until it hands the child's ends to the container's init
// (closing its copies once the init started) and the host's to the Sandbox
// (the channel to the code) and its readers (fd 3, stdout, stderr), so a
// failed start leaves no fd open — but libcontainer's own O_PATH fd of the
// exec fifo after a failed init, which it frees when the garbage collector
// finalizes the dropped container (TestStartFailuresLeakNoFDs).
package sandbox
