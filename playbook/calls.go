package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/conductor-sandbox/conductor/program"
	"github.com/conductor-sandbox/conductor/sandbox"
)

// maxPrepared bounds the prepared playbook modules Calls keeps for mapping their errors' positions.
const maxPrepared = 256

// Calls answers the in-sandbox `playbooks` global (a sandbox.CallHandler for the methods
// "playbooks.list", "playbooks.run" and "playbooks.map"). Every parameter comes from untrusted code.
type Calls struct {
	dir *Dir
	log *slog.Logger

	mu    sync.Mutex
	next  uint64
	progs map[string]*program.Program // token -> the module playbooks.run returned
	order []string                    // tokens, oldest first
}

// NewCalls returns the handler of dir's playbooks.
func NewCalls(dir *Dir, log *slog.Logger) *Calls {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Calls{dir: dir, log: log, progs: map[string]*program.Program{}}
}

// Method reports whether method is one of Calls'.
func Method(method string) bool {
	switch method {
	case "playbooks.list", "playbooks.run", "playbooks.map":
		return true
	}
	return false
}

// RunReply is playbooks.run's answer: the module to import and the token that maps its errors.
type RunReply struct {
	Module string `json:"module"`
	Token  string `json:"token"`
}

type callParams struct {
	Name  string          `json:"name"`
	Args  json.RawMessage `json:"args"`
	Token string          `json:"token"`
	Text  string          `json:"text"`
}

// Call implements sandbox.CallHandler.
func (c *Calls) Call(ctx context.Context, method string, raw json.RawMessage) (result any, err error) {
	t0 := time.Now()
	var p callParams
	if err := sandbox.DecodeParams(method, raw, &p); err != nil {
		return nil, err
	}
	defer func() {
		outcome := "ok"
		if err != nil {
			outcome = err.Error()
		}
		c.log.Debug("playbooks call", "method", method, "name", p.Name, "ms", time.Since(t0).Milliseconds(), "outcome", outcome)
	}()
	switch method {
	case "playbooks.list":
		list := c.dir.List()
		out := make([]Meta, len(list))
		for i, pb := range list {
			out[i] = pb.Meta
		}
		return out, nil
	case "playbooks.run":
		return c.run(ctx, p.Name, p.Args)
	case "playbooks.map":
		c.mu.Lock()
		prog := c.progs[p.Token]
		c.mu.Unlock()
		if prog == nil {
			return p.Text, nil
		}
		return prog.MapText(p.Text), nil
	}
	return nil, fmt.Errorf("unknown playbooks method %q", method)
}

// run validates the arguments and prepares the playbook's module: `const args` (the validated
// arguments) on the file's first line, before its front-matter, so every line keeps its number.
func (c *Calls) run(ctx context.Context, name string, args json.RawMessage) (*RunReply, error) {
	if name == "" {
		return nil, errors.New(`playbooks.run(name, args): name must be a playbook name; playbooks.list() lists them`)
	}
	pb, err := c.dir.Get(name)
	if err != nil {
		return nil, err
	}
	v, err := pb.ValidateArgs(args)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: playbook %q: %v", ErrArgs, name, err)
	}
	lit, _ := json.Marshal(string(js)) // a JS string literal: Go escapes U+2028/U+2029 and <>&
	prog, err := program.PrepareContext(ctx, "const args: any = JSON.parse("+string(lit)+"); "+pb.Source)
	if err != nil {
		return nil, fmt.Errorf("playbook %q cannot be run: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	token := strconv.FormatUint(c.next, 10)
	c.progs[token] = prog
	c.order = append(c.order, token)
	if len(c.order) > maxPrepared {
		delete(c.progs, c.order[0])
		c.order = c.order[1:]
	}
	return &RunReply{Module: prog.Module, Token: token}, nil
}
