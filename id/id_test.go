package id

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func toBig(x ID) *big.Int { return new(big.Int).SetBytes(x[:]) }

var mod = new(big.Int).Lsh(big.NewInt(1), 128)

func bigRing(a, b ID) *big.Int {
	d := new(big.Int).Sub(toBig(b), toBig(a))
	d.Mod(d, mod)
	o := new(big.Int).Sub(mod, d)
	o.Mod(o, mod)
	if o.Cmp(d) < 0 {
		return o
	}
	return d
}

func u128Big(u U128) *big.Int { return toBig(u.ID()) }

func TestParseFormatRoundTrip(t *testing.T) {
	r := rng(1)
	for range 1000 {
		x := Random(r)
		y, err := Parse(x.String())
		if err != nil || y != x {
			t.Fatalf("round trip %s: %v %s", x, err, y)
		}
	}
	if x, err := Parse("0123456789ABCDEFabcdef0123456789"); err != nil || x.String() != "0123456789abcdefabcdef0123456789" {
		t.Fatalf("mixed case: %v %s", err, x)
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "00", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef0"} {
		if _, err := Parse(s); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax", s, err)
		}
	}
	if _, err := FromBytes(make([]byte, 15)); !errors.Is(err, ErrSyntax) {
		t.Errorf("FromBytes(15 bytes) = %v", err)
	}
}

func TestDigitsAgreeWithBigInt(t *testing.T) {
	r := rng(2)
	for _, b := range []int{1, 2, 4, 8} {
		for range 200 {
			x := Random(r)
			bx := toBig(x)
			for i := range Digits(b) {
				shift := uint(Bits - (i+1)*b)
				want := new(big.Int).Rsh(bx, shift)
				want.And(want, big.NewInt(1<<uint(b)-1))
				if got := x.Digit(i, b); int64(got) != want.Int64() {
					t.Fatalf("b=%d %s digit %d = %d want %d", b, x, i, got, want.Int64())
				}
				if got := x.U128().Digit(i, b); int64(got) != want.Int64() {
					t.Fatalf("U128 b=%d digit %d = %d want %d", b, i, got, want.Int64())
				}
			}
		}
	}
}

func TestWithDigit(t *testing.T) {
	r := rng(3)
	for _, b := range []int{1, 2, 4, 8} {
		for range 200 {
			x := Random(r)
			i := r.IntN(Digits(b))
			d := r.IntN(1 << uint(b))
			y := x.WithDigit(i, b, d)
			if y.Digit(i, b) != d {
				t.Fatalf("digit not set")
			}
			for j := range Digits(b) {
				if j != i && y.Digit(j, b) != x.Digit(j, b) {
					t.Fatalf("b=%d: setting digit %d changed digit %d", b, i, j)
				}
			}
		}
	}
}

func TestSharedPrefixLen(t *testing.T) {
	r := rng(4)
	for _, b := range []int{1, 2, 4, 8} {
		for range 500 {
			x := Random(r)
			// Make y share a random number of digits with x.
			y := Random(r)
			k := r.IntN(Digits(b) + 1)
			for i := range k {
				y = y.WithDigit(i, b, x.Digit(i, b))
			}
			want := 0
			for want < Digits(b) && x.Digit(want, b) == y.Digit(want, b) {
				want++
			}
			if got := SharedPrefixLen(x, y, b); got != want {
				t.Fatalf("b=%d shpl(%s,%s)=%d want %d", b, x, y, got, want)
			}
		}
	}
	x := MustParse("0123456789abcdef0123456789abcdef")
	if SharedPrefixLen(x, x, 4) != 32 {
		t.Fatal("equal ids share all digits")
	}
}

