package lookup

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// around takes half ids on each side of its two starting points, wrapping
// round the ring, never the skipped id and never one twice; a suppressing
// fake root's set built with it leaves out every id closer to the key than
// the fake root, and still spans the key.
func TestAround(t *testing.T) {
	ids := ring(0, 99, 10) // 0, 10, ..., 990
	get := func(xs []id.ID) []uint64 {
		var out []uint64
		for _, x := range xs {
			out = append(out, x.U128().Lo/10)
		}
		slices.Sort(out)
		return out
	}
	k := func(n uint64) id.U128 { return id.U128{Lo: n} }
	none := id.U128{Lo: 7}.ID() // not in the set
	for _, tc := range []struct {
		name        string
		right, left id.U128
		half        int
		skip        id.ID
		want        []uint64
	}{
		{"around a key", k(505), k(505), 2, none, []uint64{49, 50, 51, 52}},
		{"on an id, taken once", k(500), k(500), 2, none, []uint64{48, 49, 50, 51}},
		{"skipping one", k(505), k(505), 2, at(51, 10), []uint64{49, 50, 52, 53}},
		{"wrapping", k(985), k(985), 3, none, []uint64{0, 1, 96, 97, 98, 99}},
		{"more than there are", k(5), k(5), 80, none, get(ids)},
	} {
		if got := get(around(ids, tc.right, tc.left, tc.half, func(x id.ID) bool { return x != tc.skip })); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A fake root at 530 for key 505 (distance 25) suppresses 480 to 520
	// (480, as far from the key, wins the tie as the smaller id).
	key, self := id.U128{Lo: 505}.ID(), at(53, 10)
	d := id.RingDistance(key, self)
	set := around(ids, key.U128().Add(d), key.U128().Sub(d), 3, func(x id.ID) bool { return x != self && !id.Closer(key, x, self) })
	if got := get(set); !slices.Equal(got, []uint64{45, 46, 47, 54, 55, 56}) {
		t.Fatalf("suppressed set %v", got)
	}
	// Its ratio is 1.83: caught at the paper's γ=1.72, let through at
	// the default 2.0 (a suppressing fake root this sparse is why the
	// simulator's false negatives under suppression rise with γ).
	if c := CheckRoute(key, self, set, at(20, 10), ring(17, 23, 10), 1.72); !c.Closest || !c.Covers || c.Passed {
		t.Errorf("suppressed set's test %+v: want closest and covering, sparse enough to fail at 1.72", c)
	}
	if c := CheckRoute(key, self, set, at(20, 10), ring(17, 23, 10), DefaultGamma); !c.Passed {
		t.Errorf("suppressed set's test %+v: want it to pass at γ=%g", c, DefaultGamma)
	}
}
