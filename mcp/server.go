package mcp

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/allowance"
	"github.com/conductor-sandbox/conductor/artifacts"
	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/event"
	"github.com/conductor-sandbox/conductor/mcp/typegen"
	"github.com/conductor-sandbox/conductor/mcp/upstream"
	"github.com/conductor-sandbox/conductor/outputs"
	"github.com/conductor-sandbox/conductor/playbook"
)

// Options configure a Server.
type Options struct {
	Engine      *engine.Engine
	Version     string
	Permissions []string // the admin's deno permission flags, for the tool description
	Workspace   string   // the workspace (MCP_CONDUCTOR_WORKSPACE), run_deno_code's working directory; "" = none
	// Outputs are the limits of runs' outputs directory (MCP_CONDUCTOR_OUTPUTS_*), for the tool
	// descriptions; a zero size: none.
	Outputs outputs.Limits
	// Network describes what runs can reach (egress.Policy.String); "" =
	// nothing.
	Network  string
	Packages string // one line naming the allowed packages
	// Tools are the CLI tools in the sandbox (MCP_CONDUCTOR_TOOLS), by the
	// name code runs them with; allow-run grants each (config checks it).
	Tools            []string
	DefaultTimeout   time.Duration
	MaxTimeout       time.Duration
	ProgressInterval time.Duration // 0 = 1 s
	// Upstreams, when set, adds list_mcp_servers, get_tool_details and
	// search_tools and tells the model about mcpFactory and servers.
	Upstreams *upstream.Manager
	// Types are the upstreams' TypeScript declarations; nil: New makes one
	// over Upstreams (pass one to share it, e.g. with a type checker).
	Types *typegen.Cache
	// Languages are execute_code's languages (none: no execute_code tool).
	Languages []string
	// Snippets, when set, are listed as prompts and run by snippet_name.
	Snippets *Snippets
	// Playbooks, when set, adds list_playbooks, get_playbook (and save_playbook when writable),
	// their resources, and tells the model about the playbooks global.
	Playbooks *playbook.Dir
	// TypeCheckAll: every run_deno_code call is type-checked (MCP_CONDUCTOR_TYPECHECK); else,
	// with TypeCheckAvailable, calls that ask are.
	TypeCheckAll, TypeCheckAvailable bool
	// Events get an event.Execution for every execution tool call, run or refused (the audit
	// log, metrics); nil = none.
	Events event.Sink
	// Quotas, when set, admit or refuse each execution by its identity's quotas (error.type
	// "quota"); a reload keeps it.
	Quotas *allowance.Limiter
	// OutputStore keeps runs' output files for resources/read (conductor://outputs/…, and the
	// workspace files runs name, conductor://workspace/…); nil = none kept: only what fits
	// inline is returned.
	OutputStore *artifacts.Store
	// OutputsInline and OutputsInlineTotal cap the bytes of one image a result carries inline,
	// and of all its images (config.Settings.OutputsInline); 0 = DefaultOutputsInline.
	OutputsInline, OutputsInlineTotal int64
	// WorkspaceFor says which part of Workspace an identity's runs get (as
	// engine.Options.WorkspaceFor); resources/read of a workspace output reads it there. nil = the
	// whole workspace.
	WorkspaceFor func(ctx context.Context) (sub string, none bool)
	Logger       *slog.Logger
}

// Server is conductor's MCP server.
type Server struct {
	cur    atomic.Pointer[Options] // the options now: Reload replaces them
	reload sync.Mutex              // one Reload at a time
	sdk    *sdk.Server
	events event.Sink
	types  *typegen.Cache // nil without upstreams

	paused pausedRuns // runs waiting for a client's approvals (approval.go)

	promptsMu  sync.Mutex
	prompts    map[string]string // snippet name -> the code its prompt shows
	promptLang map[string]string

	playbooksMu sync.Mutex
	playbookRes map[string]string // playbook name -> the file its resource shows
}

