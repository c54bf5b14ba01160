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
// # The protocol (Past)
//
// Past is PAST's protocol as an application on the core's Endpoint
// (AppID 0xffff0003), over a Store; the runtime (Node.Put, GetRecord,
// the HTTP API, `pastry put|get|rm`) and the simulator run it.
//
//   - Placement: a record lives on the K nodes closest to its key (the
//     root's ReplicaSet; K = 5, at most L/2+1). A node stores a record
//     another sends only if its leaf set puts it among the K closest.
//   - Writes: Put routes the record to its key; the root validates and
//     stores it, sends it to the other K-1 replicas, and answers the
//     origin once W (ceil((K+1)/2)) receipts are in, each a replica's
//     signature (its node key, Endpoint.Sign) over the Receipt form of
//     (key, version, digest, stored). The origin checks every receipt's
//     signature against the handle it names, and counts distinct
//     signers. A lower version is refused (ErrStale), another record
//     with the same version too (ErrConflict): with W + R > K a version
//     is never rolled back.
//   - Reads: Get routes to the key; the root answers and asks R-1 other
//     replicas (the next one when one does not acknowledge); each
//     answers the origin; the origin keeps the newest version that
//     validates (owner's signature, key) and sends it to the replicas
//     that answered with less (read repair). A forged record never
//     passes; f Byzantine replicas of K can withhold or serve stale
//     data, which a read with R > f honest answers outvotes, but cannot
//     forge; a Byzantine root can refuse to coordinate (secure routing,
//     not built yet, is what reaches the true root).
//   - Answers to an origin the answering node is not connected to are
//     routed to the origin's id rather than dialled: a replica's answer
//     then carries its signature, a root's result is vouched for by its
//     receipts (a router can withhold or falsely report failure, not
//     forge success).
//   - Maintenance: every Maintain period (60 s), and 2 s after a leaf-set
//     change, a node sends each leaf-set neighbour the Summary of the
//     range both should hold (empty ranges are not sent); on a mismatch
//     the neighbours swap entries (key, version, digest; at most 512) and
//     push each other what the other lacks (at most MaxHandoff a round).
//     Records outside the node's range are sent to their K closest and
//     deleted once more than K/2 confirmed them with receipts.
//
// A root coordinates at most WriteRate writes a second from one origin
// (50, burst 200); beyond, it refuses them (counted).
//
// Capacity and replica diversion (divert.go; decision 0064): a replica
// keeps a record only if it takes at most TPri (0.1) of the store's free
// space; otherwise it diverts it to a leaf-set neighbour outside the K
// closest that takes it within TDiv (0.05) of its own, and keeps the
// neighbour's signed receipt as a pointer, which writes, reads,
// summaries and repair treat as the copy. No space anywhere: refused as
// full (ErrCapacity), and counted; a store's per-owner quota: ErrQuota.
// File diversion (another salt, another key) is the client's.
//
// Caching along routes (cache.go, Forward; decision 0065): reads record
// their route, the root sends its copy back along it, and each node keeps
// it in a byte-bounded LRU; a cache answers an immutable object to any
// read and a mutable record only to a read with ReadOptions.Stale.
// PutWith and GetWith take one operation's K, W, R and Stale.
//
// The protocol's messages use their own strict binary codec (wire.go,
// FuzzProtocol), as the other applications' payloads do; the records and
// receipts inside them are the published schema's (decision 0066).
package replication
