package routing

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 42)) }

func ids(r *rand.Rand, n int) []id.ID {
	out := make([]id.ID, n)
	for i := range out {
		out[i] = id.Random(r)
	}
	return out
}

// trueLeaves is the brute-force leaf set: the half closest clockwise and the
// half closest counter-clockwise among others.
func trueLeaves(self id.ID, others []id.ID, half int) (left, right []id.ID) {
	cw := slices.Clone(others)
	slices.SortFunc(cw, func(a, b id.ID) int { return id.Clockwise(self, a).Cmp(id.Clockwise(self, b)) })
	ccw := slices.Clone(others)
	slices.SortFunc(ccw, func(a, b id.ID) int { return id.Clockwise(a, self).Cmp(id.Clockwise(b, self)) })
	return ccw[:min(half, len(ccw))], cw[:min(half, len(cw))]
}

func entryIDs(es []Entry) []id.ID {
	out := make([]id.ID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestLeafSetMatchesBruteForce(t *testing.T) {
	r := rng(1)
	for _, l := range []int{2, 8, 16, 32} {
		for _, n := range []int{1, 2, 5, l / 2, l, l + 1, l + 2, 3 * l, 200} {
			all := ids(r, n)
			self, others := all[0], all[1:]
			ls, err := NewLeafSet(id.Handle{ID: self}, l)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range r.Perm(len(others)) {
				ls.Consider(Entry{Handle: id.Handle{ID: others[i]}})
			}
			wl, wr := trueLeaves(self, others, l/2)
			if !slices.Equal(entryIDs(ls.Left()), wl) || !slices.Equal(entryIDs(ls.Right()), wr) {
				t.Fatalf("L=%d n=%d: leaf set differs from brute force", l, n)
			}
			// Every other node must be covered when there are fewer than L+1.
			if n <= l && ls.Len() != len(others) {
				t.Fatalf("L=%d n=%d: small overlay, leaf set holds %d of %d", l, n, ls.Len(), len(others))
			}
			if n <= l && !ls.Covers(id.Random(r)) {
				t.Fatalf("L=%d n=%d: small overlay leaf set must cover the ring", l, n)
			}
			// The sides overlap (Ring) exactly when fewer than L others
			// exist: each side then reaches round to the other's members.
			if want := n-1 >= 1 && n-1 < l; ls.Ring() != want {
				t.Fatalf("L=%d n=%d: Ring %v, want %v", l, n, ls.Ring(), want)
			}
			// Removing a member and re-offering the rest restores the truth.
			if len(others) > 0 {
				gone := ls.Left()[0].ID
				if !ls.Remove(gone) || ls.Contains(gone) {
					t.Fatal("remove")
				}
				rest := slices.DeleteFunc(slices.Clone(others), func(x id.ID) bool { return x == gone })
				for _, x := range rest {
					ls.Consider(Entry{Handle: id.Handle{ID: x}})
				}
				wl, wr = trueLeaves(self, rest, l/2)
				if !slices.Equal(entryIDs(ls.Left()), wl) || !slices.Equal(entryIDs(ls.Right()), wr) {
					t.Fatalf("L=%d n=%d: after remove and repair", l, n)
				}
			}
		}
	}
}

func TestLeafSetReportsEvictions(t *testing.T) {
	self := id.MustParse("80000000000000000000000000000000")
	ls, _ := NewLeafSet(id.Handle{ID: self}, 2)
	far := Entry{Handle: id.Handle{ID: id.MustParse("90000000000000000000000000000000")}}
	near := Entry{Handle: id.Handle{ID: id.MustParse("81000000000000000000000000000000")}}
	left := Entry{Handle: id.Handle{ID: id.MustParse("70000000000000000000000000000000")}}
	if added, _ := ls.Consider(far); !added {
		t.Fatal("first node must be added")
	}
	ls.Consider(left)
	// far is now right (cw 0x10..) only: left holds the closer 0x70.
	added, ev := ls.Consider(near)
	if !added || len(ev) != 1 || ev[0].ID != far.ID {
		t.Fatalf("added=%v evicted=%v, want far evicted", added, ev)
	}
	if added, _ := ls.Consider(near); added {
		t.Fatal("re-offering a member is not an addition")
	}
	if ls.Wants(far.ID) {
		t.Fatal("full set must not want a farther node")
	}
}

func TestLeafSetRejectsBadSize(t *testing.T) {
	for _, l := range []int{0, 1, 3, 258} {
		if _, err := NewLeafSet(id.Handle{}, l); err == nil {
			t.Errorf("L=%d accepted", l)
		}
	}
	if _, err := NewRoutingTable(id.ID{}, 3); err == nil {
		t.Error("b=3 accepted")
	}
	if _, err := NewNeighborhoodSet(id.ID{}, -1); err == nil {
		t.Error("M=-1 accepted")
	}
}

func TestRoutingTableInvariantAndProximity(t *testing.T) {
	r := rng(2)
	for _, b := range []int{1, 2, 4, 8} {
		self := id.Random(r)
		tab, _ := NewRoutingTable(self, b)
		best := map[[2]int]Entry{}
		for range 3000 {
			e := Entry{Handle: id.Handle{ID: id.Random(r)}, Prox: uint32(r.IntN(1000))}
			tab.Consider(e)
			row, col, _ := tab.Position(e.ID)
			if cur, ok := best[[2]int{row, col}]; !ok || e.Prox < cur.Prox {
				best[[2]int{row, col}] = e
			}
		}
		n := 0
		tab.ForEach(func(row, col int, e Entry) bool {
			n++
			if id.SharedPrefixLen(self, e.ID, b) != row || e.ID.Digit(row, b) != col {
				t.Fatalf("b=%d: entry %s at (%d,%d) breaks the prefix invariant", b, e.ID, row, col)
			}
			if best[[2]int{row, col}] != e {
				t.Fatalf("b=%d: slot (%d,%d) holds prox %d, best offered was %d", b, row, col, e.Prox, best[[2]int{row, col}].Prox)
			}
			return true
		})
		if n != len(best) || n != tab.Size() {
			t.Fatalf("b=%d: %d entries, %d slots offered, size %d", b, n, len(best), tab.Size())
		}
		if tab.Consider(Entry{Handle: id.Handle{ID: self}}) {
			t.Fatal("own id admitted")
		}
		// Removing every entry empties the table.
		var all []id.ID
		tab.ForEach(func(_, _ int, e Entry) bool { all = append(all, e.ID); return true })
		for _, x := range all {
			if !tab.Remove(x) || tab.Remove(x) {
				t.Fatal("remove twice")
			}
		}
		if tab.Size() != 0 {
			t.Fatal("size after removing all")
		}
	}
}

func TestNeighborhoodSetKeepsClosest(t *testing.T) {
	r := rng(3)
	ns, _ := NewNeighborhoodSet(id.ID{}, 8)
	var offered []Entry
	for range 100 {
		e := Entry{Handle: id.Handle{ID: id.Random(r)}, Prox: uint32(r.IntN(100000))}
		offered = append(offered, e)
		ns.Consider(e)
	}
	ns.Consider(Entry{Handle: id.Handle{ID: id.Random(r)}, Prox: UnknownProximity})
	slices.SortFunc(offered, func(a, b Entry) int { return int(a.Prox) - int(b.Prox) })
	if !slices.Equal(ns.Members(), offered[:8]) {
		t.Fatal("neighbourhood set is not the 8 proximity-closest")
	}
	// A member whose proximity worsens moves back or drops out.
	worst := ns.Members()[0]
	worst.Prox = 1 << 30
	ns.Consider(worst)
	if m := ns.Members(); m[len(m)-1].ID != worst.ID {
		t.Fatal("member with worse proximity not re-sorted")
	}
}

// fullState builds a node's state from a whole overlay, as a settled node in
// it would hold.
func fullState(t testing.TB, all []id.ID, b, l int, r *rand.Rand) *State {
	s, err := NewState(id.Handle{ID: all[0]}, b, l, 32)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all[1:] {
		s.Consider(Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(1 << 20))})
	}
	return s
}

