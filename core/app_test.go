package core_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/simnet"
)

// multiHopKey finds a key whose route from node from takes at least two
// hops, and returns it with its traced path (node indices).
func multiHopKey(t *testing.T, o *overlay, from int) (id.ID, []int) {
	t.Helper()
	for range 200 {
		key := id.Random(o.nw.Rand())
		got := o.route(t, from, key, []byte("probe"), 2*time.Second)
		for _, ms := range got {
			if p := pathIdx(o.nw, ms[0].Path); len(p) >= 3 {
				return key, p
			}
		}
	}
	t.Fatal("no multi-hop route found")
	return id.ID{}, nil
}

func pathIdx(nw *simnet.Network, p []id.Handle) []int {
	out := make([]int, len(p))
	for i, h := range p {
		n, _ := nw.Lookup(h.ID)
		out[i] = n.Index
	}
	return out
}

// TestDeliverAtRoot: Deliver is called once, at the key's root, with the
// payload, key, origin and application the sender gave; Forward is called at
// every hop but the last with the hop actually taken.
func TestDeliverAtRoot(t *testing.T) {
	o := newOverlay(t, 21, 60, core.SimConfig(), nil)
	rng := o.nw.Rand()
	for trial := range 50 {
		from := rng.IntN(60)
		key := id.Random(rng)
		payload := []byte(fmt.Sprintf("payload %d", trial))
		for _, a := range o.apps {
			a.forwards = a.forwards[:0]
		}
		got := o.route(t, from, key, payload, 2*time.Second)
		root, _ := o.nw.Root(key)
		if len(got) != 1 || len(got[root.Index]) != 1 {
			t.Fatalf("trial %d: deliveries %v, want one at root %d", trial, got, root.Index)
		}
		m := got[root.Index][0]
		if !bytes.Equal(m.Payload, payload) || m.Key != key || m.Origin != o.nw.Node(from).Self() || m.App != testAppID || m.Type != core.MsgRoute {
			t.Fatalf("trial %d: delivered %+v", trial, m)
		}
		path := pathIdx(o.nw, m.Path)
		if path[0] != from || path[len(path)-1] != root.Index || int(m.Hops) != len(path)-1 {
			t.Fatalf("trial %d: path %v hops %d from %d to root %d", trial, path, m.Hops, from, root.Index)
		}
		for k := 0; k+1 < len(path); k++ {
			fw := o.apps[path[k]].forwards
			if len(fw) != 1 || fw[0].next != o.nw.Node(path[k+1]).Self() || fw[0].msg.Key != key {
				t.Fatalf("trial %d: hop %d (node %d) Forward calls %v, want one naming node %d", trial, k, path[k], fw, path[k+1])
			}
		}
		if fw := o.apps[root.Index].forwards; len(fw) != 0 && root.Index != from {
			t.Fatalf("trial %d: Forward called at the root", trial)
		}
	}
}

// TestForwardCanDrop: an application that returns false from Forward stops
// the message there, at the origin or at an intermediate hop.
func TestForwardCanDrop(t *testing.T) {
	o := newOverlay(t, 22, 60, core.SimConfig(), nil)
	const from = 7
	key, path := multiHopKey(t, o, from)
	for _, stopAt := range path[:len(path)-1] {
		app := o.apps[stopAt]
		app.forward = func(m *core.Message, next *id.Handle) bool { return !bytes.Equal(m.Payload, []byte("stop")) }
		got := o.route(t, from, key, []byte("stop"), 3*time.Second)
		if len(got) != 0 {
			t.Errorf("stopped at node %d, yet delivered at %v", stopAt, got)
		}
		// The same message with another payload still goes through.
		if got := o.route(t, from, key, []byte("go"), 3*time.Second); len(got[path[len(path)-1]]) != 1 {
			t.Errorf("with node %d's filter in place, a passing message was not delivered: %v", stopAt, got)
		}
		app.forward = nil
	}
}

