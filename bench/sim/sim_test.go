package sim

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
)

// engineless is a result's JSON without the fields that measure the engine
// (wall time, event rate, heap, RSS), which differ from run to run.
func engineless(t *testing.T, r *Result) string {
	t.Helper()
	c := *r
	c.WallS, c.EventsPerS, c.PeakHeapBytes, c.LiveHeapBytes, c.PeakRSSBytes = 0, 0, 0, 0, 0
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustRun(t *testing.T, c Config) *Result {
	t.Helper()
	r, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeterministic(t *testing.T) {
	for _, c := range []Config{
		{Nodes: 300, Lookups: 2000, Seed: 5},
		{Nodes: 300, Lookups: 500, Seed: 5, Fail: 0.1, RepairTime: 3 * time.Minute, Topology: "sphere"},
		{Nodes: 200, Seed: 5, ChurnMedian: 5 * time.Minute, Duration: 10 * time.Minute, Topology: "transit-stub", Loss: 0.001},
		{Nodes: 300, Lookups: 1000, Seed: 5, Malicious: 0.2, Attack: "misroute"},
		{Nodes: 300, Lookups: 1000, Seed: 5, Malicious: 0.25, Attack: "suppress"},
		{Nodes: 300, Lookups: 300, Seed: 5, Malicious: 0.25, Attack: "mix", Secure: true, SecureRedundant: true},
	} {
		a, b := mustRun(t, c), mustRun(t, c)
		if ja, jb := engineless(t, a), engineless(t, b); ja != jb {
			t.Fatalf("same config, different results:\n%s\n%s", ja, jb)
		}
		c.Seed++
		if ja, jc := engineless(t, a), engineless(t, mustRun(t, c)); ja == jc {
			t.Fatalf("different seeds, identical results: %s", ja)
		}
	}
}

func TestLookupsReachRootOnEveryTopology(t *testing.T) {
	for _, topo := range []string{"plane", "sphere", "transit-stub"} {
		r := mustRun(t, Config{Nodes: 1000, Lookups: 5000, Seed: 2, Topology: topo})
		t.Logf("%s: hops %.3f %v, RDP %.3f, distance ratio %.3f, join msgs %.1f, fill %v",
			topo, r.MeanHops, r.HopHistogram, r.RDPMean, r.DistanceRatio, r.JoinMsgsPerNode, r.TableFill)
		if r.CorrectFraction != 1 {
			t.Errorf("%s: correct fraction %v", topo, r.CorrectFraction)
		}
		// log16(1000) = 2.49; the paper reports ~2.5 at N=1000.
		if r.MeanHops < 2 || r.MeanHops > 3 || r.MaxHops > 4 {
			t.Errorf("%s: hops mean %.3f max %d", topo, r.MeanHops, r.MaxHops)
		}
		if r.DistanceRatio < 1 || r.DistanceRatio > 2 {
			t.Errorf("%s: route/direct distance %.3f", topo, r.DistanceRatio)
		}
		if len(r.TableFill) < 3 || r.TableFill[0] < 14 {
			t.Errorf("%s: table fill %v", topo, r.TableFill)
		}
	}
}

func TestFailureAndRepair(t *testing.T) {
	r := mustRun(t, Config{Nodes: 2000, Lookups: 5000, Seed: 3, Fail: 0.1})
	f := r.Fail
	t.Logf("failed %d: hops before %.3f, no repair %.3f (correct %.4f), after repair %.3f (correct %.4f); repair %.1f msgs/failed node",
		f.Failed, f.Before.MeanHops, f.NoRepair.MeanHops, f.NoRepair.CorrectFraction, f.AfterRepair.MeanHops, f.AfterRepair.CorrectFraction, f.RepairPerDead)
	if f.Failed != 200 {
		t.Fatalf("failed %d nodes, want 200", f.Failed)
	}
	if f.AfterRepair.CorrectFraction != 1 {
		t.Errorf("after repair correct fraction %v", f.AfterRepair.CorrectFraction)
	}
	if f.NoRepair.DeliveredFraction < 0.99 {
		t.Errorf("re-routing around failed hops delivered only %v", f.NoRepair.DeliveredFraction)
	}
	if math.Abs(f.AfterRepair.MeanHops-f.Before.MeanHops) > 0.1 {
		t.Errorf("hops after repair %.3f, before %.3f", f.AfterRepair.MeanHops, f.Before.MeanHops)
	}
	if f.RepairPerDead <= 0 {
		t.Errorf("repair cost %v", f.RepairPerDead)
	}
}

func TestChurn(t *testing.T) {
	r := mustRun(t, Config{Nodes: 500, Seed: 4, ChurnMedian: 10 * time.Minute, Duration: 20 * time.Minute, LookupRate: 2})
	c := r.Churn
	t.Logf("churn: %d arrivals %d departures, mean live %.0f, %d lookups, correct %.4f, lost %d, control %.3f msg/node/s %.0f B/node/s",
		c.Arrivals, c.Departures, c.MeanLive, c.Issued, c.Stats.CorrectFraction, c.Lost, c.ControlMsgsNS, c.ControlBytesNS)
	if c.Arrivals == 0 || c.Departures == 0 || c.Issued < 10000 {
		t.Fatalf("no churn happened: %+v", c)
	}
	if c.MeanLive < 400 || c.MeanLive > 600 {
		t.Errorf("population drifted: mean live %.0f, want about 500", c.MeanLive)
	}
	if c.Stats.CorrectFraction < 0.99 {
		t.Errorf("correct fraction under churn %v", c.Stats.CorrectFraction)
	}
	if c.ControlMsgsNS <= 0 || c.ControlMsgsNS > 1 {
		t.Errorf("control traffic %v msgs/node/s", c.ControlMsgsNS)
	}
}

func TestSessionMedian(t *testing.T) {
	for _, shape := range []float64{0, 0.5, 2} {
		r := &run{cfg: Config{ChurnMedian: time.Hour, SessionShape: shape}, rng: rand.New(rand.NewPCG(1, 2))}
		below := 0
		var sum float64
		const n = 20000
		for range n {
			s := r.session()
			if s < time.Hour {
				below++
			}
			sum += float64(s)
		}
		if f := float64(below) / n; math.Abs(f-0.5) > 0.02 {
			t.Errorf("shape %v: %.3f of sessions below the median", shape, f)
		}
		if mean := sum / n; math.Abs(mean-r.meanSession())/r.meanSession() > 0.1 {
			t.Errorf("shape %v: mean %v, formula %v", shape, time.Duration(mean), time.Duration(r.meanSession()))
		}
	}
}

func TestGridNearestMatchesBruteForce(t *testing.T) {
	for _, topo := range []string{"plane", "sphere", "transit-stub"} {
		rng := rand.New(rand.NewPCG(9, 9))
		m, err := NewModel(topo, rng)
		if err != nil {
			t.Fatal(err)
		}
		const n = 3000
		g := newGrid(m, n)
		for i := range n {
			m.Place(i, rng)
			g.add(i)
		}
		ok := func(j int) bool { return j%3 != 0 }
		for q := 0; q < n; q += 37 {
			got := g.nearest(q, ok)
			best, bestD := -1, time.Duration(math.MaxInt64)
			for j := range n {
				if j != q && ok(j) {
					if d := m.Delay(q, j); d < bestD {
						best, bestD = j, d
					}
				}
			}
			if gd := m.Delay(q, got); gd > bestD*11/10+time.Millisecond {
				t.Fatalf("%s: nearest to %d is %d (%v), grid gave %d (%v)", topo, q, best, bestD, got, gd)
			}
		}
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		flag string
	}{
		{Config{Nodes: 0}, "--nodes"},
		{Config{Nodes: 10, Lookups: -1}, "--lookups"},
		{Config{Nodes: 10, Fail: 1}, "--fail"},
		{Config{Nodes: 10, Loss: -0.1}, "--loss"},
		{Config{Nodes: 10, ChurnMedian: time.Minute}, "--duration"},
		{Config{Nodes: 10, Topology: "torus"}, "torus"},
		{Config{Nodes: 10, Config: core.Config{B: 3}}, "--b"},
		{Config{Nodes: 10, Config: func() core.Config { c := core.SimConfig(); c.LeafSetSize = 7; return c }()}, "--leaf"},
	} {
		_, err := Run(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.flag)
		}
	}
}
