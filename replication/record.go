package replication

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// Errors. Every error this package returns for bad input wraps one of
// them (errors.Is), with the detail in its text.
var (
	// ErrMalformed: bytes that are not a record or receipt in the one
	// canonical encoding, or a record whose fields do not fit its kind.
	ErrMalformed = errors.New("replication: malformed")
	// ErrTooLarge: a value, name or encoding over its limit.
	ErrTooLarge = errors.New("replication: too large")
	// ErrBadKey: an owner's or node's public key that is not a canonical
	// Ed25519 key of large order.
	ErrBadKey = errors.New("replication: bad public key")
	// ErrBadSignature: a signature that does not verify.
	ErrBadSignature = errors.New("replication: bad signature")
	// ErrKeyMismatch: a record that does not derive the key it was asked
	// for or stored under, or a receipt for another record.
	ErrKeyMismatch = errors.New("replication: key mismatch")
	// ErrExpired: a record whose expiry has passed.
	ErrExpired = errors.New("replication: expired")
	// ErrConflict: a different record with the same key and version as
	// one already held (or an immutable object where a mutable record is).
	ErrConflict = errors.New("replication: conflicting record")
	// ErrStale: a record older (a lower version) than the one held: a
	// rollback, refused.
	ErrStale = errors.New("replication: stale version")
	// ErrWrongNode: a receipt from another node than the one expected.
	ErrWrongNode = errors.New("replication: receipt from another node")
)

// Kind is how a record's key is derived.
type Kind uint8

const (
	// Mutable records are named by their owner's key and a name, and
	// signed by the owner: key = SHA-256(owner ‖ name)[:16].
	Mutable Kind = 1
	// Immutable objects are named by their content, and unsigned:
	// key = SHA-256(value)[:16].
	Immutable Kind = 2
)

func (k Kind) String() string {
	switch k {
	case Mutable:
		return "mutable"
	case Immutable:
		return "immutable"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Sizes of the fixed-size fields.
const (
	KeySize       = ed25519.PublicKeySize // owner and node keys
	SignatureSize = ed25519.SignatureSize
	DigestSize    = sha256.Size
	// MaxNameLen is the hard bound on a name (its length is one byte in
	// the signed layout).
	MaxNameLen = 255
	// MaxValueLimit is the largest Limits.MaxValue allowed (64 MiB).
	MaxValueLimit = 64 << 20
)

// Contexts that start every signed message, so that no signature of an
// owner's or node's key over a record or receipt means anything else.
const (
	RecordContext  = "pastry record v1\x00"
	ReceiptContext = "pastry receipt v1\x00"
)

// Limits bound what a record may hold. The zero value means the defaults.
type Limits struct {
	// MaxValue bounds a value in bytes. Default 1 MiB; at most
	// MaxValueLimit.
	MaxValue int
	// MaxName bounds a name in bytes. Default and at most MaxNameLen.
	MaxName int
}

// DefaultLimits: 1 MiB values, 255-byte names.
func DefaultLimits() Limits { return Limits{MaxValue: 1 << 20, MaxName: MaxNameLen} }

// orDefault returns l with zero fields set to their defaults.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxValue == 0 {
		l.MaxValue = d.MaxValue
	}
	if l.MaxName == 0 {
		l.MaxName = d.MaxName
	}
	return l
}

// Check reports whether l is usable (zero fields count as defaults).
func (l Limits) Check() error {
	l = l.orDefault()
	switch {
	case l.MaxValue < 0 || l.MaxValue > MaxValueLimit:
		return fmt.Errorf("replication: MaxValue %d, want 0 to %d", l.MaxValue, MaxValueLimit)
	case l.MaxName < 0 || l.MaxName > MaxNameLen:
		return fmt.Errorf("replication: MaxName %d, want 0 to %d", l.MaxName, MaxNameLen)
	}
	return nil
}

// maxEncoded is the longest encoding of a record within l.
func (l Limits) maxEncoded() int {
	l = l.orDefault()
	// kind 2, owner 2+32, name 2+255, value 1+5+MaxValue, version 1+10,
	// expiry 1+10, tombstone 2, signature 2+64.
	return 2 + 34 + 2 + l.MaxName + 6 + l.MaxValue + 11 + 11 + 2 + 66
}

