package secure

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"slices"
	"testing"

	"filippo.io/edwards25519"
)

// signedBatch returns n signatures: by one key when oneKey, else by
// keys[i%3].
func signedBatch(t testing.TB, n int, oneKey bool) []Signed {
	t.Helper()
	var keys []ed25519.PrivateKey
	for i := range 3 {
		_, k, err := ed25519.GenerateKey(seeded(uint64(200 + i)))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	out := make([]Signed, n)
	for i := range out {
		k := keys[0]
		if !oneKey {
			k = keys[i%3]
		}
		msg := fmt.Appendf(nil, "message %d", i)
		out[i] = Signed{PublicKey: k.Public().(ed25519.PublicKey), Message: msg, Signature: ed25519.Sign(k, msg)}
	}
	return out
}

// reference is what ed25519.Verify says of each.
func reference(items []Signed) []bool {
	out := make([]bool, len(items))
	for i, it := range items {
		out[i] = len(it.PublicKey) == ed25519.PublicKeySize && ed25519.Verify(it.PublicKey, it.Message, it.Signature)
	}
	return out
}

func checkAgainstReference(t *testing.T, name string, items []Signed) {
	t.Helper()
	want := reference(items)
	// The equation itself, not only the one-by-one fallback: it holds
	// exactly when every signature that decodes is valid.
	if len(items) > 1 {
		decoded, holds, err := batchEquation(items, seeded(8))
		if err != nil {
			t.Fatal(err)
		}
		wantHolds := true
		for i := range items {
			if decoded[i] && !want[i] {
				wantHolds = false
			}
		}
		if holds != wantHolds {
			t.Errorf("%s: batch equation holds = %v, want %v", name, holds, wantHolds)
		}
	}
	got, all, err := VerifyBatch(items, seeded(9))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !slices.Equal(got, want) || all != !slices.Contains(want, false) {
		t.Errorf("%s: VerifyBatch = %v (all %v), ed25519.Verify = %v", name, got, all, want)
	}
}

func TestVerifyBatchAgreesWithEd25519(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 32} {
		for _, oneKey := range []bool{true, false} {
			items := signedBatch(t, n, oneKey)
			checkAgainstReference(t, fmt.Sprintf("valid n=%d oneKey=%v", n, oneKey), items)
			if n == 0 {
				continue
			}
			// One bad signature at each end and in the middle.
			for _, at := range []int{0, n / 2, n - 1} {
				bad := slices.Clone(items)
				sig := bytes.Clone(bad[at].Signature)
				sig[5] ^= 1
				bad[at].Signature = sig
				checkAgainstReference(t, fmt.Sprintf("bad R n=%d at=%d", n, at), bad)
				bad = slices.Clone(items)
				bad[at].Message = []byte("another message")
				checkAgainstReference(t, fmt.Sprintf("bad message n=%d at=%d", n, at), bad)
			}
		}
	}
}

func TestVerifyBatchRejectsBadEncodings(t *testing.T) {
	items := signedBatch(t, 8, false)
	l := []byte{237, 211, 245, 92, 26, 99, 18, 88, 214, 156, 247, 162, 222, 249, 222, 20, // the group order
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16}
	// S + l: the same scalar mod l, not canonical. ed25519.Verify refuses
	// it, and so must the batch (the batch equation alone would not).
	nonCanonS := func(sig []byte) []byte {
		s, _ := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
		var sum [33]byte
		carry := 0
		sb := s.Bytes()
		for i := range 32 {
			v := int(sb[i]) + int(l[i]) + carry
			sum[i], carry = byte(v), v>>8
		}
		if carry != 0 || sum[31]&0xe0 != 0 {
			return nil // S + l does not fit: skip
		}
		return append(bytes.Clone(sig[:32]), sum[:32]...)
	}
	n := 0
	for i := range items {
		if s := nonCanonS(items[i].Signature); s != nil {
			bad := slices.Clone(items)
			bad[i].Signature = s
			if ed25519.Verify(bad[i].PublicKey, bad[i].Message, s) {
				t.Fatal("ed25519.Verify accepts a non-canonical S")
			}
			checkAgainstReference(t, fmt.Sprintf("non-canonical S at %d", i), bad)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no signature could be given a non-canonical S")
	}
	short := slices.Clone(items)
	short[2].Signature = short[2].Signature[:63]
	checkAgainstReference(t, "short signature", short)
	shortKey := slices.Clone(items)
	shortKey[3].PublicKey = shortKey[3].PublicKey[:31]
	checkAgainstReference(t, "short key", shortKey)
	offCurve := slices.Clone(items)
	sig := bytes.Clone(offCurve[4].Signature)
	copy(sig[:32], append([]byte{2}, make([]byte, 31)...)) // y = 2: no point
	offCurve[4].Signature = sig
	checkAgainstReference(t, "R not on the curve", offCurve)
	// R in a non-canonical encoding (y + p) of a valid signature's R: the
	// identity's y = 1 encodes also as p + 1 = 2^255 - 18.
	nonCanonR := slices.Clone(items)
	sig = bytes.Clone(nonCanonR[5].Signature)
	copy(sig[:32], append([]byte{0xee}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...))
	nonCanonR[5].Signature = sig
	checkAgainstReference(t, "non-canonical R", nonCanonR)
	if _, _, err := VerifyBatch(items, bytes.NewReader(nil)); err == nil {
		t.Fatal("no error from an empty random reader")
	}
}

// TestVerifyBatchCofactoredDivergence documents where VerifyBatch and
// ed25519.Verify disagree: a signature its key's owner built with a
// small-order component in R, valid only up to that component.
func TestVerifyBatchCofactoredDivergence(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(seeded(300))
	pub := priv.Public().(ed25519.PublicKey)
	h := sha512.Sum512(priv.Seed())
	a, _ := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	torsion, _ := new(edwards25519.Point).SetBytes(append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...))
	r, _ := edwards25519.NewScalar().SetCanonicalBytes(append([]byte{42}, make([]byte, 31)...))
	R := new(edwards25519.Point).ScalarBaseMult(r)
	R.Add(R, torsion)
	msg := []byte("crafted")
	kh := sha512.New()
	kh.Write(R.Bytes())
	kh.Write(pub)
	kh.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	crafted := Signed{PublicKey: pub, Message: msg, Signature: append(R.Bytes(), S.Bytes()...)}
	if ed25519.Verify(pub, msg, crafted.Signature) {
		t.Fatal("ed25519.Verify accepts the crafted signature")
	}
	items := append(signedBatch(t, 3, true), crafted)
	got, all, err := VerifyBatch(items, seeded(1))
	if err != nil || !all || !got[3] {
		t.Fatalf("the cofactored batch refuses the crafted signature (%v, %v, %v): update the doc of VerifyBatch", got, all, err)
	}
}
