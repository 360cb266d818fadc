// Package cgroups detects the host's cgroup setup and turns admin limits (memory, pids,
// CPU) into an enforceable libcontainer cgroup config, or says exactly why not.
//
// # Usage
//
//	h, err := cgroups.Start(ctx, cgroups.Options{Prefix: "conductor-", Delegated: os.Getenv("MCP_CONDUCTOR_CGROUP_PARENT")})
//	                                           // = Detect + PrepareDelegation (cgroup v2 delegation; no-op elsewhere)
//	removed, err := h.Sweep(ctx, isStale)      // startup: stale sandbox cgroups of dead instances
//	cg, degraded, err := h.Config(name, limits, allowDegraded)
//	config.Cgroups = cg                        // libcontainer configs.Config
//
// Start is the one setup path of every process that starts sandboxes: the server and the tests
// (sandbox's helpers, internal/sandboxtest, TestRealApplyAsRoot) alike, so a test run in a
// Delegate=yes scope moves itself into the server leaf exactly as the server does. Detect alone
// is for reporting (doctor), which must not move the process.
//
// Rootless: set configs.Config.RootlessEUID and RootlessCgroups when h.Rootless; Config
// already sets Cgroup.Rootless (libcontainer does not copy it).
//
// # Where sandbox cgroups go
//
// Root on cgroup v1/hybrid: below our own cgroup in every mounted hierarchy (relative Path;
// libcontainer resolves it per hierarchy from /proc/self/cgroup). On hybrid hosts
// libcontainer also joins <root>/unified/<name> (the cgroup2 tree has no controllers).
//
// Rootless on cgroup v1/hybrid: there is no unprivileged delegation in v1. Root must
// create a directory in the memory and pids (and cpu) hierarchies, chown it to the user
// and pass it as Options.Delegated; sandboxes are created inside it (Parent/Name form so
// that hierarchies the user cannot write are skipped by libcontainer).
//
// cgroup v2: sandboxes are children of a parent P, by default our own cgroup. Because of
// the "no internal processes" rule, P may not hold processes once controllers are enabled
// for its children, so conductor must live in a leaf: PrepareDelegation moves it into
// P/<prefix>server and enables +memory +pids +cpu in P/cgroup.subtree_control. It acts
// only on a subtree delegated to us: rootless, P owned by our uid (user@UID.service with
// systemd's default Delegate, or `systemd-run --user --scope -p Delegate=yes conductor`);
// root, P passed as Options.Delegated or marked delegated by systemd (Delegate=yes).
// Rootless users must also start inside P, because moving a process between cgroups
// requires owning their common ancestor.
package cgroups
