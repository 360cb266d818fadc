package mcp

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Bounds on what one progress notification carries.
const (
	progressMaxLines = 20
	progressMaxBytes = 2048
)

// progress collects output lines as they arrive and reports them, with the
// elapsed time, to a client that sent a progress token: once per interval,
// and only lines that are new since the last report.
type progress struct {
	mu      sync.Mutex
	partial map[string]*bytes.Buffer // unfinished last line per stream
	lines   []string                 // complete lines not reported yet
	dropped int                      // lines beyond the bound since the last report
}

func newProgress() *progress {
	return &progress{partial: map[string]*bytes.Buffer{"stdout": {}, "stderr": {}}}
}

// observe is a sandbox output observer: it must be quick and never block.
func (p *progress) observe(stream string, chunk []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	buf := p.partial[stream]
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			if buf.Len() < progressMaxBytes {
				buf.Write(chunk[:min(len(chunk), progressMaxBytes-buf.Len())])
			}
			return
		}
		if buf.Len() < progressMaxBytes {
			buf.Write(chunk[:min(i, progressMaxBytes-buf.Len())])
		}
		line := buf.String()
		buf.Reset()
		chunk = chunk[i+1:]
		if len(p.lines) >= progressMaxLines {
			p.dropped++
			continue
		}
		prefix := ""
		if stream == "stderr" {
			prefix = "[stderr] "
		}
		p.lines = append(p.lines, prefix+line)
	}
}

// take returns the unreported lines as one message body.
func (p *progress) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 && p.dropped == 0 {
		return ""
	}
	msg := strings.Join(p.lines, "\n")
	if len(msg) > progressMaxBytes {
		msg = msg[:progressMaxBytes] + "…"
	}
	if p.dropped > 0 {
		msg += fmt.Sprintf("\n(%d more lines)", p.dropped)
	}
	p.lines, p.dropped = p.lines[:0], 0
	return msg
}

// reportProgress sends progress while a call runs, when the client asked for
// it. It returns the output observer to hand the engine (nil when no
// progress was asked for) and a function that stops reporting.
func (s *Server) reportProgress(ctx context.Context, req *sdk.CallToolRequest) (func(string, []byte), func()) {
	token := req.Params.GetProgressToken()
	if token == nil || req.Session == nil {
		return nil, func() {}
	}
	p := newProgress()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t0 := time.Now()
		tick := time.NewTicker(s.opt().ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				elapsed := time.Since(t0)
				msg := fmt.Sprintf("running for %s", elapsed.Round(100*time.Millisecond))
				if out := p.take(); out != "" {
					msg += "\n" + out
				}
				_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
					ProgressToken: token,
					Progress:      float64(elapsed.Milliseconds()),
					Message:       msg,
				})
			}
		}
	}()
	return p.observe, func() { close(done); <-stopped }
}
