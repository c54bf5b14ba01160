package core_test

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/simnet"
)

// TestJoinerIsNoRootBeforeItsNeighboursKnowIt: lookups for a joiner's own
// id (a key it will be the root of) are sent from every member every few
// milliseconds while it joins. Each is judged at delivery against the live
// members (simnet counts a node once its Status is StatusJoined). A joiner
// that delivered as soon as it had its join reply would share its keys
// with a neighbour that had not yet heard of it; it holds them instead
// until its immediate neighbours have acknowledged its announcement
// (core/activate.go), and no lookup is delivered at a wrong root.
func TestJoinerIsNoRootBeforeItsNeighboursKnowIt(t *testing.T) {
	nw, err := simnet.New(simnet.Options{Seed: 11, Node: core.SimConfig(), Topology: simnet.NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	lk := simnet.NewLookups(nw)
	if err := nw.Grow(40, 100*time.Millisecond, lk); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(30 * time.Second)
	r := nw.Rand()
	var held uint64
	for range 12 {
		members := len(nw.Nodes())
		x := nw.AddNode()
		if err := lk.Attach(x); err != nil {
			t.Fatal(err)
		}
		if err := nw.Join(x.Index, r.IntN(members)); err != nil {
			t.Fatal(err)
		}
		// Keys next to the joiner's id, on both sides: the ones it and
		// its neighbours would both claim.
		for range 100 {
			key := x.Self().ID
			key[len(key)-1] ^= byte(r.Uint32())
			if _, err := lk.Lookup(r.IntN(members), key); err != nil {
				t.Fatal(err)
			}
			nw.RunFor(5 * time.Millisecond)
		}
		nw.RunFor(5 * time.Second)
		if x.Status() != core.StatusJoined {
			t.Fatalf("joiner %d is %s", x.Index, x.Status())
		}
		held += x.Stats().Held
	}
	nw.RunFor(30 * time.Second)
	t.Logf("%d lookups during 12 joins: %d delivered, %d correct, %d held by joiners until active", lk.Issued, lk.Delivered, lk.Correct, held)
	if lk.Delivered != lk.Issued || lk.Correct != lk.Delivered {
		t.Fatalf("%d lookups, %d delivered, %d at the key's root", lk.Issued, lk.Delivered, lk.Correct)
	}
	if held == 0 {
		t.Fatal("no joiner held a message: the test did not reach the window it is about")
	}
}

// TestJoinerPassesOverAnUnreachableNeighbour: the joiner's immediate
// neighbour by its leaf set is gone, its host refusing connections. The
// announcement to it fails at once (core.Machine.Unsent), and the joiner
// waits for the next leaf on that side instead: it is a member well
// within ProbeTimeout (3 s with DefaultConfig), which it would otherwise
// wait out, and the gone node's keys are delivered at the joiner.
func TestJoinerPassesOverAnUnreachableNeighbour(t *testing.T) {
	cfg := core.DefaultConfig()
	nw, err := simnet.New(simnet.Options{Seed: 12, Node: cfg, Topology: simnet.Constant(10 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	lk := simnet.NewLookups(nw)
	if err := nw.Grow(24, 100*time.Millisecond, lk); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	gone := nw.Node(5)
	nw.Refuse(gone.Index)
	xid := gone.Self().ID
	xid[len(xid)-1] ^= 1 // next to the gone node: it was the joiner's neighbour
	x := nw.AddNodeWithID(xid)
	if err := lk.Attach(x); err != nil {
		t.Fatal(err)
	}
	start := nw.Now()
	if err := nw.Join(x.Index, 0); err != nil {
		t.Fatal(err)
	}
	for x.Status() != core.StatusJoined && nw.Now()-start < 10*time.Second {
		nw.RunFor(10 * time.Millisecond)
	}
	took := nw.Now() - start
	if x.Status() != core.StatusJoined || took >= cfg.ProbeTimeout {
		t.Fatalf("joiner %s after %s (ProbeTimeout %s)", x.Status(), took, cfg.ProbeTimeout)
	}
	if _, err := lk.Lookup(0, gone.Self().ID); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(5 * time.Second)
	t.Logf("joined in %s past a gone neighbour; lookups %d delivered %d correct %d", took, lk.Issued, lk.Delivered, lk.Correct)
	if lk.Delivered != lk.Issued || lk.Correct != lk.Delivered {
		t.Fatalf("%d lookups, %d delivered, %d at the root", lk.Issued, lk.Delivered, lk.Correct)
	}
}

// TestConcurrentNeighbourJoinersActivate: two nodes with adjacent ids join
// at the same moment, so that each becomes the other's immediate
// neighbour only after its announcement went out. Each learns of the
// other from the other's announcement, which shows that the other knows
// of it, or announces itself to the new neighbour then: both are members
// within a few round trips, not after ProbeTimeout (24 seeds, the second
// join 0 to 49 ms after the first; before the new neighbour was announced
// to, seed 2's joiners took 3.1 s).
func TestConcurrentNeighbourJoinersActivate(t *testing.T) {
	cfg := core.DefaultConfig()
	for seed := uint64(1); seed <= 24; seed++ {
		nw, err := simnet.New(simnet.Options{Seed: seed, Node: cfg, Topology: simnet.NewPlane()})
		if err != nil {
			t.Fatal(err)
		}
		if err := nw.Grow(24, 100*time.Millisecond, nil); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Minute)
		xid := id.Random(nw.Rand())
		yid := xid
		yid[len(yid)-1] ^= 1
		x, y := nw.AddNodeWithID(xid), nw.AddNodeWithID(yid)
		start := nw.Now()
		if err := nw.Join(x.Index, 0); err != nil {
			t.Fatal(err)
		}
		// The second join a little later each time, so that some
		// announcements cross the other's join.
		nw.RunFor(time.Duration(seed%8) * 7 * time.Millisecond)
		if err := nw.Join(y.Index, 12); err != nil {
			t.Fatal(err)
		}
		for (x.Status() != core.StatusJoined || y.Status() != core.StatusJoined) && nw.Now()-start < 10*time.Second {
			nw.RunFor(10 * time.Millisecond)
		}
		if took := nw.Now() - start; took >= cfg.ProbeTimeout {
			t.Fatalf("seed %d: joiners %s and %s after %s (ProbeTimeout %s)", seed, x.Status(), y.Status(), took, cfg.ProbeTimeout)
		}
		if bad := nw.CheckLeafSets(4); len(bad) != 0 {
			nw.RunFor(5 * time.Second)
			if bad := nw.CheckLeafSets(4); len(bad) != 0 {
				t.Fatalf("seed %d: leaf sets %v", seed, bad)
			}
		}
	}
}
