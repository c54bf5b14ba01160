package secure

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/bits"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func TestPuzzleBitsCountsLeadingZeros(t *testing.T) {
	// Find raw inputs whose double hash starts with known bytes by brute
	// force over a counter, and compare with a plain count.
	for i := range 2000 {
		raw := []byte{byte(i), byte(i >> 8)}
		h1 := sha256.Sum256(raw)
		h2 := sha256.Sum256(h1[:])
		want := 0
		for _, b := range h2 {
			want += bits.LeadingZeros8(b)
			if b != 0 {
				break
			}
		}
		if got := PuzzleBits(raw); got != want {
			t.Fatalf("PuzzleBits(%x) = %d, want %d", raw, got, want)
		}
	}
}

func TestSolveAndCheckPuzzle(t *testing.T) {
	for _, c1 := range []int{0, 1, 8, 12} {
		priv, tries, err := SolvePuzzle(context.Background(), c1, 0, seeded(uint64(c1)))
		if err != nil {
			t.Fatalf("c1=%d: %v", c1, err)
		}
		if tries < 1 {
			t.Fatalf("c1=%d: %d tries", c1, tries)
		}
		if err := CheckPuzzle(priv.GetPublic(), c1); err != nil {
			t.Fatalf("c1=%d: the solution does not check: %v", c1, err)
		}
		raw, _ := priv.GetPublic().Raw()
		if PuzzleBits(raw) < c1 {
			t.Fatalf("c1=%d: %d bits", c1, PuzzleBits(raw))
		}
	}
	// A key that does not solve it: some key has fewer than 12 bits.
	for seed := uint64(0); ; seed++ {
		priv, _ := GenerateKey(seeded(seed))
		raw, _ := priv.GetPublic().Raw()
		if b := PuzzleBits(raw); b < 12 {
			if err := CheckPuzzle(priv.GetPublic(), b+1); !errors.Is(err, ErrPuzzle) {
				t.Fatalf("%d-bit key against %d bits: %v", b, b+1, err)
			}
			if err := CheckPuzzle(priv.GetPublic(), b); err != nil {
				t.Fatalf("%d-bit key against %d bits: %v", b, b, err)
			}
			if err := CheckPuzzle(priv.GetPublic(), 0); err != nil {
				t.Fatalf("c1=0 refuses a key: %v", err)
			}
			break
		}
	}
}

func TestPuzzleLimits(t *testing.T) {
	priv, _ := GenerateKey(seeded(1))
	for _, c1 := range []int{-1, MaxPuzzleBits + 1} {
		if err := CheckPuzzle(priv.GetPublic(), c1); err == nil {
			t.Errorf("CheckPuzzle accepts c1=%d", c1)
		}
		if _, _, err := SolvePuzzle(context.Background(), c1, 0, nil); err == nil {
			t.Errorf("SolvePuzzle accepts c1=%d", c1)
		}
	}
	_, secp, _ := crypto.GenerateSecp256k1Key(seeded(2))
	if err := CheckPuzzle(secp, 0); !errors.Is(err, ErrPuzzle) {
		t.Errorf("secp256k1 key: %v", err)
	}
	if _, tries, err := SolvePuzzle(context.Background(), 32, 100, seeded(3)); err == nil || tries != 100 {
		t.Errorf("maxTries: %d tries, %v", tries, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, tries, err := SolvePuzzle(ctx, 32, 0, seeded(4)); !errors.Is(err, context.Canceled) || tries > 1024 {
		t.Errorf("cancelled: %d tries, %v", tries, err)
	}
}
