package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/artifacts"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/outputs"
)

// EmbedTextMax is the most bytes of a textual output (CSV, JSON, Markdown, plain text) a result
// embeds whole (an embedded resource); larger ones are resource links.
const EmbedTextMax = 16 << 10

// WorkspaceReadMax is the most bytes resources/read returns of a workspace file.
const WorkspaceReadMax = 64 << 20

// inlineImages are the image types a result carries as image content.
var inlineImages = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true, "image/svg+xml": true,
}

// embeddableText are the textual types a small output is embedded as.
var embeddableText = map[string]bool{
	"text/csv": true, "application/json": true, "text/markdown": true, "text/plain": true,
}

// isText says whether resources/read returns a file of mime type m as text (else as a blob).
func isText(m string) bool {
	base, _, _ := strings.Cut(m, ";")
	base = strings.TrimSpace(base)
	return strings.HasPrefix(base, "text/") || embeddableText[base] || base == "image/svg+xml" ||
		strings.HasSuffix(base, "+json") || strings.HasSuffix(base, "+xml") || base == "application/xml"
}

// mimeBase is m without parameters ("text/plain; charset=utf-8" → "text/plain").
func mimeBase(m string) string {
	base, _, _ := strings.Cut(m, ";")
	return strings.TrimSpace(base)
}

// outputLimits bound what one result carries inline.
type outputLimits struct {
	image, total int64 // bytes of one inline image, of all of a result's inline images
}

// outputContent turns a run's outputs into MCP content, in their order: small images inline,
// small textual files embedded, everything else a resource link to the store (or, for a
// workspace file, to the identity's workspace). It returns the outputs as the structured result
// lists them: each with its URI, or Skipped saying why it is not returned. store nil: nothing is
// kept for resources/read, so what does not fit inline is skipped with that reason.
func outputContent(store *artifacts.Store, identity string, lim outputLimits, files []outputs.File, log *slog.Logger) ([]sdk.Content, []outputs.File, []string) {
	var content []sdk.Content
	listed := make([]outputs.File, len(files))
	how := make([]string, len(files)) // how each is returned, for the text
	var inline int64
	for i, f := range files {
		listed[i] = f
		out := &listed[i]
		if f.Skipped != "" {
			continue
		}
		base := mimeBase(f.MimeType)
		if f.Workspace {
			if store == nil {
				out.Skipped = noStore
				continue
			}
			uri, err := store.Reference(identity, f.Name, f.MimeType, f.Bytes)
			if err != nil {
				out.Skipped = err.Error()
				continue
			}
			out.URI = uri
			how[i] = "link " + uri
			content = append(content, link(out))
			continue
		}
		n := int64(len(f.Data))
		if store != nil {
			uri, err := store.Put(identity, f.Name, f.MimeType, f.Data)
			switch {
			case errors.Is(err, artifacts.ErrTooLarge):
				err = fmt.Errorf("not kept for resources/read: %d bytes is more than the store keeps per client (%d; the admin sets %s)",
					n, store.MaxBytes(), config.VarOutputsStoreSize)
			case err != nil:
				// The host's paths and errors stay in the log.
				log.Warn("keeping an output", "identity", identity, "name", f.Name, "err", err)
				err = errors.New("not kept for resources/read: the server could not store it (its log says why)")
			}
			if err != nil {
				out.Skipped = err.Error()
			}
			out.URI = uri
		}
		switch {
		case inlineImages[base] && n <= lim.image && inline+n <= lim.total:
			inline += n
			out.Skipped = "" // inline even when not kept
			how[i] = "image content"
			content = append(content, &sdk.ImageContent{Data: f.Data, MIMEType: base})
		case embeddableText[base] && n <= EmbedTextMax && utf8.Valid(f.Data):
			out.Skipped = ""
			how[i] = "embedded"
			content = append(content, &sdk.EmbeddedResource{Resource: &sdk.ResourceContents{
				URI: embedURI(out), MIMEType: f.MimeType, Text: string(f.Data),
			}})
		case out.URI == "" && out.Skipped == "":
			out.Skipped = tooLargeInline(f, base, lim)
		case out.URI != "":
			how[i] = "link " + out.URI
			content = append(content, link(out))
		}
	}
	return content, listed, how
}

// noStore is why an output cannot be linked on a server without a store.
const noStore = "not returned: too large to carry inline and this server keeps no outputs for resources/read"

// tooLargeInline says why an output that was not kept is not returned inline either.
func tooLargeInline(f outputs.File, base string, lim outputLimits) string {
	if inlineImages[base] {
		return fmt.Sprintf("not returned: %d bytes is over the inline image cap (%d per image, %d per result; the admin sets %s) "+
			"and this server keeps no outputs for resources/read", len(f.Data), lim.image, lim.total, config.VarOutputsInline)
	}
	return noStore
}

// embedURI is the URI an embedded resource carries: its store URI, else a name-only one.
func embedURI(f *outputs.File) string {
	if f.URI != "" {
		return f.URI
	}
	return artifacts.OutputURI("inline", f.Name) // not readable: nothing was kept
}

// link is the resource link of a kept output.
func link(f *outputs.File) *sdk.ResourceLink {
	size := f.Bytes
	return &sdk.ResourceLink{URI: f.URI, Name: f.Name, MIMEType: f.MimeType, Size: &size}
}

