package mcp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/textdir"
)

// MaxSnippetBytes bounds one snippet file.
const MaxSnippetBytes = 1 << 20

// Snippet is one named program of the admin's snippet directory.
type Snippet struct {
	Name     string // the file's base name without its extension
	Language string
	FileName string // the entrypoint's name: the file's base name
	Code     string
}

// Snippets is MCP_CONDUCTOR_SNIPPETS: a directory whose regular files are snippets, each named by
// its base name without the extension, its language by the extension. It is re-read when the
// directory's modification time changes (a file added, removed or renamed; editing a file in
// place does not change it, so each file's time is checked too). Bad files — an unknown
// extension, too large, a link, not valid UTF-8, or a name two files share — are skipped with a
// log line.
type Snippets struct {
	dir  string
	lang func(ext string) (string, bool)
	log  *slog.Logger

	mu    sync.Mutex
	stamp string // the directory's and files' times when list was read
	list  map[string]Snippet
}

// NewSnippets returns the snippets of dir; lang names the language of an extension (".py"),
// false for one this server does not run.
func NewSnippets(dir string, lang func(ext string) (string, bool), log *slog.Logger) *Snippets {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Snippets{dir: dir, lang: lang, log: log}
}

// Get returns the snippet named name.
func (s *Snippets) Get(name string) (Snippet, error) {
	if s == nil {
		return Snippet{}, fmt.Errorf("snippet %q: this server has no snippets (the admin sets MCP_CONDUCTOR_SNIPPETS)", name)
	}
	list := s.List()
	sn, ok := list[name]
	if !ok {
		names := make([]string, 0, len(list))
		for n := range list {
			names = append(names, n)
		}
		sort.Strings(names)
		return Snippet{}, fmt.Errorf("snippet %q does not exist; the server's snippets: %s", name, strings.Join(names, ", "))
	}
	return sn, nil
}

// List returns every snippet, re-reading the directory when it changed.
func (s *Snippets) List() map[string]Snippet {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamp := s.stampNow()
	if s.list != nil && stamp == s.stamp {
		return s.list
	}
	s.list, s.stamp = s.read(), stamp
	return s.list
}

// stampNow is the directory's and its entries' modification times and sizes.
func (s *Snippets) stampNow() string { return textdir.Stamp(s.dir) }

// read reads the directory.
func (s *Snippets) read() map[string]Snippet {
	out := map[string]Snippet{}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Warn("snippets: the directory cannot be read; no snippets", "dir", s.dir, "err", err)
		return out
	}
	dup := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		skip := func(why string) {
			s.log.Warn("snippets: file skipped", "file", filepath.Join(s.dir, name), "reason", why)
		}
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !e.Type().IsRegular() {
			skip("not a regular file (links and directories are not snippets)")
			continue
		}
		ext := filepath.Ext(name)
		lang, ok := s.lang(ext)
		if !ok {
			skip("unknown extension " + ext)
			continue
		}
		base := strings.TrimSuffix(name, ext)
		if base == "" {
			skip("no name before the extension")
			continue
		}
		data, err := textdir.ReadFile(filepath.Join(s.dir, name), MaxSnippetBytes)
		if err != nil {
			skip(err.Error())
			continue
		}
		if _, taken := out[base]; taken || dup[base] {
			skip("another file has the name " + base)
			delete(out, base)
			dup[base] = true
			continue
		}
		if !utf8.ValidString(data) {
			skip("not valid UTF-8 text")
			continue
		}
		out[base] = Snippet{Name: base, Language: lang, FileName: name, Code: data}
	}
	return out
}

// syncPrompts makes the server's prompts the snippets' (one prompt per snippet: its code and
// how to run it).
func (s *Server) syncPrompts() {
	list := s.opt().Snippets.List()
	s.promptsMu.Lock()
	defer s.promptsMu.Unlock()
	var gone []string
	for name, code := range s.prompts {
		if sn, ok := list[name]; !ok || sn.Code != code || sn.Language != s.promptLang[name] {
			gone = append(gone, name)
			delete(s.prompts, name)
		}
	}
	if len(gone) > 0 {
		s.sdk.RemovePrompts(gone...)
	}
	for name, sn := range list {
		if _, ok := s.prompts[name]; ok {
			continue
		}
		s.prompts[name], s.promptLang[name] = sn.Code, sn.Language
		text := fmt.Sprintf("Snippet %q (%s, %s). Run it with execute_code {\"snippet_name\": %q}.\n\n%s", sn.Name, sn.Language, sn.FileName, sn.Name, sn.Code)
		s.sdk.AddPrompt(&sdk.Prompt{
			Name:        name,
			Title:       "snippet " + name + " (" + sn.Language + ")",
			Description: fmt.Sprintf("A %s snippet the server can run: execute_code with snippet_name %q.", sn.Language, sn.Name),
		}, func(context.Context, *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
			return &sdk.GetPromptResult{
				Description: "snippet " + sn.Name,
				Messages:    []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: text}}},
			}, nil
		})
	}
}

// snippetsMiddleware re-reads the snippets before prompts are listed or fetched.
func (s *Server) snippetsMiddleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if method == "prompts/list" || method == "prompts/get" {
			s.syncPrompts()
		}
		return next(ctx, method, req)
	}
}
