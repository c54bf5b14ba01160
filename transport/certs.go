package transport

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// Security is a network's admission mode as the codec enforces it on every
// handle it decodes (see docs/decisions/0069). The zero value is open mode
// without the puzzle: the wire of earlier versions, unchanged.
//
// Certificate mode (Verifier set): every NodeHandle carries its node's
// certificate (field 4), the node id is the certified one
// (secure.Certificate.NodeID) and not derived from the peer ID, and each
// stream starts with its opener's certificate (Frame field 4). A handle
// whose certificate is missing, malformed, foreign, expired, signed by
// another authority, of another key, or certifies another id is refused.
//
// Open mode with the puzzle (PuzzleBits > 0): every handle's key must
// solve the identity puzzle (secure.PuzzleBits >= PuzzleBits).
type Security struct {
	// Verifier checks certificates (one authority, one network); nil is
	// open mode.
	Verifier *secure.Verifier
	// Own is this node's certificate, required with Verifier.
	Own *secure.Certificate
	// PuzzleBits is open mode's c1 (0: off). Not allowed with Verifier.
	PuzzleBits int
	// Now is the clock certificates are checked against; time.Now if nil.
	Now func() time.Time
}

// Certificate mode reports whether s is certificate mode.
func (s *Security) certMode() bool { return s != nil && s.Verifier != nil }

func (s *Security) validate() error {
	switch {
	case s.Verifier != nil && s.Own == nil:
		return errors.New("certificate mode needs this node's certificate")
	case s.Verifier == nil && s.Own != nil:
		return errors.New("a certificate without a verifier (the authority's key and network)")
	case s.Verifier != nil && s.PuzzleBits != 0:
		return errors.New("the puzzle is open mode's; certificate mode has none")
	case s.PuzzleBits < 0 || s.PuzzleBits > secure.MaxPuzzleBits:
		return fmt.Errorf("puzzle bits %d, want 0 to %d", s.PuzzleBits, secure.MaxPuzzleBits)
	}
	return nil
}

func (s *Security) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Why a handle was refused in a secure mode, for counters (CertReasons
// names them): the reasons of secure.CertReason, then the codec's own.
const (
	CertMalformed = iota
	CertSignature
	CertExpired
	CertNotYetValid
	CertForeignNetwork
	CertKeyMismatch
	CertIDMismatch // the handle's node_id is not the certificate's
	CertMissing    // certificate mode, a handle without a certificate
	CertOther
	NumCertReasons
)

// CertReasons names the certificate refusal reasons, by index.
var CertReasons = [NumCertReasons]string{
	"malformed", "signature", "expired", "not_yet_valid", "foreign_network",
	"key_mismatch", "id_mismatch", "missing", "other",
}

func certReasonIndex(err error) int {
	switch {
	case errors.Is(err, errCertMissing):
		return CertMissing
	case errors.Is(err, errCertIDMismatch):
		return CertIDMismatch
	}
	switch secure.CertReason(err) {
	case "malformed":
		return CertMalformed
	case "signature":
		return CertSignature
	case "expired":
		return CertExpired
	case "not_yet_valid":
		return CertNotYetValid
	case "foreign_network":
		return CertForeignNetwork
	case "key_mismatch":
		return CertKeyMismatch
	}
	return CertOther
}

var (
	errCertMissing    = errors.New("no certificate")
	errCertIDMismatch = errors.New("node id is not the certified one")
)

// SecurityStats counts the handles a codec refused in a secure mode.
type SecurityStats struct {
	// CertRejected counts refused certificates by reason (CertReasons).
	CertRejected [NumCertReasons]uint64
	// PuzzleRejected counts handles whose key does not solve the puzzle.
	PuzzleRejected uint64
	// CertsBatched counts certificates checked in batches of more than
	// one (join answers, rows, leaf sets); CertsKnown those found in the
	// codec's table of peers' certificates, which cost a comparison.
	CertsBatched, CertsKnown uint64
}

type securityCounters struct {
	cert                [NumCertReasons]atomic.Uint64
	puzzle              atomic.Uint64
	batched, knownCerts atomic.Uint64
}

func (c *securityCounters) snapshot() SecurityStats {
	var s SecurityStats
	for i := range s.CertRejected {
		s.CertRejected[i] = c.cert[i].Load()
	}
	s.PuzzleRejected = c.puzzle.Load()
	s.CertsBatched = c.batched.Load()
	s.CertsKnown = c.knownCerts.Load()
	return s
}

// certStore holds the verified certificate of every peer a handle named
// lately: the encoder puts it into the handles it sends, and a handle that
// comes again with the same bytes costs a comparison. It holds at most
// certStoreSize peers; when full, half of them (chosen by map order) are
// forgotten, and come back with the next handle that names them.
type certStore struct {
	mu sync.RWMutex
	m  map[peer.ID]*storedCert
}

type storedCert struct {
	raw      []byte
	id       id.ID
	notAfter int64 // unix seconds
}

const certStoreSize = 16384

func (s *certStore) get(p peer.ID) *storedCert {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[p]
}

func (s *certStore) put(p peer.ID, sc *storedCert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[peer.ID]*storedCert)
	}
	if _, ok := s.m[p]; !ok && len(s.m) >= certStoreSize {
		n := 0
		for k := range s.m {
			delete(s.m, k)
			if n++; n >= certStoreSize/2 {
				break
			}
		}
	}
	s.m[p] = sc
}

