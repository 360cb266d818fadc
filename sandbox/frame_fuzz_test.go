package sandbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"
)

// frame is a length-prefixed frame as the bootstrap writes it.
func frame(body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

// FuzzReadFrame: the frames on fd 4 come from the sandboxed code, which
// can write anything there. readFrame returns exactly the frames the bytes
// hold, none over the limit (refused before any body is read or
// allocated), io.EOF only at a clean boundary, and what writeFrame wrote
// reads back unchanged.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(`{"type":"ready"}`), uint16(64))
	f.Add(append(frame(`{"type":"evaluated","result":1}`), frame(`{"type":"call","id":1,"method":"listServers"}`)...), uint16(64))
	f.Add(frame(`{"type":"evaluated","result":"`+string(bytes.Repeat([]byte("x"), 100))+`"}`), uint16(64))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'}, uint16(1000))
	f.Add([]byte{0, 0, 0, 9, '{', '}'}, uint16(1000))
	f.Add([]byte{0, 0}, uint16(10))
	f.Add(frame(""), uint16(0))
	f.Fuzz(func(t *testing.T, stream []byte, limit16 uint16) {
		limit := int(limit16)
		r := bytes.NewReader(stream)
		var again []byte
		for {
			before := len(stream) - r.Len()
			body, err := readFrame(r, limit)
			if err != nil {
				rest := stream[before:]
				switch {
				case errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes left", len(rest))
					}
				case errors.Is(err, ErrFrameTooLarge):
					if n := binary.BigEndian.Uint32(rest); uint64(n) <= uint64(limit) {
						t.Fatalf("a %d-byte frame refused as too large (limit %d)", n, limit)
					}
					if r.Len() != len(rest)-frameHeaderSize {
						t.Fatalf("a refused frame's body was read")
					}
				case len(rest) >= frameHeaderSize && len(rest)-frameHeaderSize >= int(binary.BigEndian.Uint32(rest)):
					t.Fatalf("error %v on a complete frame", err)
				case len(rest) == 0:
					t.Fatalf("error %v instead of io.EOF at a boundary", err)
				}
				break
			}
			if len(body) > limit {
				t.Fatalf("a %d-byte frame over the %d-byte limit", len(body), limit)
			}
			if got := stream[before : len(stream)-r.Len()]; !bytes.Equal(got, frame(string(body))) {
				t.Fatalf("frame %q is not the %d bytes it consumed", body, len(got))
			}
			if json.Valid(body) {
				var buf bytes.Buffer
				if err := writeFrame(&buf, json.RawMessage(body)); err != nil {
					t.Fatal(err)
				}
				back, err := readFrame(&buf, buf.Len()) // writeFrame may escape <, >, &
				if err != nil || !jsonEqual(back, body) || buf.Len() != 0 {
					t.Fatalf("writeFrame/readFrame of %q gave %q, %v", body, back, err)
				}
			}
			again = append(again, frame(string(body))...)
		}
		if !bytes.HasPrefix(stream, again) {
			t.Fatal("the frames read are not the stream's beginning")
		}
	})
}