func closest(key id.ID, all []id.ID) id.ID {
	best := all[0]
	for _, x := range all[1:] {
		if id.Closer(key, x, best) {
			best = x
		}
	}
	return best
}

func TestNextHopMakesProgressAndEndsAtRoot(t *testing.T) {
	r := rng(4)
	for _, b := range []int{1, 2, 4, 8} {
		all := ids(r, 300)
		states := map[id.ID]*State{}
		for i := range all {
			rot := append(slices.Clone(all[i:]), all[:i]...)
			states[all[i]] = fullState(t, rot, b, 16, r)
		}
		for range 300 {
			key := id.Random(r)
			at := all[r.IntN(len(all))]
			for hops := 0; ; hops++ {
				next, fwd := states[at].NextHop(key, nil)
				if !fwd {
					break
				}
				// Each hop either lengthens the shared prefix or gets closer.
				// (In leaf-set range, progress is numeric closeness alone.)
				pa, pn := id.SharedPrefixLen(at, key, b), id.SharedPrefixLen(next.ID, key, b)
				closer := id.Closer(key, next.ID, at)
				if states[at].Leaves.Covers(key) && !closer || !states[at].Leaves.Covers(key) && (pn < pa || pn == pa && !closer) {
					t.Fatalf("b=%d: hop %s -> %s makes no progress to %s", b, at, next.ID, key)
				}
				if hops > 128 {
					t.Fatal("routing loop")
				}
				at = next.ID
			}
			if want := closest(key, all); at != want {
				t.Fatalf("b=%d: key %s delivered at %s, root is %s", b, key, at, want)
			}
		}
	}
}

