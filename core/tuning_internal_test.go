package core

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// The table probing period follows the failure rate seen: T/2 plus the
// detection time is the time a dead entry may stay, (ProbeLossTarget /
// (hops-1)) / mu.
func TestProbePeriodFollowsFailureRate(t *testing.T) {
	cfg := SimConfig() // ProbeLossTarget 0.1, detection 2 x 1 s
	self := id.Handle{ID: id.MustParse("00000000000000000000000000000001"), Addr: "self"}
	n, err := NewMachine(cfg, self, fixedEnv{prox: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.tableProbeInterval(); got != cfg.StateProbeInterval {
		t.Fatalf("no failures seen: %v, want StateProbeInterval %v", got, cfg.StateProbeInterval)
	}
	// A state of a few hundred entries from 2,000 random nodes.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		n.state.Consider(routing.Entry{Handle: id.Handle{ID: id.Random(rng), Addr: fmt.Sprint(i)}, Prox: 1000})
	}
	held := n.state.Table.Size() + n.state.Leaves.Len()
	const fails = 5
	if held < 4*fails+4 {
		t.Fatalf("only %d entries held", held)
	}
	// The per-hop target q, and the exposures (entry-ms) at which 5
	// failures make q/mu (the time a dead entry may stay) 1800, 180, 45 and
	// 1.8 s.
	q := cfg.ProbeLossTarget * 16 / float64(n.tableHops16())
	for _, tc := range []struct {
		stay time.Duration
		want time.Duration
	}{
		{1800 * time.Second, cfg.StateProbeInterval},               // T = 3596 s, capped
		{180 * time.Second, 2 * (180*time.Second - 2*time.Second)}, // detection is 2 x 1 s
		{45 * time.Second, 2 * (45*time.Second - 2*time.Second)},
		{1800 * time.Millisecond, cfg.StateProbeMin}, // below detection: floored
	} {
		n.exposure = uint64(float64(tc.stay/time.Millisecond) * fails / q)
		n.failsSeen = fails * failOne
		n.retune()
		if got := n.tableProbeInterval(); got < tc.want-time.Second || got > tc.want+time.Second {
			t.Errorf("q/mu %v: period %v, want %v", tc.stay, got, tc.want)
		}
	}
	// A burst (more than an eighth of the entries held failed within the
	// last few heartbeats) is not churn: the period stays
	// StateProbeInterval until the burst is a few heartbeats old.
	burst := held/8 + 1
	// (At this exposure the rate alone would give a period of 86 s.)
	n.exposure, n.failsSeen = uint64(45000*float64(burst)/q), 0
	for range burst {
		n.sawFailure()
	}
	if got := n.tableProbeInterval(); got != cfg.StateProbeInterval {
		t.Errorf("%d of %d entries failed at once: period %v, want %v", burst, held, got, cfg.StateProbeInterval)
	}
	for range 8 { // 8 heartbeats later the burst is over; the rate remains
		n.failsRecent -= n.failsRecent >> burstDecay
	}
	n.retune()
	if got := n.tableProbeInterval(); got > 2*45*time.Second {
		t.Errorf("after the burst: period %v, want at most %v", got, 2*45*time.Second)
	}
	// The estimate decays: with nothing held and no further failures the
	// period goes back to StateProbeInterval.
	for range 64 * 12 {
		n.tuneProbing()
	}
	if got := n.tableProbeInterval(); got != cfg.StateProbeInterval {
		t.Fatalf("after the failures aged out: %v, want %v", got, cfg.StateProbeInterval)
	}
	// A target of 0 turns self-tuning off.
	cfg.ProbeLossTarget = 0
	n2, _ := NewMachine(cfg, self, fixedEnv{prox: 1000})
	n2.exposure = 1 << 30
	n2.sawFailure()
	for range 4 {
		n2.sawFailure()
	}
	if got := n2.tableProbeInterval(); got != cfg.StateProbeInterval {
		t.Fatalf("self-tuning off: %v, want %v", got, cfg.StateProbeInterval)
	}
}