// jsonEqual compares two JSON texts as values (writeFrame compacts and
// escapes <, > and &).
func jsonEqual(a, b []byte) bool {
	decode := func(x []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		return v, d.Decode(&v)
	}
	va, errA := decode(a)
	vb, errB := decode(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

// holdHandler records every call it is given and holds it until the
// execution ends, so every admitted call stays in flight.
type holdHandler struct {
	mu    sync.Mutex
	calls []callFrame
}

func (h *holdHandler) Call(ctx context.Context, method string, params json.RawMessage) (any, error) {
	h.mu.Lock()
	h.calls = append(h.calls, callFrame{Method: method, Params: append(json.RawMessage(nil), params...)})
	h.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

// FuzzCallFrames: call frames are hostile. Given lines of frame bodies, the
// host side of mcpFactory refuses malformed frames (which end the channel),
// gives the handler exactly the method and parameters a frame holds and
// only within every limit (calls, calls in flight, bytes of one call and
// of the calls in flight, method length), and answers every frame it took
// exactly once, by its id.
func FuzzCallFrames(f *testing.F) {
	f.Add([]byte(`{"id":1,"method":"callTool","params":{"server":"a","tool":"echo","args":{}}}` + "\n" + `{"id":2,"method":"listServers"}`))
	f.Add([]byte(`{"id":1,"method":"x"}` + "\n" + `{"id":1,"method":"x"}`))
	f.Add([]byte(`{"id":1,"method":"x","params":"` + string(bytes.Repeat([]byte("p"), 80)) + `"}`))
	f.Add([]byte(`{"id":1,"method":""}` + "\n" + `{"id":2,"method":"` + string(bytes.Repeat([]byte("m"), 65)) + `"}`))
	f.Add([]byte(`{"method":"x"}`))
	f.Add([]byte(`{"id":-1,"method":"x"}`))
	f.Add([]byte(`{"id":1,"id":2,"method":"x","method":"y","params":1,"params":[2]}`))
	f.Add([]byte("{\"id\":1,\"method\":\"a\"}\n{\"id\":2,\"method\":\"b\"}\n{\"id\":3,\"method\":\"c\"}\n{\"id\":4,\"method\":\"d\"}"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		limits := CallLimits{MaxCalls: 3, MaxInFlight: 2, MaxRequestBytes: 64, MaxInFlightBytes: 100}
		h := &holdHandler{}
		var mu sync.Mutex
		var replies []replyFrame
		c := newCalls(context.Background(), h, limits, func(v any) error {
			mu.Lock()
			replies = append(replies, v.(replyFrame))
			mu.Unlock()
			return nil
		}, nil)
		var taken []uint64
		var admitted []callFrame
		for _, body := range bytes.Split(stream, []byte("\n")) {
			var hdr callHeader
			hdrErr := json.Unmarshal(body, &hdr)
			err := c.handle(body)
			if (hdrErr != nil || hdr.ID == nil) != (err != nil && err.Error() == "malformed call frame") {
				t.Fatalf("frame %q: handle = %v, header decode = %v", body, err, hdrErr)
			}
			if err != nil {
				break // the reader stops trusting the channel
			}
			taken = append(taken, *hdr.ID)
			var fr callFrame
			if json.Unmarshal(body, &fr) == nil && len(fr.Method) > 0 && len(fr.Method) <= 64 && int64(len(fr.Params)) <= limits.MaxRequestBytes {
				admitted = append(admitted, fr)
			}
		}
		made, _, _ := c.stop()
		h.mu.Lock()
		calls := h.calls
		h.mu.Unlock()
		if made != len(calls) || len(calls) > limits.MaxCalls || len(calls) > limits.MaxInFlight {
			t.Fatalf("%d calls made, %d reached the handler (limits: %d calls, %d in flight)", made, len(calls), limits.MaxCalls, limits.MaxInFlight)
		}
		var inFlight int64
		for _, call := range calls {
			inFlight += int64(len(call.Params))
			if len(call.Method) == 0 || len(call.Method) > 64 || int64(len(call.Params)) > limits.MaxRequestBytes {
				t.Fatalf("call %q with %d bytes of parameters reached the handler", call.Method, len(call.Params))
			}
			found := false
			for _, a := range admitted {
				if a.Method == call.Method && bytes.Equal(a.Params, call.Params) {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("the handler got %q %s, which no frame holds", call.Method, call.Params)
			}
		}
		if inFlight > limits.MaxInFlightBytes {
			t.Fatalf("%d request bytes in flight, limit %d", inFlight, limits.MaxInFlightBytes)
		}
		// Every frame taken is answered once, by its id.
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(replies)
			mu.Unlock()
			if n >= len(taken) || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(replies) != len(taken) {
			t.Fatalf("%d frames taken, %d replies", len(taken), len(replies))
		}
		want := map[uint64]int{}
		for _, id := range taken {
			want[id]++
		}
		for _, r := range replies {
			want[r.ID]--
			if r.Error == nil && r.Result == nil {
				t.Fatalf("reply %d has neither a result nor an error", r.ID)
			}
		}
		for id, n := range want {
			if n != 0 {
				t.Fatalf("id %d: %d replies missing", id, n)
			}
		}
	})
}
