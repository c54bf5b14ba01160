package core_test

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// Load counts a routed hop in flight until its ack comes, and the ack.
func TestLoadCountsHopsInFlight(t *testing.T) {
	o := newOverlay(t, 3, 16, core.DefaultConfig(), nil)
	from := o.nw.Nodes()[0]
	// A key whose root is another node: the route leaves from.
	var ids []id.ID
	for _, n := range o.nw.Nodes() {
		ids = append(ids, n.Self().ID)
	}
	key := o.nw.Nodes()[8].Self().ID
	if closest(key, ids)[0] == from.Self().ID {
		t.Fatal("the key's root is the sender")
	}
	before := from.Load()
	if before.InFlight != 0 {
		t.Fatalf("settled overlay: %d hops in flight", before.InFlight)
	}
	if err := o.nw.RouteFrom(from.Index, core.Message{Key: key, App: testAppID}); err != nil {
		t.Fatal(err)
	}
	if l := from.Load(); l.InFlight != 1 || l.Acked != before.Acked {
		t.Fatalf("after the send: %+v, want 1 in flight and %d acks", l, before.Acked)
	}
	o.nw.RunFor(time.Second)
	l := from.Load()
	if l.InFlight != 0 || l.Acked <= before.Acked || l.TimedOut != before.TimedOut || l.TimedOut != from.Stats().HopTimeouts {
		t.Fatalf("after the ack: %+v (before %+v)", l, before)
	}
}

// Load counts only the hops of messages the node originated: the hops it
// forwards for others do not hold back its own routes (a flood through a
// node must not starve its own lookups).
func TestLoadLeavesForwardedHopsOut(t *testing.T) {
	o := newOverlay(t, 4, 40, core.DefaultConfig(), nil)
	nw := o.nw
	before := map[int]core.Load{}
	forwarded := map[int]uint64{}
	for _, n := range nw.Nodes() {
		before[n.Index], forwarded[n.Index] = n.Load(), n.Stats().Forwarded
	}
	for range 300 { // all from node 0: every other node only forwards
		if err := nw.RouteFrom(0, core.Message{Key: id.Random(nw.Rand()), App: testAppID}); err != nil {
			t.Fatal(err)
		}
	}
	busy := 0
	for range 50 { // step through the routes' first hops
		nw.RunFor(2 * time.Millisecond)
		for _, n := range nw.Nodes()[1:] {
			if n.Stats().Forwarded == forwarded[n.Index] {
				continue
			}
			busy++
			if l := n.Load(); l != before[n.Index] {
				t.Fatalf("node %d forwards for others and its own load moved: %+v, was %+v", n.Index, l, before[n.Index])
			}
		}
	}
	if busy == 0 {
		t.Fatal("no node forwarded")
	}
	nw.RunFor(time.Second)
	if l := nw.Node(0).Load(); l.Acked < before[0].Acked+250 || l.InFlight != 0 { // some keys are its own
		t.Fatalf("the origin's load %+v, want most of its 300 hops acked and none in flight", l)
	}
}