func TestDistances(t *testing.T) {
	r := rng(5)
	for range 2000 {
		a, b := Random(r), Random(r)
		if r.IntN(4) == 0 { // near-ties and wrap-around cases
			b = a.U128().Add(U128{Hi: 1 << 63}).ID()
		}
		cw := new(big.Int).Sub(toBig(b), toBig(a))
		cw.Mod(cw, mod)
		if u128Big(Clockwise(a, b)).Cmp(cw) != 0 {
			t.Fatalf("clockwise %s -> %s", a, b)
		}
		if u128Big(RingDistance(a, b)).Cmp(bigRing(a, b)) != 0 {
			t.Fatalf("ring distance %s %s", a, b)
		}
		if RingDistance(a, b) != RingDistance(b, a) {
			t.Fatal("ring distance not symmetric")
		}
	}
}

func TestCloserTieBreak(t *testing.T) {
	key := MustParse("80000000000000000000000000000000")
	lo := MustParse("7fffffffffffffffffffffffffffff00")
	hi := MustParse("80000000000000000000000000000100")
	if !Closer(key, lo, hi) || Closer(key, hi, lo) {
		t.Fatal("tie must go to the smaller id, from either side")
	}
	// Ties across zero: key 0, nodes at +d and -d: the smaller id is +d.
	zero := ID{}
	plus := U128{Lo: 5}.ID()
	minus := U128{}.Sub(U128{Lo: 5}).ID()
	if !Closer(zero, plus, minus) || Closer(zero, minus, plus) {
		t.Fatal("tie across zero")
	}
	r := rng(6)
	for range 2000 {
		k, a, b := Random(r), Random(r), Random(r)
		da, db := bigRing(k, a), bigRing(k, b)
		want := da.Cmp(db) < 0 || da.Cmp(db) == 0 && a.Less(b)
		if Closer(k, a, b) != want {
			t.Fatalf("Closer(%s,%s,%s)", k, a, b)
		}
	}
}

func TestBetween(t *testing.T) {
	u := func(v uint64) U128 { return U128{Lo: v} }
	cases := []struct {
		lo, x, hi uint64
		want      bool
	}{{10, 10, 20, true}, {10, 20, 20, true}, {10, 21, 20, false}, {10, 9, 20, false}}
	for _, c := range cases {
		if Between(u(c.lo), u(c.x), u(c.hi)) != c.want {
			t.Errorf("Between(%d,%d,%d)", c.lo, c.x, c.hi)
		}
	}
	// Wrapping arc from max-5 to 5 contains 0 and not 6.
	top := U128{}.Sub(u(5))
	if !Between(top, u(0), u(5)) || Between(top, u(6), u(5)) {
		t.Error("wrapping arc")
	}
}

func TestRandomDeterministic(t *testing.T) {
	a, b := Random(rng(7)), Random(rng(7))
	if a != b {
		t.Fatal("same seed, different ids")
	}
	if a == Random(rng(8)) {
		t.Fatal("different seeds, same id")
	}
}

func BenchmarkSharedPrefixLen(b *testing.B) {
	r := rng(9)
	x, y := Random(r), Random(r)
	for b.Loop() {
		_ = SharedPrefixLen(x, y, 4)
	}
}

func TestDivLowPow2AgreeWithBigInt(t *testing.T) {
	r := rng(7)
	for range 500 {
		u := Random(r).U128()
		bu := u128Big(u)
		for _, d := range []uint64{1, 2, 3, 16, 17, 1<<63 + 5, r.Uint64() | 1} {
			want := new(big.Int).Div(bu, new(big.Int).SetUint64(d))
			if got := u128Big(u.Div(d)); got.Cmp(want) != 0 {
				t.Fatalf("%s / %d = %s, want %s", u.ID(), d, got, want)
			}
		}
		for _, w := range []int{0, 1, 4, 63, 64, 65, 100, 127, 128} {
			p := new(big.Int).Lsh(big.NewInt(1), uint(w))
			if got := u128Big(u.Low(w)); got.Cmp(new(big.Int).Mod(bu, p)) != 0 {
				t.Fatalf("Low(%s, %d) = %s", u.ID(), w, got)
			}
			if got := u128Big(Pow2(w)); got.Cmp(new(big.Int).Mod(p, mod)) != 0 {
				t.Fatalf("Pow2(%d) = %s", w, got)
			}
		}
	}
}
