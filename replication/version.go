package replication

import (
	"crypto/sha256"
	"fmt"

	"github.com/pastrynet/pastry/id"
)

// Entry is what a store keeps beside a record to order, account and
// summarise it without reading its value.
type Entry struct {
	Key       id.ID
	Kind      Kind
	Version   uint64
	Expiry    int64
	Tombstone bool
	// Size is the length of the record's encoding: what it counts
	// against capacity and quota.
	Size int
	// Digest is SHA-256 of the record's encoding.
	Digest [DigestSize]byte
	// Owner is the owner's key; zero for an immutable object.
	Owner Owner
}

// Expired reports whether e's record has expired at now.
func (e Entry) Expired(now int64) bool { return expired(e.Expiry, now) }

// Owner is an owner's raw Ed25519 public key, as a map key.
type Owner [KeySize]byte

// entryOf returns the entry of r, whose encoding is enc.
func entryOf(r *Record, enc []byte) Entry {
	e := Entry{
		Key: r.Key(), Kind: r.Kind, Version: r.Version, Expiry: r.Expiry,
		Tombstone: r.Tombstone, Size: len(enc), Digest: sha256.Sum256(enc),
	}
	copy(e.Owner[:], r.Owner)
	return e
}

// Entry returns r's entry; r must encode (ErrMalformed if not).
func (r *Record) Entry() (Entry, error) {
	enc, err := r.Marshal()
	if err != nil {
		return Entry{}, err
	}
	return entryOf(r, enc), nil
}

// Supersedes applies the version rules to a record next, offered where
// old is held (same key):
//
//   - a higher version replaces a lower one: (true, nil);
//   - a lower version is a rollback: (false, ErrStale);
//   - the same version and the same record (same digest) is a no-op:
//     (false, nil);
//   - the same version and a different record is refused: ErrConflict.
//
// Immutable objects have no versions: the same content is a no-op, other
// content under the same key (a SHA-256 prefix collision) ErrConflict.
// Across kinds, a mutable record replaces an immutable object and never
// the reverse (ErrConflict): the two derivations can meet only if someone
// stored the owner's key and name as content, to squat on the key.
// Records for different keys are ErrKeyMismatch.
func Supersedes(old, next *Record) (bool, error) {
	o, err := old.Entry()
	if err != nil {
		return false, err
	}
	n, err := next.Entry()
	if err != nil {
		return false, err
	}
	return SupersedesEntry(o, n)
}

// SupersedesEntry is Supersedes on entries.
func SupersedesEntry(old, next Entry) (bool, error) {
	if old.Key != next.Key {
		return false, fmt.Errorf("%w: %s offered where %s is held", ErrKeyMismatch, next.Key, old.Key)
	}
	switch {
	case old.Kind == Immutable && next.Kind == Mutable:
		return true, nil
	case old.Kind == Mutable && next.Kind == Immutable:
		return false, fmt.Errorf("%w: an immutable object at mutable record %s", ErrConflict, old.Key.Short())
	case next.Version > old.Version:
		return true, nil
	case next.Version < old.Version:
		return false, fmt.Errorf("%w: %s version %d, %d held", ErrStale, next.Key.Short(), next.Version, old.Version)
	case next.Digest == old.Digest:
		return false, nil
	}
	return false, fmt.Errorf("%w: %s version %d differs from the one held", ErrConflict, next.Key.Short(), next.Version)
}
