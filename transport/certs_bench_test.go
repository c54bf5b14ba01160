package transport

import (
	"fmt"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/secure"
)

// secureBench is n certified identities and the frames of a join answer
// naming them all, and of each alone.
type secureBench struct {
	w      *certWorld
	answer []byte   // a join answer with the n handles
	singly [][]byte // n leaf replies of one handle each
	open   []byte   // the join answer in open mode (no certificates)
}

func newSecureBench(b *testing.B, n int) *secureBench {
	w := newCertWorld(b)
	sb := &secureBench{w: w}
	ids := testIDs(b, n+2)
	var hs [][]byte
	m := &core.Message{Type: core.MsgJoinReply, From: ids[0].h, To: ids[1].h, Row: int16(n)}
	for _, x := range ids[2:] {
		c := w.issue(w.ca, x, testNetwork, 24*time.Hour)
		h := wireHandle(c.NodeID(), x, rawCert(b, c))
		hs = append(hs, h)
		sb.singly = append(sb.singly, wireMessage(core.MsgLeafReply, 0, nil, h))
		m.Handles = append(m.Handles, x.h)
	}
	sb.answer = wireMessage(core.MsgJoinReply, n, nil, hs...)
	var err error
	if sb.open, err = testCodec(b, nil).AppendMessage(nil, m); err != nil {
		b.Fatal(err)
	}
	return sb
}

// fresh is a receiver in certificate mode that knows no certificate yet.
func (sb *secureBench) fresh(b *testing.B) *Codec {
	c := testCodec(b, nil)
	v, err := secure.NewVerifier(sb.w.ca.Public(), testNetwork, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.SetSecurity(Security{Verifier: v, Own: sb.w.issue(sb.w.ca, newIdentity(b, 999), testNetwork, 24*time.Hour), Now: func() time.Time { return sb.w.now }}); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkJoinAnswerCertificates decodes, with a receiver that knows
// none of them, a join answer carrying n certified handles (their
// signatures checked in one batch) and the same n handles in n messages
// (checked one by one), interleaved in each iteration, and reports each
// per certificate and their ratio:
//
//	go test -run '^$' -bench JoinAnswerCertificates -benchtime 100x ./transport/
func BenchmarkJoinAnswerCertificates(b *testing.B) {
	for _, n := range []int{16, 24, 40} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			sb := newSecureBench(b, n)
			var batch, single time.Duration
			for b.Loop() {
				c := sb.fresh(b)
				t := time.Now()
				f, err := c.Decode(sb.answer)
				batch += time.Since(t)
				if err != nil || len(f.Msg.Handles) != n {
					b.Fatal("answer refused", err)
				}
				c = sb.fresh(b)
				t = time.Now()
				for _, fr := range sb.singly {
					if f, err := c.Decode(fr); err != nil || len(f.Msg.Handles) != 1 {
						b.Fatal("refused", err)
					}
				}
				single += time.Since(t)
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(b.N) / float64(n) }
			b.ReportMetric(per(batch), "batch_us/cert")
			b.ReportMetric(per(single), "single_us/cert")
			b.ReportMetric(float64(single)/float64(batch), "speedup")
		})
	}
}

// BenchmarkHandleAdmission is the cost certificate mode adds to taking
// handles in: a join answer of 16 handles decoded in open mode, and in
// certificate mode with the certificates known (the usual case: each is
// verified once per peer, then compared) and unknown (a receiver that
// never saw them: one batch), interleaved in each iteration:
//
//	go test -run '^$' -bench HandleAdmission -benchtime 2000x ./transport/
func BenchmarkHandleAdmission(b *testing.B) {
	const n = 16
	sb := newSecureBench(b, n)
	open := testCodec(b, nil)
	warm := sb.fresh(b)
	if _, err := warm.Decode(sb.answer); err != nil {
		b.Fatal(err)
	}
	if _, err := open.Decode(sb.open); err != nil {
		b.Fatal(err)
	}
	var tOpen, tWarm, tCold time.Duration
	colds := 0
	for b.Loop() {
		t := time.Now()
		if _, err := open.Decode(sb.open); err != nil {
			b.Fatal(err)
		}
		tOpen += time.Since(t)
		t = time.Now()
		if _, err := warm.Decode(sb.answer); err != nil {
			b.Fatal(err)
		}
		tWarm += time.Since(t)
		if colds < 200 { // cold is 100 times dearer: sampled
			c := sb.fresh(b)
			t = time.Now()
			if _, err := c.Decode(sb.answer); err != nil {
				b.Fatal(err)
			}
			tCold += time.Since(t)
			colds++
		}
	}
	us := func(d time.Duration, k int) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(k) / n }
	b.ReportMetric(us(tOpen, b.N), "open_us/handle")
	b.ReportMetric(us(tWarm, b.N), "known_us/handle")
	b.ReportMetric(us(tCold, colds), "unknown_us/handle")
	b.ReportMetric(float64(tWarm)/float64(tOpen), "known/open")
	b.ReportMetric(us(tCold, colds)/us(tOpen, b.N), "unknown/open")
}
