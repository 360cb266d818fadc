package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/conductor-sandbox/conductor/config"
)

// CallHandler answers the calls code makes from inside a sandbox (the
// mcpFactory API). It is the host side of the channel: every argument came
// from untrusted code.
type CallHandler interface {
	// Call handles one call; the result is sent back as JSON. ctx ends when
	// the execution ends. An error that wraps ErrEndExecution also ends the
	// execution: its message becomes the execution's error.
	Call(ctx context.Context, method string, params json.RawMessage) (any, error)
}

// DecodeParams decodes a call's parameters into v strictly, as every CallHandler must: they come
// from untrusted code, so a field v does not have, or anything after the one JSON value, is
// refused (an empty params leaves v as it is). The error names the method.
func DecodeParams(method string, params json.RawMessage, v any) error {
	if len(params) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: malformed parameters: %v", method, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: malformed parameters: more than one JSON value", method)
	}
	return nil
}

// The in-sandbox globals a CallHandler can answer.
const (
	GlobalMCPFactory = "mcpFactory"
	GlobalPlaybooks  = "playbooks"
)

// Globals is implemented by a CallHandler that says which in-sandbox globals it answers (the
// bootstrap defines those); a CallHandler without it answers mcpFactory only.
type Globals interface {
	Serves(global string) bool
}

// Serves reports whether h answers the global's calls (false for a nil h).
func Serves(h CallHandler, global string) bool {
	if h == nil {
		return false
	}
	if g, ok := h.(Globals); ok {
		return g.Serves(global)
	}
	return global == GlobalMCPFactory
}

// ErrEndExecution, wrapped in a CallHandler's error, ends the execution
// that made the call (its sandbox is killed) instead of only failing the
// call: the call did something that must not be repeated, such as taking
// down a shared upstream server.
var ErrEndExecution = errors.New("the host ended the execution")

// ErrCallTooLarge and ErrCallBudget are the refusals of a call's request
// bytes (one call over MaxRequestBytes; too many bytes in flight).
var (
	ErrCallTooLarge = errors.New("mcpFactory request too large")
	ErrCallBudget   = errors.New("mcpFactory request bytes in flight over the limit")
)

// Budget is a count of bytes shared by every execution: the request bytes
// of all mcpFactory calls in flight at once (MCP_CONDUCTOR_MCP_MAX_INFLIGHT_TOTAL).
// The zero value is unusable; use NewBudget.
type Budget struct {
	mu   sync.Mutex
	max  int64
	used int64
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// take reserves n bytes; it fails, reserving nothing, when that would go
// over the budget. It returns the bytes in use before the call.
func (b *Budget) take(n int64) (used int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return b.used, false
	}
	b.used += n
	return b.used - n, true
}

// give returns n bytes taken before.
func (b *Budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// InUse reports the bytes reserved now.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// CallLimits bound what one execution may ask of the host.
type CallLimits struct {
	MaxCalls      int   // calls per execution; 0 = 10000
	MaxInFlight   int   // concurrent calls; 0 = 32
	MaxReplyBytes int64 // bytes of one encoded reply; 0 = 8 MiB
	MaxTotalBytes int64 // bytes of all replies together; 0 = 64 MiB

	// MaxRequestBytes bounds one call's encoded parameters; 0 = 1 MiB.
	// A larger call is refused before its parameters are decoded.
	MaxRequestBytes int64
	// MaxInFlightBytes bounds the request bytes of this execution's calls
	// in flight at once; 0 = 8 MiB.
	MaxInFlightBytes int64
	// Shared, when set, bounds the request bytes in flight across every
	// execution that shares it.
	Shared *Budget
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
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = config.DefaultMCPMaxRequest
	}
	if l.MaxInFlightBytes <= 0 {
		l.MaxInFlightBytes = config.DefaultMCPMaxInFlight
	}
	return l
}

// callHeader is a call frame without its parameters: decoding it allocates
// nothing for them, however large they are.
type callHeader struct {
	ID     *uint64 `json:"id"`
	Method string  `json:"method"`
}

// frameSlack is room for a call frame's fields around its parameters.
const frameSlack = 4 << 10

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
	end     func(reason string) // ends the execution (ErrEndExecution)
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
	bytes    int64 // request bytes of the calls in flight
	closed   bool  // replies closed: the execution is over
	made     int
	replied  int64 // bytes
	wg       sync.WaitGroup
	details  *callDetails
}

