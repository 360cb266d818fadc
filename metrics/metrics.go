// Package metrics is conductor's Prometheus metrics and the admin HTTP endpoints that expose
// them and its health (/metrics, /healthz, /readyz).
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
	"github.com/conductor-sandbox/conductor/pool"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// Options say where the scrape-time gauges and readiness come from.
type Options struct {
	// Pool returns the sandbox pool's counters and state (pool.Set.Stats); nil = no pool
	// (the pool gauges are 0 and readiness does not wait for one).
	Pool func() pool.Stats
	// PoolSize is MCP_CONDUCTOR_POOL_SIZE: with 0 the pool is off and readiness needs no
	// sandbox ready or booting.
	PoolSize int
	// Upstreams returns every configured upstream MCP server's status (upstream.Manager.Status);
	// nil = none.
	Upstreams func(context.Context) []upstream.Status
	// ConnectUpstreams: every enabled upstream is connected at start (serve
	// --connect-upstreams), so one not connected makes the server not ready. Otherwise
	// upstreams connect on first use and only a failed one does.
	ConnectUpstreams bool
}

// Label values for what is outside the bounded sets a label may take.
const other = "other"

// Bounded label values: anything else counts as "other", so no value a request or its code
// chooses can grow the number of series.
var (
	statuses = []string{string(sandbox.StatusSuccess), string(sandbox.StatusError), string(sandbox.StatusTimeout),
		string(sandbox.StatusOOM), string(sandbox.StatusKilled), string(sandbox.StatusCancelled)}
	errorTypes = []string{sandbox.ErrorSyntax, sandbox.ErrorRuntime, sandbox.ErrorPermission, sandbox.ErrorDependency,
		sandbox.ErrorTimeout, sandbox.ErrorOOM, sandbox.ErrorKilled, sandbox.ErrorCancelled, sandbox.ErrorInternal,
		sandbox.ErrorQuota, sandbox.ErrorInvalidRequest, sandbox.ErrorBusy, sandbox.ErrorType}
	limits       = []string{sandbox.LimitTimeout, sandbox.LimitMemory, sandbox.LimitPids, sandbox.LimitWorkspaceQuota}
	methods      = []string{"listServers", "listTools", "callTool", "listResources", "readResource", "listPrompts", "getPrompt"}
	callOutcomes = []string{"ok", "tool_error", "error", "refused"}
)

// bounded is v when allowed holds it, else "other" ("" stays "").
func bounded(v string, allowed []string) string {
	if v == "" || slices.Contains(allowed, v) {
		return v
	}
	return other
}

// Recorder counts conductor's executions and upstream calls (an event.Sink: its methods only
// update counters and histograms, never block) and reads the pool's and upstreams' state at
// scrape time. It has its own registry, never Prometheus' global one.
type Recorder struct {
	o   Options
	reg *prometheus.Registry

	executions *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	limits     *prometheus.CounterVec
	queue      prometheus.Histogram
	start      prometheus.Histogram
	duration   *prometheus.HistogramVec
	cpu        prometheus.Histogram
	memory     prometheus.Histogram
	calls      *prometheus.CounterVec
	callTime   *prometheus.HistogramVec
	egress     *prometheus.CounterVec
	reloads    *prometheus.CounterVec // conductor_config_reloads_total{result}

	servers []string // the configured upstreams' names: other server labels count as "other"
}

// Buckets, in seconds and bytes.
var (
	// A warm start is milliseconds, a cold one ~100 ms, a queue wait up to the timeout.
	fastBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// Executions and upstream calls: up to MCP_CONDUCTOR_MAX_TIMEOUT's default (300 s).
	slowBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	// Memory peak: 8 MiB to 8 GiB.
	memoryBuckets = prometheus.ExponentialBuckets(8<<20, 2, 11)
)

