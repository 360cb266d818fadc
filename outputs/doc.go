// Package outputs collects, on the host, the files a run leaves in its outputs directory
// (a per-run tmpfs at /outputs in the sandbox), as hostile input: no link is followed, the
// count and the bytes are bounded, names are sanitised and types are sniffed from content.
//
// OpenDir opens the directory (O_PATH, checked to be a tmpfs) while the sandbox is still
// trusted; Collect walks it once the sandbox's processes are gone (openat2 beneath it, no links,
// no other mounts; only regular files read, sizes checked before reading; at most Limits.Files
// files and Files*4 directory entries); Workspace resolves the workspace files the code named in
// WorkspaceList the same way. CheckName and Sniff are pure functions (fuzzed).
package outputs
