// Package config reads the admin's settings from MCP_CONDUCTOR_*
// environment variables (and the config file they may name) and validates them.
//
// Only the admin who starts conductor sets these; nothing the model sends
// can change them. A bad value stops the program: Load reports every bad
// variable at once, each as an *Error naming the variable, the value and
// what is allowed. Variables lists them all for the README and doctor.
//
// # General rules
//
//   - A variable set to the empty string is treated as unset.
//   - Values are not trimmed; leading or trailing whitespace is an error.
//   - Sizes (MCP_CONDUCTOR_MEMORY, MCP_CONDUCTOR_MAX_OUTPUT) use ParseSize:
//     binary multiples only, so "512M", "512MiB" and "512MB" are all
//     536870912 bytes.
//   - Timeouts are whole milliseconds.
//   - Paths use only ASCII letters, digits and - _ . / + @ (cgroup paths
//     also :), must be absolute and clean (no ".", "..", "//" or trailing
//     /), and are never / itself. No spaces, commas, quotes or control
//     bytes, so a path is always safe to place in a deno flag or a mount
//     option.
//
// # The config file
//
// MCP_CONDUCTOR_CONFIG names a JSON file (TOML when its name ends in .toml) holding the same
// settings: one object whose keys are the variables' names without the prefix, lower-case. It is
// a second source of the same table, not a second validator: DecodeFile only turns each value
// into the variable's text (arrays of strings, for list settings, joined) and refuses unknown,
// repeated and reserved ("config") keys, wrong types and bad syntax as *FileError (with
// line:column); Load then validates the values as it does the variables'. A variable set to a
// non-empty value overrides the file; LoadSources says where each setting came from. The key
// "identities" is not a variable: its raw value goes to package identity, which owns its parsing,
// and Settings.Identities holds the result.
//
// # MCP_CONDUCTOR_RUN_ARGS
//
// The deno permission flags granted to all code, as comma-separated items
// without leading dashes:
//
//	allow-read=/data,allow-net=api.example.com:443,deno.land,allow-env=HOME
//
// becomes
//
//	--allow-read=/data --allow-net=api.example.com:443,deno.land --allow-env=HOME
//
// The grammar, over the items of the value split at every comma:
//
//   - An item containing "=" starts a flag: NAME=VALUE. NAME must be one of
//     the accepted flags below; VALUE is its first value.
//   - An item that is a flag name (an accepted flag, a refused deno flag or
//     option, or anything beginning with allow-, deny-, ignore-, unstable-,
//     no- or -) starts a flag given bare, which grants (or denies)
//     everything of its kind: "allow-net" is all hosts.
//   - Any other item continues the previous flag's value list. That flag
//     must take values and must have been written with "=": in
//     "allow-read,/data" the bare allow-read already means all paths, so
//     "/data" is an error rather than a silent narrowing.
//   - No item may be empty, so values can never contain a comma (deno would
//     read a doubled comma as an escaped one).
//   - Values cannot contain "=" either, and each flag may appear once.
//   - allow-all cannot be combined with another allow-* flag (deno refuses
//     to start that way); deny-* flags may be combined with anything.
//
// Accepted flags (deno 2.9) and their values:
//
//	allow-all                                 bare only
//	allow-read, allow-write, allow-ffi,       absolute clean paths
//	deny-read, deny-write, deny-ffi
//	allow-net, deny-net, deny-import          host, host:port, IPv4, IPv4:port,
//	                                          [IPv6] or [IPv6]:port; host names
//	                                          are lower-cased
//	allow-env, deny-env                       variable names; NAME* matches a prefix
//	allow-sys, deny-sys                       deno's API names (hostname, osRelease, ...)
//	allow-run, deny-run                       program names or absolute paths
//
// Everything else is refused, with the reason: allow-import (conductor runs
// deno with --no-remote and code imports only the packages on the admin's
// allowlist), deno's one-letter forms such as A or R (write allow-all,
// allow-read), permission-set, ignore-*, allow-scripts, no-prompt,
// unstable-* and every other deno option (config, v8-flags, ...), items
// written with leading dashes, and any item with a character outside
// letters, digits and - _ . / : @ + = * [ ] (spaces, quotes, $, ;, newlines,
// NUL, non-ASCII...). Wildcard hosts and unix: sockets are not supported.
//
// Settings.Network is true when allow-net or allow-all is given, unless a
// bare deny-net takes the network away again. Settings.NetHosts holds the
// allow-net list when there is one.
//
// # MCP_CONDUCTOR_TOOLS
//
// The CLI tools code may run (package tools resolves them on the host at
// start and puts them in the sandbox root at ToolsDir/<name>). It must agree
// with allow-run, checked at Load: with an allow-run list, every tool must
// be in it (else code could not run the tool), and every allow-run entry
// must be a tool or deno, by name or as ToolsDir/<name> (else it names a
// program the root does not hold). A bare allow-run or allow-all grants
// every tool; allow-run entries are then not needed.
package config
