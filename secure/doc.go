// Package secure holds the node's identity: an Ed25519 key pair, the libp2p
// peer ID derived from it, and the Pastry nodeId derived from that.
//
// Why the nodeId comes from the key: Pastry's routing guarantees assume
// nodeIds are uniformly distributed and cannot be chosen by an attacker
// (Castro et al., OSDI 2002). Deriving the id as the first 128 bits of
// SHA-256 over the raw Ed25519 public key makes it self-certifying: anyone
// holding a peer ID can recompute the nodeId, and libp2p's secure channel
// proves that the remote end owns the key. So a node handle received from
// the network is checked, never trusted: [NodeIDFromPeer] recomputes the
// id from the peer ID (the transport does this for every handle it
// decodes), and the peer ID must be the canonical encoding of an Ed25519
// key, so one key has exactly one peer ID and one nodeId.
//
// Only Ed25519 is accepted: its public key is embedded in the peer ID
// (identity multihash), so no extra key exchange is needed to verify an id,
// and signatures are small and fast to batch-verify.
//
// The key file written by [LoadOrCreateKey] holds libp2p's protobuf
// encoding of the private key (crypto.MarshalPrivateKey), mode 0600. It is
// created atomically and never overwritten: losing or replacing it changes
// the node's identity, and with it the node's place on the ring.
//
// Certificates, puzzles, the admission policy and secure routing will live
// here too; this file covers identities only.
package secure
