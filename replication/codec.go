package replication

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The codec of Record and StoreReceipt in transport/pb/pastry.proto,
// written by hand on protowire so that it is canonical: fields in number
// order, zero values left out, shortest varints. The decoder accepts that
// form and nothing else (see the schema), so that a decoded record
// re-encodes to the same bytes and its digest names it alone.

// Field numbers of pastry.proto's Record.
const (
	fRecKind      = 1
	fRecOwner     = 2
	fRecName      = 3
	fRecValue     = 4
	fRecVersion   = 5
	fRecExpiry    = 6
	fRecTombstone = 7
	fRecSignature = 8
	fRecLast      = fRecSignature
)

// Field numbers of pastry.proto's StoreReceipt.
const (
	fRcptNode      = 1
	fRcptKey       = 2
	fRcptVersion   = 3
	fRcptDigest    = 4
	fRcptStored    = 5
	fRcptSignature = 6
	fRcptLast      = fRcptSignature
)

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// Marshal encodes r canonically. It checks r's shape against the largest
// limits (not its signature): ErrMalformed or ErrTooLarge.
func (r *Record) Marshal() ([]byte, error) {
	if err := r.checkShape(Limits{MaxValue: MaxValueLimit}); err != nil {
		return nil, err
	}
	return r.AppendTo(make([]byte, 0, r.encodedSize())), nil
}

// AppendTo appends r's encoding to b, unchecked: call Marshal unless r is
// known to be well formed.
func (r *Record) AppendTo(b []byte) []byte {
	b = appendVarintField(b, fRecKind, uint64(r.Kind))
	b = appendBytesField(b, fRecOwner, r.Owner)
	b = appendBytesField(b, fRecName, r.Name)
	b = appendBytesField(b, fRecValue, r.Value)
	b = appendVarintField(b, fRecVersion, r.Version)
	b = appendVarintField(b, fRecExpiry, uint64(r.Expiry))
	if r.Tombstone {
		b = appendVarintField(b, fRecTombstone, 1)
	}
	return appendBytesField(b, fRecSignature, r.Signature)
}

func (r *Record) encodedSize() int {
	return 2 + 2 + len(r.Owner) + 2 + len(r.Name) + 6 + len(r.Value) + 11 + 11 + 2 + 2 + len(r.Signature)
}

// field is one decoded field.
type field struct {
	num protowire.Number
	u   uint64 // varint fields
	b   []byte // bytes fields (aliases the input)
}

// fieldReader reads a message's fields strictly: in increasing number
// order (so each at most once), numbers up to last, each with its wire
// type from bytesField, shortest varints and lengths, no zero value.
type fieldReader struct {
	what      string
	b         []byte
	last      protowire.Number
	prev      protowire.Number
	bytesKind func(protowire.Number) bool
}

func (fr *fieldReader) bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, fr.what, fmt.Sprintf(format, args...))
}

