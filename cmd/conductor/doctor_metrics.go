package main

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/metrics"
)

// metricsCheck says where serve serves its metrics and health without a token
// (MCP_CONDUCTOR_METRICS_ADDR), and fails when serve could not bind it.
func metricsCheck(s config.Settings) check {
	host, port, _ := net.SplitHostPort(s.MetricsAddr) // validated by config
	if host == "" {
		host = metrics.DefaultHost
	}
	addr := net.JoinHostPort(host, port)
	c := check{Name: "metrics", OK: true,
		Detail: fmt.Sprintf("serve serves /metrics, /healthz and /readyz WITHOUT a token at http://%s (%s)", addr, config.VarMetricsAddr)}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		c.Detail += "; WARNING: beyond loopback: anyone who reaches it reads the metrics (identities, tools, upstream names)"
	}
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		_ = ln.Close()
	case errors.Is(err, syscall.EADDRINUSE):
		c.Detail += "; WARNING: in use now (a running conductor serve holds it, or another program: then serve refuses to start)"
	default:
		c.OK = false
		c.Detail = fmt.Sprintf("%s=%s cannot be served: %v; serve refuses to start", config.VarMetricsAddr, s.MetricsAddr, err)
		c.Fix = "set " + config.VarMetricsAddr + " to an address of this host (e.g. 127.0.0.1:9464), or unset it"
	}
	return c
}
