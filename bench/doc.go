// Package bench holds conductor's benchmarks (`make bench`): every figure is
// reported as a ratio against bare `deno run` measured in the same process,
// interleaved, on the same machine. The tests here only measure; they assert
// no wall-clock limits.
//
// The network door (issue 10) has two benchmarks, both against a loopback
// HTTPS server the benchmark starts (HTTP/2, a throwaway CA and a leaf for
// 127.0.0.1, internal/testenv.LoopbackTLS) and runners built from
// MCP_CONDUCTOR_RUN_ARGS=allow-net=127.0.0.1:<port> as `conductor serve`
// builds them (config.Load, then the door's egress.Policy), next to runners
// with no network:
//
//   - BenchmarkNetworkWarmRun: a warm run (the engine on a pool of the
//     default size, as serve runs it) of code that makes one HTTPS request
//     (Deno.createHttpClient with the CA inlined, fetch, the JSON's x
//     printed with the request's own time by performance.now, and
//     returned; value and the server's request count checked) vs bare
//     `deno run --allow-net=127.0.0.1:<port>` of the same code, end to end
//     and the request alone (in code); and a warm run of a program that
//     makes no request with the network on (door wired) and off, vs bare
//     deno of it: what the door costs every warm run; and the same request
//     to a secret host (a runner with MCP_CONDUCTOR_NET_SECRETS's
//     equivalent: the door terminates TLS and puts the real bearer token
//     in, the server counting requests that carry it) vs bare deno sending
//     the real token itself. Each variant is timed spaced (a settle before every call) and
//     back to back (bursts; each call starts as the previous returns, so
//     the pool may be refilling), interleaved round by round; medians,
//     p90/p95/p99 and the on - off difference in ms are printed.
//   - BenchmarkNetworkPoolBoot: what wiring the door adds to a pooled
//     sandbox's boot: Runner.StartWith with the pool's options, from
//     creation to ready (deno booted into the bootstrap and, with the
//     network on, the door wired: what the pool hands out), network on vs
//     off, as ratios to bare `deno run` of hello and as the difference in
//     ms. Every booted sandbox is then checked, unmeasured by the boot (the
//     "on" one fetches from the HTTPS server through its door, twice: the
//     second on a new client). Those requests' in-code times against bare
//     deno's, interleaved, with no pool refill competing for the CPUs: the
//     first includes deno initializing fetch and TLS (slower in the
//     sandbox), the second, a new connection and handshake only, is the
//     door's own cost per connection.
//
// BENCH_NET_ROUNDS (default 15) sets their rounds.
//
// BenchmarkExecuteCode (issue 11) times execute_code of a hello in Python
// and Go through a real MCP client, cold and warm, spaced, back to back and
// in bursts, against bare `python3 -c` and bare `go run .` (of a new program
// and of the same one); BENCH_CODE_ROUNDS (default 15) sets its rounds. Its
// Python rows also time run_python_code warm, spaced and back to back, and
// spaced on a server with upstreams (its interpreters started with the
// mcpFactory relay's channel).
//
// BenchmarkFactoryOverhead (issue 4, Python rows issue 12) times mcpFactory
// calls from inside run_deno_code and run_python_code executions against a
// go-sdk client calling the same upstream directly.
//
// BenchmarkTypeCheck (issue 14) times run_deno_code of a typical small program on warm engines
// without and with type-checking (the pre-booted checker of package typecheck), spaced and back
// to back, as on/off ratios at p50 and p95 in one process; and the refusal of the same program
// with a type error against `deno check` of that file on the host.
//
// BenchmarkLoad (issue 16) is the load-shape table: hello through a go-sdk
// client on `conductor serve` (stdio; the default pool size and pool 0, both
// MCP_CONDUCTOR_MAX_CONCURRENCY=4) against bare runs of the same program in
// the same process, under spaced calls (each from a quiet machine), back to
// back calls (BENCH_LOAD_N in a row), bursts of 8 arriving together, and
// sustained concurrency 2 and 4 (BENCH_LOAD_N executions each, bare at the
// same concurrency): p50, p90, p99, throughput where it applies, and the CPU
// per execution of the whole server tree, each as a ratio to bare under the
// same shape. Deno: run_deno_code vs `deno run`; Python: run_python_code
// (default pool, pool 0) and execute_code vs `python3 -c`, spaced, back to
// back and c=2. A server tree's CPU is read from /proc (treeCPU: utime,
// stime, cutime and cstime of the server and of each living descendant —
// sandboxes' processes are the server's children, so a finished sandbox's
// CPU is in the server's cutime/cstime), from a quiet moment before a
// variant's calls to the quiet moment after (settle: its pool refilled, the
// used sandboxes destroyed); bare's from each child's rusage. Before the
// table an accounting check runs a CPU-heavy program on every variant and
// fails the benchmark if its extra CPU over hello does not show up in the
// server tree as in bare's rusage. BENCH_LOAD_N (default 60) sets the
// counts; with BENCH_RAW_WRITE=1 the samples go to BENCH_LOAD_RAW (default
// docs/bench-load-raw.json).
//
// BenchmarkCPUPerExecution (issue 16) is CPU time, not wall time: warm
// executions of hello through a runner and a pool of one in this process,
// getrusage of the process and its reaped children around blocks of
// BENCH_CPU_N (default 40) executions, against bare `deno run` measured the
// same way; load on the host distorts it far less than wall time.
package bench
