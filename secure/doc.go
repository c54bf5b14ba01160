// Package secure holds the node's identity and the pieces of secure
// routing built so far: an Ed25519 key pair, the libp2p peer ID derived
// from it, the Pastry nodeId derived from that, node certificates, the
// certificate authority, batch signature verification and the identity
// puzzle.
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
// # Certified ids
//
// Anyone can generate keys, so a key-derived id can still be aimed by
// grinding keys. A network may therefore admit nodes by certificate
// instead (docs/decisions/0059-certified-ids-and-puzzle.md): an offline
// [Authority] signs a [Certificate] binding a node's key to a nonce the
// authority chooses, a network name and a validity period, and the node's
// id becomes [Certificate.NodeID], SHA-256(key ‖ nonce)'s first 128 bits,
// which the node cannot choose. [Certificate.Verify] refuses a certificate
// with an error wrapping one reason (ErrCertMalformed, ErrCertSignature,
// ErrCertExpired, ErrCertNotYetValid, ErrCertForeignNetwork,
// ErrCertKeyMismatch; [CertReason] names it). The binary encoding is
// strict: one encoding per certificate, [ParseCertificate] refuses every
// other. A [Verifier] checks each certificate's signature once and
// remembers it (bounded), and checks many at once with [VerifyBatch],
// randomised Ed25519 batch verification on filippo.io/edwards25519 that
// falls back to one-by-one checks to find a bad signature.
//
// The authority's keys and certificates are PEM files (types
// [PEMAuthorityKey], [PEMAuthorityPub], [PEMCertificate]) accepted only in
// the exact form they are written in; [CreateFile] writes them 0600,
// atomically, never replacing a file.
//
// # The open mode's puzzle
//
// A network without an authority can price ids instead: S/Kademlia's
// static puzzle, SHA-256(SHA-256(raw public key)) with c1 leading zero
// bits ([CheckPuzzle], [SolvePuzzle]; c1 = 0 turns it off). An id then
// costs 2^c1 key generations on average, and an id with a chosen p-bit
// prefix 2^(c1+p): the puzzle makes aiming dearer, it does not prevent it.
//
// The transport enforces either mode on the wire (transport.Security:
// `pastry node --secure`, `--puzzle-bits`): in certificate mode every
// handle carries its certificate, checked with a Verifier; in open mode
// with the puzzle every handle's key must solve it.
package secure
