package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// CallHandler answers the calls code makes from inside a sandbox (the
// mcpFactory API). It is the host side of the channel: every argument came
// from untrusted code.
type CallHandler interface {
	// Call handles one call; the result is sent back as JSON. ctx ends when
	// the execution ends.
	Call(ctx context.Context, method string, params json.RawMessage) (any, error)
}

// CallLimits bound what one execution may ask of the host.
type CallLimits struct {
	MaxCalls      int   // calls per execution; 0 = 10000
	MaxInFlight   int   // concurrent calls; 0 = 32
	MaxReplyBytes int64 // bytes of one encoded reply; 0 = 8 MiB
	MaxTotalBytes int64 // bytes of all replies together; 0 = 64 MiB
}

func (l CallLimits) withDefaults() CallLimits {
	if l.MaxCalls <= 0 {
		l.MaxCalls = 10000
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 32
	}
	if l.MaxReplyBytes <= 0 {
		l.MaxReplyBytes = 8 << 20
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = 64 << 20
	}
	return l
}

// callFrame is a call from the sandbox.
type callFrame struct {
	ID     *uint64         `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// replyFrame is the host's answer.
type replyFrame struct {
	Type   string     `json:"type"`
	ID     uint64     `json:"id"`
	Result any        `json:"result,omitempty"`
	Error  *callError `json:"error,omitempty"`
}

type callError struct {
	Message string `json:"message"`
}

// calls is the host side of one execution's calls.
type calls struct {
	handler CallHandler
	limits  CallLimits
	// replies are written by their own goroutine, so the frame reader never
	// blocks on a sandbox that is not reading yet (it would deadlock: the
	// sandbox blocks writing calls, the host blocks writing replies). The
	// queue is bounded by maxFrames.
	replies chan replyFrame
	frames  int // call frames seen; more than maxFrames is a flood

	mu       sync.Mutex
	ctx      context.Context
	cancel   context.CancelFunc
	inFlight map[uint64]bool
	closed   bool // replies closed: the execution is over
	made     int
	replied  int64 // bytes
	wg       sync.WaitGroup
}

func newCalls(h CallHandler, l CallLimits, send func(any) error) *calls {
	ctx, cancel := context.WithCancel(context.Background())
	l = l.withDefaults()
	c := &calls{handler: h, limits: l, ctx: ctx, cancel: cancel, inFlight: map[uint64]bool{},
		replies: make(chan replyFrame, l.maxFrames())}
	go func() {
		for r := range c.replies {
			_ = send(r) // fails fast once the sandbox is gone
		}
	}()
	return c
}

// maxFrames is how many call frames an execution may send: every call may
// be refused once more than the limit allows before it counts as a flood.
func (l CallLimits) maxFrames() int { return 2*l.MaxCalls + 64 }

// errCallsDisabled answers calls when the execution has no handler.
var errCallsDisabled = errors.New("mcpFactory is not available: this server has no upstream MCP servers configured")

// handle takes one call frame's body. It never blocks on the handler: each
// admitted call runs in its own goroutine, and refusals are answered at once.
func (c *calls) handle(body []byte) error {
	var f callFrame
	if err := json.Unmarshal(body, &f); err != nil || f.ID == nil {
		return fmt.Errorf("malformed call frame")
	}
	id := *f.ID
	c.mu.Lock()
	c.frames++
	if c.frames > c.limits.maxFrames() {
		c.mu.Unlock()
		return fmt.Errorf("a flood of calls: more than %d call frames", c.limits.maxFrames())
	}
	c.mu.Unlock()
	if len(f.Method) == 0 || len(f.Method) > 64 {
		return c.reply(id, nil, errors.New("call: method name missing or too long"))
	}
	c.mu.Lock()
	switch {
	case c.ctx.Err() != nil:
		c.mu.Unlock()
		return c.reply(id, nil, errors.New("the execution has ended"))
	case c.handler == nil:
		c.mu.Unlock()
		return c.reply(id, nil, errCallsDisabled)
	case c.inFlight[id]:
		c.mu.Unlock()
		return fmt.Errorf("call id %d reused while in flight", id)
	case c.made >= c.limits.MaxCalls:
		c.mu.Unlock()
		return c.reply(id, nil, fmt.Errorf("this execution has made %d calls, the limit", c.limits.MaxCalls))
	case len(c.inFlight) >= c.limits.MaxInFlight:
		c.mu.Unlock()
		return c.reply(id, nil, fmt.Errorf("%d calls are already in flight, the limit; await some before making more", c.limits.MaxInFlight))
	}
	c.made++
	c.inFlight[id] = true
	ctx := c.ctx
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		result, err := c.handler.Call(ctx, f.Method, f.Params)
		c.mu.Lock()
		delete(c.inFlight, id)
		c.mu.Unlock()
		_ = c.reply(id, result, err)
	}()
	return nil
}

// reply sends a result or an error, enforcing the size limits.
func (c *calls) reply(id uint64, result any, err error) error {
	r := replyFrame{Type: "reply", ID: id}
	if err == nil {
		b, merr := json.Marshal(result)
		switch {
		case merr != nil:
			err = fmt.Errorf("the reply could not be encoded: %w", merr)
		case int64(len(b)) > c.limits.MaxReplyBytes:
			err = fmt.Errorf("the reply is %d bytes, over the %d-byte limit of one reply", len(b), c.limits.MaxReplyBytes)
		default:
			// Only delivered replies count towards the total.
			c.mu.Lock()
			total := c.replied + int64(len(b))
			over := total > c.limits.MaxTotalBytes
			if !over {
				c.replied = total
			}
			c.mu.Unlock()
			if over {
				err = fmt.Errorf("this execution has received %d bytes of replies, over the %d-byte limit (this %d-byte reply was refused)", total, c.limits.MaxTotalBytes, len(b))
			} else {
				r.Result = json.RawMessage(b)
			}
		}
	}
	if err != nil {
		r.Error = &callError{Message: err.Error()}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	select {
	case c.replies <- r:
	default: // cannot happen within maxFrames; never block the reader
	}
	return nil
}

// stop cancels every call in flight and waits for their goroutines.
func (c *calls) stop() int {
	c.mu.Lock()
	c.cancel()
	made := c.made
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.replies)
	}
	c.mu.Unlock()
	return made
}
