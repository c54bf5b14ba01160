package lookup

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// The root redundant routing picks is the union's id closest to the key,
// with half the set on each side of it; a claim counts towards ending a
// round only if it names that root and its own set passes the test: a
// suppressing liar names itself, and colluders posing as the key's
// neighbourhood are too sparse.
func TestSecurePickAndAgreeing(t *testing.T) {
	const step = 1000
	key := at(0, step).U128().Add(id.U128{Lo: 10}).ID() // just clockwise of id 0
	honest := ring(-16, 16, step)                       // the true neighbourhood; root at(0)
	root := at(0, step)
	var s secureState
	// A suppressing liar at +1: everything closer to the key than itself
	// (the root, at 0) left out.
	liar := at(1, step)
	s.addClaim(key, id.Handle{ID: liar}, slices.DeleteFunc(slices.Clone(honest), func(x id.ID) bool { return x == root || x == liar }))
	if got, _, _ := s.pick(key, 16); got != liar {
		t.Fatalf("with only the liar's claim the union's root is %s, want the liar %s", got, liar)
	}
	mu := float64(step)
	if n := s.agreeing(key, liar, mu, 1.72); n != 1 {
		t.Fatalf("the liar agrees with itself %d times", n)
	}
	// Fake roots reporting a set 4 times sparser than the overlay do not
	// count, whatever they name.
	colluders := ring(-64, 64, 4*step)
	for _, c := range []int64{8, 12} {
		s.addClaim(key, id.Handle{ID: at(c*4, step)}, colluders)
	}
	if n := s.agreeing(key, at(0, step), mu, 1.72); n != 0 {
		t.Fatalf("sparse colluder claims counted: %d", n)
	}
	// Two honest claimers near the key: the root appears, and two agree.
	for _, c := range []int64{-3, 2} {
		var leaves []id.ID
		for _, x := range honest {
			if x != at(c, step) {
				leaves = append(leaves, x)
			}
		}
		s.addClaim(key, id.Handle{ID: at(c, step)}, leaves)
	}
	got, set, ok := s.pick(key, 16)
	if !ok || got != root || len(set) != 33 || !slices.Contains(set, at(-16, step)) || !slices.Contains(set, at(16, step)) {
		t.Fatalf("picked %s (want %s) with %d ids", got, root, len(set))
	}
	if n := s.agreeing(key, root, mu, 1.72); n != 2 {
		t.Fatalf("%d honest claims agree, want 2", n)
	}
	if _, _, ok := (&secureState{}).pick(key, 16); ok {
		t.Fatal("an empty union picked a root")
	}
}

// An honest node whose leaf set ends just past the key, short of the
// true root on the far side, names the closest node on its own side:
// such a claim does not count towards a root (brackets), where one whose
// set reaches past the key at least as far as the root does.
func TestBrackets(t *testing.T) {
	const step = 1000
	key := at(0, step).U128().Add(id.U128{Lo: 400}).ID() // between 0 and 1, closer to 0
	edge := ring(-20, 0, step)                           // ends at 0: the root at 1 unseen
	if !brackets(key, at(0, step), ring(-3, 3, step)) {
		t.Error("a set reaching 3 ids past the key does not bracket its root")
	}
	if brackets(key, at(0, step), edge) {
		t.Error("a set ending at its root brackets it")
	}
	if brackets(key, at(-1, step), edge) || !brackets(key, at(1, step), ring(-5, 5, step)) {
		t.Error("brackets on the far side")
	}
}

// A fill answer is taken only from a node that could be the point's
// root: at least as close to the point as every node it names and as
// the slot's occupant.
func TestCredibleFill(t *testing.T) {
	self := id.ID{0x12, 0x34}
	tb, err := routing.NewConstrainedTable(self, 4)
	if err != nil {
		t.Fatal(err)
	}
	s := &fillSlot{row: 0, col: 5}
	p := tb.Point(0, 5)
	near := func(off uint64) id.ID { return p.U128().Add(id.U128{Lo: off}).ID() }
	h := func(x id.ID) id.Handle { return id.Handle{ID: x, Addr: "a"} }
	root, second, far := near(10), near(20), near(1<<40)
	if !credibleFill(tb, s, root, []id.Handle{h(root), h(second)}) {
		t.Error("the root naming itself and a farther node, empty slot: refused")
	}
	if credibleFill(tb, s, far, []id.Handle{h(second)}) {
		t.Error("a far node naming a closer one: taken")
	}
	tb.Consider(routing.Entry{Handle: h(second)})
	if credibleFill(tb, s, far, []id.Handle{h(far)}) {
		t.Error("a node farther than the occupant: taken")
	}
	if !credibleFill(tb, s, root, nil) || !credibleFill(tb, s, second, nil) {
		t.Error("the root, or the occupant itself, naming nobody: refused")
	}
}

// The witnesses of an answer are picked among the ids it reports closest
// to the key, never the root or the origin itself, k of the 2k closest.
func TestPickWitnesses(t *testing.T) {
	const step = 1000
	key := at(0, step).U128().Add(id.U128{Lo: 10}).ID()
	root, self := at(0, step), at(-1, step)
	set := ring(-16, 16, step)
	near := map[id.ID]bool{}
	for _, c := range []int64{-4, -3, -2, 1, 2, 3, 4, 5} { // the 8 closest but the root and self
		near[at(c, step)] = true
	}
	seen := map[id.ID]bool{}
	for seed := range 50 {
		n := seed
		ws := pickWitnesses(key, root, self, set, 4, func(k int) int { n = (n*7 + 3) % 101; return n % k })
		if len(ws) != 4 {
			t.Fatalf("%d witnesses, want 4", len(ws))
		}
		for i, w := range ws {
			if !near[w] || slices.Contains(ws[:i], w) {
				t.Fatalf("witnesses %v: %s is not one of the 8 closest to the key (not the root or self), or twice", ws, w)
			}
			seen[w] = true
		}
	}
	if len(seen) < 6 {
		t.Errorf("50 picks used %d of the 8 candidates", len(seen))
	}
	if ws := pickWitnesses(key, root, self, []id.ID{root, self, at(3, step)}, 4, func(int) int { return 0 }); len(ws) != 1 || ws[0] != at(3, step) {
		t.Errorf("a set with one other id: witnesses %v", ws)
	}
}
