package typegen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Source is where the tool lists come from: *upstream.Manager.
type Source interface {
	// Names are the enabled upstreams, sorted.
	Names() []string
	// ListTools lists the tools code may call on server.
	ListTools(ctx context.Context, server string) ([]*mcp.Tool, error)
	// ToolsVersion changes whenever server's tool list may have changed.
	ToolsVersion(server string) uint64
}

// Cache holds the declarations of every upstream, regenerated when its tool
// list changes.
type Cache struct {
	src Source
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry // by server
}

type entry struct {
	version uint64 // the source's ToolsVersion when listed
	hash    string // of the tool list
	tools   []*mcp.Tool
	decl    string // all tools' declarations
	gens    int    // times decl was generated (tests)
}

// NewCache returns a cache over src; log may be nil.
func NewCache(src Source, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{src: src, log: log, entries: map[string]*entry{}}
}

// Hash is the hash of a tool list its cache entry is keyed by.
func Hash(tools []*mcp.Tool) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, t := range tools {
		_ = enc.Encode(t) // a Tool's fields always encode
	}
	return hex.EncodeToString(h.Sum(nil))
}

// entry returns server's entry, listing its tools when its version moved.
func (c *Cache) entry(ctx context.Context, server string) (*entry, error) {
	v := c.src.ToolsVersion(server)
	c.mu.Lock()
	e := c.entries[server]
	if e != nil && e.version == v {
		c.mu.Unlock()
		return e, nil
	}
	c.mu.Unlock()
	tools, err := c.src.ListTools(ctx, server)
	if err != nil {
		return nil, err
	}
	hash := Hash(tools)
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.entries[server]
	if cur != nil && cur.hash == hash {
		if v > cur.version {
			cur.version = v
		}
		return cur, nil
	}
	ns := namespaces(c.src.Names())[server]
	if ns == "" {
		ns = Namespace(server)
	}
	decl, err := serverDecl(server, ns, tools, nil)
	if err != nil {
		return nil, err
	}
	ne := &entry{version: v, hash: hash, tools: tools, decl: decl}
	if cur != nil {
		ne.gens = cur.gens
	}
	ne.gens++
	c.entries[server] = ne
	c.log.Debug("tool declarations generated", "server", server, "tools", len(tools), "hash", hash[:12], "bytes", len(decl))
	return ne, nil
}

// Tools returns server's tools (those code may call), from the cache.
func (c *Cache) Tools(ctx context.Context, server string) ([]*mcp.Tool, error) {
	e, err := c.entry(ctx, server)
	if err != nil {
		return nil, err
	}
	return e.tools, nil
}

// Declarations returns the combined .d.ts for every enabled upstream. An
// upstream that cannot be listed is left out, with a comment saying why.
func (c *Cache) Declarations(ctx context.Context) (string, error) {
	var b strings.Builder
	b.WriteString("// Typed bindings of the upstream MCP servers: servers.<server>.<tool>(args) calls\n" +
		"// mcpFactory.load(server).callTool(tool, args).\n")
	for _, name := range c.src.Names() {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		e, err := c.entry(ctx, name)
		if err != nil {
			c.log.Warn("no tool declarations for an upstream", "server", name, "error", err)
			fmt.Fprintf(&b, "// MCP server %s is left out: %s\n", Quote(name), oneLine(err.Error()))
			continue
		}
		b.WriteString(e.decl)
	}
	return b.String(), nil
}

// ForTools returns the declarations of the named tools of server (all of
// them when tools is empty). A name the server does not have is
// ErrUnknownTool.
func (c *Cache) ForTools(ctx context.Context, server string, tools []string) (string, error) {
	e, err := c.entry(ctx, server)
	if err != nil {
		return "", err
	}
	if len(tools) == 0 {
		return e.decl, nil
	}
	ns := namespaces(c.src.Names())[server]
	if ns == "" {
		ns = Namespace(server)
	}
	return serverDecl(server, ns, e.tools, tools)
}

// generations is how many times server's declarations were generated (tests).
func (c *Cache) generations(server string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[server]; e != nil {
		return e.gens
	}
	return 0
}

func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}
