package secure

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func newTestVerifier(t *testing.T, a *Authority, max int) *Verifier {
	t.Helper()
	v, err := NewVerifier(a.Public(), testNet, max, seeded(77))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// certsFor issues n certificates and returns them as presented by their
// own peers.
func certsFor(t testing.TB, a *Authority, n int) []PeerCert {
	t.Helper()
	out := make([]PeerCert, n)
	for i := range out {
		c, priv := testCert(t, a, uint64(100+i))
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = PeerCert{Peer: peerOf(t, priv), Cert: b}
	}
	return out
}

func TestVerifierChecksEachCertificateOnce(t *testing.T) {
	a := testAuthority(t, 1)
	v := newTestVerifier(t, a, 0)
	pcs := certsFor(t, a, 32)
	cs, errs := v.VerifyAll(pcs, t0)
	for i := range pcs {
		if errs[i] != nil || cs[i] == nil {
			t.Fatalf("certificate %d: %v", i, errs[i])
		}
	}
	st := v.Stats()
	if st.Verified != 32 || st.CacheHits != 0 || st.Batches != 1 || st.Fallbacks != 0 {
		t.Fatalf("first pass: %+v", st)
	}
	// Again, one at a time and in bulk: no signature is checked again.
	for _, pc := range pcs[:4] {
		if _, err := v.Verify(pc.Peer, pc.Cert, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	v.VerifyAll(pcs, t0)
	if st := v.Stats(); st.Verified != 32 || st.CacheHits != 36 || st.Batches != 1 {
		t.Fatalf("second pass: %+v", st)
	}
	// A remembered certificate still expires, and still belongs to its peer
	// only.
	if _, err := v.Verify(pcs[0].Peer, pcs[0].Cert, t0.Add(48*time.Hour)); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("remembered, expired: %v", err)
	}
	if _, err := v.Verify(pcs[1].Peer, pcs[0].Cert, t0); !errors.Is(err, ErrCertKeyMismatch) {
		t.Fatalf("remembered, presented by another peer: %v", err)
	}
	if st := v.Stats(); st.Rejected["expired"] != 1 || st.Rejected["key_mismatch"] != 1 {
		t.Fatalf("rejections: %v", st.Rejected)
	}
}

func TestVerifierBatchWithBadCertificates(t *testing.T) {
	a, other := testAuthority(t, 1), testAuthority(t, 2)
	v := newTestVerifier(t, a, 0)
	pcs := certsFor(t, a, 10)
	forged := bytes.Clone(pcs[3].Cert)
	forged[len(forged)-70] ^= 1 // in not-after: the signature no longer matches
	pcs[3].Cert = forged
	foreign := certsFor(t, other, 5)[4] // right network, wrong authority
	pcs[4] = foreign
	pcs[5].Cert = pcs[5].Cert[:40] // malformed
	pcs[6].Peer = pcs[7].Peer      // presented by another peer
	cs, errs := v.VerifyAll(pcs, t0)
	want := map[int]error{3: ErrCertSignature, 4: ErrCertSignature, 5: ErrCertMalformed, 6: ErrCertKeyMismatch}
	for i := range pcs {
		if w, bad := want[i]; bad {
			if !errors.Is(errs[i], w) || cs[i] != nil {
				t.Errorf("certificate %d: %v, want %v", i, errs[i], w)
			}
		} else if errs[i] != nil || cs[i] == nil || cs[i].CheckPeer(pcs[i].Peer) != nil {
			t.Errorf("certificate %d refused: %v", i, errs[i])
		}
	}
	st := v.Stats()
	if st.Verified != 6 || st.Fallbacks != 1 || st.Rejected["signature"] != 2 || st.Rejected["malformed"] != 1 || st.Rejected["key_mismatch"] != 1 {
		t.Fatalf("stats %+v", st)
	}
	if v.Cached() != 6 {
		t.Fatalf("%d cached, want the 6 good ones", v.Cached())
	}
}

func TestVerifierCacheIsBounded(t *testing.T) {
	a := testAuthority(t, 1)
	v := newTestVerifier(t, a, 4)
	pcs := certsFor(t, a, 6)
	v.VerifyAll(pcs, t0)
	if v.Cached() != 4 {
		t.Fatalf("%d cached, want 4", v.Cached())
	}
	// The two oldest were dropped: verifying them checks the signature again.
	v.Verify(pcs[5].Peer, pcs[5].Cert, t0)
	v.Verify(pcs[0].Peer, pcs[0].Cert, t0)
	if st := v.Stats(); st.Verified != 7 || st.CacheHits != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewVerifierRejects(t *testing.T) {
	a := testAuthority(t, 1)
	if _, err := NewVerifier(a.Public()[:10], testNet, 0, nil); err == nil {
		t.Error("short authority key accepted")
	}
	if _, err := NewVerifier(a.Public(), "", 0, nil); err == nil {
		t.Error("empty network accepted")
	}
}