// Certificate returns the certificate (its encoding) and certified node
// id that handles of p carried last, if verified and not expired.
func (c *Codec) Certificate(p peer.ID) ([]byte, id.ID, bool) {
	if !c.sec.certMode() {
		return nil, id.ID{}, false
	}
	sc := c.certs.get(p)
	if sc == nil || c.sec.now().Unix() >= sc.notAfter {
		return nil, id.ID{}, false
	}
	return sc.raw, sc.id, true
}

// SetSecurity puts the codec into s's admission mode; call it before the
// codec is used. This node's own certificate is stored at once.
func (c *Codec) SetSecurity(s Security) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("transport: security: %w", err)
	}
	c.sec = &s
	if s.Own != nil {
		p, err := s.Own.PeerID()
		if err != nil {
			return fmt.Errorf("transport: own certificate: %w", err)
		}
		raw, err := s.Own.MarshalBinary()
		if err != nil {
			return fmt.Errorf("transport: own certificate: %w", err)
		}
		if _, err := s.Verifier.Verify(p, raw, s.now()); err != nil {
			return fmt.Errorf("transport: own certificate: %w", err)
		}
		c.certs.put(p, &storedCert{raw: raw, id: s.Own.NodeID(), notAfter: s.Own.NotAfter})
		c.ownCert = raw
	}
	return nil
}

// SecurityStats returns the codec's refusal counters.
func (c *Codec) SecurityStats() SecurityStats { return c.secCtr.snapshot() }

// pendingCert is a handle's certificate waiting for the message's batch.
type pendingCert struct {
	peer    peer.ID
	raw     []byte // aliases the frame: copied when stored
	claimed id.ID
	field   string
	list    int // index in Message.Handles, or -1
}

