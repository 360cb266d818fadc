package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxStdioLine bounds one inbound stdio message.
const maxStdioLine = 80 << 20

// ServeStdio serves one client over stdin/stdout until it disconnects or ctx
// ends. A line that is not a JSON-RPC message gets a JSON-RPC error reply and
// the session goes on (the SDK's own stdio transport would end it).
func (s *Server) ServeStdio(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	out := &lockedWriter{w: stdout}
	in, inW := io.Pipe()
	go func() {
		inW.CloseWithError(filterLines(stdin, inW, out, s.opt().Logger))
	}()
	return s.sdk.Run(ctx, &sdk.IOTransport{Reader: in, Writer: out, MaxLineLength: maxStdioLine})
}

// lockedWriter makes each Write atomic between the SDK's replies and the
// filter's error replies.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) Close() error { return nil }

// JSON-RPC error codes.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
)

// filterLines copies valid JSON-RPC lines from r to the SDK (pass) and
// answers every other line itself on out.
func filterLines(r io.Reader, pass io.Writer, out io.Writer, log *slog.Logger) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, tooLong, err := readLine(br, maxStdioLine)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			if reply := checkMessage(line, tooLong); reply != nil {
				log.Warn("stdio: rejected a malformed message", "reason", reply.Error.Message)
				b, _ := json.Marshal(reply)
				if _, werr := out.Write(append(b, '\n')); werr != nil {
					return werr
				}
			} else if _, werr := pass.Write(append(line, '\n')); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// readLine reads one line of at most max bytes; a longer line is consumed
// and reported as tooLong.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, err := br.ReadLine()
		if !tooLong {
			if len(line)+len(chunk) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err != nil || !isPrefix {
			return line, tooLong, err
		}
	}
}

type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkMessage returns the error reply for a line that is not a JSON-RPC
// message the SDK can take, or nil.
func checkMessage(line []byte, tooLong bool) *rpcError {
	reply := func(code int, id json.RawMessage, format string, args ...any) *rpcError {
		e := &rpcError{JSONRPC: "2.0", ID: id}
		if len(e.ID) == 0 {
			e.ID = json.RawMessage("null")
		}
		e.Error.Code, e.Error.Message = code, fmt.Sprintf(format, args...)
		return e
	}
	if tooLong {
		return reply(codeParseError, nil, "parse error: message longer than %d bytes", maxStdioLine)
	}
	trimmed := bytes.TrimSpace(line)
	if !json.Valid(trimmed) {
		return reply(codeParseError, nil, "parse error: the line is not JSON")
	}
	if trimmed[0] == '[' {
		return nil // a batch: the SDK decides
	}
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  *string         `json:"method"`
		Result  json.RawMessage `json:"result"`
		Error   json.RawMessage `json:"error"`
	}
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &msg) != nil {
		return reply(codeInvalidRequest, nil, "invalid request: want a JSON-RPC 2.0 object")
	}
	id := msg.ID
	if len(id) > 0 && id[0] != '"' && (id[0] < '0' || id[0] > '9') && id[0] != '-' && string(id) != "null" {
		id = nil // not a valid id: answer with null
	}
	switch {
	case msg.JSONRPC != "2.0":
		return reply(codeInvalidRequest, id, `invalid request: "jsonrpc" must be "2.0"`)
	case msg.Method == nil && msg.Result == nil && msg.Error == nil:
		return reply(codeInvalidRequest, id, `invalid request: no "method" (and not a response)`)
	}
	return nil
}
