package secure

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// ErrPuzzle is returned for a key that does not solve the network's
// puzzle.
var ErrPuzzle = errors.New("secure: key does not solve the identity puzzle")

// MaxPuzzleBits bounds c1: each bit doubles the expected cost of an
// identity (2^c1 key generations; see docs/measurements for the price of
// one).
const MaxPuzzleBits = 32

// PuzzleBits is the number of leading zero bits of SHA-256(SHA-256(raw
// public key)): S/Kademlia's static crypto puzzle. The node id stays
// SHA-256(raw public key)'s first 128 bits, so the puzzle prices each
// identity without constraining where it lands: grinding 2^c1 keys buys
// one id, and grinding more buys a chosen prefix at 2^c1 times its usual
// price.
func PuzzleBits(raw []byte) int {
	h1 := sha256.Sum256(raw)
	h2 := sha256.Sum256(h1[:])
	n := 0
	for _, b := range h2 {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// CheckPuzzle reports whether pub (an Ed25519 key) solves the puzzle of
// difficulty c1: an error wrapping ErrPuzzle if not. c1 = 0 accepts every
// key (the puzzle is off).
func CheckPuzzle(pub crypto.PubKey, c1 int) error {
	if err := checkPuzzleBits(c1); err != nil {
		return err
	}
	if pub == nil || pub.Type() != crypto.Ed25519 {
		return fmt.Errorf("%w: not an Ed25519 key", ErrPuzzle)
	}
	raw, err := pub.Raw()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPuzzle, err)
	}
	if got := PuzzleBits(raw); got < c1 {
		return fmt.Errorf("%w: %d leading zero bits, the network wants %d", ErrPuzzle, got, c1)
	}
	return nil
}

func checkPuzzleBits(c1 int) error {
	if c1 < 0 || c1 > MaxPuzzleBits {
		return fmt.Errorf("secure: puzzle difficulty %d bits, want 0 to %d", c1, MaxPuzzleBits)
	}
	return nil
}

// SolvePuzzle generates Ed25519 keys from r (crypto/rand when nil) until
// one solves the puzzle of difficulty c1, and returns it with the number
// of keys generated. It gives up when ctx ends, or after maxTries keys if
// maxTries > 0. The expected number of tries is 2^c1.
func SolvePuzzle(ctx context.Context, c1 int, maxTries uint64, r io.Reader) (crypto.PrivKey, uint64, error) {
	if err := checkPuzzleBits(c1); err != nil {
		return nil, 0, err
	}
	if r == nil {
		r = rand.Reader
	}
	for tries := uint64(1); ; tries++ {
		if tries&1023 == 0 && ctx.Err() != nil {
			return nil, tries - 1, fmt.Errorf("secure: identity puzzle of %d bits unsolved after %d keys: %w", c1, tries-1, ctx.Err())
		}
		priv, pub, err := crypto.GenerateEd25519Key(r)
		if err != nil {
			return nil, tries, fmt.Errorf("secure: generate Ed25519 key: %w", err)
		}
		raw, err := pub.Raw()
		if err != nil {
			return nil, tries, err
		}
		if PuzzleBits(raw) >= c1 {
			return priv, tries, nil
		}
		if maxTries > 0 && tries >= maxTries {
			return nil, tries, fmt.Errorf("secure: identity puzzle of %d bits unsolved after %d keys", c1, tries)
		}
	}
}
