package secure

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

const testNet = "testnet"

var t0 = time.Unix(1_800_000_000, 0)

func testAuthority(t testing.TB, seed uint64) *Authority {
	t.Helper()
	a, err := NewAuthority(seeded(1000 + seed))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testCert issues a certificate for a new node key.
func testCert(t testing.TB, a *Authority, seed uint64) (*Certificate, crypto.PrivKey) {
	t.Helper()
	priv, err := GenerateKey(seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Issue(priv.GetPublic(), testNet, t0, 24*time.Hour, seeded(500+seed))
	if err != nil {
		t.Fatal(err)
	}
	return c, priv
}

func peerOf(t testing.TB, priv crypto.PrivKey) peer.ID {
	t.Helper()
	p, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCertificateRoundTripAndVerify(t *testing.T) {
	a := testAuthority(t, 1)
	c, priv := testCert(t, a, 1)
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1+32+1+32+1+len(testNet)+16+64 {
		t.Fatalf("encoding of %d bytes", len(b))
	}
	got, err := ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) || got.Network != testNet || !bytes.Equal(got.Nonce, c.Nonce) {
		t.Fatalf("round trip: %+v", got)
	}
	if err := got.VerifyPeer(a.Public(), testNet, peerOf(t, priv), t0); err != nil {
		t.Fatalf("fresh certificate refused: %v", err)
	}
	if nb, na := got.Validity(); !nb.Equal(t0.Add(-IssueBackdate)) || !na.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("validity %v to %v", nb, na)
	}
	id1, _ := c.CertID()
	if id1 != sha256.Sum256(b) {
		t.Fatal("CertID is not SHA-256 of the encoding")
	}
}

// The certified id is SHA-256(key || nonce), not the key's own id, and
// another nonce (another issue of the same key) gives another id.
func TestCertifiedNodeID(t *testing.T) {
	a := testAuthority(t, 1)
	priv, _ := GenerateKey(seeded(2))
	c1, _ := a.Issue(priv.GetPublic(), testNet, t0, time.Hour, seeded(1))
	c2, _ := a.Issue(priv.GetPublic(), testNet, t0, time.Hour, seeded(2))
	raw, _ := priv.GetPublic().Raw()
	sum := sha256.Sum256(append(append([]byte{}, raw...), c1.Nonce...))
	if got := c1.NodeID(); !bytes.Equal(got[:], sum[:16]) {
		t.Fatalf("NodeID %s, want %x", got, sum[:16])
	}
	own, _ := NodeID(priv.GetPublic())
	if c1.NodeID() == own || c1.NodeID() == c2.NodeID() {
		t.Fatal("the certified id does not depend on the authority's nonce")
	}
}

func TestCertificateVerifyReasons(t *testing.T) {
	a, other := testAuthority(t, 1), testAuthority(t, 2)
	c, priv := testCert(t, a, 3)
	p := peerOf(t, priv)
	_, stranger := testCert(t, a, 4)
	forged := *c
	forged.NotAfter += 3600 // extend it: the signature no longer matches
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"expired", c.Verify(a.Public(), testNet, t0.Add(24*time.Hour)), ErrCertExpired},
		{"not yet valid", c.Verify(a.Public(), testNet, t0.Add(-IssueBackdate-time.Second)), ErrCertNotYetValid},
		{"foreign network", c.Verify(a.Public(), "othernet", t0), ErrCertForeignNetwork},
		{"other authority", c.Verify(other.Public(), testNet, t0), ErrCertSignature},
		{"forged field", forged.Verify(a.Public(), testNet, t0), ErrCertSignature},
		{"short authority key", c.Verify(a.Public()[:31], testNet, t0), ErrCertSignature},
		{"key mismatch", c.VerifyPeer(a.Public(), testNet, peerOf(t, stranger), t0), ErrCertKeyMismatch},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
		if CertReason(tc.err) == "other" || CertReason(tc.err) == "" {
			t.Errorf("%s: no reason for %v", tc.name, tc.err)
		}
	}
	// The last valid second, and the first.
	if err := c.VerifyPeer(a.Public(), testNet, p, time.Unix(c.NotAfter-1, 0)); err != nil {
		t.Errorf("last second: %v", err)
	}
	if err := c.Verify(a.Public(), testNet, time.Unix(c.NotBefore, 0)); err != nil {
		t.Errorf("first second: %v", err)
	}
	if CertReason(nil) != "" || CertReason(errors.New("x")) != "other" {
		t.Error("CertReason of nil or an unrelated error")
	}
}

// mutate returns a certificate encoding changed by f.
func mutate(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }

