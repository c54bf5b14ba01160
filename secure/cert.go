package secure

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"filippo.io/edwards25519"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
)

// Why a certificate is refused. Every error of [Certificate.Verify],
// [ParseCertificate] and the [Verifier] wraps exactly one of these, so
// that callers can count refusals by reason ([CertReason]).
var (
	ErrCertMalformed      = errors.New("secure: malformed certificate")
	ErrCertSignature      = errors.New("secure: certificate not signed by the authority")
	ErrCertExpired        = errors.New("secure: certificate expired")
	ErrCertNotYetValid    = errors.New("secure: certificate not yet valid")
	ErrCertForeignNetwork = errors.New("secure: certificate of another network")
	ErrCertKeyMismatch    = errors.New("secure: certificate of another key")
)

// CertReason names the reason err wraps, for counters: "malformed",
// "signature", "expired", "not_yet_valid", "foreign_network",
// "key_mismatch", "" for nil and "other" for anything else.
func CertReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrCertMalformed):
		return "malformed"
	case errors.Is(err, ErrCertSignature):
		return "signature"
	case errors.Is(err, ErrCertExpired):
		return "expired"
	case errors.Is(err, ErrCertNotYetValid):
		return "not_yet_valid"
	case errors.Is(err, ErrCertForeignNetwork):
		return "foreign_network"
	case errors.Is(err, ErrCertKeyMismatch):
		return "key_mismatch"
	}
	return "other"
}

// The certificate's binary layout (version 1), all integers big-endian:
//
//	version     1 byte, 1
//	public key  32 bytes, the node's raw Ed25519 public key
//	nonce len   1 byte, 16 or 32
//	nonce       nonce len bytes, chosen by the authority
//	network len 1 byte, 1 to MaxNetworkLen
//	network     network len bytes, printable ASCII without spaces
//	not before  8 bytes, unix seconds, signed
//	not after   8 bytes, unix seconds, signed, > not before
//	signature   64 bytes, Ed25519 by the authority over CertContext
//	            followed by every byte above
//
// Nothing may follow the signature.
const (
	CertVersion   = 1
	CertContext   = "pastry cert v1\x00"
	MaxNetworkLen = 64
	// CertNonceLen is the length of the nonces the Authority chooses;
	// a 16-byte nonce is accepted too.
	CertNonceLen = 32
	minCertLen   = 1 + 32 + 1 + 16 + 1 + 1 + 8 + 8 + ed25519.SignatureSize
	// MaxCertLen is the longest valid encoding, 211 bytes.
	MaxCertLen = 1 + 32 + 1 + 32 + 1 + MaxNetworkLen + 8 + 8 + ed25519.SignatureSize
)

// Certificate binds a node's Ed25519 key to a node id the authority
// chose (through Nonce), in one network, for a validity period.
type Certificate struct {
	PublicKey [32]byte // the node's raw Ed25519 public key
	Nonce     []byte   // 16 or 32 bytes, chosen by the authority
	Network   string   // the network's name
	NotBefore int64    // unix seconds: valid from this second...
	NotAfter  int64    // ...up to and excluding this one
	Signature [ed25519.SignatureSize]byte
}

// NodeID is the certified node id: the first 128 bits of SHA-256 over the
// public key followed by the nonce. The node cannot choose it: the
// authority picks the nonce after the key exists.
func (c *Certificate) NodeID() id.ID {
	h := sha256.New()
	h.Write(c.PublicKey[:])
	h.Write(c.Nonce)
	var x id.ID
	copy(x[:], h.Sum(nil))
	return x
}

// CertID identifies a certificate: SHA-256 of its encoding. Two
// certificates with the same CertID are the same bytes.
func (c *Certificate) CertID() ([32]byte, error) {
	b, err := c.MarshalBinary()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// PeerID is the libp2p peer ID of the certified key.
func (c *Certificate) PeerID() (peer.ID, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(c.PublicKey[:])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrCertMalformed, err)
	}
	return peer.IDFromPublicKey(pub)
}

// Validity returns NotBefore and NotAfter as times.
func (c *Certificate) Validity() (notBefore, notAfter time.Time) {
	return time.Unix(c.NotBefore, 0), time.Unix(c.NotAfter, 0)
}

// check validates every field but the signature.
func (c *Certificate) check() error {
	if err := checkNodeKey(c.PublicKey[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrCertMalformed, err)
	}
	if n := len(c.Nonce); n != 16 && n != 32 {
		return fmt.Errorf("%w: %d-byte nonce, want 16 or 32", ErrCertMalformed, n)
	}
	if err := CheckNetworkName(c.Network); err != nil {
		return fmt.Errorf("%w: %v", ErrCertMalformed, err)
	}
	if c.NotAfter <= c.NotBefore {
		return fmt.Errorf("%w: not after (%d) is not later than not before (%d)", ErrCertMalformed, c.NotAfter, c.NotBefore)
	}
	return nil
}

