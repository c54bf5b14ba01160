package lookup

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
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