func TestNextHopSkip(t *testing.T) {
	r := rng(5)
	all := ids(r, 10)
	s := fullState(t, all, 4, 16, r)
	key := all[3]
	if h, ok := s.NextHop(key, nil); !ok || h.ID != key {
		t.Fatalf("key equal to a leaf must route to it, got %v %v", h, ok)
	}
	h, ok := s.NextHop(key, func(x id.ID) bool { return x == key })
	want := closest(key, slices.DeleteFunc(slices.Clone(all), func(x id.ID) bool { return x == key }))
	if got := s.Self.ID; !ok {
		if got != want {
			t.Fatalf("skipping the root delivered here, want %s", want)
		}
	} else if h.ID != want {
		t.Fatalf("skipping the root went to %s, want %s", h.ID, want)
	}
}

func TestReplicaSetAndRange(t *testing.T) {
	r := rng(6)
	all := ids(r, 500)
	s := fullState(t, all, 4, 16, r)
	lsAll := append(s.Leaves.Members(nil), Entry{Handle: s.Self})
	for range 200 {
		// Keys near self are in range.
		key := s.Self.ID.U128().Add(id.U128{Lo: r.Uint64()}).ID()
		if r.IntN(2) == 0 {
			key = s.Self.ID.U128().Sub(id.U128{Lo: r.Uint64()}).ID()
		}
		rs := s.ReplicaSet(key, 4)
		var cand []id.ID
		for _, e := range lsAll {
			cand = append(cand, e.ID)
		}
		slices.SortFunc(cand, func(a, b id.ID) int {
			if id.Closer(key, a, b) {
				return -1
			}
			return 1
		})
		for i := range rs {
			if rs[i].ID != cand[i] {
				t.Fatalf("replica %d of %s = %s want %s", i, key, rs[i].ID, cand[i])
			}
		}
		// Range agrees with ReplicaSet: self is in the replica set of k iff k
		// is in self's rank-3 range.
		lo, hi, ok := s.Range(s.Self.ID, 3)
		if !ok {
			t.Fatal("range of self unknown")
		}
		in := id.Between(lo.U128(), key.U128(), hi.U128())
		has := slices.ContainsFunc(rs, func(h id.Handle) bool { return h.ID == s.Self.ID })
		if in != has && key != lo && key != hi {
			t.Fatalf("key %s: in range %v, in replica set %v", key, in, has)
		}
	}
	if _, _, ok := s.Range(id.Random(r), 0); ok {
		t.Fatal("range of an unknown node")
	}
}

func TestRangeSmallOverlay(t *testing.T) {
	r := rng(7)
	all := ids(r, 5)
	s := fullState(t, all, 4, 16, r)
	for range 500 {
		key := id.Random(r)
		root := closest(key, all)
		lo, hi, ok := s.Range(root, 0)
		if !ok || !id.Between(lo.U128(), key.U128(), hi.U128()) {
			t.Fatalf("key %s not in its root's range", key)
		}
	}
}

// members lists each structure's members (leaf set, neighbourhood set,
// routing table), for comparing states.
func members(s *State) [3][]id.ID {
	var out [3][]id.ID
	out[0] = entryIDs(s.Leaves.Members(nil))
	out[1] = entryIDs(s.Neighbors.Members())
	s.Table.ForEach(func(_, _ int, e Entry) bool {
		out[2] = append(out[2], e.ID)
		return true
	})
	return out
}

func generations(s *State) [3]uint64 {
	return [3]uint64{s.Leaves.Generation(), s.Neighbors.Generation(), s.Table.Generation()}
}

// Each structure's generation, and so the state's, moves whenever its
// members change (the runtime re-protects the state's peers in libp2p's
// connection manager on that signal alone).
func TestStateGenerationFollowsMembers(t *testing.T) {
	r := rng(9)
	s, err := NewState(id.Handle{ID: id.Random(r)}, 4, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	var known []id.ID
	var changes [3]int
	for i := range 3000 {
		before, gens, gen := members(s), generations(s), s.Generation()
		switch op := r.IntN(10); {
		case op < 5 || len(known) == 0:
			x := id.Random(r)
			known = append(known, x)
			s.Consider(Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(1 << 20))})
		case op < 7:
			es := make([]Entry, 1+r.IntN(8))
			for j := range es {
				es[j] = Entry{Handle: id.Handle{ID: id.Random(r)}, Prox: uint32(r.IntN(1 << 20))}
				known = append(known, es[j].ID)
			}
			s.ConsiderAll(es)
		case op < 9:
			s.Remove(known[r.IntN(len(known))])
		default: // a current member of one of the structures
			if m := before[r.IntN(3)]; len(m) > 0 {
				s.Remove(m[r.IntN(len(m))])
			}
		}
		after, gensAfter := members(s), generations(s)
		for k, name := range []string{"leaf set", "neighbourhood set", "routing table"} {
			if slices.Equal(before[k], after[k]) {
				continue
			}
			changes[k]++
			if gensAfter[k] == gens[k] || s.Generation() == gen {
				t.Fatalf("step %d: the %s changed, its generation stayed %d (state %d -> %d)", i, name, gens[k], gen, s.Generation())
			}
		}
	}
	for k, c := range changes {
		if c < 100 {
			t.Fatalf("structure %d changed in only %d steps: the test exercises too little", k, c)
		}
	}
	t.Logf("changes: leaf set %d, neighbourhood set %d, routing table %d", changes[0], changes[1], changes[2])
}
