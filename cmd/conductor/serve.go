package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/conductor-sandbox/conductor/artifacts"
	"github.com/conductor-sandbox/conductor/internal/gctune"
	"github.com/conductor-sandbox/conductor/mcp"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "", "serve streamable HTTP at ADDR (e.g. :8080 = 127.0.0.1:8080, or unix:/path/conductor.sock) on /mcp instead of stdio")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	connect := fs.Bool("connect-upstreams", false, "connect every upstream MCP server at start instead of on first use")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conductor serve [--http ADDR] [--connect-upstreams] [--log-level LEVEL]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "conductor serve: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "conductor serve: --log-level %q: allowed: debug, info, warn, error\n", *logLevel)
		return 2
	}
	// Logs go to stderr only: in stdio mode stdout carries the protocol.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// Fewer collections: ~1.1 ms of GC per execution at Go's default
	// (issue 16); GOGC and GOMEMLIMIT in the environment still win.
	defer gctune.Server()()
	if err := runSealed(); err != nil {
		log.Warn("serving from the binary on disk; each sandbox start protects it on its own (slower when rootless)", "reason", err)
	}

	a, err := newAppWith(ctx, log, appOptions{installs: true, pool: true})
	if err != nil {
		fmt.Fprintln(stderr, "conductor serve:", err)
		return 1
	}
	defer a.Close()
	if err := statelessProblem(a.settings, *httpAddr == "", a.upstreamConfig); err != nil {
		fmt.Fprintln(stderr, "conductor serve:", err)
		return 1
	}
	// What executions and upstream calls are reported to (issue 17): the recorders with a
	// lifetime of their own (the audit log; SIGHUP reopens it), then the metrics, which observe
	// puts beside them; before the installs and the pool, so a setting that cannot be honoured
	// refuses the start at once.
	var hup hupHooks
	recorders, closeSinks, err := serveSinks(a.settings, *httpAddr == "", log, &hup)
	if err != nil {
		fmt.Fprintln(stderr, "conductor serve:", err)
		return 1
	}
	defer closeSinks()
	obs, err := observe(a, *connect, recorders, log)
	if err != nil {
		fmt.Fprintln(stderr, "conductor serve:", err)
		return 1
	}
	defer obs.Close(log)
	// With a config file, SIGHUP reloads it (and the environment) once serving (reload.go).
	var reloads atomic.Pointer[reloader]
	if a.settings.ConfigFile != "" {
		hup.add(hupHook{name: "config reload", run: func() error {
			if r := reloads.Load(); r != nil {
				return r.reload(ctx, "SIGHUP")
			}
			return errors.New("not serving yet: the settings read at the start apply")
		}})
	}
	defer hup.listen(log)()
	if a.allow.Len() > 0 {
		// Step 1 of the two-step install; failures are per package and do
		// not stop the server from serving the packages that installed.
		installPackages(ctx, a, false, log)
		pruneViews(ctx, a, log)
	}
	if a.upstream != nil {
		if *connect {
			a.upstream.ConnectAll(ctx)
		}
		log.Info("upstream MCP servers", "servers", a.upstream.Names())
	}
	if err := a.startPool(); err != nil {
		fmt.Fprintln(stderr, "conductor serve: pool:", err)
		return 1
	}
	// The engine and what code may do (and type-checking, issue 14): what a reload replaces.
	o := serverPolicy(a, a.engine)
	o.Upstreams, o.Types, o.Version, o.Languages, o.Snippets, o.Playbooks = a.upstream, a.types, version, a.runtimes.Names(), snippetsFor(a, log), a.playbooks
	o.Logger, o.Events = log, obs.Events
	wireIdentities(a, &o, log)
	// Run outputs kept for resources/read (issue 20): in this process's own directory under the
	// state directory, cleared at start and at exit.
	store, err := artifacts.Open(artifacts.Options{
		Dir: filepath.Join(a.layout.stateDir, "outputs"), MaxBytes: a.settings.OutputsStoreSize,
		Retention: a.settings.OutputsRetention, Logger: log,
	})
	if err != nil {
		fmt.Fprintln(stderr, "conductor serve: outputs store:", err)
		return 1
	}
	defer store.Close()
	o.OutputStore, o.OutputsInline, o.OutputsInlineTotal = store, a.settings.OutputsInline, a.settings.OutputsInlineTotal()
	srv, err := mcp.New(o)
	if err != nil {
		fmt.Fprintln(stderr, "conductor serve:", err)
		return 1
	}
	// eng shuts down every engine: the serving one and those of a reload's old policies.
	eng, err := newReloader(a, srv, obs.Metrics.Reload, log)
	if err != nil {
		fmt.Fprintln(stderr, "conductor serve:", err)
		return 1
	}
	if a.settings.ConfigFile != "" {
		if err := eng.watch(ctx, a.settings.ConfigFile, "file changed"); err != nil {
			fmt.Fprintln(stderr, "conductor serve:", err)
			return 1
		}
		// The upstream servers' file too (the one named at the start): a change of it reloads.
		if up := a.upstreamConfig; up != nil && up.Path != "" && filepath.Clean(up.Path) != filepath.Clean(a.settings.ConfigFile) {
			if err := eng.watch(ctx, filepath.Clean(up.Path), "MCP config file changed"); err != nil {
				fmt.Fprintln(stderr, "conductor serve:", err)
				return 1
			}
		}
		reloads.Store(eng)
		log.Info("config file: SIGHUP or a change of it reloads the settings", "file", a.settings.ConfigFile)
	}

	if *httpAddr == "" {
		log.Info("serving MCP on stdio", "version", version)
		// On SIGTERM/SIGINT, cancel running executions at once (killing
		// their sandboxes), then end the session once their calls have been
		// answered (status cancelled), as HTTP does: ending it with the
		// signal left every call in flight without an answer (the soak's
		// SIGTERM phase). stdioAnswerGrace covers writing those answers;
		// stdioShutdownLimit bounds it all.
		session, endSession := context.WithCancel(context.WithoutCancel(ctx))
		defer endSession()
		stopOnSignal := context.AfterFunc(ctx, func() {
			log.Info("shutting down: running executions are cancelled")
			limit := time.AfterFunc(stdioShutdownLimit, endSession)
			defer limit.Stop()
			eng.Shutdown()
			time.AfterFunc(stdioAnswerGrace, endSession)
		})
		defer stopOnSignal()
		if err := srv.ServeStdio(session, os.Stdin, os.Stdout); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
			log.Error("stdio session ended", "err", err)
			return 1
		}
		return 0
	}
	// The body cap follows the code cap (JSON escaping can double the code),
	// so an over-long program gets the engine's clear error, not a bare 413.
	maxBody := max(16<<20, 2*a.settings.MaxCode+1<<20)
	return serveHTTP(ctx, srv, eng, httpConfig{
		addr:       *httpAddr,
		settings:   a.settings,
		stateDir:   a.layout.stateDir,
		maxBody:    maxBody,
		metrics:    obs.Metrics,
		identities: a.identities,
	}, log)
}

// After SIGTERM/SIGINT a stdio session ends stdioAnswerGrace after the last
// running execution was cancelled (its answer written by then), and
// stdioShutdownLimit after the signal at the latest.
const (
	stdioAnswerGrace   = 250 * time.Millisecond
	stdioShutdownLimit = 10 * time.Second
)

// snippetsFor is MCP_CONDUCTOR_SNIPPETS (nil when unset): each snippet's language is the one its
// extension names among the runtimes this server offers.
func snippetsFor(a *app, log *slog.Logger) *mcp.Snippets {
	if a.settings.Snippets == "" {
		return nil
	}
	return mcp.NewSnippets(a.settings.Snippets, func(ext string) (string, bool) {
		l, ok := a.runtimes.ByExtension(ext)
		return l.Name, ok
	}, log)
}
