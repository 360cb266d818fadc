package mcp

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/runtimes"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// CodeToolName is the Isolator-compatible tool: a program's files in a language.
const CodeToolName = "execute_code"

// CodeFile is one additional file of execute_code.
type CodeFile struct {
	Filename string `json:"filename" jsonschema:"Path relative to the working directory; sub-directories are allowed (data/x.json)."`
	Content  string `json:"content" jsonschema:"The file's text."`
}

// CodeInput is execute_code's input.
type CodeInput struct {
	Language           string     `json:"language,omitempty" jsonschema:"The language of entrypoint_code."`
	EntrypointCode     string     `json:"entrypoint_code,omitempty" jsonschema:"The program to run."`
	EntrypointFilename string     `json:"entrypoint_filename,omitempty" jsonschema:"The entrypoint's file name (default main.py, main.js or main.ts)."`
	AdditionalFiles    []CodeFile `json:"additional_files,omitempty" jsonschema:"More files written next to the entrypoint before it runs (modules it imports, data it reads)."`
	SnippetName        string     `json:"snippet_name,omitempty" jsonschema:"Run the server's snippet of this name instead of entrypoint_code (listed as MCP prompts)."`
	Timeout            int64      `json:"timeout,omitempty" jsonschema:"Timeout in milliseconds."`
}

func codeSchemas(languages []string) (in, out *jsonschema.Schema, err error) {
	opts := &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{}}
	if in, err = jsonschema.For[CodeInput](opts); err != nil {
		return nil, nil, err
	}
	enum := make([]any, len(languages))
	for i, l := range languages {
		enum[i] = l
	}
	in.Properties["language"].Enum = enum
	in.Properties["additional_files"] = &jsonschema.Schema{
		Type: "array", Description: in.Properties["additional_files"].Description,
		Items: in.Properties["additional_files"].Items,
	}
	if _, out, err = schemas(); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

// codeHandler runs one execute_code call.
func (s *Server) codeHandler(ctx context.Context, req *sdk.CallToolRequest, in CodeInput) (*sdk.CallToolResult, RunOutput, error) {
	sub := submitted{language: in.Language, code: in.EntrypointCode}
	for _, f := range in.AdditionalFiles {
		sub.code += "\x00" + f.Filename + "\x00" + f.Content
	}
	if in.Timeout < 0 {
		return s.refuse(ctx, req, codeSummary, sub, fmt.Errorf("%w: timeout %d ms: must be positive; allowed: 1 to %d ms", engine.ErrInvalidRequest, in.Timeout, s.opt().MaxTimeout.Milliseconds()))
	}
	r := engine.CodeRequest{
		Language:   in.Language,
		Entrypoint: engine.File{Name: in.EntrypointFilename, Content: in.EntrypointCode},
		Timeout:    time.Duration(in.Timeout) * time.Millisecond,
	}
	for _, f := range in.AdditionalFiles {
		r.Files = append(r.Files, engine.File{Name: f.Filename, Content: f.Content})
	}
	if in.SnippetName != "" {
		sub.language = "snippet:" + in.SnippetName
		if in.EntrypointCode != "" || in.Language != "" {
			return s.refuse(ctx, req, codeSummary, sub, fmt.Errorf("%w: give either snippet_name or language and entrypoint_code, not both", engine.ErrInvalidRequest))
		}
		sn, err := s.opt().Snippets.Get(in.SnippetName)
		if err != nil {
			return s.refuse(ctx, req, codeSummary, sub, fmt.Errorf("%w: %w", engine.ErrInvalidRequest, err))
		}
		r.Language, r.Entrypoint = sn.Language, engine.File{Name: sn.FileName, Content: sn.Code}
		sub = submitted{language: sn.Language, code: sn.Code}
	} else if in.Language == "" || in.EntrypointCode == "" {
		return s.refuse(ctx, req, codeSummary, sub, fmt.Errorf("%w: give snippet_name, or language and entrypoint_code", engine.ErrInvalidRequest))
	}
	return s.call(ctx, req, codeSummary, sub, func(ctx context.Context, observe func(string, []byte)) (*engine.Result, error) {
		r.OnOutput = observe
		return s.opt().Engine.ExecuteCode(ctx, r)
	})
}

