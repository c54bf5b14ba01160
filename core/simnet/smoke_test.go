package simnet

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/core/id"
)

func TestSmallOverlayRoutesToRoot(t *testing.T) {
	nw, err := New(Options{Seed: 1, Node: core.SimConfig(), Topology: NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLookups(nw)
	if err := nw.Grow(100, time.Second, l); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	for i := range 1000 {
		if err := l.Lookup(i%100, id.Random(nw.Rand())); err != nil {
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
	nw, _ := New(Options{Seed: 1, Node: core.SimConfig(), Topology: NewPlane()})
	if err := nw.Grow(100, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	if bad := nw.CheckLeafSets(5); len(bad) > 0 {
		t.Fatalf("%d bad leaf sets:\n%v", len(bad), bad)
	}
	if err := nw.CheckTables(); err != nil {
		t.Fatal(err)
	}
}
