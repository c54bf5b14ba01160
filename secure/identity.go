package secure

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
)

var (
	// ErrKeyType is returned for a key that is not Ed25519.
	ErrKeyType = errors.New("secure: not an Ed25519 key")
	// ErrPeerID is returned for a peer ID that does not embed a public key
	// in canonical form.
	ErrPeerID = errors.New("secure: peer ID does not embed an Ed25519 public key")
)

// Ed25519PeerIDLen is the length of the canonical peer ID of an Ed25519
// key: identity multihash (2 bytes) around the protobuf PublicKey (4 bytes
// of tags and lengths plus the 32-byte key).
const Ed25519PeerIDLen = 38

// NodeID derives the Pastry nodeId of a public key: the first 128 bits of
// SHA-256 over the raw 32-byte Ed25519 public key. Other key types are an
// error.
func NodeID(pub crypto.PubKey) (id.ID, error) {
	if pub == nil {
		return id.ID{}, fmt.Errorf("%w: nil key", ErrKeyType)
	}
	if pub.Type() != crypto.Ed25519 {
		return id.ID{}, fmt.Errorf("%w: got %s", ErrKeyType, pub.Type())
	}
	raw, err := pub.Raw()
	if err != nil {
		return id.ID{}, fmt.Errorf("secure: raw public key: %w", err)
	}
	if len(raw) != 32 {
		return id.ID{}, fmt.Errorf("%w: %d-byte public key", ErrKeyType, len(raw))
	}
	sum := sha256.Sum256(raw)
	var x id.ID
	copy(x[:], sum[:id.Len])
	return x, nil
}

// NodeIDFromPeer extracts the Ed25519 public key embedded in p and derives
// its nodeId. p must be the canonical peer ID of that key (the one libp2p
// derives in the secure handshake); any other encoding of the same key is
// rejected, so that one key cannot appear under several peer IDs.
func NodeIDFromPeer(p peer.ID) (id.ID, error) {
	if len(p) != Ed25519PeerIDLen {
		return id.ID{}, fmt.Errorf("%w: %d bytes, want %d", ErrPeerID, len(p), Ed25519PeerIDLen)
	}
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return id.ID{}, fmt.Errorf("%w: %v", ErrPeerID, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return id.ID{}, fmt.Errorf("%w: embeds a %s key", ErrPeerID, pub.Type())
	}
	canon, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return id.ID{}, fmt.Errorf("%w: %v", ErrPeerID, err)
	}
	if canon != p {
		return id.ID{}, fmt.Errorf("%w: not the canonical encoding of its key", ErrPeerID)
	}
	return NodeID(pub)
}

// HandleFromPeer returns the node handle of p: its derived nodeId and, as
// the address, the peer ID's raw bytes (string(p)).
func HandleFromPeer(p peer.ID) (id.Handle, error) {
	x, err := NodeIDFromPeer(p)
	if err != nil {
		return id.Handle{}, err
	}
	return id.Handle{ID: x, Addr: string(p)}, nil
}

// PeerFromHandle returns the peer ID in h.Addr. It checks only that the
// bytes are a multihash; it does not recompute the nodeId.
func PeerFromHandle(h id.Handle) (peer.ID, error) {
	if h.Addr == "" {
		return "", fmt.Errorf("%w: handle %s has no peer ID", ErrPeerID, h)
	}
	p, err := peer.IDFromBytes([]byte(h.Addr))
	if err != nil {
		return "", fmt.Errorf("%w: handle %s: %v", ErrPeerID, h, err)
	}
	return p, nil
}

// GenerateKey creates an Ed25519 key pair from rand (crypto/rand when nil).
// A deterministic reader gives a deterministic key, for tests.
func GenerateKey(r io.Reader) (crypto.PrivKey, error) {
	if r == nil {
		r = rand.Reader
	}
	priv, _, err := crypto.GenerateEd25519Key(r)
	if err != nil {
		return nil, fmt.Errorf("secure: generate Ed25519 key: %w", err)
	}
	return priv, nil
}