// New builds the server and registers its tools.
func New(o Options) (*Server, error) {
	if o.Engine == nil {
		return nil, fmt.Errorf("mcp: Options.Engine is required")
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OutputsInline <= 0 {
		o.OutputsInline = config.DefaultOutputsInline
	}
	if o.OutputsInlineTotal <= 0 {
		o.OutputsInlineTotal = 4 * o.OutputsInline
	}
	s := &Server{events: event.Multi(o.Events), prompts: map[string]string{}, promptLang: map[string]string{}}
	s.cur.Store(&o)
	instructions := "Use run_deno_code to run TypeScript/JavaScript in a fresh, isolated Deno sandbox. "
	if slices.Contains(o.Languages, "python") {
		instructions += "Use run_python_code to run Python the same way. "
	}
	s.sdk = sdk.NewServer(&sdk.Implementation{Name: "conductor", Title: "conductor: sandboxed Deno", Version: o.Version}, &sdk.ServerOptions{
		Instructions: instructions + "Return only what you need: compute summaries in code instead of printing large data.",
		// The SDK logs every session event at info; keep it to warnings
		// unless the admin asked for debug logs.
		Logger: sdkLogger(o.Logger),
	})
	in, out, err := schemas()
	if err != nil {
		return nil, fmt.Errorf("mcp: tool schemas: %w", err)
	}
	s.addRunTool(in, out)
	if o.Upstreams != nil && len(o.Upstreams.Names()) > 0 {
		s.types = o.Types
		if s.types == nil {
			s.types = typegen.NewCache(o.Upstreams, o.Logger)
		}
		s.addProxyTools(o.Upstreams)
	}
	if o.Playbooks != nil {
		s.addPlaybookTools()
	}
	if err := s.addLanguageTools(); err != nil {
		return nil, err
	}
	if o.OutputStore != nil {
		s.addOutputResources()
	}
	return s, nil
}

// opt is the options now.
func (s *Server) opt() *Options { return s.cur.Load() }

// addLanguageTools adds execute_code and run_python_code when the options offer them.
func (s *Server) addLanguageTools() error {
	o := s.opt()
	if len(o.Languages) > 0 {
		if err := s.addCodeTool(); err != nil {
			return err
		}
	}
	if slices.Contains(o.Languages, "python") {
		if err := s.addPythonTool(); err != nil {
			return err
		}
	}
	return nil
}

// Reload makes calls that start from now on run with o's engine and policy (a reloaded config):
// Engine, Permissions, Workspace, WorkspaceFor, Network, Packages, Tools, DefaultTimeout,
// MaxTimeout and the type-checking switches are taken from o, everything else is kept. The execution tools are added
// again with their new descriptions (the go-sdk replaces a tool of the same name and tells the
// clients tools/list_changed); no session is dropped, and calls already running keep the engine
// they started with.
func (s *Server) Reload(o Options) error {
	if o.Engine == nil {
		return fmt.Errorf("mcp: Reload: Options.Engine is required")
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	next := *s.opt()
	next.Engine, next.Permissions, next.Workspace, next.Network, next.Packages, next.Tools = o.Engine, o.Permissions, o.Workspace, o.Network, o.Packages, o.Tools
	next.DefaultTimeout, next.MaxTimeout, next.TypeCheckAll, next.TypeCheckAvailable = o.DefaultTimeout, o.MaxTimeout, o.TypeCheckAll, o.TypeCheckAvailable
	next.WorkspaceFor = o.WorkspaceFor
	s.cur.Store(&next)
	in, out, err := schemas()
	if err != nil {
		return fmt.Errorf("mcp: tool schemas: %w", err)
	}
	s.addRunTool(in, out)
	return s.addLanguageTools()
}

// addRunTool adds run_deno_code, described from the options now.
func (s *Server) addRunTool(in, out *jsonschema.Schema) {
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:         ToolName,
		Title:        "Run Deno code in a sandbox",
		Description:  s.description(),
		InputSchema:  in,
		OutputSchema: out,
		Annotations: &sdk.ToolAnnotations{
			ReadOnlyHint:    false,
			DestructiveHint: boolPtr(false),
			IdempotentHint:  false,
			OpenWorldHint:   boolPtr(false),
		},
	}, s.runHandler)
}

func boolPtr(b bool) *bool { return &b }

// sdkLogger is log, quietened to warnings unless debug logging is on.
func sdkLogger(log *slog.Logger) *slog.Logger {
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return log
	}
	return slog.New(minLevel{log.Handler(), slog.LevelWarn})
}

