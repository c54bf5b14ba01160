package simnet

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// grown is a plane network of n nodes with SimConfig, grown by joins gap
// apart (lookups tracked) and left to settle for settle.
func grown(t *testing.T, seed uint64, n int, gap, settle time.Duration) (*Network, *Lookups) {
	t.Helper()
	nw, err := New(Options{Seed: seed, Node: core.SimConfig(), Topology: NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLookups(nw)
	if err := nw.Grow(n, gap, l); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(settle)
	return nw, l
}

func TestSmallOverlayRoutesToRoot(t *testing.T) {
	nw, l := grown(t, 1, 100, time.Second, time.Minute)
	for i := range 1000 {
		if _, err := l.Lookup(i%100, id.Random(nw.Rand())); err != nil {
			t.Fatal(err)
		}
	}
	nw.RunFor(time.Minute)
	t.Logf("issued %d delivered %d correct %d mean hops %.2f hist %v events %d", l.Issued, l.Delivered, l.Correct, l.MeanHops(), l.Hops, nw.Events)
	if l.Correct != l.Issued {
		t.Fatalf("%d of %d lookups reached the root", l.Correct, l.Issued)
	}
}

func TestLeafSetsAfterGrow(t *testing.T) {
	nw, _ := grown(t, 1, 100, time.Second, time.Minute)
	if bad := nw.CheckLeafSets(5); len(bad) > 0 {
		t.Fatalf("%d bad leaf sets:\n%v", len(bad), bad)
	}
	if err := nw.CheckTables(); err != nil {
		t.Fatal(err)
	}
}

// The oracle (an analysis aid) forwards straight to the root from nodes
// whose next slot's block is small: lookups stay correct and take fewer
// hops than Pastry's own routes over the same overlay.
func TestOracleBlockShortensRoutes(t *testing.T) {
	nw, l := grown(t, 3, 400, 100*time.Millisecond, time.Minute)
	run := func(oracle int) (correct, issued int, hops float64) {
		l.OracleBlock = oracle
		before := len(l.Deliveries)
		ok0, n0 := l.Correct, l.Issued
		for i := range 1000 {
			if _, err := l.Lookup(i%400, id.Random(nw.Rand())); err != nil {
				t.Fatal(err)
			}
		}
		nw.RunFor(time.Minute)
		var sum int
		for _, d := range l.Deliveries[before:] {
			sum += int(d.Hops)
		}
		return l.Correct - ok0, l.Issued - n0, float64(sum) / float64(len(l.Deliveries)-before)
	}
	c0, n0, h0 := run(0)
	c1, n1, h1 := run(8)
	t.Logf("pastry: %d/%d correct, %.3f hops; oracle(8): %d/%d correct, %.3f hops", c0, n0, h0, c1, n1, h1)
	if c0 != n0 || c1 != n1 {
		t.Fatalf("lookups missed the root: %d/%d, oracle %d/%d", c0, n0, c1, n1)
	}
	if h1 >= h0 {
		t.Fatalf("oracle routes took %.3f hops, Pastry's %.3f", h1, h0)
	}
}

// Stall holds the messages on their way at their receivers until it ends,
// and sends those sent during it when it ends; afterwards delays are the
// topology's again.
func TestStallHoldsMessages(t *testing.T) {
	var seen []time.Duration
	cfg := core.SimConfig()
	cfg.HopTimeoutMin, cfg.HopTimeoutMax = 5*time.Second, 5*time.Second // no hop times out in the stall
	nw, err := New(Options{Seed: 2, Node: cfg, Topology: Constant(10 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	a, b := nw.AddNode(), nw.AddNode()
	if err := nw.Bootstrap(a.Index); err != nil {
		t.Fatal(err)
	}
	if err := nw.Join(b.Index, a.Index); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	if b.Status() != core.StatusJoined {
		t.Fatal("b did not join")
	}
	app := &recordApp{at: func() { seen = append(seen, nw.Now()) }}
	if _, err := b.RegisterApplication(9, app); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RegisterApplication(9, &recordApp{at: func() {}}); err != nil {
		t.Fatal(err)
	}
	t0 := nw.Now()
	if err := nw.RouteFrom(a.Index, core.Message{Key: b.Self().ID, App: 9}); err != nil { // on its way
		t.Fatal(err)
	}
	nw.Stall(time.Second)
	nw.RunFor(500 * time.Millisecond)
	if err := nw.RouteFrom(a.Index, core.Message{Key: b.Self().ID, App: 9}); err != nil { // sent during it
		t.Fatal(err)
	}
	nw.RunFor(2 * time.Second)
	if err := nw.RouteFrom(a.Index, core.Message{Key: b.Self().ID, App: 9}); err != nil { // after it
		t.Fatal(err)
	}
	t2 := nw.Now()
	nw.RunFor(time.Second)
	want := []time.Duration{t0 + time.Second, t0 + time.Second + 10*time.Millisecond, t2 + 10*time.Millisecond}
	if len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Fatalf("delivered at %v, want %v", seen, want)
	}
}

type recordApp struct{ at func() }

func (r *recordApp) Deliver(*core.Message)                  { r.at() }
func (r *recordApp) Forward(*core.Message, *id.Handle) bool { return true }
func (r *recordApp) Update(id.Handle, bool)                 {}
