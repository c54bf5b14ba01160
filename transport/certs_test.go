package transport

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// certWorld is an authority, a network and a clock for codec tests.
type certWorld struct {
	t   testing.TB
	ca  *secure.Authority
	now time.Time
	r   *rand.ChaCha8
}

const testNetwork = "testnet"

func newCertWorld(t testing.TB) *certWorld {
	w := &certWorld{t: t, now: time.Unix(1_800_000_000, 0), r: rand.NewChaCha8([32]byte{9})}
	var err error
	if w.ca, err = secure.NewAuthority(w.r); err != nil {
		t.Fatal(err)
	}
	return w
}

// issue certifies ident's key with ca for network, valid from an hour
// before the world's now for validity.
func (w *certWorld) issue(ca *secure.Authority, ident identity, network string, validity time.Duration) *secure.Certificate {
	w.t.Helper()
	c, err := ca.Issue(ident.priv.GetPublic(), network, w.now.Add(-time.Hour), validity, w.r)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *certWorld) codec(own identity) (*Codec, *secure.Certificate) {
	w.t.Helper()
	c := testCodec(w.t, nil)
	v, err := secure.NewVerifier(w.ca.Public(), testNetwork, 0, w.r)
	if err != nil {
		w.t.Fatal(err)
	}
	cert := w.issue(w.ca, own, testNetwork, 24*time.Hour)
	if err := c.SetSecurity(Security{Verifier: v, Own: cert, Now: func() time.Time { return w.now }}); err != nil {
		w.t.Fatal(err)
	}
	return c, cert
}