// checkCerts verifies the certificates of one decoded message's handles,
// those not already known in one batch. It returns the indices of
// Handles entries refused (in increasing order), or an error if a handle
// outside Handles was refused.
func (c *Codec) checkCerts(pend []pendingCert) (dropped []int, err error) {
	now := c.sec.now()
	var todo []secure.PeerCert
	var todoIdx []int
	fail := func(k int, why error) error {
		c.secCtr.cert[certReasonIndex(why)].Add(1)
		if pend[k].list >= 0 {
			dropped = append(dropped, pend[k].list)
			return nil
		}
		return fmt.Errorf("%w: %s: %v", ErrBadCert, pend[k].field, why)
	}
	for k := range pend {
		pc := &pend[k]
		if sc := c.certs.get(pc.peer); sc != nil && bytes.Equal(sc.raw, pc.raw) {
			c.secCtr.knownCerts.Add(1)
			var why error
			switch {
			case now.Unix() >= sc.notAfter:
				why = secure.ErrCertExpired
			case sc.id != pc.claimed:
				why = errCertIDMismatch
			}
			if why != nil {
				if err := fail(k, why); err != nil {
					return nil, err
				}
			}
			continue
		}
		todo = append(todo, secure.PeerCert{Peer: pc.peer, Cert: pc.raw})
		todoIdx = append(todoIdx, k)
	}
	if len(todo) == 0 {
		return dropped, nil
	}
	if len(todo) > 1 {
		c.secCtr.batched.Add(uint64(len(todo)))
	}
	certs, errs := c.sec.Verifier.VerifyAll(todo, now)
	for j, k := range todoIdx {
		why := errs[j]
		if why == nil && certs[j].NodeID() != pend[k].claimed {
			why = errCertIDMismatch
		}
		if why != nil {
			if err := fail(k, why); err != nil {
				return nil, err
			}
			continue
		}
		c.certs.put(pend[k].peer, &storedCert{raw: bytes.Clone(pend[k].raw), id: certs[j].NodeID(), notAfter: certs[j].NotAfter})
	}
	return dropped, nil
}

// VerifyHello checks the certificate a stream's opener p sent first
// (certificate mode) and returns p's handle.
func (c *Codec) VerifyHello(p peer.ID, raw []byte) (id.Handle, error) {
	cs, errs := c.sec.Verifier.VerifyAll([]secure.PeerCert{{Peer: p, Cert: raw}}, c.sec.now())
	if errs[0] != nil {
		c.secCtr.cert[certReasonIndex(errs[0])].Add(1)
		return id.Handle{}, fmt.Errorf("%w: stream opener: %v", ErrBadCert, errs[0])
	}
	x := cs[0].NodeID()
	c.certs.put(p, &storedCert{raw: bytes.Clone(raw), id: x, notAfter: cs[0].NotAfter})
	return id.Handle{ID: x, Addr: string(p)}, nil
}

// helloValid reports whether p's certificate, known from its stream's
// first frame, is still valid: a stream outlives an expiring certificate.
func (c *Codec) helloValid(p peer.ID) bool {
	sc := c.certs.get(p)
	return sc != nil && c.sec.now().Unix() < sc.notAfter
}

// AppendHello appends a certificate frame (Frame field 4) carrying raw,
// with its length prefix.
func AppendHello(dst, raw []byte) []byte {
	dst = AppendFrameHeader(dst, bytesFieldSize(fFrameCert, len(raw)))
	dst = protowire.AppendTag(dst, fFrameCert, protowire.BytesType)
	return protowire.AppendBytes(dst, raw)
}

// countedRow is whether m's Row counts its leading handles (the right
// side of a heartbeat's leaf set, the root's part of a join answer), so
// that refused handles before it take it down with them.
func countedRow(t core.MsgType) bool { return t == core.MsgHeartbeat || t == core.MsgJoinReply }

// dropHandles removes the handles at idx (increasing) from hs, and
// returns how many of them were before the first n.
func dropHandles(hs []id.Handle, idx []int, n int) ([]id.Handle, int) {
	before := 0
	out := hs[:0]
	k := 0
	for i, h := range hs {
		if k < len(idx) && idx[k] == i {
			k++
			if i < n {
				before++
			}
			continue
		}
		out = append(out, h)
	}
	return out, before
}

// PuzzleBitsOf is how many leading zero bits p's key gives the puzzle; -1
// if p embeds no Ed25519 key.
func PuzzleBitsOf(p peer.ID) int {
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return -1
	}
	raw, err := pub.Raw()
	if err != nil {
		return -1
	}
	return secure.PuzzleBits(raw)
}
