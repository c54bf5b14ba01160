package routing

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// The bulk methods must leave exactly the state that offering the same
// entries one at a time leaves.
func TestConsiderAllMatchesOneByOne(t *testing.T) {
	r := rng(11)
	for _, b := range []int{1, 2, 4, 8} {
		for _, l := range []int{2, 8, 16, 32} {
			for trial := range 20 {
				all := ids(r, 1+r.IntN(300))
				one, _ := NewState(id.Handle{ID: all[0]}, b, l, 1+r.IntN(40))
				bulk, _ := NewState(id.Handle{ID: all[0]}, b, l, cap1(one))
				var es []Entry
				for _, x := range all[1:] {
					es = append(es, Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(50))})
				}
				// Repeats with new proximities, and unknown proximity.
				for range len(es) / 3 {
					e := es[r.IntN(len(es))]
					e.Prox = uint32(r.IntN(50))
					if r.IntN(5) == 0 {
						e.Prox = UnknownProximity
					}
					es = append(es, e)
				}
				// Start both from the same non-empty state.
				split := r.IntN(len(es) + 1)
				for _, e := range es[:split] {
					one.Consider(e)
					bulk.Consider(e)
				}
				var added, evicted []Entry
				for _, e := range es[split:] {
					a, ev := one.Consider(e)
					if a {
						added = append(added, e)
					}
					evicted = append(evicted, ev...)
				}
				ba, be := bulk.ConsiderAll(es[split:])
				if !slices.Equal(one.Leaves.Left(), bulk.Leaves.Left()) || !slices.Equal(one.Leaves.Right(), bulk.Leaves.Right()) {
					t.Fatalf("b=%d L=%d trial %d: leaf sets differ", b, l, trial)
				}
				if !slices.Equal(one.Neighbors.Members(), bulk.Neighbors.Members()) {
					t.Fatalf("b=%d L=%d trial %d: neighbourhood sets differ:\n%v\n%v", b, l, trial, one.Neighbors.Members(), bulk.Neighbors.Members())
				}
				var te, tb []Entry
				one.Table.ForEach(func(_, _ int, e Entry) bool { te = append(te, e); return true })
				bulk.Table.ForEach(func(_, _ int, e Entry) bool { tb = append(tb, e); return true })
				if !slices.Equal(te, tb) || one.Table.Size() != bulk.Table.Size() {
					t.Fatalf("b=%d L=%d trial %d: tables differ", b, l, trial)
				}
				// Net membership changes agree (one-by-one may add then evict).
				net := func(add, ev []Entry) map[id.Handle]int {
					m := map[id.Handle]int{}
					for _, e := range add {
						m[e.Handle]++
					}
					for _, e := range ev {
						m[e.Handle]--
					}
					for k, v := range m {
						if v == 0 {
							delete(m, k)
						}
					}
					return m
				}
				n1, n2 := net(added, evicted), net(ba, be)
				if len(n1) != len(n2) {
					t.Fatalf("b=%d L=%d trial %d: leaf changes differ: %v vs %v", b, l, trial, n1, n2)
				}
				for k, v := range n1 {
					if n2[k] != v {
						t.Fatalf("leaf change for %v: %d vs %d", k, v, n2[k])
					}
				}
			}
		}
	}
}

func cap1(s *State) int { return s.Neighbors.max }