func rawCert(t testing.TB, c *secure.Certificate) []byte {
	t.Helper()
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wireHandle encodes a NodeHandle as a sender of its choice would.
func wireHandle(nodeID id.ID, ident identity, cert []byte) []byte {
	var b []byte
	b = protowire.AppendTag(b, fHandleNodeID, protowire.BytesType)
	b = protowire.AppendBytes(b, nodeID[:])
	b = protowire.AppendTag(b, fHandlePeerID, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(ident.pid))
	if cert != nil {
		b = protowire.AppendTag(b, fHandleCert, protowire.BytesType)
		b = protowire.AppendBytes(b, cert)
	}
	return b
}

// wireMessage encodes a message frame with handles (and origin if set).
func wireMessage(typ core.MsgType, row int, origin []byte, handles ...[]byte) []byte {
	var m []byte
	m = protowire.AppendTag(m, fMsgType, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(typ))
	if origin != nil {
		m = protowire.AppendTag(m, fMsgOrigin, protowire.BytesType)
		m = protowire.AppendBytes(m, origin)
	}
	if row != 0 {
		m = protowire.AppendTag(m, fMsgRow, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(row))
	}
	for _, h := range handles {
		m = protowire.AppendTag(m, fMsgHandles, protowire.BytesType)
		m = protowire.AppendBytes(m, h)
	}
	var f []byte
	f = protowire.AppendTag(f, fFrameMessage, protowire.BytesType)
	return protowire.AppendBytes(f, m)
}

// TestCertificateModeRefusals: in certificate mode a message's handles
// are admitted only with a valid certificate of the network's authority
// that certifies their node id; each refusal is counted by its reason,
// the refused entries are removed from the message (a heartbeat's count
// of right-side handles with them), and a refused handle outside the list
// refuses the message.
func TestCertificateModeRefusals(t *testing.T) {
	w := newCertWorld(t)
	recv, _ := w.codec(newIdentity(t, 1))
	evil, err := secure.NewAuthority(w.r)
	if err != nil {
		t.Fatal(err)
	}
	good1, good2 := newIdentity(t, 2), newIdentity(t, 3)
	c1, c2 := w.issue(w.ca, good1, testNetwork, 24*time.Hour), w.issue(w.ca, good2, testNetwork, 24*time.Hour)
	bad := make([]identity, 8)
	for i := range bad {
		bad[i] = newIdentity(t, uint64(10+i))
	}
	foreignCA := w.issue(evil, bad[0], testNetwork, 24*time.Hour)
	foreignNet := w.issue(w.ca, bad[1], "othernet", 24*time.Hour)
	expired := w.issue(w.ca, bad[2], testNetwork, 30*time.Minute) // ended 30 minutes ago
	notYet, err := w.ca.Issue(bad[3].priv.GetPublic(), testNetwork, w.now.Add(time.Hour), time.Hour, w.r)
	if err != nil {
		t.Fatal(err)
	}
	ofAnother := w.issue(w.ca, bad[4], testNetwork, 24*time.Hour) // presented by bad[5]
	idMismatch := w.issue(w.ca, bad[6], testNetwork, 24*time.Hour)
	garbage := rawCert(t, c1)[:40]

	hs := [][]byte{
		wireHandle(c1.NodeID(), good1, rawCert(t, c1)),
		wireHandle(foreignCA.NodeID(), bad[0], rawCert(t, foreignCA)),
		wireHandle(foreignNet.NodeID(), bad[1], rawCert(t, foreignNet)),
		wireHandle(expired.NodeID(), bad[2], rawCert(t, expired)),
		wireHandle(notYet.NodeID(), bad[3], rawCert(t, notYet)),
		wireHandle(ofAnother.NodeID(), bad[5], rawCert(t, ofAnother)),
		wireHandle(bad[6].h.ID, bad[6], rawCert(t, idMismatch)), // the key-derived id, not the certified one
		wireHandle(bad[7].h.ID, bad[7], nil),
		wireHandle(bad[7].h.ID, bad[7], garbage),
		wireHandle(c2.NodeID(), good2, rawCert(t, c2)),
	}
	// A heartbeat whose first 5 handles are its right side: 4 of them
	// refused, so 1 is left.
	f, err := recv.Decode(wireMessage(core.MsgHeartbeat, 5, nil, hs...))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Msg
	want := []id.Handle{{ID: c1.NodeID(), Addr: string(good1.pid)}, {ID: c2.NodeID(), Addr: string(good2.pid)}}
	if len(m.Handles) != 2 || m.Handles[0] != want[0] || m.Handles[1] != want[1] {
		t.Fatalf("handles admitted: %v, want %v", m.Handles, want)
	}
	if m.Row != 1 {
		t.Errorf("right-side count %d, want 1", m.Row)
	}
	st := recv.SecurityStats()
	wantRej := map[int]uint64{
		CertSignature: 1, CertForeignNetwork: 1, CertExpired: 1, CertNotYetValid: 1,
		CertKeyMismatch: 1, CertIDMismatch: 1, CertMissing: 1, CertMalformed: 1,
	}
	for i, n := range st.CertRejected {
		if n != wantRej[i] {
			t.Errorf("refused as %s: %d, want %d", CertReasons[i], n, wantRej[i])
		}
	}
	if st.CertsBatched == 0 {
		t.Error("no certificate was checked in a batch")
	}
	// Known now: the same certificates cost a comparison, and a handle
	// that claims another id with a known certificate is still refused.
	before := recv.SecurityStats().CertsKnown
	f, err = recv.Decode(wireMessage(core.MsgLeafReply, 0, nil, hs[0], wireHandle(good2.h.ID, good2, rawCert(t, c2))))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Msg.Handles) != 1 || recv.SecurityStats().CertsKnown-before != 2 {
		t.Errorf("known certificates: %d handles admitted (want 1), %d found known (want 2)", len(f.Msg.Handles), recv.SecurityStats().CertsKnown-before)
	}
	// A refused origin refuses the message.
	for _, origin := range [][]byte{hs[1], hs[3], hs[7]} {
		if _, err := recv.Decode(wireMessage(core.MsgRoute, 0, origin, hs[0])); !errors.Is(err, ErrBadCert) || ReasonOf(err) != ReasonBadCert {
			t.Errorf("refused origin: %v, want ErrBadCert", err)
		}
	}
	// The receiver's codec now encodes the admitted handles with their
	// certificates, and another node in the network decodes them back.
	other, _ := w.codec(newIdentity(t, 4))
	out := &core.Message{Type: core.MsgLeafReply, From: want[0], To: want[1], Handles: want}
	b, err := recv.AppendMessage(nil, out)
	if err != nil {
		t.Fatal(err)
	}
	g, err := other.Decode(b)
	if err != nil || len(g.Msg.Handles) != 2 || g.Msg.Handles[1] != want[1] {
		t.Fatalf("re-encoded: %v, %v", g.Msg, err)
	}
	// A list entry without a known certificate is left out (a counted
	// Row lowered with it); any other such handle fails the message.
	hb := &core.Message{Type: core.MsgHeartbeat, From: want[0], To: want[1], Row: 2, Handles: []id.Handle{bad[7].h, want[0], want[1]}}
	b, err = recv.AppendMessage(nil, hb)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := other.Decode(b); err != nil || len(g.Msg.Handles) != 2 || g.Msg.Row != 1 || len(hb.Handles) != 3 || hb.Row != 2 {
		t.Errorf("heartbeat with an uncertified leaf: %+v, %v (sent %d handles, row %d)", g.Msg, err, len(hb.Handles), hb.Row)
	}
	if _, err := recv.AppendMessage(nil, &core.Message{Type: core.MsgRoute, From: want[0], To: want[1], Origin: bad[7].h}); !errors.Is(err, ErrBadCert) {
		t.Errorf("encoding an origin of unknown certificate: %v, want ErrBadCert", err)
	}
}

