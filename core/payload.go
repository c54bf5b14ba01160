package core

import (
	"encoding/binary"

	"github.com/pastrynet/pastry/id"
)

// PayloadReader reads an application's payload strictly, for the
// applications' own codecs (lookup, multicast, replication): every read is
// bounded by what is left, and the first short or invalid read marks the
// reader bad, after which every read returns zero values. A decoder reads
// its fields, then refuses the payload if Bad or if anything is left.
type PayloadReader struct {
	b   []byte
	bad bool
}

// NewPayloadReader reads b.
func NewPayloadReader(b []byte) *PayloadReader { return &PayloadReader{b: b} }

// Bad reports whether a read failed (or Fail was called).
func (r *PayloadReader) Bad() bool { return r.bad }

// Fail marks the payload invalid.
func (r *PayloadReader) Fail() { r.bad = true }

// Len is how many bytes are left.
func (r *PayloadReader) Len() int { return len(r.b) }

// Take returns the next n bytes (shared with the payload), or nil.
func (r *PayloadReader) Take(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	x := r.b[:n]
	r.b = r.b[n:]
	return x
}

// U8 reads a byte.
func (r *PayloadReader) U8() uint8 {
	if x := r.Take(1); x != nil {
		return x[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (r *PayloadReader) U16() uint16 {
	if x := r.Take(2); x != nil {
		return binary.BigEndian.Uint16(x)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (r *PayloadReader) U32() uint32 {
	if x := r.Take(4); x != nil {
		return binary.BigEndian.Uint32(x)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (r *PayloadReader) U64() uint64 {
	if x := r.Take(8); x != nil {
		return binary.BigEndian.Uint64(x)
	}
	return 0
}

// ID reads an id.
func (r *PayloadReader) ID() (x id.ID) {
	copy(x[:], r.Take(id.Len))
	return x
}

// Bool reads a byte that must be 0 or 1.
func (r *PayloadReader) Bool() bool {
	switch r.U8() {
	case 0:
		return false
	case 1:
		return true
	}
	r.bad = true
	return false
}

// Handle reads what AppendHandle wrote; a handle without an address is
// invalid.
func (r *PayloadReader) Handle() id.Handle {
	x := r.ID()
	n := int(r.U8())
	a := r.Take(n)
	if n == 0 {
		r.bad = true
	}
	return id.Handle{ID: x, Addr: string(a)}
}

// Rest returns a copy of what is left (nil if nothing), and consumes it.
func (r *PayloadReader) Rest() []byte {
	if r.bad || len(r.b) == 0 {
		return nil
	}
	x := append([]byte(nil), r.b...)
	r.b = nil
	return x
}

// AppendHandle appends h as [id 16][address length u8][address]; the
// caller checks that the address has at most 255 bytes.
func AppendHandle(b []byte, h id.Handle) []byte {
	b = append(b, h.ID[:]...)
	b = append(b, byte(len(h.Addr)))
	return append(b, h.Addr...)
}
