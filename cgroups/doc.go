// Package cgroups detects the host's cgroup setup and turns admin limits (memory, pids,
// CPU) into an enforceable libcontainer cgroup config, or says exactly why not.
//
// # Usage
//
//	h, err := cgroups.Start(ctx, cgroups.Options{Prefix: "conductor-", Delegated: os.Getenv("MCP_CONDUCTOR_CGROUP_PARENT"), Log: log})
//	                                           // = Claim (Detect + a transient scope when v2 is not delegated)
//	                                           //   + PrepareDelegation (cgroup v2 delegation; no-op elsewhere)
//	removed, err := h.Sweep(ctx, isStale)      // startup: stale sandbox cgroups of dead instances
//	cg, degraded, err := h.Config(name, limits, allowDegraded)
//	config.Cgroups = cg                        // libcontainer configs.Config
//
// Start is the one setup path of every process that starts sandboxes: the server and the tests
// (sandbox's helpers, internal/sandboxtest, TestRealApplyAsRoot) alike, so a test run in a
// Delegate=yes scope moves itself into the server leaf exactly as the server does. Detect alone
// never moves the process. doctor calls Claim: it may move itself into a transient scope of
// its own (harmless for a short-lived process; systemd collects the scope when it exits) so
// that it reports what serve will do, but never into the server leaf (its smoke run's Start
// does that, as serve does).
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
//
// # A delegated cgroup of our own (Claim)
//
// On cgroup v2 with no MCP_CONDUCTOR_CGROUP_PARENT, when conductor's own cgroup is not
// usable only because it is not delegated to it alone (a desktop app's app-*.scope shared
// with the app, a login session, an undelegated service, a delegated cgroup holding other
// processes) and systemd is PID 1, Claim asks systemd for a transient scope
// conductor-<pid>.scope with Delegate=yes holding this process, through libcontainer's
// systemd cgroup manager: the user's manager over the user bus when rootless (the bus
// libcontainer dials: DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus), the system
// manager when root. It then detects again (the scope is ours and empty but for us) and
// Start's PrepareDelegation proceeds as in any Delegate=yes scope. The scope has
// CollectMode=inactive-or-failed: systemd removes it, with the server leaf and sandbox
// cgroups below it, once conductor and its sandboxes have exited. When no scope can be
// had (no user bus, systemd not PID 1, the manager refused) the limit errors' reasons say
// so, with the bus error, and their fix says what to do once; serve then refuses.
package cgroups
