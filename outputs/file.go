package outputs

// File is one output of a run: a file collected from the outputs directory, a workspace file
// the code named, or one that was skipped (Skipped says why; nothing else is returned of it).
type File struct {
	// Name is the sanitised path relative to the outputs directory ("/"-separated), or the
	// workspace-relative path of a workspace reference.
	Name string `json:"name"`
	// MimeType is sniffed from the content (never taken from the name alone).
	MimeType string `json:"mimeType,omitempty"`
	// Bytes is the file's size.
	Bytes int64 `json:"bytes"`
	// URI is where an MCP client reads it (resources/read); set by the server.
	URI string `json:"uri,omitempty"`
	// Workspace is true for a workspace file the code named: Data is nil and the server reads
	// it from the workspace when asked (no copy in the result).
	Workspace bool `json:"workspace,omitempty"`
	// Skipped is why the file is not returned (over a cap, a link, a special file …); "" = returned.
	Skipped string `json:"skipped,omitempty"`
	// Data is the content of a collected file (nil when skipped or a workspace reference).
	Data []byte `json:"-"`
}
