package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultMaxFrame is the default limit on a frame's size, excluding its
// length prefix: a maximal payload (core's default MaxPayload, 1 MiB) plus
// 256 KiB for the handles and other fields around it.
const DefaultMaxFrame = 1<<20 + 256<<10

// maxFrameLimit bounds MaxFrame settings: length prefixes are at most 5
// bytes, and no single message should need more.
const maxFrameLimit = 64 << 20

// Frames on a stream are an unsigned LEB128 varint length followed by that
// many bytes. The length must be minimally encoded.

// AppendFrameHeader appends the length prefix for an n-byte frame.
func AppendFrameHeader(dst []byte, n int) []byte {
	u := uint64(n)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// frameHeaderLen is the size of the length prefix of an n-byte frame.
func frameHeaderLen(n int) int {
	k := 1
	for u := uint64(n); u >= 0x80; u >>= 7 {
		k++
	}
	return k
}

// FrameReader reads length-prefixed frames from a stream. Not safe for
// concurrent use.
type FrameReader struct {
	r       *bufio.Reader
	max     int
	discard int     // bytes of the last frame still in r's buffer
	big     *[]byte // pooled buffer holding the last frame, if it was large
}

// NewFrameReader reads frames of at most max bytes from r (DefaultMaxFrame
// when max <= 0).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &FrameReader{r: bufio.NewReaderSize(r, readBufSize), max: max}
}

// readBufSize is a reader's buffer, which an inbound stream holds for its
// whole life: room for the frames the overlay sends most (routed messages
// of a few hundred bytes; heartbeats, rows and announcement replies of
// 1-1.3 KB at b=4 with two addresses a handle). Larger frames are read
// into a pooled buffer. 4 KiB was 4% of a 200-node devnet's heap.
const readBufSize = 2048

// ReadFrame returns the next frame. The slice is valid until the next call
// to ReadFrame or Release. It returns io.EOF at a clean end of stream
// (between frames), ErrFrameTooLarge for a length above the limit (before
// reading or allocating the body) and ErrBadFrame for a bad or truncated
// length or body (cut short by the end of the stream); I/O errors are
// returned wrapped. After an error the stream is out of sync: reset it.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	fr.recycle()
	n, err := fr.readLen()
	if err != nil {
		return nil, err
	}
	if n <= readBufSize {
		// Small frames are read in place from the buffered reader.
		p, err := fr.r.Peek(n)
		if err != nil {
			return nil, truncated(fmt.Sprintf("%d-byte frame", n), err)
		}
		fr.discard = n
		return p, nil
	}
	fr.big = getBuf(n)
	p := (*fr.big)[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		return nil, truncated(fmt.Sprintf("%d-byte frame", n), err)
	}
	return p, nil
}

// readLen reads and checks a length prefix.
func (fr *FrameReader) readLen() (int, error) {
	var u uint64
	for i := 0; ; i++ {
		c, err := fr.r.ReadByte()
		if err != nil {
			if i == 0 {
				return 0, err // io.EOF between frames, or an I/O error
			}
			return 0, truncated("length", err)
		}
		if i > 0 && c == 0 {
			return 0, fmt.Errorf("%w: length not minimally encoded", ErrBadFrame)
		}
		u |= uint64(c&0x7f) << (7 * i)
		if u > uint64(fr.max) {
			return 0, fmt.Errorf("%w: length %d or more, limit %d", ErrFrameTooLarge, u, fr.max)
		}
		if c < 0x80 {
			return int(u), nil
		}
		if i == 4 { // 5 bytes hold 35 bits, more than any limit
			return 0, fmt.Errorf("%w: length prefix too long", ErrFrameTooLarge)
		}
	}
}

// truncated reports a frame cut short: by the end of the stream (a bad
// frame, counted as such) or by an I/O error (the stream's failure, not the
// sender's fault, so not wrapped in ErrBadFrame).
func truncated(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: %w", ErrBadFrame, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("transport: read %s: %w", what, err)
}

// recycle gives back what the previous frame held.
func (fr *FrameReader) recycle() {
	if fr.discard > 0 {
		fr.r.Discard(fr.discard) // cannot fail: the bytes were peeked
		fr.discard = 0
	}
	if fr.big != nil {
		putBuf(fr.big)
		fr.big = nil
	}
}

// Release returns pooled memory; the reader stays usable.
func (fr *FrameReader) Release() { fr.recycle() }

// FrameWriter writes length-prefixed frames through a buffer. Not safe for
// concurrent use.
type FrameWriter struct {
	w   *bufio.Writer
	max int
}

// NewFrameWriter writes frames of at most max bytes (DefaultMaxFrame when
// max <= 0) to w.
func NewFrameWriter(w io.Writer, max int) *FrameWriter {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &FrameWriter{w: bufio.NewWriterSize(w, writeBufSize), max: max}
}

const writeBufSize = 4096

// WriteFrame buffers the length prefix and p; call Flush to send.
func (fw *FrameWriter) WriteFrame(p []byte) error {
	if len(p) > fw.max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(p), fw.max)
	}
	var hdr [5]byte
	if _, err := fw.w.Write(AppendFrameHeader(hdr[:0], len(p))); err != nil {
		return err
	}
	_, err := fw.w.Write(p)
	return err
}

// WriteRaw buffers bytes that already hold whole frames, prefixes included.
func (fw *FrameWriter) WriteRaw(b []byte) error {
	_, err := fw.w.Write(b)
	return err
}

// Flush sends what is buffered.
func (fw *FrameWriter) Flush() error { return fw.w.Flush() }

// Buffered reports how many bytes wait for Flush.
func (fw *FrameWriter) Buffered() int { return fw.w.Buffered() }

// Buffers are pooled in three size classes; the largest holds a default
// maximal frame with its prefix. Larger buffers are not pooled.
var bufClasses = [...]int{512, 16 << 10, DefaultMaxFrame + 8}

var bufPools [len(bufClasses)]sync.Pool

// getBuf returns a buffer with len 0 and cap >= n.
func getBuf(n int) *[]byte {
	for i, c := range bufClasses {
		if n <= c {
			if b, ok := bufPools[i].Get().(*[]byte); ok {
				*b = (*b)[:0]
				return b
			}
			b := make([]byte, 0, c)
			return &b
		}
	}
	b := make([]byte, 0, n)
	return &b
}

// putBuf recycles b into the largest class it can serve; b must not be
// used afterwards.
func putBuf(b *[]byte) {
	c := cap(*b)
	for i := len(bufClasses) - 1; i >= 0; i-- {
		if c >= bufClasses[i] {
			bufPools[i].Put(b)
			return
		}
	}
}