// TestForwardCanRedirect: the origin's application changes the next hop;
// the message goes there first and is still delivered at the root. A next
// hop set to the node itself delivers the message here.
func TestForwardCanRedirect(t *testing.T) {
	o := newOverlay(t, 23, 60, core.SimConfig(), nil)
	const from = 3
	key, path := multiHopKey(t, o, from)
	root := path[len(path)-1]
	// A detour: some node that is neither on the path nor the origin.
	detour := -1
	for i := range 60 {
		if !slices.Contains(path, i) {
			detour = i
			break
		}
	}
	dh := o.nw.Node(detour).Self()
	o.apps[from].forward = func(m *core.Message, next *id.Handle) bool {
		if m.Origin.ID == o.nw.Node(from).Self().ID && m.Hops == 0 {
			*next = dh
		}
		return true
	}
	got := o.route(t, from, key, []byte("detour"), 3*time.Second)
	if len(got) != 1 || len(got[root]) != 1 {
		t.Fatalf("redirected message delivered at %v, want root %d", got, root)
	}
	if p := pathIdx(o.nw, got[root][0].Path); len(p) < 2 || p[1] != detour {
		t.Fatalf("path %v, want the detour %d as the first hop", p, detour)
	}

	// Redirect to self: delivered at the origin, although it is not the root.
	self := o.nw.Node(from).Self()
	o.apps[from].forward = func(m *core.Message, next *id.Handle) bool { *next = self; return true }
	got = o.route(t, from, key, []byte("mine"), 3*time.Second)
	if len(got) != 1 || len(got[from]) != 1 || got[from][0].Hops != 0 {
		t.Fatalf("redirected to self: delivered at %v, want only at origin %d", got, from)
	}

	// The application may rewrite the payload on the way.
	o.apps[from].forward = func(m *core.Message, next *id.Handle) bool { m.Payload = []byte("rewritten"); return true }
	got = o.route(t, from, key, []byte("original"), 3*time.Second)
	if len(got[root]) != 1 || string(got[root][0].Payload) != "rewritten" {
		t.Fatalf("rewritten payload: delivered %v", got)
	}
}

// TestRouteHint: a hint is used as the first hop; the message is still
// delivered at the root. A hint naming the node itself is ignored.
func TestRouteHint(t *testing.T) {
	o := newOverlay(t, 24, 60, core.SimConfig(), nil)
	nw := o.nw
	const from = 9
	key, path := multiHopKey(t, o, from)
	root := path[len(path)-1]
	natural := path[1]
	hint := -1
	for i := range 60 {
		if !slices.Contains(path, i) {
			hint = i
			break
		}
	}
	n := nw.Node(from)
	hh := nw.Node(hint).Self()
	if err := routeAt(n.Machine, nw.Now(), core.Message{Key: key, App: testAppID, Payload: []byte("hinted"), Flags: core.FlagTrace}, &hh); err != nil {
		t.Fatal(err)
	}
	rd := n.Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].Type != core.MsgRoute || rd.Messages[0].To != hh {
		t.Fatalf("hinted route sent %v, want one route message to the hint %d (natural next hop %d)", rd.Messages, hint, natural)
	}
	if fw := o.apps[from].forwards; len(fw) == 0 || fw[len(fw)-1].next != hh {
		t.Fatalf("Forward at the origin did not see the hint")
	}
	before := len(o.apps[root].delivered)
	pump(t, nw, rd.Messages)
	if len(o.apps[root].delivered) != before+1 {
		t.Fatalf("hinted message not delivered at the root %d", root)
	}
	m := o.apps[root].delivered[before]
	if p := pathIdx(nw, m.Path); p[0] != from || p[1] != hint || p[len(p)-1] != root {
		t.Fatalf("hinted path %v, want %d, %d, ..., %d", p, from, hint, root)
	}

	// A hint that is the node itself is no hint.
	self := n.Self()
	if err := routeAt(n.Machine, nw.Now(), core.Message{Key: key, App: testAppID, Payload: []byte("self-hint")}, &self); err != nil {
		t.Fatal(err)
	}
	rd = n.Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].To != nw.Node(natural).Self() {
		t.Fatalf("self hint: sent %v, want the natural next hop %d", rd.Messages, natural)
	}
	pump(t, nw, rd.Messages)
}

