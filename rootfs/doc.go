// Package rootfs builds the read-only root filesystem every sandbox runs in.
//
// A root holds exactly: its programs — deno at /usr/bin/deno first, then Options.Programs (CLI
// tools, runtimes), each at its in-root path with its data files and directories at their host
// paths — the shared libraries every ELF file among them needs (each copied once), the
// bootstrap files under /conductor, a minimal /etc (passwd, group, hosts naming localhost and
// the sandboxes' host name [Root.Hostname], nsswitch.conf, a resolv.conf
// naming 127.0.0.53, the network door's DNS responder when a run has network), the empty mount
// points /proc, /tmp, /deno-dir and /outputs (a run's outputs directory), and /dev: empty files as the mount points of the device nodes
// the sandbox binds from the host (null, zero, full, random, urandom, tty; [Root.DevNodes]) and the
// relative symlinks fd, stdin, stdout and stderr into ../proc/self/fd. There is no /sys.
// Directories are 0755, files 0644, deno and the ELF interpreter 0755 (the kernel refuses to
// exec a binary whose PT_INTERP file is not executable). When built by root everything is owned
// by 0:0.
//
// # Libraries
//
// The library closure is resolved from the ELF itself (see [Libraries]): PT_INTERP plus the
// DT_NEEDED closure, searched like glibc's ld.so does (DT_RPATH chain, DT_RUNPATH, the
// directories of /etc/ld.so.conf, then the multiarch defaults). Every library is copied once, as
// a regular file, at its symlink-free host path (e.g. /usr/lib/x86_64-linux-gnu/libc.so.6); the
// path the loader looks it up at (e.g. /lib/x86_64-linux-gnu/libc.so.6 or the PT_INTERP path
// /lib64/ld-linux-x86-64.so.2) becomes a relative symlink to it, so every name resolves inside
// the root. The root has no ld.so.cache, so a library the host found only through an
// ld.so.conf directory outside the defaults (e.g. /usr/local/lib), or through a $ORIGIN entry of
// the executable (which moves to /usr/bin inside the root), would not load there: building such a
// root fails with a clear error instead of producing a broken root.
//
// # Programs
//
// A program is data ([Program]): the host executable (symlinks resolved), its in-root path, and
// host files or directories copied at the same path (git's exec-path, its templates, a CA
// bundle), and host directories copied to another in-root path ([Tree]: what conductor prepares
// for a program, such as Go's seeded build cache); Program.Skip names entries (base-name
// patterns, e.g. "testdata") left out of both. Data directories keep their relative symlinks that stay inside them; a symlink that
// leaves its directory is refused ([ErrEscapingLink]), so a root never points at something it
// does not hold. Files keep their executable bit (0755 or 0644). Every ELF file in the data — a
// helper executable or a shared object without PT_INTERP — gets its closure like deno; since
// data sits at its host path, its $ORIGIN is the same inside the root. The content hash, the
// manifest, verification and the atomic switch cover programs like any other entry: adding a
// tool, or a tool changing on the host, builds a new root.
//
// # Store layout
//
//	<dir>/.lock                 flock: exclusive for Ensure/Prune, shared for Current
//	<dir>/current -> <hash>     relative symlink, replaced atomically (symlink + rename)
//	<dir>/<hash>/rootfs/        the root (Root.Path); never modified after the rename
//	<dir>/<hash>/manifest.json  every entry's path, type, mode, owner, size, digest; and the inode
//	                            and times at which each file was last verified (see below)
//	<dir>/<hash>/hold           readers hold a shared flock on it while they use the root
//	<dir>/.digests.json         cache of source-file digests keyed by inode, size, mtime, ctime
//	<dir>/.build-*, .trash-*    in-progress builds and removals (cleaned up under the lock)
//
// <hash> is the hex sha256 over every path, type, mode, symlink target and file digest of the
// root, sorted by path. Ensure computes it from the inputs before building anything; a build that
// does not reproduce it is rejected.
//
// # Verification trade-off
//
// [Store.Current] and [Store.Ensure] verify a root by content, cheaply where the filesystem can
// vouch for it. The set of paths must equal the manifest, and every entry's type, mode, owner and
// symlink target, and every file's size, must match what was recorded at build time (a walk of
// ~30 entries, about 0.5 ms). A file whose inode, mtime and ctime are also the recorded ones is
// trusted without reading it: any write through the filesystem changes ctime, which cannot be set
// back without changing the clock, so in-place edits, replacements and chmods are seen. Any other
// file is hashed and must have the recorded digest: that is how a store copied (`cp -a`, new
// inodes and ctimes) or installed elsewhere verifies instead of being rebuilt, while a copy with
// one byte changed is rejected. Ensure then records the copy's inodes and times in the manifest
// (under the exclusive lock, by rename), so only the first open of a copy pays the hashing
// (~100 ms, dominated by the 96 MB deno binary); a store the server cannot write is hashed at
// every open. Inode numbers and times are thus a cache of a verification, never the identity of
// the root. The cheap path cannot catch a change made beneath the filesystem (raw block device
// writes); [Root.Verify] re-hashes every byte and compares against the hash the directory is
// named after; set Options.FullVerify to have Ensure do that before reusing a root, and rebuild
// on a mismatch.
//
// The same inode+size+mtime+ctime trust is used for the source files (deno and the libraries)
// through .digests.json, which makes a no-op [Store.Ensure] take a few milliseconds instead of
// re-hashing deno every time; the content copied into a new root is always hashed in full.
//
// # Lifetime and garbage collection
//
// Roots returned by [Store.Ensure] and [Store.Current] are held: a shared flock on
// <dir>/<hash>/hold that stays until [Root.Release]. [Store.Prune] (and the automatic prune after
// Ensure switches roots, which keeps the current and the previous root) never removes the current
// root nor a held one, so a sandbox started from an old root is never disturbed as long as its
// *Root is held. The one exception is a root found tampered with: Ensure must rebuild it under
// the same name, so it moves the damaged directory aside.
//
// Root.Path is absolute and free of symlinks (libcontainer refuses a rootfs path through a
// symlink), even when the store directory was given through one; never use <dir>/current/rootfs
// as a sandbox's root, since current moves. The store directory and its ancestors must be
// writable only by the server's user, and searchable by the unprivileged host uid the sandbox
// runs as.
package rootfs
