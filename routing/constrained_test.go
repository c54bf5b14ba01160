package routing

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// A constrained table's slot holds, of the nodes offered, the one
// numerically closest to the slot's point (self with digit r replaced by
// d), whatever their proximity and the order they came in, one by one or
// in bulk; the proximity table beside it keeps the nearest.
func TestConstrainedTableKeepsClosestToPoint(t *testing.T) {
	r := rng(21)
	for _, b := range []int{1, 2, 4} {
		self := id.Random(r)
		all := ids(r, 2000)
		one, err := NewConstrainedTable(self, b)
		if err != nil {
			t.Fatal(err)
		}
		bulk, _ := NewConstrainedTable(self, b)
		es := make([]Entry, len(all))
		for i, x := range all {
			es[i] = Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(1 << 20))}
			one.Consider(es[i])
		}
		bulk.ConsiderAll(es[:len(es)/2])
		bulk.ConsiderAll(es[len(es)/2:])
		want := map[[2]int]id.ID{}
		for _, x := range all {
			row, col, ok := one.Position(x)
			if !ok {
				continue
			}
			p := one.Point(row, col)
			if cur, had := want[[2]int{row, col}]; !had || id.Closer(p, x, cur) {
				want[[2]int{row, col}] = x
			}
		}
		for _, tb := range []*RoutingTable{one, bulk} {
			if !tb.Constrained() || tb.Size() != len(want) {
				t.Fatalf("b=%d: constrained %v, %d slots filled, want %d", b, tb.Constrained(), tb.Size(), len(want))
			}
			for k, x := range want {
				if e, ok := tb.Get(k[0], k[1]); !ok || e.ID != x {
					t.Fatalf("b=%d: slot %v holds %v, want %s", b, k, e.ID, x)
				}
			}
			// The occupant is not wanted again; a farther node is not wanted.
			for _, e := range es[:50] {
				row, col, ok := tb.Position(e.ID)
				if ok && tb.Wants(e) != (want[[2]int{row, col}] != e.ID && id.Closer(tb.Point(row, col), e.ID, want[[2]int{row, col}])) {
					t.Fatalf("b=%d: Wants(%s) wrong", b, e.ID)
				}
			}
		}
	}
}

// The point of slot (r, d) shares r digits with self, has digit d at r,
// and self's digits after.
func TestConstrainedPoint(t *testing.T) {
	self := id.MustParse("0123456789abcdef0123456789abcdef")
	tb, _ := NewConstrainedTable(self, 4)
	if got := tb.Point(2, 0xf); got != id.MustParse("01f3456789abcdef0123456789abcdef") {
		t.Fatalf("Point(2, f) = %s", got)
	}
}

// Secure routing (ModeConstrained) takes its next hops from the
// constrained table and the leaf set only, and still makes progress and
// ends at the key's root; ModeProximity is NextHop. A state without a
// constrained table routes the same in both modes.
func TestNextHopInConstrainedMode(t *testing.T) {
	r := rng(22)
	const b = 4
	all := ids(r, 400)
	states := map[id.ID]*State{}
	for i := range all {
		rot := append(slices.Clone(all[i:]), all[:i]...)
		s, err := NewState(id.Handle{ID: rot[0]}, b, 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		s.EnableConstrained()
		for _, x := range rot[1:] {
			s.Consider(Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(1 << 20))})
		}
		states[all[i]] = s
	}
	viaConstrained := 0
	for range 300 {
		key := id.Random(r)
		at := all[r.IntN(len(all))]
		for hops := 0; ; hops++ {
			s := states[at]
			next, fwd := s.NextHopIn(key, nil, ModeConstrained)
			if p, pf := s.NextHopIn(key, nil, ModeProximity); p != func() id.Handle { h, _ := s.NextHop(key, nil); return h }() {
				t.Fatal("ModeProximity is not NextHop")
			} else if pf != fwd {
				t.Fatalf("the modes disagree on whether %s is the root", at)
			}
			if !fwd {
				break
			}
			inLeaves := s.Leaves.Contains(next.ID)
			if !inLeaves && !s.Constrained.Contains(next.ID) {
				t.Fatalf("secure next hop %s is in neither the leaf set nor the constrained table", next.ID)
			}
			if !inLeaves {
				viaConstrained++
			}
			if hops > 64 {
				t.Fatal("routing loop")
			}
			at = next.ID
		}
		if want := closest(key, all); at != want {
			t.Fatalf("key %s delivered at %s, root is %s", key, at, want)
		}
	}
	if viaConstrained == 0 {
		t.Fatal("no hop came from the constrained table")
	}
	plain := fullState(t, all, b, 16, r)
	key := id.Random(r)
	h1, ok1 := plain.NextHopIn(key, nil, ModeConstrained)
	h2, ok2 := plain.NextHop(key, nil)
	if h1 != h2 || ok1 != ok2 {
		t.Fatal("without a constrained table ModeConstrained differs from NextHop")
	}
}

// Remove empties the constrained slot too.
func TestStateRemoveConstrained(t *testing.T) {
	r := rng(23)
	all := ids(r, 100)
	s, _ := NewState(id.Handle{ID: all[0]}, 4, 8, 8)
	s.EnableConstrained()
	for _, x := range all[1:] {
		s.Consider(Entry{Handle: id.Handle{ID: x}, Prox: 1})
	}
	var in id.ID
	s.Constrained.ForEach(func(_, _ int, e Entry) bool { in = e.ID; return false })
	if !s.Knows(in) {
		t.Fatal("a constrained entry is not known")
	}
	g := s.Generation()
	s.Remove(in)
	if s.Constrained.Contains(in) || s.Generation() == g {
		t.Fatal("Remove left the constrained entry, or did not change the generation")
	}
}
