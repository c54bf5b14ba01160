package simnet

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
)

// TestThousandNodes: 1,000 nodes built by
// joins, 10,000 random keys from random nodes, every one delivered at the
// numerically closest live node. The paper reports about 2.5 mean hops at
// N=1,000 with b=4.
func TestThousandNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000-node overlay")
	}
	nw, l := grown(t, 7, 1000, 500*time.Millisecond, 2*time.Minute)
	if bad := nw.CheckLeafSets(3); len(bad) > 0 {
		t.Fatalf("%d leaf sets wrong: %v", len(bad), bad)
	}
	if err := nw.CheckTables(); err != nil {
		t.Fatal(err)
	}
	for range 10000 {
		if _, err := l.Lookup(nw.Rand().IntN(1000), id.Random(nw.Rand())); err != nil {
			t.Fatal(err)
		}
	}
	nw.RunFor(time.Minute)
	t.Logf("N=1000: %d lookups, %d delivered, %d correct, mean hops %.3f, histogram %v, events %d",
		l.Issued, l.Delivered, l.Correct, l.MeanHops(), l.Hops, nw.Events)
	if l.Correct != l.Issued {
		t.Fatalf("%d of %d lookups reached the root", l.Correct, l.Issued)
	}
	if mh := l.MeanHops(); mh > 3.0 {
		t.Fatalf("mean hops %.2f, expected about 2.5 at N=1000", mh)
	}
}

// TestCrashAndRepair crashes 10% of a 500-node overlay at once: after
// repair, leaf sets are exact again and every lookup reaches the root.
func TestCrashAndRepair(t *testing.T) {
	nw, l := grown(t, 8, 500, 500*time.Millisecond, time.Minute)
	for _, i := range nw.Rand().Perm(500)[:50] {
		nw.Crash(i)
	}
	// Lookups during the failure: per-hop acks re-route around dead hops.
	live := func() int {
		for {
			if i := nw.Rand().IntN(500); nw.Node(i).Alive() {
				return i
			}
		}
	}
	for range 1000 {
		l.Lookup(live(), id.Random(nw.Rand()))
	}
	nw.RunFor(5 * time.Minute)
	t.Logf("during failure: %d lookups %d delivered %d correct, mean hops %.2f", l.Issued, l.Delivered, l.Correct, l.MeanHops())
	if bad := nw.CheckLeafSets(3); len(bad) > 0 {
		t.Fatalf("%d leaf sets not repaired: %v", len(bad), bad)
	}
	before := l.Correct
	issued := l.Issued
	for range 2000 {
		l.Lookup(live(), id.Random(nw.Rand()))
	}
	nw.RunFor(time.Minute)
	t.Logf("after repair: %d of %d correct", l.Correct-before, l.Issued-issued)
	if l.Correct-before != l.Issued-issued {
		t.Fatalf("after repair %d of %d lookups reached the root", l.Correct-before, l.Issued-issued)
	}
}
