// Package outputs collects, on the host, the files a run leaves in its outputs directory
// (a per-run tmpfs at /outputs in the sandbox), as hostile input: no link is followed, the
// count and the bytes are bounded, names are sanitised and types are sniffed from content.
package outputs
