package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultHost is where an admin address without a host (":9090") binds.
const DefaultHost = "127.0.0.1"

// AdminServer serves a Recorder's AdminHandler on its own listener (MCP_CONDUCTOR_METRICS_ADDR).
type AdminServer struct {
	ln     net.Listener
	hs     *http.Server
	served chan error
}

// Listen binds addr (HOST:PORT or :PORT, which binds DefaultHost) and serves h there until
// Close. A failure to bind is returned: the caller refuses to start.
func Listen(addr string, h http.Handler, log *slog.Logger) (*AdminServer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if host == "" {
		host = DefaultHost
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	a := &AdminServer{ln: ln, served: make(chan error, 1), hs: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() { a.served <- a.hs.Serve(ln) }()
	return a, nil
}

// Addr is the address the server listens on.
func (a *AdminServer) Addr() string { return a.ln.Addr().String() }

// Close stops accepting, lets requests in flight finish (bounded by ctx) and returns once the
// server has stopped.
func (a *AdminServer) Close(ctx context.Context) error {
	err := a.hs.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, a.hs.Close())
	}
	if serr := <-a.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
