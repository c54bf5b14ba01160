package report

import (
	"github.com/pastrynet/pastry/bench/sim"
)

// fullSuite is a Results of the whole paper suite with figures like those
// in docs/measurements/2026-12-02-paper-suite.md, built without simulating, so the figures and
// report.md can be checked at every size in milliseconds.
func fullSuite() *Results {
	res := &Results{Command: "pastry sim report --out x", Seed: 1, Started: "2026-01-01T00:00:00Z",
		Finished: "2026-01-01T01:00:00Z", WallS: 3600, Go: "go1.26", Platform: "linux/amd64, 2 CPUs"}
	mean := []float64{2.48, 2.70, 2.95, 3.23, 3.45, 3.72, 3.961}
	ratio := []float64{1.40, 1.41, 1.42, 1.42, 1.40, 1.38, 1.37}
	for i, n := range SuiteSizes {
		lookups := min(2*n, 200_000)
		r := &sim.Result{Nodes: n, Topology: "plane", B: 4, Leaf: 16, Seed: 1, Lookups: lookups,
			LookupStats: sim.LookupStats{Delivered: lookups, Correct: lookups, DeliveredFraction: 1, CorrectFraction: 1,
				MeanHops: mean[i], P50Hops: 3, P99Hops: 4 + i/4, MaxHops: 4 + (i+1)/3,
				HopHistogram: []int{lookups / 1000, lookups / 50, lookups / 5, lookups * 6 / 10, lookups - lookups/1000 - lookups/50 - lookups/5 - lookups*6/10},
				RDPMean:      1.5, RDPP50: 1.27, RDPP99: 4.1, DistanceRatio: ratio[i]},
			VirtualS: 200 + float64(n)/50, Events: uint64(500 * n), WallS: float64(n) / 200, EventsPerS: 100_000,
			PeakHeapBytes: uint64(n) << 14}
		res.Runs = append(res.Runs, RunResult{Name: "hops-" + short(n), Experiment: ExpHops, Result: r})
	}
	fail := &sim.Result{Nodes: 5000, Topology: "plane", B: 4, Leaf: 16, Seed: 1, Lookups: 10_000,
		Fail: &sim.FailResult{Failed: 500,
			Before:      sim.LookupStats{MeanHops: 2.953, CorrectFraction: 1},
			NoRepair:    sim.LookupStats{MeanHops: 3.164, CorrectFraction: 0.9991},
			AfterRepair: sim.LookupStats{MeanHops: 2.914, CorrectFraction: 1},
			RepairS:     600, RepairMsgs: 65_850, RepairPerDead: 131.7},
		WallS: 20, Events: 3_000_000, EventsPerS: 150_000}
	churn := &sim.Result{Nodes: 10_000, Topology: "plane", B: 4, Leaf: 16, Seed: 1,
		Churn: &sim.ChurnResult{MedianSessionS: 1800, DurationS: 3600, Arrivals: 13_800, Departures: 13_790,
			MeanLive: 10_003.5, Issued: 600_000, Lost: 153, LossPer100k: 25.5,
			Stats:         sim.LookupStats{CorrectFraction: 0.99973, MeanHops: 3.3, RDPMean: 3.1},
			ControlMsgsNS: 0.358, ControlBytesNS: 183},
		WallS: 300, Events: 40_000_000, EventsPerS: 130_000}
	res.Runs = append(res.Runs,
		RunResult{Name: "fail-5k", Experiment: ExpFail, Result: fail},
		RunResult{Name: "churn-10k", Experiment: ExpChurn, Result: churn})
	return res
}
