package transport

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf, 0)
	sizes := []int{0, 1, 127, 128, readBufSize - 1, readBufSize, readBufSize + 1, 4096, 70000, DefaultMaxFrame}
	for _, n := range sizes {
		if err := fw.WriteFrame(bytes.Repeat([]byte{byte(n)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	// Read through a reader that returns one byte at a time: frames must
	// not depend on read boundaries.
	fr := NewFrameReader(iotest.OneByteReader(&buf), 0)
	for _, n := range sizes {
		p, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame of %d: %v", n, err)
		}
		if len(p) != n || (n > 0 && (p[0] != byte(n) || p[n-1] != byte(n))) {
			t.Fatalf("frame of %d: got %d bytes", n, len(p))
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
	fr.Release()
}

func TestFrameWriterRefusesOversize(t *testing.T) {
	fw := NewFrameWriter(io.Discard, 10)
	if err := fw.WriteFrame(make([]byte, 11)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

// failReader fails the test if anything past the length prefix is read.
type failReader struct {
	t      *testing.T
	prefix []byte
}

func (r *failReader) Read(p []byte) (int, error) {
	if len(r.prefix) == 0 {
		r.t.Fatal("read past an oversize length prefix")
	}
	n := copy(p[:1], r.prefix)
	r.prefix = r.prefix[n:]
	return n, nil
}

func TestFrameReaderRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"over max", AppendFrameHeader(nil, 101), 100, ErrFrameTooLarge},
		{"huge", AppendFrameHeader(nil, 1<<40), 0, ErrFrameTooLarge},
		{"varint overflow", bytes.Repeat([]byte{0x80}, 11), 1 << 30, ErrFrameTooLarge},
		{"non-minimal", []byte{0x81, 0x00, 'x'}, 0, ErrBadFrame},
		{"cut in length", []byte{0x80}, 0, ErrBadFrame},
		{"cut in body", append(AppendFrameHeader(nil, 10), 1, 2, 3), 0, ErrBadFrame},
		{"cut in big body", append(AppendFrameHeader(nil, 10000), 1, 2, 3), 0, ErrBadFrame},
	}
	for _, c := range cases {
		fr := NewFrameReader(bytes.NewReader(c.in), c.max)
		if _, err := fr.ReadFrame(); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// An oversize length is refused before the body is read or allocated.
	fr := NewFrameReader(&failReader{t: t, prefix: AppendFrameHeader(nil, DefaultMaxFrame+1)}, 0)
	if _, err := fr.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		fr := NewFrameReader(bytes.NewReader(AppendFrameHeader(nil, 1<<30)), 0)
		fr.ReadFrame()
	})
	if allocs > 10 { // the reader and its 4 KiB buffer, not 1 GiB
		t.Fatalf("%v allocations for a refused frame", allocs)
	}
}

func TestFrameReaderIOErrorsAreNotBadFrames(t *testing.T) {
	boom := errors.New("boom")
	fr := NewFrameReader(io.MultiReader(bytes.NewReader(AppendFrameHeader(nil, 10)), iotest.ErrReader(boom)), 0)
	_, err := fr.ReadFrame()
	if !errors.Is(err, boom) || errors.Is(err, ErrBadFrame) || ReasonOf(err) != ReasonOther {
		t.Fatalf("err = %v", err)
	}
	fr = NewFrameReader(iotest.ErrReader(boom), 0)
	if _, err := fr.ReadFrame(); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestBufferPool(t *testing.T) {
	for _, n := range []int{0, 1, 512, 513, 16 << 10, DefaultMaxFrame + 8, DefaultMaxFrame + 9} {
		b := getBuf(n)
		if len(*b) != 0 || cap(*b) < n {
			t.Fatalf("getBuf(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		*b = append(*b, strings.Repeat("x", n)...)
		putBuf(b)
	}
}
