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
