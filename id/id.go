package id

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Bits is the width of an id.
const Bits = 128

// Len is the size of an id in bytes.
const Len = 16

// ID is a 128-bit Pastry identifier (a nodeId or a key), big-endian.
type ID [Len]byte

// ErrSyntax is returned by Parse for text that is not an id.
var ErrSyntax = errors.New("id: not a 128-bit hex id")

// Parse reads an id from 32 hexadecimal digits (either case).
func Parse(s string) (ID, error) {
	var x ID
	if len(s) != 2*Len {
		return x, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrSyntax, 2*Len, len(s))
	}
	if _, err := hex.Decode(x[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return x, nil
}

// MustParse is Parse for constants in tests and examples; it panics on bad
// input and must never see untrusted text.
func MustParse(s string) ID {
	x, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return x
}

// FromBytes copies a 16-byte slice into an id.
func FromBytes(b []byte) (ID, error) {
	var x ID
	if len(b) != Len {
		return x, fmt.Errorf("%w: want %d bytes, got %d", ErrSyntax, Len, len(b))
	}
	copy(x[:], b)
	return x, nil
}

// String formats the id as 32 lower-case hexadecimal digits.
func (x ID) String() string { return hex.EncodeToString(x[:]) }

// Short is the first 8 hex digits, for logs and golden test output.
func (x ID) Short() string { return hex.EncodeToString(x[:4]) }

// U128 returns the id as an unsigned 128-bit integer.
func (x ID) U128() U128 {
	return U128{Hi: binary.BigEndian.Uint64(x[:8]), Lo: binary.BigEndian.Uint64(x[8:])}
}

// ValidB reports whether b is a supported digit width.
func ValidB(b int) bool { return b == 1 || b == 2 || b == 4 || b == 8 }

// Digits is the number of base-2^b digits in an id.
func Digits(b int) int { return Bits / b }

// Digit returns digit i (0 = most significant) of x in base 2^b. It panics
// if i is out of range or b is not one of 1, 2, 4, 8 (callers validate b
// once, in config).
func (x ID) Digit(i, b int) int {
	bit := i * b // first bit of the digit
	v := x[bit>>3]
	shift := 8 - b - bit&7
	return int(v>>uint(shift)) & (1<<uint(b) - 1)
}

// WithDigit returns x with digit i (base 2^b) set to d.
func (x ID) WithDigit(i, b, d int) ID {
	bit := i * b
	shift := uint(8 - b - bit&7)
	mask := byte((1<<uint(b) - 1) << shift)
	x[bit>>3] = x[bit>>3]&^mask | byte(d<<shift)&mask
	return x
}

// SharedPrefixLen returns the number of leading base-2^b digits x and y have
// in common (Digits(b) when they are equal).
func SharedPrefixLen(x, y ID, b int) int {
	return x.U128().SharedPrefixLen(y.U128(), b)
}

// Cmp compares x and y as unsigned integers: -1, 0 or +1.
func (x ID) Cmp(y ID) int { return x.U128().Cmp(y.U128()) }

// Less reports whether x < y as unsigned integers.
func (x ID) Less(y ID) bool { return x.Cmp(y) < 0 }

// Clockwise returns the distance travelled clockwise (increasing ids, with
// wrap-around) from x to y: (y - x) mod 2^128.
func Clockwise(x, y ID) U128 { return y.U128().Sub(x.U128()) }

// RingDistance returns the shorter of the two distances between x and y on
// the ring.
func RingDistance(x, y ID) U128 { return x.U128().RingDistance(y.U128()) }

// Closer reports whether a is numerically closer to key than b, on the ring.
// Ties (a and b at the same distance, one on each side) go to the smaller id,
// so every node computes the same root for every key.
func Closer(key, a, b ID) bool {
	return key.U128().Closer(a.U128(), b.U128())
}

// Source is the randomness an id generator needs: the core's environment,
// a seeded math/rand/v2 generator, or crypto/rand behind an adapter.
type Source interface {
	Uint64() uint64
}

// Random draws a uniformly random id from src.
func Random(src Source) ID {
	return U128{Hi: src.Uint64(), Lo: src.Uint64()}.ID()
}

// U128 is an unsigned 128-bit integer, the arithmetic form of an ID.
type U128 struct{ Hi, Lo uint64 }

// ID converts back to the byte form.
func (u U128) ID() ID {
	var x ID
	binary.BigEndian.PutUint64(x[:8], u.Hi)
	binary.BigEndian.PutUint64(x[8:], u.Lo)
	return x
}

// Sub returns u - v mod 2^128.
func (u U128) Sub(v U128) U128 {
	lo, borrow := bits.Sub64(u.Lo, v.Lo, 0)
	hi, _ := bits.Sub64(u.Hi, v.Hi, borrow)
	return U128{hi, lo}
}

// Add returns u + v mod 2^128.
func (u U128) Add(v U128) U128 {
	lo, carry := bits.Add64(u.Lo, v.Lo, 0)
	hi, _ := bits.Add64(u.Hi, v.Hi, carry)
	return U128{hi, lo}
}

// Low is u's low w bits (0 <= w <= 128).
func (u U128) Low(w int) U128 {
	switch {
	case w >= 128:
		return u
	case w >= 64:
		return U128{u.Hi & (1<<uint(w-64) - 1), u.Lo}
	}
	return U128{0, u.Lo & (1<<uint(w) - 1)}
}

// Pow2 is 2^w for 0 <= w < 128, and 0 (2^128 wrapped) for w = 128.
func Pow2(w int) U128 {
	switch {
	case w >= 128:
		return U128{}
	case w >= 64:
		return U128{1 << uint(w-64), 0}
	}
	return U128{0, 1 << uint(w)}
}

// Div is u / d, rounded down. d must not be 0.
func (u U128) Div(d uint64) U128 {
	hi, r := bits.Div64(0, u.Hi, d)
	lo, _ := bits.Div64(r, u.Lo, d)
	return U128{hi, lo}
}

// Rsh1 returns u >> 1.
func (u U128) Rsh1() U128 { return U128{u.Hi >> 1, u.Lo>>1 | u.Hi<<63} }

// Cmp compares u and v: -1, 0 or +1.
func (u U128) Cmp(v U128) int {
	switch {
	case u.Hi < v.Hi:
		return -1
	case u.Hi > v.Hi:
		return 1
	case u.Lo < v.Lo:
		return -1
	case u.Lo > v.Lo:
		return 1
	}
	return 0
}

// Less reports u < v.
func (u U128) Less(v U128) bool { return u.Hi < v.Hi || u.Hi == v.Hi && u.Lo < v.Lo }

// IsZero reports u == 0.
func (u U128) IsZero() bool { return u.Hi|u.Lo == 0 }

// RingDistance is min((v-u), (u-v)) mod 2^128.
func (u U128) RingDistance(v U128) U128 {
	d := v.Sub(u)
	if d.Hi>>63 != 0 { // more than half way round: the other way is shorter
		d = U128{}.Sub(d)
	}
	return d
}

// SharedPrefixLen counts leading base-2^b digits that u and v share.
func (u U128) SharedPrefixLen(v U128, b int) int {
	var lz int
	if x := u.Hi ^ v.Hi; x != 0 {
		lz = bits.LeadingZeros64(x)
	} else {
		lz = 64 + bits.LeadingZeros64(u.Lo^v.Lo)
	}
	return lz / b
}

// Digit returns digit i in base 2^b.
func (u U128) Digit(i, b int) int {
	shift := Bits - (i+1)*b
	var w uint64
	if shift >= 64 {
		w = u.Hi >> uint(shift-64)
	} else if shift > 64-b { // digit straddles halves (never for b in {1,2,4,8})
		w = u.Hi<<uint(64-shift) | u.Lo>>uint(shift)
	} else {
		w = u.Lo >> uint(shift)
	}
	return int(w & (1<<uint(b) - 1))
}

// Closer reports whether a is closer to key u than b is, ties to the smaller.
func (u U128) Closer(a, b U128) bool {
	switch u.RingDistance(a).Cmp(u.RingDistance(b)) {
	case -1:
		return true
	case 1:
		return false
	}
	return a.Less(b)
}

// Between reports whether x lies on the clockwise arc from lo to hi,
// both ends included.
func Between(lo, x, hi U128) bool {
	return !hi.Sub(lo).Less(x.Sub(lo))
}