func TestParseCertificateRejects(t *testing.T) {
	a := testAuthority(t, 1)
	c, _ := testCert(t, a, 5)
	good, _ := c.MarshalBinary()
	nonceAt, netAt := 33, 34+32 // offsets of the nonce length and the network length
	smallOrder := make([]byte, 32)
	smallOrder[0] = 1 // the identity point's encoding
	nonCanon := make([]byte, 32)
	nonCanon[0] = 0xed // y = p: the non-canonical encoding of y = 0
	for i := 1; i < 31; i++ {
		nonCanon[i] = 0xff
	}
	nonCanon[31] = 0x7f
	notOnCurve := bytes.Repeat([]byte{0}, 32)
	notOnCurve[0] = 2 // y = 2 has no x
	setKey := func(k []byte) func([]byte) []byte {
		return func(b []byte) []byte { copy(b[1:33], k); return b }
	}
	cases := map[string][]byte{
		"empty":            nil,
		"truncated":        good[:len(good)-1],
		"trailing byte":    append(bytes.Clone(good), 0),
		"oversize":         bytes.Repeat([]byte{1}, MaxCertLen+1),
		"version 2":        mutate(good, func(b []byte) []byte { b[0] = 2; return b }),
		"zero key":         mutate(good, setKey(make([]byte, 32))),
		"small-order key":  mutate(good, setKey(smallOrder)),
		"non-canonical":    mutate(good, setKey(nonCanon)),
		"not on curve":     mutate(good, setKey(notOnCurve)),
		"nonce length 20":  mutate(good, func(b []byte) []byte { b[nonceAt] = 20; return b }),
		"network length 0": mutate(good, func(b []byte) []byte { b[netAt] = 0; return b }),
		"network too long": mutate(good, func(b []byte) []byte { b[netAt] = 200; return b }),
		"network space":    mutate(good, func(b []byte) []byte { b[netAt+1] = ' '; return b }),
		"network control":  mutate(good, func(b []byte) []byte { b[netAt+1] = 0x7f; return b }),
		"period reversed": mutate(good, func(b []byte) []byte {
			at := netAt + 1 + len(testNet)
			binary.BigEndian.PutUint64(b[at+8:], binary.BigEndian.Uint64(b[at:]))
			return b
		}),
	}
	for name, b := range cases {
		got, err := ParseCertificate(b)
		if !errors.Is(err, ErrCertMalformed) || got != nil {
			t.Errorf("%s: ParseCertificate = %v, %v; want ErrCertMalformed", name, got, err)
		}
	}
	// A 16-byte nonce is accepted.
	c16 := *c
	c16.Nonce = c.Nonce[:16]
	b16, err := c16.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseCertificate(b16); err != nil || len(got.Nonce) != 16 {
		t.Fatalf("16-byte nonce: %v", err)
	}
	// The same checks guard MarshalBinary and Verify of a hand-made value.
	bad := *c
	bad.Network = strings.Repeat("n", MaxNetworkLen+1)
	if _, err := bad.MarshalBinary(); !errors.Is(err, ErrCertMalformed) {
		t.Errorf("MarshalBinary of a long name: %v", err)
	}
	if err := bad.Verify(a.Public(), bad.Network, t0); !errors.Is(err, ErrCertMalformed) {
		t.Errorf("Verify of a long name: %v", err)
	}
}

func TestIssueRejects(t *testing.T) {
	a := testAuthority(t, 1)
	priv, _ := GenerateKey(seeded(6))
	_, secp, _ := crypto.GenerateSecp256k1Key(seeded(7))
	if _, err := a.Issue(secp, testNet, t0, time.Hour, nil); !errors.Is(err, ErrKeyType) {
		t.Errorf("secp256k1: %v", err)
	}
	if _, err := a.Issue(priv.GetPublic(), "bad net", t0, time.Hour, nil); !errors.Is(err, ErrCertMalformed) {
		t.Errorf("bad network name: %v", err)
	}
	if _, err := a.Issue(priv.GetPublic(), testNet, t0, 0, nil); err == nil {
		t.Error("zero validity accepted")
	}
	if _, err := a.Issue(priv.GetPublic(), testNet, t0, time.Hour, bytes.NewReader(nil)); err == nil {
		t.Error("an empty reader gave a nonce")
	}
}

func TestCheckAuthorityKey(t *testing.T) {
	a := testAuthority(t, 1)
	if err := CheckAuthorityKey(a.Public()); err != nil {
		t.Fatal(err)
	}
	// The key plus a point of order 2 (0, -1): on the curve, canonical,
	// not of small order, but with a torsion component.
	torsion, _ := new(edwards25519.Point).SetBytes(append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...))
	A, _ := new(edwards25519.Point).SetBytes(a.Public())
	mixed := new(edwards25519.Point).Add(A, torsion).Bytes()
	if err := CheckAuthorityKey(mixed); err == nil {
		t.Fatal("accepted a key with a small-order component")
	}
	if err := CheckAuthorityKey(make([]byte, 32)); err == nil {
		t.Fatal("accepted the zero key")
	}
	if err := CheckAuthorityKey(ed25519.PublicKey(a.Public()[:5])); err == nil {
		t.Fatal("accepted a 5-byte key")
	}
}
