package replication

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// Receipt is a node's signed word that it durably stored a record: the
// record (Key, Version, Digest), the node (its public key, from which its
// node id derives), and when (Stored, the node's clock). A store signs
// one only after Put returned, so after the record is synced.
type Receipt struct {
	// Node is the storing node's raw 32-byte Ed25519 public key.
	Node    []byte
	Key     id.ID
	Version uint64
	Digest  [DigestSize]byte
	// Stored is the unix second at which the node stored the record.
	Stored    int64
	Signature []byte
}

// NewReceipt returns the unsigned receipt by node (a raw Ed25519 public
// key) for rec, stored at now. Sign its SignedBytes with the node's key
// (core.Endpoint.Sign does) and set Signature, or use SignReceipt.
func NewReceipt(node []byte, rec *Record, now int64) (*Receipt, error) {
	enc, err := rec.Marshal()
	if err != nil {
		return nil, err
	}
	return &Receipt{Node: bytes.Clone(node), Key: rec.Key(), Version: rec.Version, Digest: sha256.Sum256(enc), Stored: now}, nil
}

// SignReceipt returns rec's receipt signed with priv, the node's libp2p
// Ed25519 key.
func SignReceipt(priv crypto.PrivKey, rec *Record, now int64) (*Receipt, error) {
	if priv == nil || priv.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: signing key is not Ed25519", ErrBadKey)
	}
	pub, err := priv.GetPublic().Raw()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	rc, err := NewReceipt(pub, rec, now)
	if err != nil {
		return nil, err
	}
	if rc.Signature, err = priv.Sign(rc.SignedBytes()); err != nil {
		return nil, fmt.Errorf("replication: sign receipt: %w", err)
	}
	return rc, nil
}

// SignedBytes is what the node signs: ReceiptContext, node, key,
// version, digest, stored.
func (rc *Receipt) SignedBytes() []byte {
	b := make([]byte, 0, len(ReceiptContext)+len(rc.Node)+id.Len+8+DigestSize+8)
	b = append(b, ReceiptContext...)
	b = append(b, rc.Node...)
	b = append(b, rc.Key[:]...)
	b = binary.BigEndian.AppendUint64(b, rc.Version)
	b = append(b, rc.Digest[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(rc.Stored))
}

func (rc *Receipt) checkShape() error {
	switch {
	case len(rc.Node) != KeySize:
		return fmt.Errorf("%w: receipt node key of %d bytes, want %d", ErrMalformed, len(rc.Node), KeySize)
	case len(rc.Signature) != SignatureSize:
		return fmt.Errorf("%w: receipt signature of %d bytes, want %d", ErrMalformed, len(rc.Signature), SignatureSize)
	case rc.Stored < 0:
		return fmt.Errorf("%w: receipt stored at %d", ErrMalformed, rc.Stored)
	}
	return nil
}

// NodeID is the node id the receipt's key derives (as secure.NodeID):
// SHA-256(Node)[:16].
func (rc *Receipt) NodeID() id.ID {
	sum := sha256.Sum256(rc.Node)
	return idOf(sum[:])
}

// PeerID is the libp2p peer ID of the receipt's node.
func (rc *Receipt) PeerID() (peer.ID, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(rc.Node)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return peer.IDFromPublicKey(pub)
}

// Verify checks rc's shape, its node's key and its signature, and returns
// the node id of the node that signed it.
func (rc *Receipt) Verify() (id.ID, error) {
	if err := rc.checkShape(); err != nil {
		return id.ID{}, err
	}
	if err := secure.CheckPublicKey(rc.Node); err != nil {
		return id.ID{}, fmt.Errorf("%w: receipt node: %v", ErrBadKey, err)
	}
	if !ed25519.Verify(rc.Node, rc.SignedBytes(), rc.Signature) {
		return id.ID{}, fmt.Errorf("%w: receipt from %s for %s", ErrBadSignature, rc.NodeID().Short(), rc.Key.Short())
	}
	return rc.NodeID(), nil
}

// VerifyReceipt checks that rc is a valid receipt signed by node (a node
// id: whether that node belongs to the record's replica set is the
// caller's question) for exactly rec: ErrWrongNode, ErrKeyMismatch, or
// Verify's errors.
func VerifyReceipt(rc *Receipt, node id.ID, rec *Record) error {
	got, err := rc.Verify()
	if err != nil {
		return err
	}
	if got != node {
		return fmt.Errorf("%w: signed by %s, want %s", ErrWrongNode, got.Short(), node.Short())
	}
	e, err := rec.Entry()
	if err != nil {
		return err
	}
	if rc.Key != e.Key || rc.Version != e.Version || rc.Digest != e.Digest {
		return fmt.Errorf("%w: receipt for %s v%d, record %s v%d or another digest", ErrKeyMismatch,
			rc.Key.Short(), rc.Version, e.Key.Short(), e.Version)
	}
	return nil
}
