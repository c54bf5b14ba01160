package core_test

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/core/simnet"
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
			if err := lk.Lookup(r.IntN(members), key); err != nil {
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
