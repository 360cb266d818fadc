package typecheck

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzCheckerCall: the checker's calls come from a sandbox, so they are hostile input. Any
// bytes as a call's parameters: Call never panics, answers the pending check exactly once
// when the call is a well-formed "next", and refuses anything else ending the run.
func FuzzCheckerCall(f *testing.F) {
	f.Add([]byte(`{"server":"typecheck","tool":"next","args":{"id":1,"diagnostics":[{"line":1,"column":7,"code":2322,"message":"m"}],"ms":3}}`))
	f.Add([]byte(`{"tool":"next","args":{"id":2,"error":"boom"}}`))
	f.Add([]byte(`{"tool":"next","args":{"id":1,"diagnostics":[{"line":-5,"column":1e9}]}}`))
	f.Add([]byte(`{"tool":"other"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"tool":"next","args":"x"}`))
	f.Fuzz(func(t *testing.T, params []byte) {
		w := &worker{reqs: make(chan *request), ready: make(chan struct{}), done: make(chan struct{})}
		pr := &request{frame: requestFrame{ID: 1}, reply: make(chan replyFrame, 1)}
		w.pending = pr
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no next check: the call returns at once
		_, err := w.Call(ctx, "callTool", json.RawMessage(params))
		if err == nil {
			t.Fatal("a call with no next check returned no error")
		}
		select {
		case rep := <-pr.reply:
			if w.pending != nil {
				t.Fatal("answered, yet still pending")
			}
			if rep.ID != 1 && rep.Error == "" {
				t.Fatalf("an answer to another check was passed on as this one's: %+v", rep)
			}
			// The positions are mapped through program.MapPosition, which takes any ints.
		default:
			if w.pending == nil {
				t.Fatal("the pending check was dropped without an answer")
			}
		}
	})
}