// each calls fn with every field in turn, until an error.
func (fr *fieldReader) each(fn func(f field) error) error {
	for {
		f, ok, err := fr.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}

// next returns the next field; ok is false at the end.
func (fr *fieldReader) next() (f field, ok bool, err error) {
	if len(fr.b) == 0 {
		return f, false, nil
	}
	num, typ, n := protowire.ConsumeTag(fr.b)
	if n < 0 {
		return f, false, fr.bad("tag: %v", protowire.ParseError(n))
	}
	if n != protowire.SizeTag(num) {
		return f, false, fr.bad("tag of field %d not in shortest form", num)
	}
	fr.b = fr.b[n:]
	switch {
	case num > fr.last:
		return f, false, fr.bad("unknown field %d", num)
	case num == fr.prev:
		return f, false, fr.bad("field %d repeated", num)
	case num < fr.prev:
		return f, false, fr.bad("field %d after field %d", num, fr.prev)
	}
	fr.prev = num
	f.num = num
	if fr.bytesKind(num) {
		if typ != protowire.BytesType {
			return f, false, fr.bad("field %d has wire type %d, want bytes", num, typ)
		}
		v, n := protowire.ConsumeBytes(fr.b)
		if n < 0 {
			return f, false, fr.bad("field %d: %v", num, protowire.ParseError(n))
		}
		if n != protowire.SizeBytes(len(v)) {
			return f, false, fr.bad("length of field %d not in shortest form", num)
		}
		if len(v) == 0 {
			return f, false, fr.bad("field %d present but empty", num)
		}
		fr.b = fr.b[n:]
		f.b = v
		return f, true, nil
	}
	if typ != protowire.VarintType {
		return f, false, fr.bad("field %d has wire type %d, want varint", num, typ)
	}
	v, n := protowire.ConsumeVarint(fr.b)
	if n < 0 {
		return f, false, fr.bad("field %d: %v", num, protowire.ParseError(n))
	}
	if n != protowire.SizeVarint(v) {
		return f, false, fr.bad("field %d: varint not in shortest form", num)
	}
	if v == 0 {
		return f, false, fr.bad("field %d present with its zero value", num)
	}
	fr.b = fr.b[n:]
	f.u = v
	return f, true, nil
}

func recordBytesField(n protowire.Number) bool {
	return n == fRecOwner || n == fRecName || n == fRecValue || n == fRecSignature
}

// UnmarshalRecord decodes one record in the canonical encoding, within
// lim (the zero Limits are the defaults). The record does not alias b.
// It checks the encoding and the record's shape and sizes, not its
// signature or expiry: call Validate. Errors wrap ErrMalformed or
// ErrTooLarge; it never panics.
func UnmarshalRecord(b []byte, lim Limits) (*Record, error) {
	if err := lim.Check(); err != nil {
		return nil, err
	}
	if max := lim.maxEncoded(); len(b) > max {
		return nil, fmt.Errorf("%w: record encoding of %d bytes, limit %d", ErrTooLarge, len(b), max)
	}
	fr := fieldReader{what: "record", b: b, last: fRecLast, bytesKind: recordBytesField}
	r := &Record{}
	err := fr.each(func(f field) error {
		switch f.num {
		case fRecKind:
			if f.u > 255 {
				return fr.bad("record kind %d", f.u)
			}
			r.Kind = Kind(f.u)
		case fRecOwner:
			r.Owner = append([]byte(nil), f.b...)
		case fRecName:
			r.Name = append([]byte(nil), f.b...)
		case fRecValue:
			r.Value = append([]byte(nil), f.b...)
		case fRecVersion:
			r.Version = f.u
		case fRecExpiry:
			r.Expiry = int64(f.u) // negative ones are refused by checkShape
		case fRecTombstone:
			if f.u != 1 {
				return fr.bad("tombstone %d, want 1", f.u)
			}
			r.Tombstone = true
		case fRecSignature:
			r.Signature = append([]byte(nil), f.b...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := r.checkShape(lim); err != nil {
		return nil, err
	}
	return r, nil
}

// Marshal encodes rc canonically; ErrMalformed for a receipt with fields
// of the wrong size.
func (rc *Receipt) Marshal() ([]byte, error) {
	if err := rc.checkShape(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 2+KeySize+2+16+11+2+DigestSize+11+2+SignatureSize)
	b = appendBytesField(b, fRcptNode, rc.Node)
	b = appendBytesField(b, fRcptKey, rc.Key[:])
	b = appendVarintField(b, fRcptVersion, rc.Version)
	b = appendBytesField(b, fRcptDigest, rc.Digest[:])
	b = appendVarintField(b, fRcptStored, uint64(rc.Stored))
	return appendBytesField(b, fRcptSignature, rc.Signature), nil
}

// MaxReceiptLen bounds a receipt's encoding.
const MaxReceiptLen = 2 + KeySize + 2 + 16 + 11 + 2 + DigestSize + 11 + 2 + SignatureSize

func receiptBytesField(n protowire.Number) bool {
	return n == fRcptNode || n == fRcptKey || n == fRcptDigest || n == fRcptSignature
}

// UnmarshalReceipt decodes one receipt in the canonical encoding. It
// checks the encoding and field sizes, not the signature: call Verify or
// VerifyReceipt. Errors wrap ErrMalformed or ErrTooLarge.
func UnmarshalReceipt(b []byte) (*Receipt, error) {
	if len(b) > MaxReceiptLen {
		return nil, fmt.Errorf("%w: receipt of %d bytes, limit %d", ErrTooLarge, len(b), MaxReceiptLen)
	}
	fr := fieldReader{what: "receipt", b: b, last: fRcptLast, bytesKind: receiptBytesField}
	rc := &Receipt{}
	var haveKey, haveDigest bool
	err := fr.each(func(f field) error {
		switch f.num {
		case fRcptNode:
			rc.Node = append([]byte(nil), f.b...)
		case fRcptKey:
			if len(f.b) != len(rc.Key) {
				return fr.bad("key of %d bytes", len(f.b))
			}
			copy(rc.Key[:], f.b)
			haveKey = true
		case fRcptVersion:
			rc.Version = f.u
		case fRcptDigest:
			if len(f.b) != DigestSize {
				return fr.bad("digest of %d bytes", len(f.b))
			}
			copy(rc.Digest[:], f.b)
			haveDigest = true
		case fRcptStored:
			rc.Stored = int64(f.u)
		case fRcptSignature:
			rc.Signature = append([]byte(nil), f.b...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !haveKey || !haveDigest {
		return nil, fr.bad("key or digest missing")
	}
	if err := rc.checkShape(); err != nil {
		return nil, err
	}
	return rc, nil
}
