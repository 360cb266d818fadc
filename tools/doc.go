// Package tools resolves the admin's CLI tools (MCP_CONDUCTOR_TOOLS) into programs for the sandbox root.
//
// Each entry is a name, looked up on the server's PATH when it starts, or an absolute path; either
// way symlinks are resolved and the real executable is what the root holds, at
// config.ToolsDir/<name> (/usr/bin/git), where code's PATH finds it: new Deno.Command("git").
// A listed tool that is not installed is an error naming it (ErrNotInstalled), so serve, exec,
// `conductor rootfs build` and doctor refuse to start.
//
// What a tool needs besides its binary and its shared libraries is data, in the needs table:
// git gets the directory `git --exec-path` prints (its helpers, such as git-remote-http with
// libcurl's closure) and its templates. Every tool gets the host's CA bundle, when there is one,
// at its host path, with SSL_CERT_FILE, GIT_SSL_CAINFO and CURL_CA_BUNDLE naming it in the
// sandbox's environment (Set.CAVars; with MCP_CONDUCTOR_NET_SECRETS the sandbox points them at
// a copy that also holds the network door's CA; HostCABundle is the same bundle for a runtime,
// Python, when no tool brings it). An unknown tool gets its binary and libraries only. HOME in
// the sandbox is /tmp, a per-run tmpfs, so tools that write dotfiles there (git config --global)
// start clean each run.
package tools
