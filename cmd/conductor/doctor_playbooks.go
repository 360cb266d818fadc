package main

import (
	"fmt"
	"strings"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/playbook"
)

// playbooksCheck says whether MCP_CONDUCTOR_PLAYBOOKS can be served (serve refuses to start when
// it cannot: a failure) and names every playbook file serve would skip, with its reason (a warning).
func playbooksCheck(s config.Settings) check {
	c := check{Name: "playbooks"}
	d, err := playbook.Open(s.Playbooks, s.PlaybooksWritable, nil)
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "create the directory and give conductor's user access to it, or unset " + config.VarPlaybooks
		if s.PlaybooksWritable {
			c.Fix = "give conductor's user write access to the directory, or unset " + config.VarPlaybooksWritable
		}
		return c
	}
	mode := "read-only (save_playbook not offered)"
	if s.PlaybooksWritable {
		mode = "writable (save_playbook offered)"
	}
	c.OK = true
	c.Detail = fmt.Sprintf("%s: %d playbooks, %s", s.Playbooks, len(d.List()), mode)
	if probs := d.Problems(); len(probs) > 0 {
		// A warning, as in serve: the other playbooks are served.
		c.Detail = "WARNING: files skipped: " + strings.Join(probs, "; ") + "; " + c.Detail
		c.Fix = "fix or remove the skipped files (the README's Playbooks section describes the format)"
	}
	return c
}
