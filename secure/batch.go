package secure

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
	"slices"

	"filippo.io/edwards25519"
)

// Signed is one Ed25519 signature to verify: Signature by PublicKey over
// Message.
type Signed struct {
	PublicKey ed25519.PublicKey
	Message   []byte
	Signature []byte
}

// VerifyBatch verifies many Ed25519 signatures at once and returns, for
// each, whether it is valid; all is true when every one is. Randomness
// for the batch's coefficients comes from r (crypto/rand when nil); an
// error reading it is returned.
//
// It checks the randomised batch equation
//
//	[8]( -[sum z_i S_i] B + sum [z_i] R_i + sum [z_i k_i] A_i ) = 0
//
// with independent random 128-bit z_i (signatures under one key share one
// A term), in one variable-time multi-scalar multiplication. If it does
// not hold, each signature is checked alone with ed25519.Verify to find
// the bad ones. An encoding that ed25519.Verify refuses (a non-canonical
// S or R, a point that does not decode) is invalid and left out of the
// batch.
//
// The equation is the cofactored one, so VerifyBatch agrees with
// ed25519.Verify (cofactorless) on every signature except those whose
// R or A has a small-order component and which verify only up to it:
// such a signature can be made only by the key's owner, on purpose
// (TestVerifyBatchCofactoredDivergence). Certificates have one signer,
// the authority, whose key CheckAuthorityKey refuses if it has such a
// component. A bad signature in a batch of valid ones is missed with
// probability at most about 2^-128 (the chance of guessing its z_i).
func VerifyBatch(items []Signed, r io.Reader) (valid []bool, all bool, err error) {
	if len(items) == 1 {
		ok := verifyOne(items[0])
		return []bool{ok}, ok, nil
	}
	valid, holds, err := batchEquation(items, r)
	if err != nil {
		return nil, false, err
	}
	if holds {
		return valid, !slices.Contains(valid, false), nil // every one that decoded is valid
	}
	all = true
	for i, it := range items {
		if valid[i] { // decoded: check it alone
			valid[i] = verifyOne(it)
		}
		all = all && valid[i]
	}
	return valid, all, nil
}

// batchEquation checks the batch equation over the signatures that
// decode; decoded[i] says whether items[i] did.
func batchEquation(items []Signed, r io.Reader) (decoded []bool, holds bool, err error) {
	valid := make([]bool, len(items))
	if r == nil {
		r = rand.Reader
	}
	zs := make([]byte, 16*len(items))
	if _, err := io.ReadFull(r, zs); err != nil {
		return nil, false, fmt.Errorf("secure: batch verification coefficients: %w", err)
	}
	var (
		scalars = make([]*edwards25519.Scalar, 0, 2*len(items)+1)
		points  = make([]*edwards25519.Point, 0, 2*len(items)+1)
		keyIdx  = map[string]int{} // public key -> its term
		sumZS   = edwards25519.NewScalar()
		h       = sha512.New()
		digest  [sha512.Size]byte
		zbuf    [32]byte
	)
	scalars = append(scalars, edwards25519.NewScalar()) // -sum z_i S_i, for B
	points = append(points, edwards25519.NewGeneratorPoint())
	for i, it := range items {
		if len(it.PublicKey) != ed25519.PublicKeySize || len(it.Signature) != ed25519.SignatureSize {
			continue
		}
		S, err := edwards25519.NewScalar().SetCanonicalBytes(it.Signature[32:])
		if err != nil {
			continue
		}
		R, err := new(edwards25519.Point).SetBytes(it.Signature[:32])
		if err != nil || string(R.Bytes()) != string(it.Signature[:32]) {
			continue // ed25519.Verify compares R's canonical encoding
		}
		j, ok := keyIdx[string(it.PublicKey)]
		if !ok {
			A, err := new(edwards25519.Point).SetBytes(it.PublicKey)
			if err != nil {
				continue
			}
			j = len(points)
			keyIdx[string(it.PublicKey)] = j
			scalars = append(scalars, edwards25519.NewScalar())
			points = append(points, A)
		}
		h.Reset()
		h.Write(it.Signature[:32])
		h.Write(it.PublicKey)
		h.Write(it.Message)
		k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
		copy(zbuf[:16], zs[16*i:])
		z, _ := edwards25519.NewScalar().SetCanonicalBytes(zbuf[:]) // < 2^128 < l
		sumZS.MultiplyAdd(z, S, sumZS)
		scalars[j].MultiplyAdd(z, k, scalars[j])
		scalars = append(scalars, z)
		points = append(points, R)
		valid[i] = true
	}
	scalars[0].Negate(sumZS)
	sum := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	return valid, sum.MultByCofactor(sum).Equal(edwards25519.NewIdentityPoint()) == 1, nil
}

func verifyOne(it Signed) bool {
	return len(it.PublicKey) == ed25519.PublicKeySize && ed25519.Verify(it.PublicKey, it.Message, it.Signature)
}
