package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/metrics"
	"github.com/conductor-sandbox/conductor/pool"
)

// observers record what serve does: every execution and every upstream call goes to Events.
type observers struct {
	Events  event.Sink        // for mcp.Options.Events; the mcpFactory handler reports here too
	Metrics *metrics.Recorder // /metrics and /readyz
	admin   *metrics.AdminServer
}

// observe is where serve's events go together: the metrics beside recorders (serveSinks: the
// audit log), as Events, which it gives the mcpFactory handler for its upstream calls; the caller
// passes Events to mcp.Options.Events. With MCP_CONDUCTOR_METRICS_ADDR it also serves the metrics
// and health there, without a token (a failure to bind is returned: serve refuses to start).
// Close stops that listener.
func observe(a *app, connectUpstreams bool, recorders event.Sink, log *slog.Logger) (*observers, error) {
	mo := metrics.Options{PoolSize: a.settings.PoolSize, ConnectUpstreams: connectUpstreams}
	if a.pool != nil {
		mo.Pool = a.poolStats // a config reload may replace the pool
	} else {
		mo.PoolSize = 0 // every start is cold: nothing to wait for
		mo.Pool = func() pool.Stats { return pool.Stats{} }
	}
	if a.upstream != nil {
		mo.Upstreams = a.upstream.Status
	}
	o := &observers{Metrics: metrics.New(mo)}
	o.Events = event.Multi(o.Metrics, recorders)
	if a.factory != nil {
		a.factory.ReportTo(o.Events)
	}
	if addr := a.settings.MetricsAddr; addr != "" {
		admin, err := metrics.Listen(addr, o.Metrics.AdminHandler(), log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (set it to a free address of this host, or unset it)", config.VarMetricsAddr, err)
		}
		o.admin = admin
		log.Info("serving metrics and health WITHOUT a token", "metrics", "http://"+admin.Addr()+"/metrics",
			"health", "http://"+admin.Addr()+"/healthz", "ready", "http://"+admin.Addr()+"/readyz")
	}
	return o, nil
}

// adminCloseLimit bounds how long Close waits for scrapes in flight.
const adminCloseLimit = 2 * time.Second

// Close stops serving MCP_CONDUCTOR_METRICS_ADDR, if it was served.
func (o *observers) Close(log *slog.Logger) {
	if o.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminCloseLimit)
	defer cancel()
	if err := o.admin.Close(ctx); err != nil {
		log.Warn("metrics listener shutdown", "err", err)
	}
}
