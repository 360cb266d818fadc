package mcp

import (
	"fmt"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/outputs"
)

// Which helpers an outputs description names.
const (
	helpersDeno   = 1 << iota // display() and display.workspaceFile()
	helpersPython             // display(), display_file() and matplotlib's figures
)

// outputsDescription tells the model how a run returns files: the outputs directory and the
// display helpers of its languages (helpers, a set of helpersDeno and helpersPython), or that this
// server has no outputs directory.
func (s *Server) outputsDescription(helpers int) string {
	l := s.opt().Outputs
	if l.TotalBytes == 0 {
		return fmt.Sprintf("Files cannot be returned: this server gives runs no outputs directory (only the admin can: %s). ", config.VarOutputsSize)
	}
	files := l.Files
	if files == 0 {
		files = outputs.DefaultFiles
	}
	d := fmt.Sprintf("Files: what the code leaves in %s ($%s; at most %d files, %d MiB together, no links or special files) "+
		"is returned with the result when the run ends — images (PNG, JPEG, GIF, WebP, SVG) as images, other files as resources, "+
		"each listed in outputs with its name, type and size; a skipped one says why. ",
		config.OutputsDir, config.OutputsEnv, files, l.TotalBytes>>20)
	if helpers&helpersDeno != 0 {
		d += "In Deno: `await display(data, { name?, mimeType? })` writes one (data: Uint8Array, ArrayBuffer, Blob or string; " +
			"default name output-<n>.<ext>) and `await display.workspaceFile(path)` returns a workspace file by its relative path without copying it. "
	}
	if helpers&helpersPython != 0 {
		d += "In Python: `display(obj, name=None, mime_type=None)` writes bytes, a str, a PIL image or a matplotlib figure (as PNG), " +
			"`display_file(path)` returns a workspace file by its relative path; matplotlib (where installed) renders headless and the figures open at " +
			"plt.show() or at the end of the run are returned as figure-<n>.png. "
	}
	return d
}
