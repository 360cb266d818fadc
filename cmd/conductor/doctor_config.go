package main

import (
	"errors"
	"slices"
	"strings"

	"github.com/conductor-sandbox/conductor/config"
)

// configCheck reports MCP_CONDUCTOR_CONFIG: the file's path and which settings came from it and
// which from the environment (which overrides it), or, with loadErr, the file's errors.
func configCheck(s config.Settings, src config.Sources, loadErr error) check {
	if loadErr != nil {
		return check{Name: "config file", Detail: loadErr.Error(),
			Fix: "fix the file at the place named above (or unset " + config.VarConfig + "); serve refuses to start with it"}
	}
	var fromFile, fromEnv []string
	for name := range src {
		from := src.Of(name)
		switch {
		case name == config.VarConfig:
		case from == config.SourceFile:
			fromFile = append(fromFile, config.FileKey(name))
		case from == config.SourceEnv:
			fromEnv = append(fromEnv, name)
		}
	}
	slices.Sort(fromFile)
	slices.Sort(fromEnv)
	none := func(l []string) string {
		if len(l) == 0 {
			return "none"
		}
		return strings.Join(l, ", ")
	}
	detail := "none (" + config.VarConfig + " unset): settings come from the environment only"
	if s.ConfigFile != "" {
		detail = s.ConfigFile + "; from the file: " + none(fromFile)
	}
	detail += "; from the environment: " + none(fromEnv) + "; the rest default"
	if s.ConfigFile != "" {
		detail += "; a variable set in the environment overrides the file"
	}
	return check{Name: "config file", OK: true, Detail: detail}
}

// isFileError tells a broken config file from a bad setting.
func isFileError(err error) bool { return errors.Is(err, config.ErrFile) }
