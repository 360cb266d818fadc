// Package install fetches the admin's allowlisted packages into their view of the dependency
// cache (deps.View), each install in a sandbox started on the sandbox package's generic hook
// (sandbox.StartOptions: a Command instead of the bootstrap, one Writable directory, a Network
// policy, Isolated), so it writes only the view, reaches only the npm registry or the pip index
// (Sources, RegistryRule, IndexRules), and runs no user code; it owns the failure text, the host's
// CA certificates handed to the installers, and the view's install markers.
package install