// New makes a Recorder with its registry, its collectors registered.
func New(o Options) *Recorder {
	r := &Recorder{o: o, reg: prometheus.NewRegistry()}
	if o.Upstreams != nil {
		for _, s := range o.Upstreams(context.Background()) {
			r.servers = append(r.servers, s.Name)
		}
	}
	r.executions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conductor_executions_total",
		Help: "Execution tool calls, run or refused, by MCP tool, identity and status (success, error, timeout, oom, killed, cancelled)."},
		[]string{"tool", "identity", "status"})
	r.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conductor_execution_refusals_total",
		Help: "Execution tool calls refused before they ran, by MCP tool, identity and error type (invalid_request, busy, quota, type, dependency, ...)."},
		[]string{"tool", "identity", "error_type"})
	r.limits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conductor_execution_limits_total",
		Help: "Executions ended by a limit (timeout, memory, pids, workspaceQuota)."}, []string{"limit"})
	r.queue = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "conductor_execution_queue_seconds",
		Help: "Time executions waited for an execution slot.", Buckets: fastBuckets})
	r.start = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "conductor_execution_start_seconds",
		Help: "Time executions waited for a sandbox: a pooled one, the next booted, or a cold start.", Buckets: fastBuckets})
	r.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "conductor_execution_duration_seconds",
		Help: "Execution tool calls' time, without the queue wait, by MCP tool.", Buckets: slowBuckets}, []string{"tool"})
	r.cpu = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "conductor_execution_cpu_seconds",
		Help: "CPU time of the executions that ran.", Buckets: slowBuckets})
	r.memory = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "conductor_execution_memory_peak_bytes",
		Help: "Peak memory of the executions that ran.", Buckets: memoryBuckets})
	r.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conductor_upstream_calls_total",
		Help: "Calls of sandboxed code to upstream MCP servers (mcpFactory), by server, method and outcome (ok, tool_error, error, refused)."},
		[]string{"server", "method", "outcome"})
	r.callTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "conductor_upstream_call_seconds",
		Help: "Time of calls to upstream MCP servers, by server.", Buckets: slowBuckets}, []string{"server"})
	r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conductor_config_reloads_total",
		Help: "Config reloads (SIGHUP or a change of MCP_CONDUCTOR_CONFIG's file), by result: ok (the new policy serves new executions) or refused (the old one stays)."},
		[]string{"result"})
	r.egress = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conductor_egress_decisions_total",
		Help: "Connections and lookups of sandboxed code the egress door allowed or denied."}, []string{"decision"})
	r.reg.MustRegister(r.reloads)
	r.reg.MustRegister(r.executions, r.refusals, r.limits, r.queue, r.start, r.duration, r.cpu, r.memory,
		r.calls, r.callTime, r.egress, stateCollector{r})
	// Both decisions exist from the start, so a rate over them never lacks a series.
	r.egress.WithLabelValues("allowed")
	r.egress.WithLabelValues("denied")
	return r
}

// Registry is the Recorder's own registry (for tests and for adding collectors).
func (r *Recorder) Registry() *prometheus.Registry { return r.reg }

// Reload counts one config reload: ok, or refused.
func (r *Recorder) Reload(ok bool) {
	if ok {
		r.reloads.WithLabelValues("ok").Inc()
	} else {
		r.reloads.WithLabelValues("refused").Inc()
	}
}

// Execution implements event.Sink.
func (r *Recorder) Execution(e event.Execution) {
	status := bounded(e.Status, statuses)
	r.executions.WithLabelValues(e.Tool, e.Identity, status).Inc()
	r.duration.WithLabelValues(e.Tool).Observe(e.Duration.Seconds())
	if e.Refused {
		r.refusals.WithLabelValues(e.Tool, e.Identity, bounded(e.ErrorType, errorTypes)).Inc()
		return
	}
	if e.LimitHit != "" {
		r.limits.WithLabelValues(bounded(e.LimitHit, limits)).Inc()
	}
	r.queue.Observe(e.Queued.Seconds())
	r.start.Observe(e.Start.Seconds())
	r.cpu.Observe(e.CPU.Seconds())
	if e.MemoryPeakBytes > 0 {
		r.memory.Observe(float64(e.MemoryPeakBytes))
	}
	if e.NetAllowed > 0 {
		r.egress.WithLabelValues("allowed").Add(float64(e.NetAllowed))
	}
	if e.NetDenied > 0 {
		r.egress.WithLabelValues("denied").Add(float64(e.NetDenied))
	}
}

// UpstreamCall implements event.Sink.
func (r *Recorder) UpstreamCall(c event.UpstreamCall) {
	server := c.Server
	if c.Method == "listServers" {
		server = "" // names no server
	} else {
		server = bounded(server, r.servers)
	}
	r.calls.WithLabelValues(server, bounded(c.Method, methods), bounded(c.Outcome, callOutcomes)).Inc()
	r.callTime.WithLabelValues(server).Observe(c.Duration.Seconds())
}

