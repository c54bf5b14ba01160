package replication

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"

	"github.com/pastrynet/pastry/id"
)

// Store errors.
var (
	// ErrCapacity: the node's capacity would be exceeded.
	ErrCapacity = errors.New("replication: store full")
	// ErrQuota: the owner's quota on this node would be exceeded.
	ErrQuota = errors.New("replication: owner over quota")
	// ErrCorrupt: a store on disk that cannot be trusted; it was not
	// opened and nothing in it was changed.
	ErrCorrupt = errors.New("replication: store corrupt")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("replication: store closed")
)

// Store holds one node's records, at most one per key. Its two
// implementations, MemStore (deterministic, for the simulator and tests)
// and pebblestore.Store (on disk, for the daemon), behave alike: the
// conformance tests in replication/storetest run on both.
//
// Ranges are arcs of the ring: [lo, hi] holds the keys from lo clockwise
// to hi, both included; when lo > hi the arc wraps past the largest id to
// the zero id. (lo, lo-1) is the whole ring, as core.Endpoint.Range
// returns it. Iteration is in key order along the arc.
//
// The callbacks of Range and Entries may call the store, Put and Delete
// included; they see the range as it was when the call began.
type Store interface {
	// Put stores rec if the version rules (SupersedesEntry) let it
	// replace what is held at its key, atomically, and durably before it
	// returns. stored is false with a nil error when the same record is
	// held already (a retry: a receipt may still be given). It refuses,
	// changing nothing, a record that is malformed, too large, badly
	// signed (unless Options.TrustSignatures) or expired at now
	// (ErrMalformed, ErrTooLarge, ErrBadKey, ErrBadSignature,
	// ErrExpired); a rollback (ErrStale) or a conflict (ErrConflict); and
	// one that would take the store past its capacity (ErrCapacity) or its
	// owner past the quota (ErrQuota).
	Put(now int64, rec *Record) (stored bool, err error)
	// Get returns the record at key (a copy), expired or not until
	// collected.
	Get(key id.ID) (*Record, bool, error)
	// Entry returns the entry of the record at key.
	Entry(key id.ID) (Entry, bool, error)
	// Range calls fn with the records whose keys are in [lo, hi], in
	// order, until fn returns false.
	Range(lo, hi id.ID, fn func(*Record) bool) error
	// Entries calls fn with the entries of the records whose keys are in
	// [lo, hi], in order, until fn returns false. It reads no values.
	Entries(lo, hi id.ID, fn func(Entry) bool) error
	// Summary summarises the records in [lo, hi] (see Summary).
	Summary(lo, hi id.ID) (Summary, error)
	// Delete removes the record at key, whatever it is: for records that
	// left this node's range, once the protocol has confirmed copies
	// elsewhere. It is not an owner's delete (a tombstone is). It reports
	// whether there was one.
	Delete(key id.ID) (bool, error)
	// Collect removes every record expired at now (tombstones included)
	// and returns how many.
	Collect(now int64) (int, error)
	// Stats returns what the store holds.
	Stats() Stats
	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

// Options are a store's limits. The zero value: default record limits,
// no capacity limit, no quota, signatures checked.
type Options struct {
	// Limits bound the records accepted.
	Limits Limits
	// Capacity bounds the bytes held (the sum of the records'
	// encodings); 0 means no limit.
	Capacity int64
	// OwnerQuota bounds the bytes held per owner of mutable records; 0
	// means no limit. Immutable objects have no owner and count against
	// Capacity only.
	OwnerQuota int64
	// TrustSignatures makes Put skip verifying mutable records'
	// signatures, for callers that have run Validate on them already (the
	// protocol verifies every record it receives). Everything else is
	// still checked.
	TrustSignatures bool
}

// Check reports whether o is usable.
func (o Options) Check() error {
	if err := o.Limits.Check(); err != nil {
		return err
	}
	if o.Capacity < 0 || o.OwnerQuota < 0 {
		return fmt.Errorf("replication: Capacity %d, OwnerQuota %d, want >= 0", o.Capacity, o.OwnerQuota)
	}
	return nil
}

// Stats is what a store holds.
type Stats struct {
	// Records counts the records held, tombstones included.
	Records int
	// Tombstones counts the tombstones among them.
	Tombstones int
	// Immutable counts the immutable objects among them.
	Immutable int
	// Bytes is the sum of the records' encodings.
	Bytes int64
	// Owners holds each owner's bytes (mutable records only).
	Owners map[Owner]int64
}

// Summary is a compact description of the records in a range, for
// anti-entropy: two stores hold the same records in the range if (and,
// but for hash collisions, only if) their summaries are equal.
type Summary struct {
	Count int
	Bytes int64
	// Hash is the sum modulo 2^256 of SHA-256(key ‖ version (8,
	// big-endian) ‖ digest) over the records: independent of order, and
	// updated by one addition per record. It covers the digest so that
	// two different records with the same version (an owner's
	// equivocation) differ.
	Hash [32]byte
}

// Add counts e in s.
func (s *Summary) Add(e Entry) {
	var b [id.Len + 8 + DigestSize]byte
	copy(b[:], e.Key[:])
	binary.BigEndian.PutUint64(b[id.Len:], e.Version)
	copy(b[id.Len+8:], e.Digest[:])
	h := sha256.Sum256(b[:])
	var carry uint64
	for i := 24; i >= 0; i -= 8 {
		x := binary.BigEndian.Uint64(s.Hash[i:])
		y := binary.BigEndian.Uint64(h[i:])
		var sum uint64
		sum, carry = bits.Add64(x, y, carry)
		binary.BigEndian.PutUint64(s.Hash[i:], sum)
	}
	s.Count++
	s.Bytes += int64(e.Size)
}

// InRange reports whether key is on the arc [lo, hi] (see Store).
func InRange(lo, hi, key id.ID) bool {
	if lo.Cmp(hi) <= 0 {
		return lo.Cmp(key) <= 0 && key.Cmp(hi) <= 0
	}
	return lo.Cmp(key) <= 0 || key.Cmp(hi) <= 0
}

// MaxID is the largest id.
var MaxID = id.ID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Segments splits the arc [lo, hi] into one or two intervals in key
// order, each [a, b] with a <= b, in the order the arc visits them.
func Segments(lo, hi id.ID) [][2]id.ID {
	if lo.Cmp(hi) <= 0 {
		return [][2]id.ID{{lo, hi}}
	}
	return [][2]id.ID{{lo, MaxID}, {{}, hi}}
}

// Prepared is a record checked and encoded for a store.
type Prepared struct {
	Record *Record
	Enc    []byte
	Entry  Entry
}

// Prepare checks rec as Store.Put does before it looks at what is held
// (shape, sizes, key, signature unless o.TrustSignatures, expiry at now)
// and encodes it. Stores call it; it is exported for stores outside this
// package.
func Prepare(now int64, rec *Record, o Options) (Prepared, error) {
	var err error
	if o.TrustSignatures {
		err = o.Limits.Check()
		if err == nil {
			err = rec.checkShape(o.Limits)
		}
	} else {
		err = rec.ValidateStatic(o.Limits)
	}
	if err == nil {
		err = rec.checkExpiry(now)
	}
	if err != nil {
		return Prepared{}, err
	}
	enc := rec.AppendTo(make([]byte, 0, rec.encodedSize()))
	return Prepared{Record: rec, Enc: enc, Entry: entryOf(rec, enc)}, nil
}

// Accounts keeps a store's counts and per-owner bytes, and applies the
// capacity and quota. Stores outside this package use it too.
type Accounts struct {
	st Stats
}

// NewAccounts returns empty accounts.
func NewAccounts() *Accounts { return &Accounts{st: Stats{Owners: map[Owner]int64{}}} }

// Admit reports whether next may replace old (nil: nothing held) within
// o's capacity and quota: ErrCapacity or ErrQuota if not. A replacement
// that does not grow what is held is always admitted.
func (a *Accounts) Admit(old *Entry, next Entry, o Options) error {
	grow := int64(next.Size)
	ownerGrow := grow
	if old != nil {
		grow -= int64(old.Size)
		if old.Kind == Mutable && old.Owner == next.Owner {
			ownerGrow -= int64(old.Size)
		}
	}
	if o.Capacity > 0 && grow > 0 && a.st.Bytes+grow > o.Capacity {
		return fmt.Errorf("%w: %s needs %d more bytes, %d of %d held", ErrCapacity, next.Key.Short(), grow, a.st.Bytes, o.Capacity)
	}
	if next.Kind == Mutable && o.OwnerQuota > 0 && ownerGrow > 0 {
		if used := a.st.Owners[next.Owner]; used+ownerGrow > o.OwnerQuota {
			return fmt.Errorf("%w: %s needs %d more bytes, its owner holds %d of %d", ErrQuota, next.Key.Short(), ownerGrow, used, o.OwnerQuota)
		}
	}
	return nil
}

// Add counts e.
func (a *Accounts) Add(e Entry) { a.change(e, 1) }

// Remove uncounts e.
func (a *Accounts) Remove(e Entry) { a.change(e, -1) }

func (a *Accounts) change(e Entry, sign int) {
	a.st.Records += sign
	a.st.Bytes += int64(sign * e.Size)
	switch {
	case e.Kind == Immutable:
		a.st.Immutable += sign
	case e.Tombstone:
		a.st.Tombstones += sign
	}
	if e.Kind == Mutable {
		n := a.st.Owners[e.Owner] + int64(sign*e.Size)
		if n == 0 {
			delete(a.st.Owners, e.Owner)
		} else {
			a.st.Owners[e.Owner] = n
		}
	}
}

// Used is the bytes held.
func (a *Accounts) Used() int64 { return a.st.Bytes }

// SpaceReporter is a Store that tells its bytes held and its capacity (0:
// no limit) cheaply; both stores here do. The protocol's replica
// diversion needs it: a store that does not tell is treated as having no
// limit.
type SpaceReporter interface {
	Space() (used, capacity int64)
}

// Stats returns a copy of the counts.
func (a *Accounts) Stats() Stats {
	s := a.st
	s.Owners = maps.Clone(a.st.Owners)
	return s
}