// CheckNetworkName accepts 1 to MaxNetworkLen bytes of printable ASCII
// without spaces.
func CheckNetworkName(name string) error {
	if len(name) == 0 || len(name) > MaxNetworkLen {
		return fmt.Errorf("network name of %d bytes, want 1 to %d", len(name), MaxNetworkLen)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b <= ' ' || b > '~' {
			return fmt.Errorf("network name %q: printable ASCII without spaces only", name)
		}
	}
	return nil
}

// CheckPublicKey accepts the canonical encoding of an Ed25519 public key
// that is not of small order (a small-order key lets anyone sign for it),
// as certificates require of node keys. Records (package replication)
// require it of their owners' and storing nodes' keys.
func CheckPublicKey(raw []byte) error { return checkNodeKey(raw) }

// checkNodeKey is CheckPublicKey.
func checkNodeKey(raw []byte) error {
	if len(raw) != ed25519.PublicKeySize {
		return fmt.Errorf("%d-byte public key", len(raw))
	}
	if bytes.Equal(raw, make([]byte, ed25519.PublicKeySize)) {
		return errors.New("all-zero public key")
	}
	p, err := new(edwards25519.Point).SetBytes(raw)
	if err != nil {
		return errors.New("public key is not a curve point")
	}
	if !bytes.Equal(p.Bytes(), raw) {
		return errors.New("public key not in canonical encoding")
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errors.New("public key of small order")
	}
	return nil
}

// appendBody appends the signed fields (everything but the signature).
func (c *Certificate) appendBody(b []byte) []byte {
	b = append(b, CertVersion)
	b = append(b, c.PublicKey[:]...)
	b = append(b, byte(len(c.Nonce)))
	b = append(b, c.Nonce...)
	b = append(b, byte(len(c.Network)))
	b = append(b, c.Network...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.NotBefore))
	return binary.BigEndian.AppendUint64(b, uint64(c.NotAfter))
}

// signedMessage is what the authority signs: CertContext, then the body.
func (c *Certificate) signedMessage() []byte {
	return c.appendBody(append(make([]byte, 0, len(CertContext)+MaxCertLen), CertContext...))
}

// MarshalBinary encodes c in the layout above. A certificate with an
// invalid field is an error wrapping ErrCertMalformed; the signature is
// not checked.
func (c *Certificate) MarshalBinary() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	b := c.appendBody(make([]byte, 0, MaxCertLen))
	return append(b, c.Signature[:]...), nil
}

// ParseCertificate decodes a certificate. It refuses, with an error
// wrapping ErrCertMalformed, anything that MarshalBinary would not
// produce: another version, a bad length or field, an invalid public key,
// bytes after the signature. It does not check the signature or the
// validity period: that is Verify.
func ParseCertificate(data []byte) (*Certificate, error) {
	if len(data) < minCertLen || len(data) > MaxCertLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d to %d", ErrCertMalformed, len(data), minCertLen, MaxCertLen)
	}
	if data[0] != CertVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCertMalformed, data[0], CertVersion)
	}
	c := &Certificate{}
	copy(c.PublicKey[:], data[1:33])
	rest := data[33:]
	nl := int(rest[0])
	if nl != 16 && nl != 32 {
		return nil, fmt.Errorf("%w: %d-byte nonce, want 16 or 32", ErrCertMalformed, nl)
	}
	rest = rest[1:]
	if len(rest) < nl+1 {
		return nil, fmt.Errorf("%w: truncated", ErrCertMalformed)
	}
	c.Nonce = bytes.Clone(rest[:nl])
	rest = rest[nl:]
	ml := int(rest[0])
	rest = rest[1:]
	if want := ml + 16 + ed25519.SignatureSize; len(rest) != want {
		return nil, fmt.Errorf("%w: %d bytes after the network name's length %d, want %d", ErrCertMalformed, len(rest), ml, want)
	}
	c.Network = string(rest[:ml])
	rest = rest[ml:]
	c.NotBefore = int64(binary.BigEndian.Uint64(rest[:8]))
	c.NotAfter = int64(binary.BigEndian.Uint64(rest[8:16]))
	copy(c.Signature[:], rest[16:])
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Verify checks that c is well-formed, of network, valid at now, and
// signed by the authority whose public key is ca. Each failure wraps one
// of the ErrCert* reasons. The cheap checks come first, so a refusal for
// the network or the period costs no signature check.
func (c *Certificate) Verify(ca ed25519.PublicKey, network string, now time.Time) error {
	if err := c.verifyFields(network, now); err != nil {
		return err
	}
	if len(ca) != ed25519.PublicKeySize || !ed25519.Verify(ca, c.signedMessage(), c.Signature[:]) {
		return fmt.Errorf("%w (network %q, node id %s)", ErrCertSignature, c.Network, c.NodeID())
	}
	return nil
}

// VerifyPeer is Verify, and also checks that the certificate is p's: the
// key p embeds is the certified one (ErrCertKeyMismatch otherwise).
func (c *Certificate) VerifyPeer(ca ed25519.PublicKey, network string, p peer.ID, now time.Time) error {
	if err := c.CheckPeer(p); err != nil {
		return err
	}
	return c.Verify(ca, network, now)
}

