// Package sandbox runs one execution of Deno code inside a fresh libcontainer
// container: new user, mount, network (loopback only), pid, ipc, uts and cgroup
// namespaces; a read-only root holding only deno; runc's masked /proc paths; no
// /sys; a minimal /dev; a size-limited noexec tmpfs /tmp; no capabilities;
// no_new_privs; a seccomp allowlist; cgroup memory and pid limits.
//
// Inside, deno runs a fixed bootstrap (bootstrap.js) that receives the user's
// code over an inherited pipe pair (fd 4: host to sandbox, fd 3: sandbox to
// host), so a sandbox can be started before its code is known. Messages on the
// pipes are frames: a 4-byte big-endian length followed by that many bytes of
// JSON. The host side treats every frame as hostile input.
//
// Calls (mcpFactory) are bounded by CallLimits: calls per execution, calls
// in flight, reply bytes, and request bytes — one call's encoded parameters
// (checked before they are copied or decoded), one execution's in flight,
// and all executions' in flight through a shared Budget. A call over a
// limit is refused at once with the limit and the variable the admin sets
// it with. A CallHandler error wrapping ErrEndExecution ends the execution:
// the sandbox is killed and the result is status "killed" with the reason.
//
// Lifecycle: Runner.Start creates and starts a container and boots deno into
// the bootstrap; Sandbox.Run sends code and waits for the result; Sandbox.Close
// destroys the container. Runner.Run does all three. Every path leaves no
// container, process, cgroup or state directory behind; Runner.New sweeps what
// a dead server instance left.
package sandbox