// Record is a mutable record or an immutable object. Its key is derived
// (Key), never carried. A Record handed to or returned by this package is
// not retained or shared: the caller owns its slices.
type Record struct {
	Kind Kind
	// Owner is the owner's raw 32-byte Ed25519 public key (mutable only).
	Owner []byte
	// Name is the record's name under its owner, at most Limits.MaxName
	// bytes (mutable only; may be empty).
	Name []byte
	// Value is the content: at most Limits.MaxValue bytes, empty in a
	// tombstone.
	Value []byte
	// Version orders a mutable record's writes: a higher one replaces a
	// lower one.
	Version uint64
	// Expiry is the unix second from which the record is expired and
	// collected; 0 means never (mutable only; never negative). A
	// tombstone is kept until its expiry.
	Expiry int64
	// Tombstone marks a signed delete: the owner's word that the record
	// is gone from this version on. Its value is empty.
	Tombstone bool
	// Signature is the owner's Ed25519 signature of SignedBytes
	// (mutable only).
	Signature []byte
}

// MutableKey is the key of the mutable record owner (a raw 32-byte
// Ed25519 public key) names name: SHA-256(owner ‖ name)[:16].
func MutableKey(owner, name []byte) id.ID {
	h := sha256.New()
	h.Write(owner)
	h.Write(name)
	var sum [sha256.Size]byte
	return idOf(h.Sum(sum[:0]))
}

// ImmutableKey is the key of the immutable object holding value:
// SHA-256(value)[:16].
func ImmutableKey(value []byte) id.ID {
	sum := sha256.Sum256(value)
	return idOf(sum[:])
}

func idOf(sum []byte) id.ID {
	var x id.ID
	copy(x[:], sum[:id.Len])
	return x
}

// Key derives r's key from its kind: MutableKey or ImmutableKey. The zero
// id for any other kind.
func (r *Record) Key() id.ID {
	switch r.Kind {
	case Mutable:
		return MutableKey(r.Owner, r.Name)
	case Immutable:
		return ImmutableKey(r.Value)
	}
	return id.ID{}
}

// SignedBytes is what the owner signs: RecordContext, then every field
// but the signature in a fixed layout (see transport/pb/pastry.proto).
func (r *Record) SignedBytes() []byte {
	b := make([]byte, 0, len(RecordContext)+1+len(r.Owner)+1+len(r.Name)+8+8+1+4+len(r.Value))
	b = append(b, RecordContext...)
	b = append(b, byte(r.Kind))
	b = append(b, r.Owner...)
	b = append(b, byte(len(r.Name)))
	b = append(b, r.Name...)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Expiry))
	t := byte(0)
	if r.Tombstone {
		t = 1
	}
	b = append(b, t)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Value)))
	return append(b, r.Value...)
}

// Digest is SHA-256 of r's encoding: what receipts and summaries name.
// The zero digest for a record that does not encode.
func (r *Record) Digest() [DigestSize]byte {
	b, err := r.Marshal()
	if err != nil {
		return [DigestSize]byte{}
	}
	return sha256.Sum256(b)
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	c := *r
	c.Owner = bytes.Clone(r.Owner)
	c.Name = bytes.Clone(r.Name)
	c.Value = bytes.Clone(r.Value)
	c.Signature = bytes.Clone(r.Signature)
	return &c
}

// Equal reports whether r and o are the same record, field by field
// (nil and empty slices are equal).
func (r *Record) Equal(o *Record) bool {
	return r.Kind == o.Kind && bytes.Equal(r.Owner, o.Owner) && bytes.Equal(r.Name, o.Name) &&
		bytes.Equal(r.Value, o.Value) && r.Version == o.Version && r.Expiry == o.Expiry &&
		r.Tombstone == o.Tombstone && bytes.Equal(r.Signature, o.Signature)
}

func (r *Record) String() string {
	if r.Kind == Immutable {
		return fmt.Sprintf("immutable %s (%d bytes)", r.Key().Short(), len(r.Value))
	}
	t := ""
	if r.Tombstone {
		t = " tombstone"
	}
	return fmt.Sprintf("mutable %s v%d%s (%d bytes)", r.Key().Short(), r.Version, t, len(r.Value))
}