// codeSummary is the text content in Isolator's layout: a status line, then the output sections.
func codeSummary(r *sandbox.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s", r.Status)
	if r.ExitCode != nil {
		fmt.Fprintf(&b, ", exit code %d", *r.ExitCode)
	}
	b.WriteString(timing(r) + "\n")
	if r.Error != nil {
		fmt.Fprintf(&b, "error: %s\n", r.Error.Message)
	}
	section := func(name, text string, truncated bool, total int64, file string) {
		fmt.Fprintf(&b, "--- %s ---\n%s", name, text)
		if text != "" && !strings.HasSuffix(text, "\n") {
			b.WriteByte('\n')
		}
		b.WriteString(truncation(name, len(text), total, truncated, file))
	}
	section("stdout", r.Stdout, r.StdoutTruncated, r.StdoutBytes, r.StdoutFile)
	section("stderr", r.Stderr, r.StderrTruncated, r.StderrBytes, r.StderrFile)
	if r.OutputNote != "" {
		fmt.Fprintf(&b, "note: %s\n", r.OutputNote)
	}
	for _, n := range r.Network {
		if !n.Allowed {
			fmt.Fprintf(&b, "network refused: %s: %s\n", netDest(n.Host, n.Port), n.Reason)
		}
	}
	if len(r.Degraded) > 0 {
		fmt.Fprintf(&b, "DEGRADED: %s\n", strings.Join(r.Degraded, "; "))
	}
	return b.String()
}

// codeDescription tells the model what execute_code can run.
func (s *Server) codeDescription() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run a program in a fresh hardened sandbox that is destroyed afterwards (nothing persists between calls). "+
		"Languages on this server: %s. The entrypoint and additional_files are written into the working directory %s "+
		"(a small writable tmpfs, its only writable place besides /tmp) and the entrypoint runs there; it can import or read the other files. "+
		"Returns stdout, stderr and the exit code; a non-zero exit is an error. ", strings.Join(s.opt().Languages, ", "), config.WorkDir)
	if slices.Contains(s.opt().Languages, "python") {
		b.WriteString("Python: only the standard library (and the packages the admin installed in its venv, if any). ")
	}
	if slices.Contains(s.opt().Languages, "go") {
		fmt.Fprintf(&b, "Go: `go run .` in the working directory, so every .go file of package main there is compiled with the entrypoint "+
			"(a sub-directory is the package %s/<dir>; a go.mod is written unless you send one); only the standard library, no module downloads; "+
			"the common standard packages are precompiled, others are compiled in the run's time and memory. go run exits 1 when the program fails "+
			"and prints its \"exit status N\" to stderr. ", runtimes.GoModule)
	}
	if slices.Contains(s.opt().Languages, "javascript") {
		if len(s.opt().Permissions) == 0 {
			b.WriteString("JavaScript/TypeScript run in deno, which may read and write the working directory and nothing else (no network, environment or subprocess access). ")
		} else {
			fmt.Fprintf(&b, "JavaScript/TypeScript run in deno with read and write of the working directory and: %s. ", strings.Join(s.opt().Permissions, " "))
		}
	}
	helpers := 0
	if slices.Contains(s.opt().Languages, "javascript") {
		helpers |= helpersDeno
	}
	if slices.Contains(s.opt().Languages, "python") {
		helpers |= helpersPython
	}
	b.WriteString(s.outputsDescription(helpers))
	if s.opt().Network != "" {
		fmt.Fprintf(&b, "Network (enforced below the program): %s. ", s.opt().Network)
	}
	if s.opt().Snippets != nil {
		b.WriteString("snippet_name runs one of the server's snippets (see prompts/list). ")
	}
	fmt.Fprintf(&b, "Default timeout %d ms, maximum %d ms.", s.opt().DefaultTimeout.Milliseconds(), s.opt().MaxTimeout.Milliseconds())
	return b.String()
}

// addCodeTool registers execute_code and, with snippets, their prompts.
func (s *Server) addCodeTool() error {
	in, out, err := codeSchemas(s.opt().Languages)
	if err != nil {
		return fmt.Errorf("mcp: execute_code schemas: %w", err)
	}
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:         CodeToolName,
		Title:        "Execute code in a sandbox",
		Description:  s.codeDescription(),
		InputSchema:  in,
		OutputSchema: out,
		Annotations: &sdk.ToolAnnotations{
			DestructiveHint: boolPtr(false),
			OpenWorldHint:   boolPtr(false),
		},
	}, s.codeHandler)
	if s.opt().Snippets != nil {
		s.syncPrompts()
		s.sdk.AddReceivingMiddleware(s.snippetsMiddleware)
	}
	return nil
}