// CheckPeer reports, with an error wrapping ErrCertKeyMismatch, whether
// p is not the canonical peer ID of the certified key.
func (c *Certificate) CheckPeer(p peer.ID) error {
	want, err := c.PeerID()
	if err != nil {
		return err
	}
	if p != want {
		return fmt.Errorf("%w: certificate of %s presented by %s", ErrCertKeyMismatch, want, p)
	}
	return nil
}

// verifyFields is Verify without the signature.
func (c *Certificate) verifyFields(network string, now time.Time) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.verifyScope(network, now)
}

// verifyScope checks the network and the period of a well-formed
// certificate.
func (c *Certificate) verifyScope(network string, now time.Time) error {
	if c.Network != network {
		return fmt.Errorf("%w: issued for %q, this is %q", ErrCertForeignNetwork, c.Network, network)
	}
	t := now.Unix()
	if t < c.NotBefore {
		return fmt.Errorf("%w: valid from %s, now %s", ErrCertNotYetValid, fmtUnix(c.NotBefore), fmtUnix(t))
	}
	if t >= c.NotAfter {
		return fmt.Errorf("%w: valid until %s, now %s", ErrCertExpired, fmtUnix(c.NotAfter), fmtUnix(t))
	}
	return nil
}

func fmtUnix(s int64) string { return time.Unix(s, 0).UTC().Format(time.RFC3339) }

// Authority is a certificate authority: an Ed25519 key that signs node
// certificates. It is meant to stay offline (`pastry ca issue`).
type Authority struct {
	priv ed25519.PrivateKey
}

// IssueBackdate is how far before the time of issue a certificate's
// period starts, so that a node whose clock is a little behind the
// authority's accepts its new certificate at once.
const IssueBackdate = 5 * time.Minute

// NewAuthority creates an authority with a new key from r (crypto/rand
// when nil).
func NewAuthority(r io.Reader) (*Authority, error) {
	if r == nil {
		r = rand.Reader
	}
	var seed [ed25519.SeedSize]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return nil, fmt.Errorf("secure: generate authority key: %w", err)
	}
	return AuthorityFromSeed(seed[:])
}

// AuthorityFromSeed is the authority of a 32-byte Ed25519 seed.
func AuthorityFromSeed(seed []byte) (*Authority, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("secure: %d-byte authority seed, want %d", len(seed), ed25519.SeedSize)
	}
	return &Authority{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public is the authority's public key, which nodes verify against.
func (a *Authority) Public() ed25519.PublicKey {
	return bytes.Clone(a.priv.Public().(ed25519.PublicKey))
}

// Seed is the authority's private seed, for its key file.
func (a *Authority) Seed() []byte { return bytes.Clone(a.priv.Seed()) }

// Issue certifies nodePub (an Ed25519 key) in network from IssueBackdate
// before now until now+validity, with a CertNonceLen-byte nonce from r
// (crypto/rand when nil).
func (a *Authority) Issue(nodePub crypto.PubKey, network string, now time.Time, validity time.Duration, r io.Reader) (*Certificate, error) {
	if nodePub == nil || nodePub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: node key is not Ed25519", ErrKeyType)
	}
	raw, err := nodePub.Raw()
	if err != nil {
		return nil, fmt.Errorf("secure: raw node key: %w", err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("secure: validity %v, want more than 0", validity)
	}
	if r == nil {
		r = rand.Reader
	}
	c := &Certificate{
		Nonce:     make([]byte, CertNonceLen),
		Network:   network,
		NotBefore: now.Add(-IssueBackdate).Unix(),
		NotAfter:  now.Add(validity).Unix(),
	}
	copy(c.PublicKey[:], raw)
	if len(raw) != len(c.PublicKey) {
		return nil, fmt.Errorf("%w: %d-byte node key", ErrKeyType, len(raw))
	}
	if _, err := io.ReadFull(r, c.Nonce); err != nil {
		return nil, fmt.Errorf("secure: certificate nonce: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	copy(c.Signature[:], ed25519.Sign(a.priv, c.signedMessage()))
	return c, nil
}

// CheckAuthorityKey accepts an authority public key: the canonical
// encoding of a point of the prime-order subgroup (no small-order
// component). Batch verification ([VerifyBatch]) agrees with
// ed25519.Verify for every signature under such a key that its owner did
// not craft to disagree.
func CheckAuthorityKey(pub ed25519.PublicKey) error {
	if err := checkNodeKey(pub); err != nil {
		return fmt.Errorf("secure: authority key: %v", err)
	}
	p, _ := new(edwards25519.Point).SetBytes(pub)
	// [l]P = [l-1]P + P is the identity exactly when P has no torsion.
	lm1 := []byte{236, 211, 245, 92, 26, 99, 18, 88, 214, 156, 247, 162, 222, 249, 222, 20,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(lm1)
	if err != nil {
		return err
	}
	q := new(edwards25519.Point).ScalarMult(s, p)
	if q.Add(q, p).Equal(edwards25519.NewIdentityPoint()) != 1 {
		return errors.New("secure: authority key: point has a small-order component")
	}
	return nil
}
