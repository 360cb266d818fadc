package deps

// builtins are the Node built-in modules deno 2.9.6 provides, as node:NAME:
// builtinModules of node:module, with its "node:" prefixes dropped (some
// modules, like node:test and node:sqlite, exist only with the prefix).
// TestDenoBuiltins compares the list with the deno under test.
var builtins = setOf(
	"_http_agent", "_http_common", "_http_outgoing", "_http_server",
	"_stream_duplex", "_stream_passthrough", "_stream_readable",
	"_stream_transform", "_stream_writable", "_tls_common", "_tls_wrap",
	"assert", "assert/strict", "async_hooks", "buffer", "child_process",
	"cluster", "console", "constants", "crypto", "dgram",
	"diagnostics_channel", "dns", "dns/promises", "domain", "events", "fs",
	"fs/promises", "http", "http2", "https", "inspector",
	"inspector/promises", "module", "net", "os", "path", "path/posix",
	"path/win32", "perf_hooks", "process", "punycode", "querystring",
	"readline", "readline/promises", "repl", "sqlite", "stream",
	"stream/consumers", "stream/promises", "stream/web", "string_decoder",
	"sys", "test", "test/reporters", "timers", "timers/promises", "tls",
	"trace_events", "tty", "url", "util", "util/types", "v8", "vm", "wasi",
	"worker_threads", "zlib",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