// TestUpdateUpcallsTrackLeafSet: replaying the Update upcalls a node's
// application received (joined adds, left removes) gives exactly the node's
// leaf set, after joins and after failures and departures. Every joined
// upcall names a node not already in the replayed set, every left upcall
// one that is.
func TestUpdateUpcallsTrackLeafSet(t *testing.T) {
	o := newOverlay(t, 25, 40, leafCfg(8), nil)
	check := func(stage string) {
		t.Helper()
		for _, i := range o.liveIdx() {
			set := map[id.ID]bool{}
			for k, u := range o.apps[i].updates {
				if set[u.h.ID] == u.joined {
					t.Fatalf("%s: node %d upcall %d: %v joined=%v, but replayed membership is %v", stage, i, k, u.h, u.joined, set[u.h.ID])
				}
				set[u.h.ID] = u.joined
			}
			var got []id.ID
			for x, in := range set {
				if in {
					got = append(got, x)
				}
			}
			want := entryIDs(o.nw.Node(i).State().Leaves.Members(nil))
			slices.SortFunc(got, id.ID.Cmp)
			slices.SortFunc(want, id.ID.Cmp)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: node %d: replayed updates give %d members, leaf set has %d", stage, i, len(got), len(want))
			}
		}
	}
	check("after joins")
	o.nw.Crash(3)
	o.nw.Crash(17)
	if err := o.nw.Leave(30); err != nil {
		t.Fatal(err)
	}
	o.nw.RunFor(3 * time.Minute)
	if bad := o.nw.CheckLeafSets(3); len(bad) > 0 {
		t.Fatalf("not repaired: %v", bad)
	}
	check("after failures")
	o.grow(t, 5, time.Second)
	o.nw.RunFor(time.Minute)
	check("after more joins")
}

// TestLeaveNotifiesLeafSet: a leaving node tells its leaf set and
// neighbourhood set; every receiver removes it from all of its state at
// once, and the applications of those that had it as a leaf get
// Update(left).
func TestLeaveNotifiesLeafSet(t *testing.T) {
	var leaveTo []id.ID
	var leaver id.ID
	o := newOverlay(t, 26, 40, leafCfg(8), func(from int, m *core.Message) {
		if m.Type == core.MsgLeave {
			if m.From.ID != leaver {
				panic("leave from the wrong node")
			}
			leaveTo = append(leaveTo, m.To.ID)
		}
	})
	nw := o.nw
	const x = 12
	leaver = nw.Node(x).Self().ID
	st := nw.Node(x).State()
	want := map[id.ID]bool{}
	for _, e := range st.Leaves.Members(nil) {
		want[e.ID] = true
	}
	for _, e := range st.Neighbors.Members() {
		want[e.ID] = true
	}
	var hadLeaf []int
	for _, n := range nw.Nodes() {
		if n.State().Leaves.Contains(leaver) {
			hadLeaf = append(hadLeaf, n.Index)
		}
	}
	upd := make([]int, len(o.apps))
	for i, a := range o.apps {
		upd[i] = len(a.updates)
	}
	if err := nw.Leave(x); err != nil {
		t.Fatal(err)
	}
	if len(leaveTo) != len(want) {
		t.Fatalf("leave sent to %d nodes, want the %d in its leaf and neighbourhood sets", len(leaveTo), len(want))
	}
	for _, y := range leaveTo {
		if !want[y] {
			t.Fatalf("leave sent to %s, not in its state", y.Short())
		}
	}
	// One-way delay is at most ~141 ms on the plane: a second is enough
	// for the notices, and too short for failure detection (probe timeouts
	// run for seconds) to be what removed the node.
	nw.RunFor(time.Second)
	for _, y := range leaveTo {
		n, _ := nw.Lookup(y)
		if n.State().Knows(leaver) {
			t.Errorf("node %d was told and still knows the leaver", n.Index)
		}
	}
	for _, i := range hadLeaf {
		var left bool
		for _, u := range o.apps[i].updates[upd[i]:] {
			if u.h.ID == leaver {
				if u.joined {
					t.Errorf("node %d: Update(leaver, joined)", i)
				}
				left = true
			}
		}
		if !left {
			t.Errorf("node %d had the leaver as a leaf and got no Update(left)", i)
		}
	}
	if len(hadLeaf) < 8 {
		t.Fatalf("only %d nodes had the leaver as a leaf; expected L=8", len(hadLeaf))
	}
	nw.RunFor(2 * time.Minute)
	if bad := nw.CheckLeafSets(3); len(bad) > 0 {
		t.Fatalf("leaf sets not repaired after the leave: %v", bad)
	}
	// Within DeadRetention, nodes that were told refuse the leaver when
	// others (not told: it was only in their routing tables) mention it.
	for _, y := range leaveTo {
		if n, _ := nw.Lookup(y); n.State().Knows(leaver) {
			t.Errorf("node %d re-learned the node that left", n.Index)
		}
	}
}
