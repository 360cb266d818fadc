// This file: Manager.Apply — a reload's new config applied to the serving
// Manager (unchanged servers keep their sessions).

package upstream

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
)

var (
	// ErrApplyClosed: Apply was called after Close.
	ErrApplyClosed = errors.New("upstream manager: closed")
	// ErrApplyInvalid: Apply was given a config LoadConfig would not return.
	ErrApplyInvalid = errors.New("upstream manager: invalid config")
)

// Applied says what Apply changed, by server name (each sorted).
type Applied struct {
	Kept, Changed, Added, Removed []string

	old []*upstream // replaced or removed: Retire closes them
	m   *Manager
}

// Any reports whether the config differed.
func (a Applied) Any() bool { return len(a.Changed)+len(a.Added)+len(a.Removed) > 0 }

// Retire closes the sessions of the changed and removed servers' old
// entries. Call it once the executions that may still be calling them have
// ended (calls already under way finish on them; new calls go to the new
// entries or fail as unknown servers). Manager.Close closes them too.
func (a Applied) Retire() {
	if a.m == nil {
		return
	}
	for _, u := range a.old {
		a.m.set.Lock()
		still := a.m.retired[u]
		delete(a.m.retired, u)
		a.m.set.Unlock()
		if still {
			u.close()
		}
	}
}

// Apply makes cfg the Manager's config: a server whose entry is unchanged
// keeps its upstream (and live session); a changed one gets a new one that
// connects on its next call (its ToolsVersion moves on, so caches list it
// again); a removed one is no longer found; a new one is added. The old
// entries of changed and removed servers stay open until Applied.Retire.
// cfg comes from LoadConfig or ParseConfig; one with an empty or repeated
// name or an unknown transport is refused with ErrApplyInvalid and nothing
// changes.
func (m *Manager) Apply(cfg *Config) (Applied, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	seen := map[string]bool{}
	for _, sc := range cfg.Servers {
		switch {
		case sc.Name == "" || seen[sc.Name]:
			return Applied{}, fmt.Errorf("%w: server name %q empty or repeated; nothing changed", ErrApplyInvalid, sc.Name)
		case sc.Transport != TransportStdio && sc.Transport != TransportStreamableHTTP && sc.Transport != TransportSSE:
			return Applied{}, fmt.Errorf("%w: server %q: transport %q; nothing changed", ErrApplyInvalid, sc.Name, sc.Transport)
		}
		seen[sc.Name] = true
	}
	m.set.Lock()
	defer m.set.Unlock()
	if m.closed.Load() {
		return Applied{}, ErrApplyClosed
	}
	ap := Applied{m: m}
	next := make(map[string]*upstream, len(cfg.Servers))
	for _, sc := range cfg.Servers {
		old, ok := m.ups[sc.Name]
		switch {
		case ok && reflect.DeepEqual(old.cfg, sc):
			next[sc.Name] = old
			ap.Kept = append(ap.Kept, sc.Name)
			continue
		case ok:
			ap.Changed = append(ap.Changed, sc.Name)
		default:
			ap.Added = append(ap.Added, sc.Name)
		}
		u := m.newUpstream(sc)
		// Past every version a cache may hold for this name.
		v := m.versions[sc.Name]
		if ok {
			v = max(v, old.toolsVersion.Load())
		}
		u.toolsVersion.Store(v + 1)
		next[sc.Name] = u
	}
	for name, old := range m.ups {
		if n, ok := next[name]; ok && n == old {
			continue
		}
		if _, ok := next[name]; !ok {
			ap.Removed = append(ap.Removed, name)
		}
		if m.versions == nil {
			m.versions = map[string]uint64{}
		}
		m.versions[name] = max(m.versions[name], old.toolsVersion.Load())
		if m.retired == nil {
			m.retired = map[*upstream]bool{}
		}
		m.retired[old] = true
		ap.old = append(ap.old, old)
	}
	for _, l := range [][]string{ap.Kept, ap.Changed, ap.Added, ap.Removed} {
		slices.Sort(l)
	}
	m.ups = next
	m.index()
	return ap, nil
}

// close ends u's session (or waits for its connection attempt to end) and
// marks it closed.
func (u *upstream) close() {
	u.retired.Store(true)
	u.mu.Lock()
	s, a := u.sess, u.attempt
	u.sess = nil
	if u.state != StateDisabled {
		u.state = StateClosed
	}
	u.mu.Unlock()
	if a != nil {
		<-a.done // the attempt sees m.ctx cancelled and closes what it started
	}
	if s != nil {
		s.close()
	}
	if u.httpTransport != nil {
		u.httpTransport.CloseIdleConnections()
	}
}
