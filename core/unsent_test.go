package core_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
)

// A hop the transport reports unsent (its next hop refuses connections)
// is re-routed at once: delivered at the root once, around the refusing
// node, and with no hop timeout at all (the hop's timer finds it settled).
func TestUnsentHopReroutesAtOnce(t *testing.T) {
	cfg := core.SimConfig()
	o := newOverlay(t, 96, 60, cfg, nil)
	const from = 4
	tried := 0
	for trial := 0; tried < 5 && trial < 50; trial++ {
		key, path := multiHopKey(t, o, from)
		next, root := path[1], path[len(path)-1]
		if next == root || o.nw.Node(from).State().Leaves.Contains(o.nw.Node(next).Self().ID) {
			continue // a leaf-set next hop is sent twice first: see below
		}
		tried++
		before := o.nw.Node(from).Stats()
		o.nw.Refuse(next)
		got := o.route(t, from, key, []byte("around"), 5*time.Second)
		if len(got) != 1 || len(got[root]) != 1 {
			t.Fatalf("trial %d: with next hop %d refusing, delivered at %v, want once at %d", trial, next, got, root)
		}
		if p := pathIdx(o.nw, got[root][0].Path); slices.Contains(p, next) {
			t.Fatalf("trial %d: path %v went through the refusing node", trial, p)
		}
		after := o.nw.Node(from).Stats()
		if after.HopsUnsent != before.HopsUnsent+1 || after.Reroutes != before.Reroutes+1 || after.HopTimeouts != before.HopTimeouts {
			t.Fatalf("trial %d: hops unsent %d->%d, reroutes %d->%d, hop timeouts %d->%d; want +1, +1, +0",
				trial, before.HopsUnsent, after.HopsUnsent, before.Reroutes, after.Reroutes, before.HopTimeouts, after.HopTimeouts)
		}
		o.nw.RunFor(3 * time.Minute)
	}
	if tried == 0 {
		t.Fatal("no route with a non-leaf first hop")
	}
}

// A refusing root in the origin's leaf set gets the message once more (an
// unsent hop is handled as its timeout would be), then the message goes
// to the next-closest node, which is the root now.
func TestUnsentLeafHopResentThenRerouted(t *testing.T) {
	cfg := core.SimConfig()
	o := newOverlay(t, 97, 40, cfg, nil)
	const from = 3
	self := o.nw.Node(from)
	leaves := append(self.State().Leaves.Left(), self.State().Leaves.Right()...)
	if len(leaves) == 0 {
		t.Fatal("empty leaf set")
	}
	root := leaves[0].ID
	rootNode, _ := o.nw.Lookup(root)
	before := self.Stats()
	o.nw.Refuse(rootNode.Index)
	got := o.route(t, from, root, []byte("to a leaf"), 5*time.Second)
	want, ok := o.nw.Root(root)
	if !ok {
		t.Fatal("no live root")
	}
	if len(got) != 1 || len(got[want.Index]) != 1 {
		t.Fatalf("delivered at %v, want once at node %d (the closest live node)", got, want.Index)
	}
	after := self.Stats()
	if after.HopsUnsent != before.HopsUnsent+2 || after.HopTimeouts != before.HopTimeouts {
		t.Fatalf("hops unsent %d->%d, hop timeouts %d->%d; want +2 (sent twice), +0", before.HopsUnsent, after.HopsUnsent, before.HopTimeouts, after.HopTimeouts)
	}
}