// outputsSummary is the text's lines for the outputs, one each: where it went, or why it was
// skipped.
func outputsSummary(files []outputs.File, how []string) string {
	if len(files) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("outputs:\n")
	for i, f := range files {
		what := f.MimeType
		if what == "" {
			what = "unknown type"
		}
		fmt.Fprintf(&b, "  %s (%s, %d bytes)", f.Name, what, f.Bytes)
		if f.Skipped != "" {
			fmt.Fprintf(&b, ": skipped: %s", f.Skipped)
		} else {
			fmt.Fprintf(&b, ": %s", how[i])
			if f.URI != "" && !strings.HasSuffix(how[i], f.URI) {
				fmt.Fprintf(&b, " (also %s)", f.URI)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// addOutputResources serves resources/read of outputs (conductor://outputs/<id>/<name>) and of
// workspace files a run named (conductor://workspace/<path>), as resource templates: outputs are
// ephemeral and never in resources/list. Only the identity whose run produced one may read it;
// for anyone else it does not exist.
func (s *Server) addOutputResources() {
	s.sdk.AddResourceTemplate(&sdk.ResourceTemplate{
		URITemplate: artifacts.OutputsPrefix + "{id}/{+name}",
		Name:        "outputs",
		Title:       "Files a run returned",
		Description: "A file a run left in its outputs directory, kept for a while for the client whose run made it.",
	}, s.readOutput)
	s.sdk.AddResourceTemplate(&sdk.ResourceTemplate{
		URITemplate: artifacts.WorkspacePrefix + "{+path}",
		Name:        "workspace-outputs",
		Title:       "Workspace files a run returned",
		Description: "A workspace file a run named as an output, read from the workspace when asked.",
	}, s.readOutput)
}

// readIdentity is who sent a request: as scopeOf for tool calls.
func readIdentity(req *sdk.ReadResourceRequest) string {
	if req == nil {
		return identityOf(nil)
	}
	return identityOf(req.Extra)
}

// readOutput answers resources/read of an output.
func (s *Server) readOutput(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	uri := req.Params.URI
	store := s.opt().OutputStore
	if store == nil {
		return nil, sdk.ResourceNotFoundError(uri)
	}
	id := readIdentity(req)
	it, data, err := store.Read(id, uri)
	switch {
	case errors.Is(err, artifacts.ErrNotFound):
		return nil, sdk.ResourceNotFoundError(uri)
	case errors.Is(err, artifacts.ErrExpired):
		return nil, fmt.Errorf("%s expired: outputs are kept %s (the admin sets %s); run the code again", uri, store.Retention(), config.VarOutputsRetention)
	case errors.Is(err, artifacts.ErrEvicted):
		return nil, fmt.Errorf("%s was removed to make room for newer outputs (at most %d bytes are kept per client; the admin sets %s); run the code again",
			uri, store.MaxBytes(), config.VarOutputsStoreSize)
	case err != nil:
		s.opt().Logger.Warn("reading an output", "identity", id, "uri", uri, "err", err)
		return nil, fmt.Errorf("%s could not be read", uri)
	}
	if it.Workspace {
		if data, err = s.readWorkspaceFile(ctx, id, it.Name); err != nil {
			return nil, err
		}
	}
	c := &sdk.ResourceContents{URI: uri, MIMEType: it.MimeType}
	if isText(it.MimeType) && utf8.Valid(data) {
		c.Text = string(data)
	} else {
		c.Blob = data
	}
	// An output is one identity's: no shared cache (a proxy, a gateway) may keep it for others
	// ("public" is the protocol's default).
	return &sdk.ReadResourceResult{Cacheable: sdk.Cacheable{CacheScope: "private"}, Contents: []*sdk.ResourceContents{c}}, nil
}

// readWorkspaceFile reads rel from identity's workspace, lazily: it is the file as it is now.
func (s *Server) readWorkspaceFile(ctx context.Context, identity, rel string) ([]byte, error) {
	o := s.opt()
	root := o.Workspace
	if root == "" {
		return nil, fmt.Errorf("workspace file %s: this server has no workspace now (the admin sets %s)", rel, config.VarWorkspace)
	}
	if o.WorkspaceFor != nil {
		sub, none := o.WorkspaceFor(event.WithScope(ctx, event.Scope{Identity: identity}))
		if none {
			return nil, fmt.Errorf("workspace file %s: this client has no workspace now (the admin grants one in the config file's identities)", rel)
		}
		root = filepath.Join(root, sub)
	}
	data, err := artifacts.ReadBeneath(root, rel, WorkspaceReadMax)
	switch {
	case errors.Is(err, artifacts.ErrNotFound):
		return nil, fmt.Errorf("workspace file %s is gone", rel)
	case errors.Is(err, artifacts.ErrNotRegular):
		return nil, fmt.Errorf("workspace file %s is refused: only regular files are read, never through a symbolic link", rel)
	case errors.Is(err, artifacts.ErrFileTooLarge):
		return nil, fmt.Errorf("workspace file %s is refused: over %d bytes; read it with code instead", rel, WorkspaceReadMax)
	case err != nil:
		s.opt().Logger.Warn("reading a workspace output", "identity", identity, "path", rel, "err", err)
		return nil, fmt.Errorf("workspace file %s could not be read", rel)
	}
	return data, nil
}
