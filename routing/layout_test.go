package routing

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// TestLeafSetQueriesMatchBruteForce checks Contains, Lookup and Wants,
// which read the snapshot's key index, arc and reach, against their
// definitions over Left and Right, for sets from a single node to a full
// ring, members and strangers alike.
func TestLeafSetQueriesMatchBruteForce(t *testing.T) {
	r := rng(7)
	for _, l := range []int{2, 8, 16, 32} {
		for _, n := range []int{1, 2, 5, l / 2, l, l + 1, l + 2, 3 * l, 200} {
			all := ids(r, n)
			self, others := all[0], all[1:]
			ls, err := NewLeafSet(id.Handle{ID: self, Addr: "s"}, l)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range r.Perm(len(others)) {
				ls.Consider(Entry{Handle: id.Handle{ID: others[i], Addr: "a"}, Prox: uint32(i)})
			}
			su := self.U128()
			fits := func(side []Entry, d id.U128, cw bool) bool {
				if len(side) < l/2 {
					return true
				}
				far := side[len(side)-1].ID.U128()
				if cw {
					return d.Less(far.Sub(su))
				}
				return d.Less(su.Sub(far))
			}
			in := func(side []Entry, x id.ID) bool {
				return slices.ContainsFunc(side, func(e Entry) bool { return e.ID == x })
			}
			queries := append(slices.Clone(all), ids(r, 50)...)
			for _, x := range queries {
				left, right := ls.Left(), ls.Right()
				member := in(left, x) || in(right, x)
				if ls.Contains(x) != member {
					t.Fatalf("L=%d n=%d: Contains(%s) = %v, want %v", l, n, x.Short(), !member, member)
				}
				if e, ok := ls.Lookup(x); ok != member || ok && e.ID != x {
					t.Fatalf("L=%d n=%d: Lookup(%s) = %v %v", l, n, x.Short(), e, ok)
				}
				u := x.U128()
				want := x != self && (!in(right, x) && fits(right, u.Sub(su), true) || !in(left, x) && fits(left, su.Sub(u), false))
				if got := ls.Wants(x); got != want {
					t.Fatalf("L=%d n=%d: Wants(%s) = %v, want %v", l, n, x.Short(), got, want)
				}
			}
			// Members, once each, and both sides' entries among them.
			ms := ls.Members(nil)
			for _, side := range [][]Entry{ls.Left(), ls.Right()} {
				for _, e := range side {
					if !slices.Contains(ms, e) {
						t.Fatalf("L=%d n=%d: %s missing from Members", l, n, e.ID.Short())
					}
				}
			}
			seen := map[id.ID]bool{}
			for _, e := range ms {
				if seen[e.ID] {
					t.Fatalf("L=%d n=%d: %s twice in Members", l, n, e.ID.Short())
				}
				seen[e.ID] = true
			}
			if len(ms) != ls.Len() {
				t.Fatalf("L=%d n=%d: Len %d, Members %d", l, n, ls.Len(), len(ms))
			}
		}
	}
}

// TestForEachIn: the slots ForEachIn visits are a subsequence of
// ForEach's that holds every entry on the arc, and a narrow arc around the
// node (a leaf set's range) skips most of the table.
func TestForEachIn(t *testing.T) {
	r := rng(3)
	for _, b := range []int{1, 2, 4, 8} {
		self := id.Random(r)
		tb, err := NewRoutingTable(self, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ids(r, 3000) {
			tb.Consider(Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(1000))})
		}
		var all []id.ID
		tb.ForEach(func(_, _ int, e Entry) bool { all = append(all, e.ID); return true })
		su := self.U128()
		narrow := id.Pow2(id.Bits - 10) // about 1/1000 of the ring each side
		arcs := [][2]id.U128{{su.Sub(narrow), su.Add(narrow)}}
		for range 20 {
			arcs = append(arcs, [2]id.U128{id.Random(r).U128(), id.Random(r).U128()})
		}
		for k, a := range arcs {
			var got []id.ID
			tb.ForEachIn(a[0], a[1], func(_, _ int, e Entry) bool { got = append(got, e.ID); return true })
			i := 0
			for _, x := range got { // a subsequence of ForEach's order
				for i < len(all) && all[i] != x {
					i++
				}
				if i == len(all) {
					t.Fatalf("b=%d arc %d: %s not in ForEach's order", b, k, x.Short())
				}
				i++
			}
			for _, x := range all {
				if id.Between(a[0], x.U128(), a[1]) && !slices.Contains(got, x) {
					t.Fatalf("b=%d arc %d: %s on the arc, not visited", b, k, x.Short())
				}
			}
			if k == 0 && len(got) > len(all)/2 {
				t.Errorf("b=%d: a narrow arc visited %d of %d entries", b, len(got), len(all))
			}
		}
		// Stops early.
		n := 0
		tb.ForEachIn(su.Add(id.U128{Lo: 1}), su, func(_, _ int, e Entry) bool { n++; return n < 3 })
		if n != min(3, len(all)) {
			t.Errorf("b=%d: %d calls after fn returned false at 3", b, n)
		}
	}
}
