package report

import "time"

// The papers' published figures, in one place. Every value the report
// compares against is here, with its source; nothing is interpolated.

// Rowstron & Druschel, "Pastry: Scalable, decentralized object location and
// routing for large-scale peer-to-peer systems", Middleware 2001, section 3
// (experimental results). Setup: b=4, L=16, M=32, nodes on a 1000 x 1000
// Euclidean plane, 200,000 lookups per run.
const (
	PaperSource = "Rowstron & Druschel, Pastry, Middleware 2001"

	// Mean routing hops against N (Fig. 4): only these three sizes are
	// published as numbers.
	PaperHops1k   = 2.5
	PaperHops10k  = 3.2
	PaperHops100k = 3.98

	// Probability of each hop count at N = 100,000 (Fig. 5).
	PaperHopFrac1 = 0.0006
	PaperHopFrac2 = 0.0156
	PaperHopFrac3 = 0.1643
	PaperHopFrac4 = 0.6449
	PaperHopFrac5 = 0.1745
	// PaperHopDistributionN is the overlay size of that distribution.
	PaperHopDistributionN = 100_000

	// Route distance relative to the direct distance: the paper's figure is
	// total route distance over total direct distance (a ratio of averages;
	// our distance_ratio), between these bounds over its range of N.
	PaperDistanceRatioLow  = 1.30
	PaperDistanceRatioHigh = 1.36

	// Mass failure: 10% of a 5,000-node overlay crashes at once. Mean hops
	// before the failure, right after it (no repair) and after repair, and
	// the repair cost in messages (the paper's RPCs) per failed node.
	PaperFailNodes         = 5000
	PaperFailFraction      = 0.10
	PaperFailHopsBefore    = 2.73
	PaperFailHopsNoRepair  = 2.96
	PaperFailHopsAfter     = 2.74
	PaperRepairMsgsPerNode = 57.0
)

// Castro, Costa & Rowstron, "Performance and dependability of structured
// peer-to-peer overlays" (MSPastry), DSN 2004: churn with session times of
// median 30 minutes, 1 lookup per node per minute.
const (
	MSPastrySource = "Castro, Costa & Rowstron, MSPastry, DSN 2004"

	// About 1.5 lookups lost per 100,000 issued.
	MSPastryLostPer100k = 1.5
	// Control traffic stays below this many messages per node per second.
	MSPastryControlMsgsBound = 0.5
	// Delay stretch (RDP) under churn stays below this bound.
	MSPastryRDPBound = 2.0

	MSPastryChurnNodes    = 10_000
	MSPastryChurnMedian   = 30 * time.Minute
	MSPastryChurnDuration = time.Hour
)

// refPoint is one published (N, value) pair.
type refPoint struct {
	N     int
	Value float64
}

// paperHops is every published mean-hops point.
var paperHops = []refPoint{{1000, PaperHops1k}, {10_000, PaperHops10k}, {100_000, PaperHops100k}}

// paperHopDistribution is the published distribution at 100k, indexed by
// hop count (the paper shows no 0-hop or 6-hop lookups).
var paperHopDistribution = []float64{0, PaperHopFrac1, PaperHopFrac2, PaperHopFrac3, PaperHopFrac4, PaperHopFrac5}

// paperHopsAt returns the published mean hops at n, if there is one.
func paperHopsAt(n int) (float64, bool) {
	for _, p := range paperHops {
		if p.N == n {
			return p.Value, true
		}
	}
	return 0, false
}

// Scribe (Castro, Druschel, Kermarrec & Rowstron, JSAC 2002): 100,000
// nodes, 1,500 groups with sizes floor(N x rank^-1.25 + 0.5), the GATech
// transit-stub topology. Its link-stress figures as the SplitStream paper
// (Castro et al., SOSP 2003, 40,000 nodes) reports them for Scribe.
const (
	ScribeSource           = "Castro et al., Scribe, JSAC 2002; link stress as SplitStream, SOSP 2003, reports it"
	ScribeNodes            = 100_000
	ScribeGroups           = 1500
	ScribeLinkStressMean   = 39.6
	ScribeLinkStressMax    = 3990
	ScribeLinkStressOverIP = 3.47 // "247% worse than IP multicast"
	// ScribeGroupFail and ScribeRootFails are the report's own failure
	// experiments (the paper has none at this scale).
	ScribeGroupFail = 0.1
	ScribeRootFails = 20
)

// Secure routing (Castro, Druschel, Ganesh, Rowstron & Wallach, OSDI
// 2002), b=4, l=32: the routing failure test's lowest error, 0.0008 for
// false positives and negatives alike, at γ=1.72 with μ_p from 256 ids;
// end to end (the failure test, then redundant routing when it fails),
// the probability of reaching the correct root above 0.999 for f <= 0.25
// at γ=1.58, with redundant routing in 0.4% of fault-free lookups. The
// report's security section runs the mix of all attacks
// (lookup.AttackMix) at SecurityFractions, on SecurityNodes nodes.
const (
	SecureSource         = "Castro et al., Secure routing for structured peer-to-peer overlay networks, OSDI 2002"
	SecureTestError      = 0.0008
	SecureTestGamma      = 1.72
	SecureSuccess        = 0.999
	SecureSuccessMaxF    = 0.25
	SecureRedundantShare = 0.004
	SecurityNodes        = 2000
	SecurityLookups      = 2000
)

// SecurityFractions are the attacker fractions of the security section.
var SecurityFractions = []float64{0, 0.1, 0.2, 0.3}
