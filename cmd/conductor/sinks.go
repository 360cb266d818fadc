package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/conductor-sandbox/conductor/audit"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/event"
)

// servedSink is one recorder of serve's events (issue 17): the sink, what closes it at shutdown
// and what SIGHUP makes it do (nil = nothing).
type servedSink struct {
	sink  event.Sink
	close func() error
	hup   *hupHook
}

// sinkFor builds one servedSink from the settings; a nil sink = off. stdio: serve runs on stdio
// (stdout is the MCP channel).
type sinkFor func(s config.Settings, stdio bool, log *slog.Logger) (servedSink, error)

// serveSinks builds every recorder serve reports executions and upstream calls to — the one
// place they are wired: mcp.Options.Events and the factory's ReportTo get the returned sink,
// SIGHUP runs the hooks added to hup, and closeAll closes them. A recorder that cannot work
// refuses the start (fail closed).
func serveSinks(s config.Settings, stdio bool, log *slog.Logger, hup *hupHooks) (_ event.Sink, closeAll func(), _ error) {
	var sinks []event.Sink
	var closers []func() error
	closeAll = func() {
		for _, c := range closers {
			if err := c(); err != nil {
				log.Warn("closing an event recorder", "err", err)
			}
		}
	}
	for _, build := range []sinkFor{
		auditSink,
	} {
		r, err := build(s, stdio, log)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if r.sink == nil {
			continue
		}
		sinks = append(sinks, r.sink)
		if r.close != nil {
			closers = append(closers, r.close)
		}
		if r.hup != nil {
			hup.add(*r.hup)
		}
	}
	return event.Multi(sinks...), closeAll, nil
}

// errAuditStdout: MCP_CONDUCTOR_AUDIT=stdout with serve on stdio, whose stdout is the protocol.
var errAuditStdout = errors.New("stdout is the MCP channel when serve runs on stdio")

// auditSink is MCP_CONDUCTOR_AUDIT's audit log (off when unset).
func auditSink(s config.Settings, stdio bool, log *slog.Logger) (servedSink, error) {
	if s.Audit == "" {
		return servedSink{}, nil
	}
	allowed := "an absolute path of a file (appended to; its directory must exist and be writable by the user serve runs as), " +
		config.AuditStderr + ", or " + config.AuditStdout + " with serve --http; the admin sets it"
	if s.Audit == config.AuditStdout && stdio {
		return servedSink{}, &config.Error{Var: config.VarAudit, Value: s.Audit, Allowed: allowed, Err: errAuditStdout}
	}
	l, err := audit.Open(s.Audit, audit.Options{Code: s.AuditCode, Logger: log.With("component", "audit")})
	if err != nil {
		return servedSink{}, &config.Error{Var: config.VarAudit, Value: s.Audit, Allowed: allowed, Err: err}
	}
	log.Info("audit log", "destination", l.Where(), "code", s.AuditCode)
	r := servedSink{sink: l, close: l.Close}
	if s.Audit != config.AuditStderr && s.Audit != config.AuditStdout {
		r.hup = &hupHook{name: "reopen the audit log " + s.Audit, run: l.Reopen}
	}
	return r, nil
}

// auditCheck is doctor's line about the audit log: where it goes, and whether serve could open it.
func auditCheck(s config.Settings) check {
	c := check{Name: "audit", OK: true}
	code := "code as sha256 and size"
	if s.AuditCode {
		code = "code included (" + config.VarAuditCode + ")"
	}
	switch s.Audit {
	case "":
		c.Detail = "no audit log (" + config.VarAudit + " unset)"
		return c
	case config.AuditStderr:
		c.Detail = "audit log to stderr; " + code
		return c
	case config.AuditStdout:
		c.Detail = "audit log to stdout, only with serve --http (serve on stdio refuses it: stdout is the MCP channel); " + code
		return c
	}
	if err := audit.Check(s.Audit); err != nil {
		c.OK = false
		c.Detail = err.Error()
		c.Fix = fmt.Sprintf("create the directory or give the user serve runs as write access, or change %s; serve refuses to start until then", config.VarAudit)
		return c
	}
	c.Detail = fmt.Sprintf("audit log appended to %s (mode 0600 when created; SIGHUP reopens it); %s", s.Audit, code)
	return c
}
