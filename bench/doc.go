// Package bench holds conductor's benchmarks (`make bench`): every figure is
// reported as a ratio against bare `deno run` measured in the same process,
// interleaved, on the same machine. The tests here only measure; they assert
// no wall-clock limits.
package bench