// minLevel drops records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(as), m.level}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{m.Handler.WithGroup(name), m.level}
}

// description tells the model what it can use.
func (s *Server) description() string {
	var b strings.Builder
	b.WriteString("Run TypeScript or JavaScript in Deno, in a fresh hardened sandbox that is destroyed afterwards " +
		"(nothing persists between calls). Returns stdout, stderr, the value of the last top-level expression " +
		"(or of a top-level `return`) as returnValue, and a structured error with the line and column in your code. ")
	if len(s.opt().Permissions) == 0 {
		b.WriteString("Permissions: none — no file system, network, environment or subprocess access. ")
	} else {
		fmt.Fprintf(&b, "Permissions granted: %s. ", strings.Join(s.opt().Permissions, " "))
	}
	if s.opt().Workspace != "" {
		b.WriteString(workspaceDescription(s.opt().Workspace, s.opt().Permissions))
	}
	if s.opt().Network != "" {
		fmt.Fprintf(&b, "Network (fetch, node:http, WebSocket, Deno.connect, Deno.resolveDns; enforced by the server below deno): %s. "+
			"A refused connection fails with a reset and the result's network list says why; only the admin can change what is reachable. ", s.opt().Network)
	}
	b.WriteString(s.outputsDescription(helpersDeno))
	if len(s.opt().Tools) > 0 {
		fmt.Fprintf(&b, "CLI tools in the sandbox, run with `new Deno.Command(name, { args })`: %s (HOME is /tmp, empty at each run; "+
			"only these and deno exist there, and only the admin can add one; there is no shell, so run them directly, not through sh -c). ",
			strings.Join(s.opt().Tools, ", "))
	}
	if s.opt().Packages != "" {
		b.WriteString(s.opt().Packages + " ")
	}
	b.WriteString("Import packages as `npm:name` (the server pins the version); remote URLs are not allowed. ")
	if names := s.upstreamNames(); names != "" {
		fmt.Fprintf(&b, "The global `mcpFactory` reaches these MCP servers: %s. "+
			"`await mcpFactory.load(name).callTool(tool, args)` resolves to the tool's structured content, else its parsed JSON text, else the text "+
			"(an upstream error rejects); also listTools(), listResources(), readResource(uri), listPrompts(), getPrompt(name, args), and mcpFactory.listServers(). "+
			"Typed bindings too: `await servers.<server>.<tool>(args)` (servers[\"my-server\"][\"tool-name\"](args) for other names) is the same call. "+
			"Calls can run in parallel with Promise.all; process results in code and return only a summary. "+
			"Find tools with search_tools {query}, then get_tool_details {server, tools} for their TypeScript declarations. ", names)
	}
	b.WriteString(s.playbooksDescription())
	b.WriteString(s.typeCheckDescription())
	fmt.Fprintf(&b, "Default timeout %d ms, maximum %d ms.", s.opt().DefaultTimeout.Milliseconds(), s.opt().MaxTimeout.Milliseconds())
	return b.String()
}

// upstreamNames lists the upstream servers mcpFactory reaches, "" when there are none.
func (s *Server) upstreamNames() string {
	if s.opt().Upstreams == nil {
		return ""
	}
	return strings.Join(s.opt().Upstreams.Names(), ", ")
}

// workspaceDescription tells the model where the workspace is and what code may do there.
func workspaceDescription(ws string, perms []string) string {
	read, write := config.PathAccess(perms, ws)
	may := "may read and write files there; what it writes stays for later calls and for the user"
	switch {
	case read && !write:
		may = "may read files there but not write them"
	case write && !read:
		may = "may write files there but not read them"
	case !read && !write:
		may = "may neither read nor write there (only the admin can grant it)"
	}
	return fmt.Sprintf("The working directory is the workspace %s, a directory shared with the server's host and kept between calls "+
		"(relative paths resolve there): code %s. ", ws, may)
}

// Types returns the upstreams' declarations cache (nil without upstreams).
func (s *Server) Types() *typegen.Cache { return s.types }

// SDK returns the underlying go-sdk server.
func (s *Server) SDK() *sdk.Server { return s.sdk }
