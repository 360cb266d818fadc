package main

import (
	"log/slog"

	"github.com/conductor-sandbox/conductor/allowance"
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

// identityNames is the identities' names, for logs and doctor (never their hashes).
func identityNames(s *identity.Set) []string {
	var out []string
	for _, id := range s.All() {
		out = append(out, id.Name)
	}
	return out
}