// stateCollector reads the pool's and the upstreams' state at scrape time.
type stateCollector struct{ r *Recorder }

var (
	descPoolReady    = prometheus.NewDesc("conductor_pool_ready", "Pooled sandboxes booted and on offer now.", nil, nil)
	descPoolBooting  = prometheus.NewDesc("conductor_pool_booting", "Pooled sandboxes being booted now.", nil, nil)
	descPoolTarget   = prometheus.NewDesc("conductor_pool_target", "Sandboxes the pool currently aims to keep booted.", nil, nil)
	descRunning      = prometheus.NewDesc("conductor_sandboxes_running", "Pooled sandboxes handed out and not yet exited.", nil, nil)
	descTakes        = prometheus.NewDesc("conductor_pool_takes_total", "Sandbox requests by how the pool served them: warm (on offer), waited (for one booting), cold (started cold).", []string{"kind"}, nil)
	descBootFailures = prometheus.NewDesc("conductor_pool_boot_failures_total", "Pool boots that failed.", nil, nil)
	descUpConnected  = prometheus.NewDesc("conductor_upstream_connected", "1 when the upstream MCP server has a live session, else 0 (disabled servers are left out).", []string{"server"}, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoolReady, descPoolBooting, descPoolTarget, descRunning, descTakes, descBootFailures, descUpConnected} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	var st pool.Stats
	if c.r.o.Pool != nil {
		st = c.r.o.Pool()
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descPoolReady, float64(st.Ready))
	gauge(descPoolBooting, float64(st.Booting))
	gauge(descPoolTarget, float64(st.Target))
	gauge(descRunning, float64(st.Running))
	counter(descTakes, float64(st.Warm), "warm")
	counter(descTakes, float64(st.Waited), "waited")
	counter(descTakes, float64(st.Cold), "cold")
	counter(descBootFailures, float64(st.Failed))
	if c.r.o.Upstreams != nil {
		for _, s := range c.r.o.Upstreams(context.Background()) {
			if s.State == upstream.StateDisabled {
				continue
			}
			v := 0.0
			if s.State == upstream.StateConnected {
				v = 1
			}
			gauge(descUpConnected, v, s.Name)
		}
	}
}

// Ready reports whether the server is ready to serve: the pool has a sandbox ready or booting
// (or is off), and every upstream that should be connected is. Otherwise it returns one
// reason per thing not ready. The reasons name no upstream's error text (/readyz is
// unauthenticated): the server's log and `conductor doctor` have it.
func (r *Recorder) Ready(ctx context.Context) []string {
	var reasons []string
	if r.o.PoolSize > 0 && r.o.Pool != nil {
		if st := r.o.Pool(); st.Ready+st.Booting < 1 {
			reasons = append(reasons, fmt.Sprintf("pool: no sandbox ready or booting (target %d)", st.Target))
		}
	}
	if r.o.Upstreams != nil {
		for _, s := range r.o.Upstreams(ctx) {
			switch s.State {
			case upstream.StateConnected, upstream.StateDisabled:
				continue
			case upstream.StateIdle, upstream.StateConnecting:
				if !r.o.ConnectUpstreams {
					continue
				}
			}
			reasons = append(reasons, fmt.Sprintf("upstream MCP server %q is not connected (%s; its error is in the server's log and `conductor doctor`)", s.Name, s.State))
		}
	}
	return reasons
}

// MetricsHandler serves the registry's metrics in Prometheus' exposition formats.
func (r *Recorder) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// ReadyHandler answers 200 "ready" when Ready finds nothing wrong, else 503 with one line per
// reason.
func (r *Recorder) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		reasons := r.Ready(req.Context())
		if len(reasons) == 0 {
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, s := range reasons {
			_, _ = fmt.Fprintln(w, s)
		}
	})
}

// healthz answers 200 "ok" while the process serves, as the MCP listener's /healthz does.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

// AdminHandler serves /metrics, /healthz and /readyz without authentication: it is for
// MCP_CONDUCTOR_METRICS_ADDR's listener, which the admin binds where only the scraper reaches.
func (r *Recorder) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", r.MetricsHandler())
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("GET /readyz", r.ReadyHandler())
	return mux
}