// checkShape checks what the encoding requires of r's fields: the kind,
// the fields its kind allows, sizes against lim. It is all the decoder
// checks beyond the encoding itself; it reads no clock and verifies no
// signature.
func (r *Record) checkShape(lim Limits) error {
	lim = lim.orDefault()
	if len(r.Value) > lim.MaxValue {
		return fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, len(r.Value), lim.MaxValue)
	}
	switch r.Kind {
	case Mutable:
		switch {
		case len(r.Owner) != KeySize:
			return fmt.Errorf("%w: owner key of %d bytes, want %d", ErrMalformed, len(r.Owner), KeySize)
		case len(r.Name) > lim.MaxName:
			return fmt.Errorf("%w: name of %d bytes, limit %d", ErrTooLarge, len(r.Name), lim.MaxName)
		case r.Expiry < 0:
			return fmt.Errorf("%w: negative expiry %d", ErrMalformed, r.Expiry)
		case r.Tombstone && len(r.Value) > 0:
			return fmt.Errorf("%w: tombstone with a %d-byte value", ErrMalformed, len(r.Value))
		case len(r.Signature) != SignatureSize:
			return fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(r.Signature), SignatureSize)
		}
	case Immutable:
		if len(r.Owner) > 0 || len(r.Name) > 0 || r.Version != 0 || r.Expiry != 0 || r.Tombstone || len(r.Signature) > 0 {
			return fmt.Errorf("%w: an immutable object has a value only", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: record kind %d", ErrMalformed, r.Kind)
	}
	return nil
}

// Validate checks everything a receiver must before it stores or
// forwards r: the shape and sizes (within lim; the zero Limits are the
// defaults), the owner's key and signature of a mutable record, and that
// r has not expired at now (unix seconds). It does not check r's key
// against one it was asked for: see CheckKey.
func (r *Record) Validate(now int64, lim Limits) error {
	if err := r.ValidateStatic(lim); err != nil {
		return err
	}
	return r.checkExpiry(now)
}

// ValidateStatic is Validate without the expiry.
func (r *Record) ValidateStatic(lim Limits) error {
	if err := lim.Check(); err != nil {
		return err
	}
	if err := r.checkShape(lim); err != nil {
		return err
	}
	if r.Kind != Mutable {
		return nil
	}
	if err := secure.CheckPublicKey(r.Owner); err != nil {
		return fmt.Errorf("%w: owner: %v", ErrBadKey, err)
	}
	if !ed25519.Verify(r.Owner, r.SignedBytes(), r.Signature) {
		return fmt.Errorf("%w: record %s", ErrBadSignature, r)
	}
	return nil
}

func (r *Record) checkExpiry(now int64) error {
	if r.Expired(now) {
		return fmt.Errorf("%w: record %s expired at %d, now %d", ErrExpired, r, r.Expiry, now)
	}
	return nil
}

// Expired reports whether r's expiry has passed at now: Expiry != 0 and
// now >= Expiry.
func (r *Record) Expired(now int64) bool { return expired(r.Expiry, now) }

func expired(expiry, now int64) bool { return expiry != 0 && now >= expiry }

// CheckKey reports whether r derives key (ErrKeyMismatch if not).
func (r *Record) CheckKey(key id.ID) error {
	if k := r.Key(); k != key {
		return fmt.Errorf("%w: record derives %s, want %s", ErrKeyMismatch, k, key)
	}
	return nil
}

// Sign returns the mutable record owned by priv's public key (an Ed25519
// libp2p key: the node's identity, or any other) named name, signed.
// expiry 0 means never.
func Sign(priv crypto.PrivKey, name, value []byte, version uint64, expiry int64) (*Record, error) {
	return sign(priv, &Record{Kind: Mutable, Name: bytes.Clone(name), Value: bytes.Clone(value), Version: version, Expiry: expiry})
}

// SignTombstone returns the owner's signed delete of name at version
// (which must be higher than the version it deletes), kept by stores
// until expiry (0: for ever).
func SignTombstone(priv crypto.PrivKey, name []byte, version uint64, expiry int64) (*Record, error) {
	return sign(priv, &Record{Kind: Mutable, Name: bytes.Clone(name), Version: version, Expiry: expiry, Tombstone: true})
}

func sign(priv crypto.PrivKey, r *Record) (*Record, error) {
	if priv == nil || priv.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: signing key is not Ed25519", ErrBadKey)
	}
	pub, err := priv.GetPublic().Raw()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	r.Owner = pub
	r.Signature = make([]byte, SignatureSize) // for checkShape
	if err := r.checkShape(Limits{MaxValue: MaxValueLimit}); err != nil {
		return nil, err
	}
	sig, err := priv.Sign(r.SignedBytes())
	if err != nil {
		return nil, fmt.Errorf("replication: sign: %w", err)
	}
	r.Signature = sig
	return r, nil
}

// NewImmutable returns the immutable object holding value (a copy).
func NewImmutable(value []byte) *Record {
	return &Record{Kind: Immutable, Value: bytes.Clone(value)}
}
