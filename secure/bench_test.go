package secure

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerify32Certificates verifies the signatures of 32 certificates
// (a join answer's worth) both ways in each iteration, interleaved so that
// the machine's drift weighs on both alike, and reports each per
// certificate and their ratio:
//
//	go test -run '^$' -bench Verify32 -benchtime 200x ./secure/
func BenchmarkVerify32Certificates(b *testing.B) {
	a := testAuthority(b, 1)
	items := make([]Signed, 32)
	for i := range items {
		c, _ := testCert(b, a, uint64(i))
		items[i] = Signed{PublicKey: a.Public(), Message: c.signedMessage(), Signature: c.Signature[:]}
	}
	var batch, single time.Duration
	for b.Loop() {
		t := time.Now()
		if _, all, err := VerifyBatch(items, nil); !all || err != nil {
			b.Fatal("batch refused", err)
		}
		batch += time.Since(t)
		t = time.Now()
		for _, it := range items {
			if !ed25519.Verify(it.PublicKey, it.Message, it.Signature) {
				b.Fatal("refused")
			}
		}
		single += time.Since(t)
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) / 32 }
	b.ReportMetric(per(batch), "batch_us/cert")
	b.ReportMetric(per(single), "single_us/cert")
	b.ReportMetric(float64(single)/float64(batch), "speedup")
}

// BenchmarkVerifier is the Verifier on 32 certificates: cold (every
// signature checked, in one batch, plus decoding) and warm (all
// remembered).
func BenchmarkVerifier(b *testing.B) {
	a := testAuthority(b, 1)
	pcs := certsFor(b, a, 32)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			v, _ := NewVerifier(a.Public(), testNet, 0, nil)
			if _, errs := v.VerifyAll(pcs, t0); errs[31] != nil {
				b.Fatal(errs[31])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/32, "us/cert")
	})
	b.Run("warm", func(b *testing.B) {
		v, _ := NewVerifier(a.Public(), testNet, 0, nil)
		v.VerifyAll(pcs, t0)
		for b.Loop() {
			if _, errs := v.VerifyAll(pcs, t0); errs[31] != nil {
				b.Fatal(errs[31])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/32, "us/cert")
	})
}

// BenchmarkSolvePuzzle generates one identity per iteration at c1 = 8,
// 16 and 20 bits: 2^c1 key generations expected, the count geometric
// (its standard deviation is about its mean), so few iterations vary a
// lot; ns/try, the cost of one key and its double hash, is the stable
// figure, and an identity costs 2^c1 of them on average. At about 20 us
// a try on the project's machine, c1 = 20 takes some 20 s an identity:
//
//	go test -run '^$' -bench 'SolvePuzzle/c1=(8|16)$' -benchtime 20x ./secure/
//	go test -run '^$' -bench 'SolvePuzzle/c1=20$' -benchtime 3x ./secure/
func BenchmarkSolvePuzzle(b *testing.B) {
	for _, c1 := range []int{8, 16, 20} {
		b.Run(fmt.Sprintf("c1=%d", c1), func(b *testing.B) {
			var tries uint64
			for b.Loop() {
				_, n, err := SolvePuzzle(context.Background(), c1, 0, nil)
				if err != nil {
					b.Fatal(err)
				}
				tries += n
			}
			b.ReportMetric(float64(tries)/float64(b.N), "tries/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tries), "ns/try")
		})
	}
}

// BenchmarkCheckPuzzle is the cost of checking an identity's puzzle: two
// SHA-256 over 32 bytes.
func BenchmarkCheckPuzzle(b *testing.B) {
	priv, _, err := SolvePuzzle(context.Background(), 8, 0, seeded(1))
	if err != nil {
		b.Fatal(err)
	}
	pub := priv.GetPublic()
	for b.Loop() {
		if err := CheckPuzzle(pub, 8); err != nil {
			b.Fatal(err)
		}
	}
}
