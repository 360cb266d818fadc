// Package quota bounds the bytes a workspace directory holds
// (MCP_CONDUCTOR_WORKSPACE_QUOTA). It has one job and two ways to do it,
// chosen once at start by Setup:
//
//   - Enforced while code writes: as root, on a filesystem whose project
//     quotas are enforced (ext4 mounted with prjquota, xfs with pquota), the
//     workspace directory and everything already in it get a project id and
//     FS_XFLAG_PROJINHERIT (so every new entry inherits it), and the
//     project's hard block limit is set with quotactl. A write past the
//     limit fails in the sandbox with EDQUOT. The sandbox cannot move its
//     files out of the project: its seccomp ioctl allowlist refuses
//     FS_IOC_FSSETXATTR, quotactl is not in its syscall allowlist, and the
//     kernel refuses project id changes from a non-initial user namespace.
//     If the filesystem enforces project quotas but the limit cannot be set,
//     Setup fails (fail closed).
//   - Checked before each run: everywhere else (no project quota support,
//     accounting without enforcement, rootless), Check measures the
//     workspace's disk use (allocated blocks, each inode once, never
//     following a link, bounded in time) and refuses the run when the usage
//     is at or over the quota. A run can still write past it while it runs;
//     the next one is refused.
//
// Spill files (.conductor/output) are inside the workspace and count in both.
// Describe says which of the two this host gives; `conductor doctor` prints it.
package quota
