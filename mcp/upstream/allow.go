package upstream

import (
	"fmt"
	"strings"
)

// allowList is the resource or prompt allowlist of one upstream: patterns
// over resource URIs or prompt names, where '*' matches any run of
// characters (including none, and '/') and every other character matches
// itself. A nil *allowList allows everything.
type allowList struct {
	field    string // "allowedResources" or "allowedPrompts"
	patterns []string
	implicit bool // not configured: denied because allowedTools is set
}

// newAllowList is the effective list for field: the configured patterns;
// none at all when the field is absent but allowedTools is set (an
// upstream restricted to some tools exposes no resources or prompts unless
// the admin says so); nil (everything) when neither is set.
func newAllowList(field string, patterns []string, toolsRestricted bool) *allowList {
	switch {
	case patterns != nil:
		return &allowList{field: field, patterns: patterns}
	case toolsRestricted:
		return &allowList{field: field, implicit: true}
	}
	return nil
}

// allows reports whether name matches one of the patterns.
func (a *allowList) allows(name string) bool {
	if a == nil {
		return true
	}
	for _, p := range a.patterns {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// none reports whether the list allows nothing at all.
func (a *allowList) none() bool { return a != nil && len(a.patterns) == 0 }

// describe says what the list allows, for refusals.
func (a *allowList) describe() string {
	switch {
	case a.implicit:
		return fmt.Sprintf("allowedTools is set and %s is not, so none is allowed", a.field)
	case len(a.patterns) == 0:
		return a.field + " is empty"
	}
	return a.field + ": " + strings.Join(a.patterns, ", ")
}

// globMatch matches s against pattern, where '*' matches any run of
// characters and everything else is literal.
func globMatch(pattern, s string) bool {
	// The classic two-pointer wildcard match: on a mismatch, let the last
	// '*' absorb one more character. Linear in practice, O(len·len) at worst.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
