package lookup

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// PoolSpacing pools sets by their spans and gaps, and leaves out the
// sets sparser than 1.5 times the median: a liar that thins its set
// moves the estimate little.
func TestPoolSpacing(t *testing.T) {
	even := func(from int64, n int, step uint64) []id.ID { return ring(from, from+int64(n)-1, step) }
	if got := PoolSpacing(nil); got != 0 {
		t.Fatalf("no sets: %v", got)
	}
	if got := PoolSpacing([][]id.ID{{at(1, 5)}}); got != 0 {
		t.Fatalf("one id: %v", got)
	}
	// 10 gaps of 10 and 30 gaps of 20: 700/40.
	if got := PoolSpacing([][]id.ID{even(0, 11, 10), even(1000, 31, 20), even(5000, 11, 14)}); math.Abs(got-(100+600+140)/50.0) > 1e-9 {
		t.Fatalf("pooled %v", got)
	}
	// A set thinned to spacing 40 among four of spacing 10 is left out.
	sets := [][]id.ID{even(0, 33, 10), even(1000, 33, 10), even(2000, 33, 10), even(3000, 33, 10), even(9000, 17, 40)}
	if got := PoolSpacing(sets); math.Abs(got-10) > 1e-9 {
		t.Fatalf("with a thinned set: %v, want 10", got)
	}
}

// On random ids, μ_p pooled from 8 sets of 33 consecutive ids is within
// 25% of the true spacing far more often than one set is: the reason for
// pooling (the test's false positives come from this spread).
func TestPoolSpacingNarrowsTheEstimate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 4096
	var all []id.ID
	for range n {
		all = append(all, id.Random(r))
	}
	all = ringSet(all)
	truth := math.Exp2(128) / n
	window := func(i int) []id.ID {
		var out []id.ID
		for k := range 33 {
			out = append(out, all[(i+k)%n])
		}
		return out
	}
	var offOne, offPooled int
	const trials = 400
	for range trials {
		if m := MeanSpacing(window(r.IntN(n))); math.Abs(m/truth-1) > 0.25 {
			offOne++
		}
		var sets [][]id.ID
		for range 8 {
			sets = append(sets, window(r.IntN(n)))
		}
		if m := PoolSpacing(sets); math.Abs(m/truth-1) > 0.25 {
			offPooled++
		}
	}
	t.Logf("off by more than 25%%: one set %d of %d, 8 pooled %d", offOne, trials, offPooled)
	if offPooled*5 > offOne || offOne < trials/20 {
		t.Fatalf("one set off %d times, pooled %d of %d", offOne, offPooled, trials)
	}
}