// newCalls starts the host side of one execution's calls. The handler's
// ctx carries parent's values (what the request that started the run put
// there, such as who to ask for an approval) but not its cancellation: it
// ends when the execution does (stop).
func newCalls(parent context.Context, h CallHandler, l CallLimits, send func(any) error, end func(reason string)) *calls {
	details := &callDetails{}
	ctx, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(parent), callDetailsKey{}, details))
	l = l.withDefaults()
	if end == nil {
		end = func(string) {}
	}
	c := &calls{handler: h, limits: l, end: end, ctx: ctx, cancel: cancel, inFlight: map[uint64]bool{}, details: details,
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
	// The header first: a frame far over the request limit is refused
	// without copying, let alone decoding, its parameters.
	var h callHeader
	if err := json.Unmarshal(body, &h); err != nil || h.ID == nil {
		return fmt.Errorf("malformed call frame")
	}
	id := *h.ID
	var f callFrame
	if int64(len(body)) <= c.limits.MaxRequestBytes+frameSlack {
		if err := json.Unmarshal(body, &f); err != nil {
			return fmt.Errorf("malformed call frame")
		}
	}
	size := int64(len(f.Params))
	if f.ID == nil { // not decoded: the frame alone is over the limit
		size = int64(len(body))
	}
	c.mu.Lock()
	c.frames++
	if c.frames > c.limits.maxFrames() {
		c.mu.Unlock()
		return fmt.Errorf("a flood of calls: more than %d call frames", c.limits.maxFrames())
	}
	c.mu.Unlock()
	if len(h.Method) == 0 || len(h.Method) > 64 {
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
	if err := c.admitBytesLocked(h.Method, size); err != nil {
		c.mu.Unlock()
		return c.reply(id, nil, err)
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
		c.bytes -= size
		c.mu.Unlock()
		if c.limits.Shared != nil {
			c.limits.Shared.give(size)
		}
		if errors.Is(err, ErrEndExecution) {
			c.end(err.Error()) // before the reply: the code must not go on
		}
		_ = c.reply(id, result, err)
	}()
	return nil
}

// admitBytesLocked reserves a call's request bytes (size) against the
// request limit, this execution's bytes in flight and the shared budget.
// Every refusal names the limit and the variable the admin sets it with.
func (c *calls) admitBytesLocked(method string, size int64) error {
	l := c.limits
	if size > l.MaxRequestBytes {
		return fmt.Errorf("%w: this %s call's request is %d bytes, over the %d-byte limit of one call (%s, set by the conductor admin); it was not sent",
			ErrCallTooLarge, method, size, l.MaxRequestBytes, config.VarMCPMaxRequest)
	}
	if c.bytes+size > l.MaxInFlightBytes {
		return fmt.Errorf("%w: this execution already has %d request bytes in flight; with this %d-byte %s call it would be over the %d-byte limit (%s, set by the conductor admin); await some calls before making more",
			ErrCallBudget, c.bytes, size, method, l.MaxInFlightBytes, config.VarMCPMaxInFlight)
	}
	if l.Shared != nil {
		if used, ok := l.Shared.take(size); !ok {
			return fmt.Errorf("%w: all executions together have %d request bytes in flight; with this %d-byte %s call they would be over the %d-byte limit (%s, set by the conductor admin); try again shortly",
				ErrCallBudget, used, size, method, l.Shared.max, config.VarMCPMaxInFlightTotal)
		}
	}
	c.bytes += size
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

// stop cancels every call in flight and waits for their goroutines. It
// returns the number of calls made and the details handlers recorded.
func (c *calls) stop() (int, []CallDetail, int) {
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
	details, dropped := c.details.take()
	return made, details, dropped
}

// CallDetail is what a CallHandler recorded about one call (RecordCall),
// listed in the run's result as mcpCallDetails.
type CallDetail struct {
	Method string  `json:"method"`           // callTool, listTools, …
	Server string  `json:"server,omitempty"` // the upstream MCP server
	Tool   string  `json:"tool,omitempty"`   // callTool's tool
	Ms     float64 `json:"ms"`
	// Outcome: "ok", "tool_error" (the tool reported an error), "error"
	// (the call failed), or "refused" (it needed an approval it did not get).
	Outcome string `json:"outcome"`
	// Approval is the user's decision on a call that required one:
	// "accepted", "declined", "cancelled" (the user dismissed the question),
	// or "unavailable" (the client could not be asked); "" when none was
	// required.
	Approval string `json:"approval,omitempty"`
	Error    string `json:"error,omitempty"` // the message code saw, cut at MaxCallDetailError bytes
}

// MaxCallDetails is how many calls' details one result lists; the count of
// the others is mcpCallDetailsDropped. MaxCallDetailError caps each error.
const (
	MaxCallDetails     = 100
	MaxCallDetailError = 300
)

type callDetailsKey struct{}

// callDetails collects one execution's CallDetails.
type callDetails struct {
	mu      sync.Mutex
	list    []CallDetail
	dropped int
}

func (d *callDetails) take() ([]CallDetail, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.list, d.dropped
}

// RecordCall adds d to the details of the execution whose call ctx is
// (the ctx a CallHandler's Call gets); elsewhere it does nothing.
func RecordCall(ctx context.Context, d CallDetail) {
	cd, ok := ctx.Value(callDetailsKey{}).(*callDetails)
	if !ok {
		return
	}
	if len(d.Error) > MaxCallDetailError {
		cut := MaxCallDetailError
		for cut > 0 && !utf8.RuneStart(d.Error[cut]) {
			cut--
		}
		d.Error = d.Error[:cut] + "…"
	}
	cd.mu.Lock()
	defer cd.mu.Unlock()
	if len(cd.list) >= MaxCallDetails {
		cd.dropped++
		return
	}
	cd.list = append(cd.list, d)
}
