package secure

import (
	"container/list"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// DefaultVerifiedCerts is the Verifier's cache size when none is given:
// as many peers as the transport's caches of verified peer IDs hold.
const DefaultVerifiedCerts = 8192

// PeerCert is a certificate (its encoding) presented by, or for, a peer.
type PeerCert struct {
	Peer peer.ID
	Cert []byte
}

// VerifierStats counts a Verifier's work and its refusals by reason (the
// names of CertReason).
type VerifierStats struct {
	Verified  uint64            // signatures checked and found good
	CacheHits uint64            // certificates accepted without a signature check
	Batches   uint64            // VerifyBatch calls of more than one signature
	Fallbacks uint64            // of those, batches with a bad signature, checked one by one
	Rejected  map[string]uint64 // refusals by reason
}

// Verifier checks node certificates against one authority and network.
// A certificate's signature is checked once: the certificates that passed
// are remembered (by SHA-256 of their encoding, least recently used
// dropped first, at most the size given), and a remembered one costs only
// the peer and period checks. It is safe for concurrent use.
type Verifier struct {
	ca      ed25519.PublicKey
	network string
	rand    io.Reader // batch coefficients; nil is crypto/rand

	mu    sync.Mutex
	max   int
	lru   list.List // of *verified, most recent first
	byID  map[[32]byte]*list.Element
	stats VerifierStats
}

type verified struct {
	id   [32]byte
	cert *Certificate
	peer peer.ID
}

// NewVerifier returns a Verifier of the certificates ca signs for
// network, remembering up to maxCached of them (DefaultVerifiedCerts if
// maxCached <= 0). r gives batch verification its random coefficients
// (crypto/rand when nil); it must be safe for concurrent use if the
// Verifier is.
func NewVerifier(ca ed25519.PublicKey, network string, maxCached int, r io.Reader) (*Verifier, error) {
	if err := CheckAuthorityKey(ca); err != nil {
		return nil, err
	}
	if err := CheckNetworkName(network); err != nil {
		return nil, fmt.Errorf("secure: %v", err)
	}
	if maxCached <= 0 {
		maxCached = DefaultVerifiedCerts
	}
	return &Verifier{
		ca: ca, network: network, rand: r, max: maxCached,
		byID:  map[[32]byte]*list.Element{},
		stats: VerifierStats{Rejected: map[string]uint64{}},
	}, nil
}

// Verify checks the certificate cert that peer p presents, at now, and
// returns it decoded. An error wraps one of the ErrCert* reasons. The
// certificate returned is the one remembered: callers must not modify
// it.
func (v *Verifier) Verify(p peer.ID, cert []byte, now time.Time) (*Certificate, error) {
	cs, errs := v.VerifyAll([]PeerCert{{p, cert}}, now)
	return cs[0], errs[0]
}

// VerifyAll is Verify for many certificates at once (a join's answer, a
// row, a leaf set): those not remembered have their signatures checked in
// one batch. certs[i]'s result is in the i-th place of both slices.
func (v *Verifier) VerifyAll(certs []PeerCert, now time.Time) ([]*Certificate, []error) {
	out := make([]*Certificate, len(certs))
	errs := make([]error, len(certs))
	ids := make([][32]byte, len(certs))
	var todo []int // indices whose signatures must be checked
	for i, pc := range certs {
		ids[i] = sha256.Sum256(pc.Cert)
		if c, ok := v.lookup(ids[i], pc.Peer); ok {
			out[i], errs[i] = c, c.verifyScope(v.network, now)
			continue
		}
		c, err := ParseCertificate(pc.Cert)
		if err == nil {
			err = c.CheckPeer(pc.Peer)
		}
		if err == nil {
			err = c.verifyScope(v.network, now)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		out[i] = c
		todo = append(todo, i)
	}
	if len(todo) > 0 {
		items := make([]Signed, len(todo))
		for k, i := range todo {
			items[k] = Signed{PublicKey: v.ca, Message: out[i].signedMessage(), Signature: out[i].Signature[:]}
		}
		valid, all, err := VerifyBatch(items, v.rand)
		v.mu.Lock()
		if len(todo) > 1 {
			v.stats.Batches++
			if !all {
				v.stats.Fallbacks++
			}
		}
		v.mu.Unlock()
		for k, i := range todo {
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("%w: not checked: %v", ErrCertSignature, err)
			case !valid[k]:
				errs[i] = fmt.Errorf("%w (network %q, node id %s)", ErrCertSignature, out[i].Network, out[i].NodeID())
			default:
				v.remember(ids[i], out[i], certs[i].Peer)
			}
		}
	}
	v.mu.Lock()
	for i := range errs {
		if errs[i] != nil {
			out[i] = nil
			v.stats.Rejected[CertReason(errs[i])]++
		}
	}
	v.mu.Unlock()
	return out, errs
}

// lookup returns the remembered certificate with this id if p is its
// peer. A certificate presented by another peer is not found, and is
// then refused by the full check (key mismatch).
func (v *Verifier) lookup(id [32]byte, p peer.ID) (*Certificate, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.byID[id]
	if !ok || e.Value.(*verified).peer != p {
		return nil, false
	}
	v.lru.MoveToFront(e)
	v.stats.CacheHits++
	return e.Value.(*verified).cert, true
}

func (v *Verifier) remember(id [32]byte, c *Certificate, p peer.ID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats.Verified++
	if e, ok := v.byID[id]; ok {
		v.lru.MoveToFront(e)
		return
	}
	v.byID[id] = v.lru.PushFront(&verified{id: id, cert: c, peer: p})
	for v.lru.Len() > v.max {
		e := v.lru.Back()
		v.lru.Remove(e)
		delete(v.byID, e.Value.(*verified).id)
	}
}

// Cached is the number of certificates remembered.
func (v *Verifier) Cached() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lru.Len()
}

// Stats returns a copy of the counters.
func (v *Verifier) Stats() VerifierStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.stats
	s.Rejected = make(map[string]uint64, len(v.stats.Rejected))
	for k, n := range v.stats.Rejected {
		s.Rejected[k] = n
	}
	return s
}
