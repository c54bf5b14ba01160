package secure

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/pastrynet/pastry/id"
)

// seeded returns a deterministic reader for key generation.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func TestNodeIDIsSHA256OfRawKey(t *testing.T) {
	priv, err := GenerateKey(seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := priv.GetPublic().Raw()
	if err != nil {
		t.Fatal(err)
	}
	got, err := NodeID(priv.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if !bytes.Equal(got[:], sum[:16]) {
		t.Fatalf("NodeID = %x, want %x", got, sum[:16])
	}
}

func TestGenerateKeyDeterministic(t *testing.T) {
	a, _ := GenerateKey(seeded(7))
	b, _ := GenerateKey(seeded(7))
	c, _ := GenerateKey(seeded(8))
	if !a.Equals(b) {
		t.Fatal("same seed gave different keys")
	}
	if a.Equals(c) {
		t.Fatal("different seeds gave the same key")
	}
	r, err := GenerateKey(nil)
	if err != nil || r.Type() != crypto.Ed25519 {
		t.Fatalf("GenerateKey(nil) = %v, %v", r, err)
	}
}

func TestNodeIDRejectsOtherKeyTypes(t *testing.T) {
	_, pub, err := crypto.GenerateSecp256k1Key(seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NodeID(pub); !errors.Is(err, ErrKeyType) {
		t.Fatalf("secp256k1: err = %v, want ErrKeyType", err)
	}
	if _, err := NodeID(nil); !errors.Is(err, ErrKeyType) {
		t.Fatalf("nil: err = %v, want ErrKeyType", err)
	}
	p, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NodeIDFromPeer(p); !errors.Is(err, ErrPeerID) {
		t.Fatalf("secp256k1 peer: err = %v, want ErrPeerID", err)
	}
}

func TestNodeIDFromPeerMatchesKey(t *testing.T) {
	for seed := range uint64(20) {
		priv, _ := GenerateKey(seeded(seed))
		p, err := peer.IDFromPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := NodeID(priv.GetPublic())
		got, err := NodeIDFromPeer(p)
		if err != nil || got != want {
			t.Fatalf("seed %d: NodeIDFromPeer = %s, %v; want %s", seed, got, err, want)
		}
		h, err := HandleFromPeer(p)
		if err != nil || h.ID != want || h.Addr != string(p) {
			t.Fatalf("HandleFromPeer = %+v, %v", h, err)
		}
		back, err := PeerFromHandle(h)
		if err != nil || back != p {
			t.Fatalf("PeerFromHandle = %s, %v; want %s", back, err, p)
		}
	}
}

func TestNodeIDFromPeerRejectsBadPeerIDs(t *testing.T) {
	priv, _ := GenerateKey(seeded(3))
	good, _ := peer.IDFromPrivateKey(priv)
	raw, _ := priv.GetPublic().Raw()

	// The same key with an extra (unknown) protobuf field: a valid identity
	// multihash and a parseable key, but not the canonical peer ID.
	pb, _ := crypto.MarshalPublicKey(priv.GetPublic())
	padded := append(append([]byte{}, pb...), 0x18, 0x01) // field 3, varint 1
	nonCanon, err := mh.Sum(padded, mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	// A sha256 peer ID (as RSA keys have): no key inside.
	hashed, _ := mh.Sum(raw, mh.SHA2_256, -1)

	flipped := []byte(good)
	flipped[3] ^= 0xff // corrupt the protobuf key type tag

	cases := map[string]peer.ID{
		"empty":         "",
		"garbage":       peer.ID(bytes.Repeat([]byte{0xAB}, 38)),
		"truncated":     good[:37],
		"non-canonical": peer.ID(nonCanon),
		"sha256":        peer.ID(hashed),
		"flipped":       peer.ID(flipped),
	}
	for name, p := range cases {
		if _, err := NodeIDFromPeer(p); !errors.Is(err, ErrPeerID) {
			t.Errorf("%s: err = %v, want ErrPeerID", name, err)
		}
		if _, err := HandleFromPeer(p); err == nil {
			t.Errorf("%s: HandleFromPeer accepted it", name)
		}
	}
	for _, h := range []id.Handle{{}, {Addr: "not a multihash"}} {
		if _, err := PeerFromHandle(h); !errors.Is(err, ErrPeerID) {
			t.Errorf("PeerFromHandle(%q): err = %v, want ErrPeerID", h.Addr, err)
		}
	}
}
