package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/identity"
	"github.com/conductor-sandbox/conductor/mcp"
	"github.com/conductor-sandbox/conductor/metrics"
)

// defaultHTTPHost is where --http binds when the address names no host.
const defaultHTTPHost = "127.0.0.1"

// unixPrefix marks --http unix:/path/conductor.sock.
const unixPrefix = "unix:"

// httpConfig is what serveHTTP needs from the command line and settings.
type httpConfig struct {
	addr     string // HOST:PORT, :PORT or unix:/abs/path
	settings config.Settings
	stateDir string // where a generated token's file goes
	maxBody  int64
	metrics  *metrics.Recorder // /metrics (behind the token) and /readyz
	// identities authenticate HTTP clients when settings has identities with tokens.
	identities *identity.Store
}

// serveHTTP serves until ctx ends (SIGINT/SIGTERM), then stops accepting,
// cancels running executions (killing their sandboxes), answers their calls
// (status cancelled) and returns.
func serveHTTP(ctx context.Context, srv *mcp.Server, eng interface{ Shutdown() }, c httpConfig, log *slog.Logger) int {
	ln, where, removeSocket, err := listenHTTP(c.addr)
	if err != nil {
		log.Error("--http: cannot listen", "addr", c.addr, "err", err)
		if errors.Is(err, errBadAddr) {
			return 2
		}
		return 1
	}
	defer removeSocket()
	token, removeToken, err := httpAuth(c, ln, log)
	if err != nil {
		_ = ln.Close()
		log.Error("HTTP authentication", "err", err)
		return 1
	}
	defer removeToken()

	// Every request's context ends once the calls in flight at shutdown
	// are answered (see below), so long-lived streams (GET /mcp) let go
	// then instead of holding Shutdown up.
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	var ids *identity.Store
	if c.settings.Identities.HasTokens() {
		ids = c.identities
	}
	hs := srv.NewHTTPServer(mcp.HTTPOptions{
		Identities:    ids,
		Token:         token,
		MaxBodyBytes:  c.maxBody,
		MaxSessions:   c.settings.HTTPMaxSessions,
		MaxConns:      c.settings.HTTPMaxConns,
		MaxConnsPerIP: c.settings.HTTPMaxConnsPerIP,
		BaseContext:   base,
		Metrics:       c.metrics.MetricsHandler(),
		Ready:         c.metrics.ReadyHandler(),
		Stateless:     c.settings.HTTPStateless,
	})
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("serving MCP over HTTP", "url", where+"/mcp", "health", where+"/healthz", "ready", where+"/readyz", "metrics", where+"/metrics", "auth", token != "" || ids != nil, "identities", ids != nil,
		"max_conns", c.settings.HTTPMaxConns, "max_conns_per_ip", c.settings.HTTPMaxConnsPerIP, "max_sessions", c.settings.HTTPMaxSessions, "stateless", c.settings.HTTPStateless)

	select {
	case err := <-served:
		log.Error("HTTP server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; running executions are cancelled")
	// The order is what answers every call in flight (the soak's HTTP
	// SIGTERM phase once lost one of 8): stop accepting; cancel the
	// executions, whose calls then answer with status cancelled; wait until
	// every POST has written its answers (Drain) and, if calls were in
	// flight, give the clients answerGrace to read them; only then end the requests that wait for
	// nothing (GET streams). Ending those with the executions lost answers
	// twice over: a POST whose context ends returns without its answer, and
	// a go-sdk client whose GET stream ends fails every call whose answer it
	// has not read yet (at once when it makes no reconnection attempts).
	// shutdownGrace bounds the wait once the executions are gone.
	stopCtx, forceStop := context.WithCancel(context.Background())
	defer forceStop()
	stopped := make(chan error, 1)
	go func() { stopped <- hs.Shutdown(stopCtx) }()
	inFlight := hs.OpenPosts() > 0
	eng.Shutdown()
	grace := time.AfterFunc(shutdownGrace, forceStop)
	defer grace.Stop()
	if err := hs.Drain(stopCtx); err != nil {
		log.Warn("HTTP shutdown: calls left unanswered", "err", err)
	} else if inFlight {
		log.Debug("shutdown: every call in flight answered")
		select {
		case <-time.After(answerGrace):
		case <-stopCtx.Done():
		}
	}
	endRequests()
	if err := <-stopped; err != nil {
		log.Warn("HTTP shutdown", "err", err)
		_ = hs.Close()
	}
	log.Info("stopped")
	return 0
}

// shutdownGrace bounds how long SIGTERM waits, once the running executions
// are cancelled, for open HTTP requests to end before their connections are
// closed.
const shutdownGrace = 2 * time.Second

// answerGrace is how long clients have to read the last answers written at
// shutdown before the GET streams end. The server cannot see a client take
// an answer (a go-sdk client reads on to the end of the POST's stream), and
// a client of a loaded machine was seen to lag a quarter of a second behind
// answers of megabytes.
const answerGrace = time.Second

var errBadAddr = errors.New("want HOST:PORT, :PORT or unix:/absolute/path.sock")

// listenHTTP listens on a TCP address or a unix socket. It returns the
// listener, its URL for logs, and a function that removes the socket file.
func listenHTTP(addr string) (net.Listener, string, func(), error) {
	if path, ok := strings.CutPrefix(addr, unixPrefix); ok {
		ln, err := listenUnix(path)
		if err != nil {
			return nil, "", nil, err
		}
		return ln, "http://unix" + path, func() { _ = os.Remove(path) }, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: %w", errBadAddr, err)
	}
	if host == "" {
		host = defaultHTTPHost
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, "", nil, err
	}
	return ln, "http://" + ln.Addr().String(), func() {}, nil
}

// listenUnix creates a unix socket at path with mode 0600, without a moment
// in which another user could connect: the socket is made in a fresh 0700
// directory next to path, restricted there, then renamed into place. A
// stale socket at path is replaced; anything else there is refused.
func listenUnix(path string) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%w: %q is not absolute", errBadAddr, path)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("%s: another server is listening on it", path)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".conductor-sock-")
	if err != nil {
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", tmpPath)
	if err != nil {
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	return ln, nil
}

// httpAuth decides the token: the admin's MCP_CONDUCTOR_HTTP_TOKEN; none
// on a unix socket (its permissions authenticate) or with the explicit
// opt-out; otherwise a fresh random one written to a 0600 file in the state
// directory (removed at exit).
func httpAuth(c httpConfig, ln net.Listener, log *slog.Logger) (string, func(), error) {
	nothing := func() {}
	_, unixSocket := ln.Addr().(*net.UnixAddr)
	switch {
	case c.settings.Identities.HasTokens():
		log.Info("HTTP clients authenticate with their identity's token", "identities", identityNames(c.settings.Identities))
		return "", nothing, nil
	case c.settings.HTTPToken != "":
		return c.settings.HTTPToken, nothing, nil
	case c.settings.HTTPInsecureNoAuth:
		log.Warn("HTTP serves WITHOUT AUTHENTICATION (" + config.VarHTTPInsecureNoAuth + "): anyone who can connect to " +
			ln.Addr().String() + " runs code with this server's permissions and upstream credentials. Only for single-user machines; " +
			"unset it to require a token, or serve on a unix socket (--http unix:/path.sock).")
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			log.Warn("HTTP WITHOUT AUTHENTICATION is reachable beyond loopback", "addr", ln.Addr().String())
		}
		return "", nothing, nil
	case unixSocket:
		log.Info("unix socket: no token; its file permissions (0600, this user) authenticate", "socket", ln.Addr().String())
		return "", nothing, nil
	}
	token := rand.Text()
	file := filepath.Join(c.stateDir, fmt.Sprintf("http-%d.token", ln.Addr().(*net.TCPAddr).Port))
	if err := writePrivate(file, token+"\n"); err != nil {
		return "", nothing, fmt.Errorf("no %s set, and the generated token cannot be written: %w", config.VarHTTPToken, err)
	}
	log.Info("HTTP needs a bearer token; one was generated for this run (set "+config.VarHTTPToken+" to choose it, or "+
		config.VarHTTPInsecureNoAuth+"=1 for none)", "token_file", file,
		"use", fmt.Sprintf(`Authorization: Bearer $(cat %s)`, file))
	return token, func() { _ = os.Remove(file) }, nil
}

// writePrivate writes data to path with mode 0600, atomically: a temporary
// file (created 0600 by os.CreateTemp) renamed over path, so nothing is
// followed through a symlink planted at path.
func writePrivate(path, data string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".token-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
