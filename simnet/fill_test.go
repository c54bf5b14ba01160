package simnet

import (
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
)

// Nodes whose lookup application has a FillInterval fill their
// constrained tables by themselves, FillDelay after joining and then
// every interval; in an honest overlay the fills leave every slot whose
// point lies outside the leaf set's range holding the live node of the
// slot's block closest to the point.
func TestPeriodicConstrainedFill(t *testing.T) {
	cfg := core.SimConfig()
	cfg.ConstrainedTable = true
	nw, err := New(Options{Seed: 12, Node: cfg, Topology: NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 150
	apps := make([]*lookup.App, n)
	for i := range n {
		h := nw.AddNode()
		if apps[i], err = lookup.Register(h.Machine, lookup.Options{FillInterval: 5 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			err = nw.Bootstrap(0)
		} else {
			err = nw.Join(i, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Second)
	}
	nw.RunFor(11 * time.Minute)
	live := nw.Live()
	slots, exact := 0, 0
	for i, a := range apps {
		if f := a.FillStats(); f.Fills < 2 || f.Probes == 0 || f.Answers == 0 {
			t.Fatalf("node %d: %+v after 11 minutes, want 2 fills or more, with probes answered", i, f)
		}
		st := nw.Node(i).State()
		ct := st.Constrained
		for r := range 2 {
			for c := range ct.Cols() {
				p := ct.Point(r, c)
				if c == st.Self.ID.Digit(r, st.B()) || st.Leaves.Covers(p) {
					continue
				}
				want, ok := closestInBlock(live, p, r, st.B())
				if !ok {
					continue
				}
				slots++
				if e, ok := ct.Get(r, c); ok && e.ID == want {
					exact++
				}
			}
		}
	}
	t.Logf("%d of %d constrained slots outside the leaf sets' range hold their point's closest node", exact, slots)
	if slots == 0 || exact != slots {
		t.Errorf("%d of %d constrained slots hold their point's closest node", exact, slots)
	}
}

// closestInBlock is the id of live (sorted) closest to p among those
// sharing p's first row+1 digits, false if none does.
func closestInBlock(live []id.ID, p id.ID, row, b int) (id.ID, bool) {
	best, found := id.ID{}, false
	i, _ := slices.BinarySearchFunc(live, p, func(x, y id.ID) int { return x.Cmp(y) })
	for _, j := range []int{i - 1, i} {
		if j >= 0 && j < len(live) && id.SharedPrefixLen(live[j], p, b) > row && (!found || id.Closer(p, live[j], best)) {
			best, found = live[j], true
		}
	}
	return best, found
}