// TestCertificateHello: a stream opener's certificate frame is checked
// like a handle's, and is one frame body among the others.
func TestCertificateHello(t *testing.T) {
	w := newCertWorld(t)
	recv, _ := w.codec(newIdentity(t, 1))
	peerID := newIdentity(t, 2)
	cert := w.issue(w.ca, peerID, testNetwork, 24*time.Hour)
	raw := rawCert(t, cert)
	hello := AppendHello(nil, raw)
	hello = hello[len(hello)-bytesFieldSize(fFrameCert, len(raw)):] // without the length prefix
	f, err := recv.Decode(hello)
	if err != nil || f.Kind != FrameHello {
		t.Fatalf("hello: %v, %v", f.Kind, err)
	}
	h, err := recv.VerifyHello(peerID.pid, f.Cert)
	if err != nil || h.ID != cert.NodeID() {
		t.Fatalf("VerifyHello: %v, %v; want id %s", h, err, cert.NodeID())
	}
	if _, err := recv.VerifyHello(newIdentity(t, 3).pid, f.Cert); !errors.Is(err, ErrBadCert) {
		t.Errorf("another peer's certificate: %v, want ErrBadCert", err)
	}
	both := append(append([]byte(nil), hello...), AppendPing(nil, 7)...)
	if _, err := recv.Decode(both); !errors.Is(err, ErrMalformed) {
		t.Errorf("a certificate and a ping in one frame: %v, want ErrMalformed", err)
	}
}

// TestPuzzleMode: in open mode with the puzzle, handles whose key does
// not solve it are removed and counted, and the transport refuses a host
// key that does not solve it.
func TestPuzzleMode(t *testing.T) {
	c := testCodec(t, nil)
	if err := c.SetSecurity(Security{PuzzleBits: 4}); err != nil {
		t.Fatal(err)
	}
	var solved, unsolved []identity
	for s := uint64(100); len(solved) < 2 || len(unsolved) < 2; s++ {
		ident := newIdentity(t, s)
		if PuzzleBitsOf(ident.pid) >= 4 {
			solved = append(solved, ident)
		} else {
			unsolved = append(unsolved, ident)
		}
	}
	hs := [][]byte{
		wireHandle(solved[0].h.ID, solved[0], nil), wireHandle(unsolved[0].h.ID, unsolved[0], nil),
		wireHandle(solved[1].h.ID, solved[1], nil), wireHandle(unsolved[1].h.ID, unsolved[1], nil),
	}
	f, err := c.Decode(wireMessage(core.MsgRowReply, 0, nil, hs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Msg.Handles) != 2 || f.Msg.Handles[0] != solved[0].h || f.Msg.Handles[1] != solved[1].h {
		t.Errorf("admitted %v, want the two that solve the puzzle", f.Msg.Handles)
	}
	if n := c.SecurityStats().PuzzleRejected; n != 2 {
		t.Errorf("puzzle refusals %d, want 2", n)
	}
	if _, err := c.Decode(wireMessage(core.MsgRoute, 0, hs[1])); !errors.Is(err, ErrPuzzle) {
		t.Errorf("unsolved origin: %v, want ErrPuzzle", err)
	}
}
