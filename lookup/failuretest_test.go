package lookup

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// at is the id k x step: ids evenly spaced from 0, wrapping.
func at(k int64, step uint64) id.ID {
	if k < 0 {
		return id.U128{}.Sub(id.U128{Lo: uint64(-k) * step}).ID()
	}
	return id.U128{Lo: uint64(k) * step}.ID()
}

// ring is the ids at k x step for k in [from, to].
func ring(from, to int64, step uint64) []id.ID {
	var out []id.ID
	for k := from; k <= to; k++ {
		out = append(out, at(k, step))
	}
	return out
}

func TestMeanSpacing(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []id.ID
		want float64
	}{
		{"none", nil, 0},
		{"one", ring(3, 3, 10), 0},
		{"one, twice", []id.ID{at(3, 10), at(3, 10)}, 0},
		{"evenly spaced", ring(0, 8, 10), 10},
		{"across zero", ring(-4, 4, 10), 10},
		{"duplicates and any order", append(ring(-4, 4, 10), at(0, 10), at(-4, 10), at(2, 10)), 10},
		{"uneven", []id.ID{at(0, 1), at(1, 1), at(5, 1)}, 2.5},
		{"two far apart take the shorter way", []id.ID{at(-1, 1), at(1, 1)}, 2},
	} {
		if got := MeanSpacing(tc.ids); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	half := id.U128{Hi: 1 << 63}.ID() // two ids half the ring apart
	if got, want := MeanSpacing([]id.ID{{}, half}), math.Exp2(127); got != want {
		t.Errorf("half the ring apart: %v, want %v", got, want)
	}
}

// The test accepts a true root's neighbourhood as dense as the origin's,
// and rejects a root that is not the closest reported id, a set that
// does not span the key, and a set sparser than γ times the origin's.
func TestCheckRoute(t *testing.T) {
	const step = 1000
	self, own := at(1_000_000, step), ring(1_000_000-16, 1_000_000+16, step)
	near := func(k int64, step uint64) id.ID { return id.U128{Lo: uint64(k)*step + 400}.ID() }
	key := near(10, step) // between 10 and 11: 10 is the root
	root := at(10, step)
	for _, tc := range []struct {
		name          string
		key, root     id.ID
		leaves        []id.ID
		closest, span bool
		ratio         float64
		pass          bool
	}{
		{"true root, as dense", key, root, ring(-6, 26, step), true, true, 1, true},
		{"true root, leaves in any order with itself and duplicates", key, root,
			append(ring(26, 26, step), append(ring(-6, 25, step), root, at(3, step))...), true, true, 1, true},
		{"a closer node reported", key, at(9, step), ring(-7, 25, step), false, true, 1, false},
		{"the key outside the set", key, at(9, step), ring(-23, 9, step), true, false, 1, false},
		{"colluders four times sparser", near(3, 4*step), at(3, 4*step), ring(-13, 19, 4*step), true, true, 4, false},
		{"a little sparser", near(7, 3*step/2), at(7, 3*step/2), ring(-9, 23, 3*step/2), true, true, 1.5, true},
		{"no leaves", key, root, nil, true, false, math.Inf(1), false},
	} {
		got := CheckRoute(tc.key, tc.root, tc.leaves, self, own, DefaultGamma)
		if got.Closest != tc.closest || got.Covers != tc.span || math.Abs(got.Ratio-tc.ratio) > 1e-9 && got.Ratio != tc.ratio || got.Passed != tc.pass {
			t.Errorf("%s: %+v, want closest %v covers %v ratio %v passed %v", tc.name, got, tc.closest, tc.span, tc.ratio, tc.pass)
		}
		if got.Pass(DefaultGamma) != got.Passed {
			t.Errorf("%s: Pass(DefaultGamma) %v, Passed %v", tc.name, got.Pass(DefaultGamma), got.Passed)
		}
	}
	// γ decides the sparse set alone.
	sparse := CheckRoute(near(3, 4*step), at(3, 4*step), ring(-13, 19, 4*step), self, own, DefaultGamma)
	if sparse.Pass(3.9) || !sparse.Pass(4.1) {
		t.Errorf("ratio %v: Pass(3.9) %v, Pass(4.1) %v", sparse.Ratio, sparse.Pass(3.9), sparse.Pass(4.1))
	}
	// An origin that knows no other node has no density to compare with.
	if lone := CheckRoute(key, root, ring(-6, 26, step), self, nil, DefaultGamma); lone.Passed || !math.IsInf(lone.Ratio, 1) {
		t.Errorf("origin without leaves: %+v", lone)
	}
}

// On random overlays the test's verdict depends on the sets, not on the
// order or repetition of their ids, and a true root's set spans its key.
func TestCheckRouteRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		ids := make([]id.ID, 300)
		for i := range ids {
			ids[i] = id.Random(r)
		}
		slices.SortFunc(ids, func(a, b id.ID) int { return a.Cmp(b) })
		ids = slices.Compact(ids)
		key := id.Random(r)
		i, _ := slices.BinarySearchFunc(ids, key, func(a, b id.ID) int { return a.Cmp(b) })
		ri := i % len(ids)
		if id.Closer(key, ids[(i-1+len(ids))%len(ids)], ids[ri]) {
			ri = (i - 1 + len(ids)) % len(ids)
		}
		var leaves []id.ID
		for d := 1; d <= 16; d++ {
			leaves = append(leaves, ids[(ri+d)%len(ids)], ids[(ri-d+len(ids))%len(ids)])
		}
		own := ids[100:133]
		a := CheckRoute(key, ids[ri], leaves, own[16], own, DefaultGamma)
		if !a.Closest || !a.Covers {
			t.Fatalf("true root of %s: %+v", key, a)
		}
		shuffled := slices.Clone(leaves)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, shuffled[:5]...)
		if b := CheckRoute(key, ids[ri], shuffled, own[16], own, DefaultGamma); b != a {
			t.Fatalf("same sets, different verdicts: %+v, %+v", a, b)
		}
	}
}
