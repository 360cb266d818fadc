package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/conductor-sandbox/conductor/allowance"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/identity"
	"github.com/conductor-sandbox/conductor/mcp"
)

// wireIdentities puts the config file's identities in a.identities (which a reload swaps) and
// has their quotas admit every execution (o.Quotas) and every upstream call (the factory's).
func wireIdentities(a *app, o *mcp.Options, log *slog.Logger) {
	a.identities = identity.NewStore(a.settings.Identities)
	q := allowance.New(a.identities, nil)
	o.Quotas = q
	if a.factory != nil {
		a.factory.LimitBy(q)
	}
	if n := a.settings.Identities.Len(); n > 0 {
		log.Info("identities", "count", n, "names", identityNames(a.settings.Identities))
	}
}

// queueShare is the waiting places one identity may hold: half the queue (rounded up) when
// identities with tokens share it, else no cap (one client, or stdio).
func queueShare(s config.Settings) int {
	if !s.Identities.HasTokens() {
		return 0
	}
	return (s.MaxQueue + 1) / 2
}

// workspaceFor gives each identity's runs its own workspace, <workspace>/<identity>/, when the
// server has a workspace and identities with tokens (nil otherwise: one workspace, one client).
// An identity with "workspace": false, or a request of no identity the store knows (stdio aside,
// which gets <workspace>/stdio/), gets none.
func workspaceFor(a *app, s config.Settings) func(context.Context) (string, bool) {
	if s.Workspace == "" || !s.Identities.HasTokens() {
		return nil
	}
	return func(ctx context.Context) (string, bool) {
		name := event.ScopeOf(ctx).Identity
		id, ok := a.identities.Load().Lookup(name)
		switch {
		case ok && !id.HasWorkspace():
			return "", true
		case ok, name == identity.Stdio: // stdio has its own even when the file does not list it
			return name, false
		}
		return "", true // no identity the store knows: fail closed
	}
}

// identityNames is the identities' names, for logs and doctor (never their hashes).
func identityNames(s *identity.Set) []string {
	var out []string
	for _, id := range s.All() {
		out = append(out, id.Name)
	}
	return out
}

// identitiesCheck lists the identities for doctor: names and quotas, never their tokens' hashes.
func identitiesCheck(s *identity.Set) check {
	var parts []string
	for _, id := range s.All() {
		parts = append(parts, id.Name+" ("+quotasText(id.Quotas)+")")
	}
	detail := strings.Join(parts, ", ")
	if s.HasTokens() {
		detail += "; HTTP clients authenticate with their identity's token"
	}
	return check{Name: "identities", OK: true, Detail: detail}
}

// quotasText is q as doctor shows it, e.g. "concurrent 2, executions_per_minute 10".
func quotasText(q identity.Quotas) string {
	var out []string
	for _, p := range []struct {
		key string
		v   int
	}{{allowance.QuotaConcurrent, q.Concurrent}, {allowance.QuotaExecutions, q.ExecutionsPerMinute},
		{allowance.QuotaCPU, q.CPUSecondsPerHour}, {allowance.QuotaUpstreamCalls, q.UpstreamCallsPerMinute}} {
		if p.v > 0 {
			out = append(out, fmt.Sprintf("%s %d", p.key, p.v))
		}
	}
	if len(out) == 0 {
		return "no quotas"
	}
	return strings.Join(out, ", ")
}

// maxTokenBytes bounds the token `conductor identity hash` reads.
const maxTokenBytes = 4096

// cmdIdentity is `conductor identity hash`: it reads a bearer token on stdin (one line; the
// trailing newline is not part of it) and prints the "token_sha256" line for the config file.
func cmdIdentity(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "hash" {
		fmt.Fprintln(stderr, "usage: conductor identity hash < TOKEN-FILE   (prints \"token_sha256\": \"<hex>\" for the config file's identities)")
		return 2
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxTokenBytes+2))
	if err != nil {
		fmt.Fprintln(stderr, "conductor identity hash: reading the token:", err)
		return 1
	}
	token := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case len(token) > maxTokenBytes:
		fmt.Fprintf(stderr, "conductor identity hash: the token is longer than %d bytes\n", maxTokenBytes)
		return 1
	case len(token) < 16 || strings.ContainsAny(token, " \t\r\n"):
		fmt.Fprintln(stderr, "conductor identity hash: want one line of at least 16 characters without spaces on stdin "+
			"(make one with: head -c 32 /dev/urandom | base64 | tr -d '=+/\\n')")
		return 1
	}
	fmt.Fprintf(stdout, "\"token_sha256\": %q\n", identity.Hash(token))
	return 0
}
