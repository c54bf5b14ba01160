package lookup

import (
	"math"
	"slices"

	"github.com/pastrynet/pastry/id"
)

// DefaultGamma is the routing failure test's default threshold γ: 2.0,
// the smallest γ of those measured at which the secure lookups' test
// (μ_p pooled from 8 leaf sets) kept both its false positive and its
// false negative rate at most 0.001 in the simulator (10,000 nodes, l=32,
// F=0.25 without suppression; docs/decisions/0083). Castro et al. (OSDI
// 2002) report their lowest error, 0.0008 for both, at γ=1.72; at 1.72
// the simulator measured 0.0018 to 0.0032 false positives.
const DefaultGamma = 2.0

// FailureTest is the routing failure test (Castro et al., OSDI 2002,
// section 5.2) applied to one answer at its origin: does the set of ids
// the answering root reported (itself and its leaf set) look like the
// neighbourhood of the key in an overlay as dense as the one the origin
// sees around itself? A fake root's set is made of colluders, which are
// sparser than all nodes, so its mean spacing μ_rn is larger than the
// origin's own μ_p.
type FailureTest struct {
	// Closest: no reported id is numerically closer to the key than the
	// root (a root that reports a closer node is not the root).
	Closest bool `json:"closest"`
	// Covers: the key lies within the range the reported set spans (a
	// true root's leaf set has members on both sides of the key).
	Covers bool `json:"covers"`
	// RootSpacing is μ_rn, the mean gap between adjacent ids of the
	// reported set; OwnSpacing μ_p, that of the origin and its leaf set;
	// Ratio μ_rn/μ_p (+Inf when either set has fewer than 2 ids). Spacings
	// are in units of the id space (2^128 ids).
	RootSpacing, OwnSpacing, Ratio float64
	// Passed is Pass(γ) for the γ of the lookup that ran the test; for a
	// secure lookup's answer, also that its witnesses passed it.
	Passed bool
	// Secure lookups' answers only (witness.go): how many of the ids the
	// root reported were asked as witnesses, how many of them replied
	// before the lookup went on, and whether a reply named an id closer
	// to the key than the root. The witnesses pass the answer when all
	// replied and none contradicted it (WitnessesPassed).
	Witnesses      int  `json:"witnesses,omitempty"`
	WitnessReplies int  `json:"witness_replies,omitempty"`
	Contradicted   bool `json:"contradicted,omitempty"`
}

// WitnessesPassed reports whether the answer's witnesses, if any were
// asked, all replied and none named an id closer to the key than the
// root.
func (t FailureTest) WitnessesPassed() bool {
	return !t.Contradicted && t.WitnessReplies >= t.Witnesses
}

// Pass reports whether the test accepts the answer at threshold gamma:
// the root is the closest reported id, the set covers the key, and
// μ_rn ≤ γ·μ_p.
func (t FailureTest) Pass(gamma float64) bool {
	return t.Closest && t.Covers && t.Ratio <= gamma
}

// CheckRoute runs the routing failure test on an answer for key from
// root, which reported rootLeaves as its leaf set, at a node self whose
// own leaf set is ownLeaves. It is a pure function: the sets may be in
// any order, contain duplicates, and contain root or self.
func CheckRoute(key, root id.ID, rootLeaves []id.ID, self id.ID, ownLeaves []id.ID, gamma float64) FailureTest {
	own, _ := meanSpacing(ringSet(ownLeaves, self))
	return CheckRouteSpacing(key, root, rootLeaves, own, gamma)
}

// CheckRouteSpacing is CheckRoute with the origin's mean spacing μ_p
// given (an estimate from more ids than its own leaf set: Density).
func CheckRouteSpacing(key, root id.ID, rootLeaves []id.ID, ownSpacing, gamma float64) FailureTest {
	reported := ringSet(rootLeaves, root)
	t := FailureTest{Closest: true, Ratio: math.Inf(1), OwnSpacing: ownSpacing}
	for _, x := range reported {
		if x != root && id.Closer(key, x, root) {
			t.Closest = false
			break
		}
	}
	var gapAt int
	t.RootSpacing, gapAt = meanSpacing(reported)
	if gapAt >= 0 {
		// The key is covered unless it lies strictly inside the set's
		// largest gap, the part of the ring the set does not span.
		a, b := reported[gapAt], reported[(gapAt+1)%len(reported)]
		off := id.Clockwise(a, key)
		t.Covers = off.IsZero() || !off.Less(id.Clockwise(a, b))
	}
	if t.RootSpacing > 0 && t.OwnSpacing > 0 {
		t.Ratio = t.RootSpacing / t.OwnSpacing
	}
	t.Passed = t.Pass(gamma)
	return t
}

// MeanSpacing is the mean gap between adjacent ids of a set (any order,
// duplicates ignored) over the part of the ring it spans: the ring minus
// its largest gap, over the number of ids less one. It is 0 for fewer
// than 2 distinct ids.
func MeanSpacing(ids []id.ID) float64 {
	s, _ := meanSpacing(ringSet(ids))
	return s
}

// ringSet is xs and more, sorted, without duplicates, in a new slice.
func ringSet(xs []id.ID, more ...id.ID) []id.ID {
	out := append(append(make([]id.ID, 0, len(xs)+len(more)), xs...), more...)
	slices.SortFunc(out, func(a, b id.ID) int { return a.Cmp(b) })
	return slices.Compact(out)
}

// meanSpacing computes MeanSpacing over a sorted set without duplicates,
// and returns the index i of the id that starts its largest gap (from
// ids[i] clockwise to ids[i+1], wrapping), or -1 for fewer than 2 ids.
func meanSpacing(ids []id.ID) (float64, int) {
	if len(ids) < 2 {
		return 0, -1
	}
	var gap id.U128
	at := 0
	for i := range ids {
		if g := id.Clockwise(ids[i], ids[(i+1)%len(ids)]); gap.Less(g) {
			gap, at = g, i
		}
	}
	span := id.U128{}.Sub(gap) // 2^128 - gap
	return float(span) / float64(len(ids)-1), at
}

// float converts u to a float64 (rounded).
func float(u id.U128) float64 {
	return float64(u.Hi)*(1<<64) + float64(u.Lo)
}
