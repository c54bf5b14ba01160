package sim

import (
	"math"
	"slices"

	"github.com/pastrynet/pastry/simnet"
)

// Result is one run's figures. Field names are the JSON keys the report
// and `pastry sim --json` use; wall_s, events_per_s, peak_heap_bytes,
// live_heap_bytes and peak_rss_bytes measure the engine and are the only
// fields that differ between runs of one Config.
type Result struct {
	Nodes    int    `json:"nodes"`
	Topology string `json:"topology"`
	B        int    `json:"b"`
	Leaf     int    `json:"leaf"`
	Seed     uint64 `json:"seed"`
	// OracleBlock is set when lookups used the analysis oracle (not Pastry).
	OracleBlock int `json:"oracle_block,omitempty"`

	Lookups int `json:"lookups"`
	LookupStats

	JoinMsgsPerNode      float64 `json:"join_msgs_per_node"`
	ControlMsgsPerNodeS  float64 `json:"control_msgs_per_node_s"`
	ControlBytesPerNodeS float64 `json:"control_bytes_per_node_s"`
	// TableFill is the mean number of filled slots per routing-table row
	// over live nodes, rows 0 up to the last non-empty one.
	TableFill []float64 `json:"table_fill_per_row"`
	// MsgsByType counts every message sent in the run, by type.
	MsgsByType map[string]uint64 `json:"msgs_by_type"`

	// CoreStats sums the protocol counters of every node that ran.
	CoreStats map[string]uint64 `json:"core_stats"`

	Fail  *FailResult  `json:"fail,omitempty"`
	Churn *ChurnResult `json:"churn,omitempty"`
	// Scribe is the Scribe experiments, with Config.Groups.
	Scribe *ScribeResult `json:"scribe,omitempty"`
	// Past is PAST's experiment, with Config.Past.
	Past *PastResult `json:"past,omitempty"`
	// Attack is the attack experiment, with Config.Attack.
	Attack *AttackResult `json:"attack,omitempty"`

	VirtualS      float64 `json:"virtual_s"`
	Events        uint64  `json:"events"`
	WallS         float64 `json:"wall_s"`
	EventsPerS    float64 `json:"events_per_s"`
	PeakHeapBytes uint64  `json:"peak_heap_bytes"`
	// LiveHeapBytes is the heap in use at the end of the run after a
	// collection, the overlay still held: the run's live memory, of which
	// nearly all is the nodes' state (LiveHeapBytes / Nodes a node).
	LiveHeapBytes uint64 `json:"live_heap_bytes"`
	// PeakRSSBytes is the process's peak resident set (Linux VmHWM; 0
	// where unknown), for runs near the machine's memory.
	PeakRSSBytes uint64 `json:"peak_rss_bytes,omitempty"`
	// JoinGapS is the virtual time between successive joins (Config.
	// JoinGap: by default AutoJoinGap(Nodes)).
	JoinGapS float64 `json:"join_gap_s"`
}

// LookupStats summarises a set of lookups.
type LookupStats struct {
	Delivered         int     `json:"delivered"`
	Correct           int     `json:"correct"`
	DeliveredFraction float64 `json:"delivered_fraction"`
	CorrectFraction   float64 `json:"correct_fraction"`
	MeanHops          float64 `json:"mean_hops"`
	P50Hops           int     `json:"p50_hops"`
	P99Hops           int     `json:"p99_hops"`
	MaxHops           int     `json:"max_hops"`
	HopHistogram      []int   `json:"hop_histogram"`
	RDPMean           float64 `json:"rdp_mean"`
	RDPP50            float64 `json:"rdp_p50"`
	RDPP99            float64 `json:"rdp_p99"`
	// DistanceRatio is total route delay over total direct delay: the
	// Pastry paper's "relative distance" (a ratio of averages, which short
	// direct paths do not inflate as they do the per-route RDP).
	DistanceRatio float64 `json:"distance_ratio"`
}

// FailResult is the mass-failure experiment (Pastry paper, section 3.2).
type FailResult struct {
	Failed        int         `json:"failed"`
	Before        LookupStats `json:"before"`
	NoRepair      LookupStats `json:"no_repair"`
	AfterRepair   LookupStats `json:"after_repair"`
	RepairS       float64     `json:"repair_s"`
	RepairMsgs    uint64      `json:"repair_msgs"`
	RepairPerDead float64     `json:"repair_msgs_per_failed_node"`
	// RepairByType is control messages in the repair window minus the
	// quiet window before the failure scaled to the nodes still alive (the
	// dead no longer send their share of periodic maintenance), by type.
	// RepairMsgs is the sum of the increases: periodic traffic that the
	// repair made unnecessary (probes of entries heard from while
	// repairing) is not credited against it.
	RepairByType map[string]int64 `json:"repair_by_type"`
}

// ChurnResult is the churn experiment (MSPastry).
type ChurnResult struct {
	MedianSessionS float64     `json:"median_session_s"`
	DurationS      float64     `json:"duration_s"`
	Arrivals       int         `json:"arrivals"`
	Departures     int         `json:"departures"`
	MeanLive       float64     `json:"mean_live"`
	Issued         int         `json:"lookups"`
	Lost           int         `json:"lost"`
	LossPer100k    float64     `json:"lost_per_100k"`
	Stats          LookupStats `json:"stats"`
	ControlMsgsNS  float64     `json:"control_msgs_per_node_s"`
	ControlBytesNS float64     `json:"control_bytes_per_node_s"`
	// ControlByType is the control traffic by message type, in messages
	// per node per second.
	ControlByType map[string]float64 `json:"control_by_type,omitempty"`
}

// summarize computes stats over deliveries ds out of issued lookups.
func summarize(ds []simnet.Delivery, issued int) LookupStats {
	var s LookupStats
	if len(ds) == 0 {
		return s
	}
	hops := make([]int, len(ds))
	var rdp []float64
	var route, direct float64
	sum := 0
	for i, d := range ds {
		h := int(d.Hops)
		hops[i] = h
		sum += h
		for len(s.HopHistogram) <= h {
			s.HopHistogram = append(s.HopHistogram, 0)
		}
		s.HopHistogram[h]++
		if d.Correct {
			s.Correct++
		}
		if d.Direct > 0 {
			rdp = append(rdp, float64(d.Delay)/float64(d.Direct))
			route += float64(d.Delay)
			direct += float64(d.Direct)
		}
	}
	s.Delivered = len(ds)
	if issued > 0 {
		s.DeliveredFraction = float64(s.Delivered) / float64(issued)
		s.CorrectFraction = float64(s.Correct) / float64(issued)
	}
	s.MeanHops = round(float64(sum)/float64(len(ds)), 4)
	slices.Sort(hops)
	s.P50Hops, s.P99Hops, s.MaxHops = pct(hops, 0.5), pct(hops, 0.99), hops[len(hops)-1]
	if len(rdp) > 0 {
		var t float64
		for _, r := range rdp {
			t += r
		}
		slices.Sort(rdp)
		s.RDPMean = round(t/float64(len(rdp)), 4)
		s.RDPP50, s.RDPP99 = round(pct(rdp, 0.5), 4), round(pct(rdp, 0.99), 4)
		s.DistanceRatio = round(route/direct, 4)
	}
	return s
}

func pct[T any](sorted []T, q float64) T {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
