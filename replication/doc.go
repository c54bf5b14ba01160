// Package replication is PAST's storage (issue 22): signed, versioned
// records kept redundantly on the nodes closest to their keys. This is
// its foundation: records, their codec, store receipts and the Store. The
// replication protocol (placement on the k closest nodes, quorum writes
// and reads with read repair, replica maintenance and anti-entropy,
// replica diversion, caching along routes) is built on it as a
// core.Application in a later step; see "What the protocol adds" below.
//
// # Records
//
// A Record is a mutable record or an immutable object (the choices are
// recorded in docs/decisions/0061-past-records-and-store.md):
//
//   - Mutable: key = SHA-256(owner's raw Ed25519 public key ‖ name)[:16].
//     It holds a value (1 MiB at most by default, Limits), a version
//     (uint64), an expiry (unix seconds; 0: never), a tombstone flag (a
//     signed delete, whose value is empty) and the owner's Ed25519
//     signature over RecordContext and every other field (SignedBytes).
//     Sign and SignTombstone make them with a libp2p key, the node's own
//     identity by default.
//   - Immutable: key = SHA-256(value)[:16]; a value and nothing else, no
//     signature.
//
// The key is never on the wire: receivers derive it. Validate is what a
// receiver checks before storing or forwarding (shape, sizes, owner key,
// signature, expiry); CheckKey that a record is the one asked for.
//
// One codec: Record and StoreReceipt in the published schema,
// transport/pb/pastry.proto, encoded by hand on protowire in canonical
// form and decoded strictly (fields in order and once, declared wire
// types, zero values absent, shortest varints, no unknown fields or
// trailing bytes): a decoded record re-encodes to the same bytes, so its
// Digest (SHA-256 of the encoding) names it. The tests check the codec
// against the generated code; FuzzRecord and FuzzReceipt fuzz it.
//
// Version rules (Supersedes, SupersedesEntry): a higher version replaces
// a lower one; a lower one is ErrStale (a rollback); the same record is
// a no-op; a different record with the same version is ErrConflict. A
// mutable record replaces an immutable object at its key, never the
// reverse (the two derivations meet only when someone stores an owner's
// key and name as content, to squat on the key).
//
// A Receipt is a node's signed word that it stored (key, version,
// digest) durably, signed with its node key (SignReceipt, or
// NewReceipt's SignedBytes through core.Endpoint.Sign); VerifyReceipt
// checks it comes from the node expected, for the record expected.
//
// # Stores
//
// Store holds one node's records, at most one per key, and applies the
// version rules, the capacity (bytes) and the per-owner quota in Put,
// atomically. Ranges are arcs of the ring [lo, hi] that may wrap (as
// core.Endpoint.Range returns them); Range and Entries iterate in arc
// order, Summary gives the count, bytes and an order-independent hash of
// (key, version, digest) of a range for anti-entropy, Delete drops a
// record that left the node's range, Collect drops expired records and
// tombstones. Two implementations, one conformance suite
// (replication/storetest, with a property test against a plain model):
//
//   - MemStore, in memory, deterministic, for the simulator and tests;
//   - pebblestore.Store, on disk (Pebble), every change a batch synced
//     before it returns, every record checked when the store opens, and
//     a damaged store refused, untouched, with what to do.
//
// Nothing here starts a goroutine, reads a clock (now is passed in) or
// draws random numbers, so the protocol runs unchanged in the simulator.
//
// # What the protocol adds
//
// Placement (ReplicaSet, k = 5), the root coordinating writes, W and R
// quorums with receipts and read repair, maintenance when ranges change,
// anti-entropy with Summary (or Bloom filters built from Entries) in
// bounded batches, deleting what left the range once copies are
// confirmed, replica diversion, route caching, per-peer write rates, and
// the Go, HTTP and CLI surfaces and metrics. Its messages will go into
// the same schema.
package replication
