package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrFrameTooLarge is returned when a frame's length prefix exceeds the limit.
var ErrFrameTooLarge = errors.New("frame too large")

// frameHeaderSize is the size of a frame's big-endian length prefix.
const frameHeaderSize = 4

// writeFrame writes v as one JSON frame.
func writeFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	if len(body) > 1<<31-1 {
		return ErrFrameTooLarge
	}
	buf := make([]byte, frameHeaderSize+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[frameHeaderSize:], body)
	_, err = w.Write(buf)
	return err
}

// readFrame reads one frame of at most limit bytes. It returns io.EOF only
// when the stream ends cleanly between frames.
func readFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated frame header: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // a header was read: not a clean end
		}
		return nil, fmt.Errorf("truncated frame body (%d bytes announced): %w", n, err)
	}
	return body, nil
}
