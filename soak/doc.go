//go:build soak

// Package soak has one job: drive a real, built `conductor serve` under
// hostile load and account for everything it leaves behind. It holds only
// tests (soak_test.go); there is no code to import.
//
// A go-sdk MCP client drives bin/conductor over stdio and over streamable
// HTTP (bearer token) at concurrency 8, phase after phase: normal runs whose
// results are checked, infinite loops, memory bombs (ArrayBuffer and JS
// heap), worker and process bombs, output floods, long timers after the
// result, mcpFactory floods and garbage frames against a real upstream
// (server-everything over stdio), cancellations by the client mid-run, the
// upstream killed mid-call (and restarted by conductor on the next call),
// and last SIGTERM with 8 runs in flight. A quarter of every hostile phase
// is normal runs, checked. After each phase it waits for the server to
// settle and compares with the post-warm-up baseline: every call answered
// (a result or a clean MCP error), every normal run correct, the server's
// RSS within 10 %, and the same count of sandbox processes, cgroups,
// container state entries, mounts, non-socket fds, the server's child
// processes and temp files — counted only for this server: its own state
// dir, TMPDIR and instance marker. After SIGTERM all of them are zero.
//
// RSS is compared as the server leaves it after its own release of freed
// memory (cmd/conductor releases it 0.5 s after its last execution): the
// baseline is taken after a small run made for that, and a phase whose
// counts are back but not its RSS gets up to 3 such small runs before the
// soak waits up to 150 s for Go's periodic GC. Work the server did after
// its release (writing the phase's last answers, later under load) is
// otherwise counted as growth until that GC.
//
// The files carry the build tag soak: `go test -tags seccomp,soak ./soak/`
// runs the short size (8 executions per phase, both transports, every
// phase; about a minute), which `make test` runs as `make test-soak`;
// `make soak` the full one (CONDUCTOR_SOAK=full: ≥ 1000 executions per
// transport) and writes the tables to docs/soak.md (CONDUCTOR_SOAK_REPORT).
package soak
