package core_test

// Tests tied to sentences of the Pastry paper (Rowstron & Druschel,
// Middleware 2001), in the style of etcd raft's raft_paper_test.go, plus a
// few from MSPastry (Castro, Costa, Rowstron, DSN 2004) and PNS (Castro et
// al. 2002). Each quotes the sentence it checks.

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

// "Assuming a network consisting of N nodes, Pastry can route to the
// numerically closest node to a given key in less than ⌈log_{2^b} N⌉ steps
// under normal operation" (section 2). Read as the mean; the paper's own
// figure 4 shows individual routes taking one more.
func TestPaperRoutesToClosestInLogSteps(t *testing.T) {
	for _, tc := range []struct{ b, n int }{{4, 300}, {2, 150}, {1, 60}} {
		cfg := core.SimConfig()
		cfg.B = tc.b
		nw, err := simnet.New(simnet.Options{Seed: uint64(100 + tc.b), Node: cfg, Topology: simnet.NewPlane()})
		if err != nil {
			t.Fatal(err)
		}
		l := simnet.NewLookups(nw)
		if err := nw.Grow(tc.n, 200*time.Millisecond, l); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Minute)
		for range 1000 {
			if _, err := l.Lookup(nw.Rand().IntN(tc.n), id.Random(nw.Rand())); err != nil {
				t.Fatal(err)
			}
		}
		nw.RunFor(30 * time.Second)
		bound := math.Ceil(math.Log(float64(tc.n)) / math.Log(float64(int(1)<<tc.b)))
		t.Logf("b=%d N=%d: %d/%d correct, mean hops %.2f, bound %v, histogram %v", tc.b, tc.n, l.Correct, l.Issued, l.MeanHops(), bound, l.Hops)
		if l.Correct != l.Issued {
			t.Errorf("b=%d N=%d: %d of %d lookups reached the numerically closest node", tc.b, tc.n, l.Correct, l.Issued)
		}
		if l.MeanHops() >= bound {
			t.Errorf("b=%d N=%d: mean hops %.2f, not less than ⌈log_2^b N⌉ = %v", tc.b, tc.n, l.MeanHops(), bound)
		}
		if len(l.Hops) > int(bound)+2 {
			t.Errorf("b=%d N=%d: a route took %d hops", tc.b, tc.n, len(l.Hops)-1)
		}
	}
}

// "The leaf set L is the set of nodes with the |L|/2 numerically closest
// larger nodeIds, and the |L|/2 nodes with numerically closest smaller
// nodeIds, relative to the present node's nodeId" (section 2.1), for the
// paper's leaf set sizes, including overlays with fewer than |L|+1 nodes.
func TestPaperLeafSetIsTheClosest(t *testing.T) {
	for _, tc := range []struct{ l, n int }{{8, 5}, {8, 40}, {16, 12}, {16, 60}, {32, 20}, {32, 60}} {
		nw, _ := simnet.New(simnet.Options{Seed: uint64(tc.l*1000 + tc.n), Node: leafCfg(tc.l), Topology: simnet.NewPlane()})
		if err := nw.Grow(tc.n, 300*time.Millisecond, nil); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Minute)
		if bad := nw.CheckLeafSets(3); len(bad) > 0 {
			t.Errorf("L=%d N=%d: %v", tc.l, tc.n, bad)
		}
	}
}

// "The routing table R is organized into ⌈log_{2^b} N⌉ rows with 2^b − 1
// entries each. The 2^b − 1 entries at row n of the routing table each refer
// to a node whose nodeId shares the present node's nodeId in the first n
// digits, but whose n + 1th digit has one of the 2^b − 1 possible values
// other than the n + 1th digit in the present node's id" (section 2.1).
func TestPaperRoutingTableRows(t *testing.T) {
	const n = 300
	nw, _ := simnet.New(simnet.Options{Seed: 5, Node: core.SimConfig(), Topology: simnet.NewPlane()})
	if err := nw.Grow(n, 200*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	if err := nw.CheckTables(); err != nil {
		t.Fatal(err)
	}
	b := 4
	rows := math.Ceil(math.Log(n) / math.Log(16))
	var size, row0, maxRow, deep int
	for _, x := range nw.Nodes() {
		self := x.Self().ID
		tb := x.State().Table
		tb.ForEach(func(r, c int, e routing.Entry) bool {
			if c == self.Digit(r, b) {
				t.Errorf("node %d: row %d holds column %x, its own digit", x.Index, r, c)
			}
			maxRow = max(maxRow, r)
			if r > int(rows) {
				deep++
			}
			return true
		})
		size += tb.Size()
		row0 += tb.RowFill(0)
	}
	mean := float64(size) / n
	t.Logf("N=%d: mean table size %.1f, row 0 fill %.2f, deepest row %d, ⌈log16 N⌉ = %v", n, mean, float64(row0)/n, maxRow, rows)
	if mean > rows*15 {
		t.Errorf("mean table size %.1f exceeds ⌈log16 N⌉ x 15 = %v", mean, rows*15)
	}
	// With N=300 every first digit has about 19 nodes: row 0 is full.
	if float64(row0)/n < 14.9 {
		t.Errorf("row 0 holds %.2f of 15 entries on average", float64(row0)/n)
	}
	// "Only log_{2^b} N rows are populated on average": a deeper row needs
	// two nodes sharing more than ⌈log16 N⌉ digits, which happens (about
	// 0.7 such pairs are expected at N=300) but only for a few entries.
	if frac := float64(deep) / float64(size); frac > 0.01 {
		t.Errorf("%.2f%% of entries (deepest row %d) lie beyond row %v", 100*frac, maxRow, rows)
	}
}

// "In each routing step, a node normally forwards the message to a node
// whose nodeId shares with the key a prefix that is at least one digit (or b
// bits) longer than the prefix that the key shares with the present node's
// id. If no such node is known, the message is forwarded to a node whose
// nodeId shares a prefix with the key as long as the current node, but is
// numerically closer to the key than the present node's id" (section 2.2),
// after "the node first checks to see if the key falls within the range of
// nodeIds covered by its leaf set. If so, the message is forwarded directly
// to the destination node, namely the node in the leaf set whose nodeId is
// closest to the key (possibly the present node)".
func TestPaperRoutingStep(t *testing.T) {
	var nw *simnet.Network
	checked := map[string]int{}
	b := 4
	onSend := func(from int, m *core.Message) {
		if m.Type != core.MsgRoute || m.App != testAppID {
			return
		}
		x := nw.Node(from)
		st := x.State()
		key, self := m.Key, x.Self().ID
		l := id.SharedPrefixLen(self, key, b)
		pl := id.SharedPrefixLen(m.To.ID, key, b)
		// Our shortcut (routing.State.NextHop): instead of R[l][key's digit
		// l], a known node within one leaf-set spacing of the key that is
		// numerically closer to it than that entry and than this node and
		// shares at least l digits with it.
		e, hasEntry := st.Table.Get(l, key.Digit(l, b))
		sp := st.Leaves.Spacing()
		shortcut := hasEntry && pl >= l && st.Knows(m.To.ID) && id.Closer(key, m.To.ID, e.ID) &&
			id.Closer(key, m.To.ID, self) && !sp.IsZero() && !sp.Less(id.RingDistance(m.To.ID, key))
		switch {
		case st.Leaves.Covers(key):
			want := self
			for _, e := range st.Leaves.Members(nil) {
				if id.Closer(key, e.ID, want) {
					want = e.ID
				}
			}
			if m.To.ID != want {
				t.Errorf("leaf case: node %d sent %s to %s, closest leaf is %s", from, key.Short(), m.To, want.Short())
			}
			checked["leaf"]++
		case pl > l:
			checked["longer prefix"]++
		case shortcut:
			checked["shortcut"]++
		default:
			longer := false
			check := func(z id.ID) {
				longer = longer || id.SharedPrefixLen(z, key, b) > l
			}
			for _, e := range st.Leaves.Members(nil) {
				check(e.ID)
			}
			st.Table.ForEach(func(_, _ int, e routing.Entry) bool { check(e.ID); return true })
			for _, e := range st.Neighbors.Members() {
				check(e.ID)
			}
			if longer {
				t.Errorf("node %d knows a node with a longer prefix for %s, yet sent it to %s", from, key.Short(), m.To)
			}
			if pl < l || !id.Closer(key, m.To.ID, self) {
				t.Errorf("rare case: node %d sent %s to %s, prefix %d (own %d), not numerically closer", from, key.Short(), m.To, pl, l)
			}
			checked["rare"]++
		}
	}
	var err error
	nw, err = simnet.New(simnet.Options{Seed: 41, Node: leafCfg(8), Topology: simnet.NewPlane(), OnSend: onSend})
	if err != nil {
		t.Fatal(err)
	}
	o := &overlay{nw: nw}
	o.grow(t, 150, 300*time.Millisecond)
	nw.RunFor(time.Minute)
	rng := nw.Rand()
	for range 1500 {
		key := id.Random(rng)
		// Keys that share a first digit with nobody make rare cases.
		if rng.IntN(3) == 0 {
			key = key.WithDigit(0, b, int(nw.Node(rng.IntN(150)).Self().ID.Digit(0, b)))
			key = key.WithDigit(1, b, rng.IntN(16))
		}
		if err := nw.RouteFrom(rng.IntN(150), core.Message{Key: key, App: testAppID}); err != nil {
			t.Fatal(err)
		}
	}
	nw.RunFor(30 * time.Second)
	t.Logf("routing steps checked: %v", checked)
	if checked["leaf"] == 0 || checked["longer prefix"] == 0 || checked["shortcut"] == 0 {
		t.Fatalf("cases not exercised: %v", checked)
	}
}

// "X asks A to route a special "join" message with the key equal to X. Like
// any message, Pastry routes the join message to the existing node Z whose
// id is numerically closest to X. In response to receiving the "join"
// request, nodes A, B, etc., and Z send their state tables to X" (section
// 2.4). "Finally, X transmits a copy of its resulting state to each of the
// nodes found in its neighborhood set, leaf set, and routing table. Those
// nodes in turn update their own state based on the information received."
//
// Here the state tables travel with the join, and Z's reply comes back
// along the join's path (join.go: no node can have a join's answers sent
// to another): X gets it from A, with the rows of A ... Z and Z's leaf set,
// and announces itself to the nodes it names.
func TestPaperJoin(t *testing.T) {
	var nw *simnet.Network
	type joinObs struct {
		root       int     // the live joined node closest to X when the join began
		answeredBy []int   // the first sender of X's join reply (the root, not a relay)
		handedBy   []int   // senders of X's join reply to X
		named      []id.ID // the nodes the reply names
		announceTo []id.ID // recipients of its announcements
		via        int     // A
	}
	obs := map[int]*joinObs{}
	onSend := func(from int, m *core.Message) {
		switch m.Type {
		case core.MsgJoinReply:
			x, _ := nw.Lookup(m.Origin.ID)
			o := obs[x.Index]
			if o == nil {
				return
			}
			if len(o.answeredBy) == 0 { // the root's; the relays' follow
				o.answeredBy = append(o.answeredBy, from)
			}
			if m.To.ID == x.Self().ID {
				o.handedBy = append(o.handedBy, from)
				o.named = handleIDs(m.Handles)
			}
		case core.MsgAnnounce:
			if o := obs[from]; o != nil {
				o.announceTo = append(o.announceTo, m.To.ID)
			}
		}
	}
	var err error
	nw, err = simnet.New(simnet.Options{Seed: 51, Node: leafCfg(8), Topology: simnet.NewPlane(), OnSend: onSend})
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.Grow(60, 300*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	for range 20 {
		x := nw.AddNode()
		via := nw.Nearest(x.Index)
		root, _ := nw.Root(x.Self().ID)
		o := &joinObs{root: root.Index, via: via}
		obs[x.Index] = o
		if err := nw.Join(x.Index, via); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(2 * time.Second)
		if x.Status() != core.StatusJoined {
			t.Fatalf("node %d did not join in 2s", x.Index)
		}
		if o.answeredBy[0] != o.root {
			t.Errorf("node %d: join answered by %v, want the closest node %d", x.Index, o.answeredBy, o.root)
		}
		if len(o.handedBy) != 1 || o.handedBy[0] != via {
			t.Errorf("node %d: join reply handed over by %v, want A=%d", x.Index, o.handedBy, via)
		}
		if !slices.Contains(o.named, nw.Node(via).Self().ID) || !slices.Contains(o.named, root.Self().ID) {
			t.Errorf("node %d: the reply names %d nodes, not A=%d and Z=%d", x.Index, len(o.named), via, o.root)
		}
		// X announced itself to its leaves, and those nodes update their
		// state: every node that should have X as a leaf has it, before
		// any heartbeat could have told it.
		left, right := nw.TrueLeaves(x.Self().ID)
		for _, y := range append(left, right...) {
			if !slices.Contains(o.announceTo, y) {
				t.Errorf("node %d: no announcement to its leaf %s", x.Index, y.Short())
			}
			z, _ := nw.Lookup(y)
			if !z.State().Leaves.Contains(x.Self().ID) {
				t.Errorf("node %d: its leaf %d has not taken it into its leaf set", x.Index, z.Index)
			}
		}
	}
	if bad := nw.CheckLeafSets(3); len(bad) > 0 {
		t.Fatal(bad)
	}
}

// "To replace a failed node in the leaf set, its neighbor in the nodeId
// space contacts the live node with the largest index on the side of the
// failed node, and asks that node for its leaf table" (section 2.4).
func TestPaperLeafSetRepair(t *testing.T) {
	var nw *simnet.Network
	type req struct{ from, to int }
	var reqs []req
	notified := map[int]bool{} // got a leaf's notice of the failure, with its leaf set
	onSend := func(from int, m *core.Message) {
		to, _ := nw.Lookup(m.To.ID)
		switch {
		case m.Type == core.MsgLeafRequest:
			reqs = append(reqs, req{from, to.Index})
		case m.Type == core.MsgSuspect && len(m.Handles) > 0:
			notified[to.Index] = true
		}
	}
	nw, _ = simnet.New(simnet.Options{Seed: 61, Node: leafCfg(8), Topology: simnet.NewPlane(), OnSend: onSend})
	if err := nw.Grow(50, 300*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	// A neighbour that hears of the failure from a leaf first (MSPastry's
	// shared liveness evidence) repairs from the leaf set in that notice
	// instead of asking; one of the two neighbours finds the failure
	// itself and asks.
	for _, x := range []int{10, 20, 30} {
		reqs = nil
		clear(notified)
		fx := nw.Node(x).Self().ID
		left, right := nw.TrueLeaves(fx)
		rn, _ := nw.Lookup(right[0]) // the failed node's right neighbour: x is its first left leaf
		ln, _ := nw.Lookup(left[0])
		// The live nodes with the largest index on the side of the failed
		// node, in each neighbour's leaf set.
		wantR, _ := nw.Lookup(rn.State().Leaves.Left()[len(rn.State().Leaves.Left())-1].ID)
		wantL, _ := nw.Lookup(ln.State().Leaves.Right()[len(ln.State().Leaves.Right())-1].ID)
		nw.Crash(x)
		nw.RunFor(3 * time.Minute)
		if !slices.Contains(reqs, req{rn.Index, wantR.Index}) && !notified[rn.Index] {
			t.Errorf("crash %d: right neighbour %d did not ask %d (farthest left leaf): requests %v", x, rn.Index, wantR.Index, reqs)
		}
		if !slices.Contains(reqs, req{ln.Index, wantL.Index}) && !notified[ln.Index] {
			t.Errorf("crash %d: left neighbour %d did not ask %d (farthest right leaf): requests %v", x, ln.Index, wantL.Index, reqs)
		}
		if !slices.Contains(reqs, req{rn.Index, wantR.Index}) && !slices.Contains(reqs, req{ln.Index, wantL.Index}) {
			t.Errorf("crash %d: neither neighbour asked its farthest leaf on the failed node's side: requests %v", x, reqs)
		}
		if bad := nw.CheckLeafSets(3); len(bad) > 0 {
			t.Fatalf("crash %d: not repaired: %v", x, bad)
		}
	}
}

// "To repair a failed routing table entry R_l^d, a node contacts first the
// node referred to by another entry R_l^i, i≠d, of the same row, and asks
// for that node's entry for R_l^d. [...] In the event that none of the
// entries in row l have a pointer to a live node with the appropriate
// prefix, the node next contacts an entry R_{l+1}^i, i≠d, thereby casting a
// wider net" (section 2.4). The failure is found by using the entry: the
// hop is not acknowledged (MSPastry), probed, and declared failed.
func TestPaperRoutingTableRepair(t *testing.T) {
	hex := func(s string) id.ID { return id.MustParse(s + strings.Repeat("0", 32-len(s))) }
	var nw *simnet.Network
	type rowReq struct {
		from, to int
		row      int16
	}
	var reqs []rowReq
	onSend := func(from int, m *core.Message) {
		if m.Type == core.MsgRowRequest {
			to, _ := nw.Lookup(m.To.ID)
			reqs = append(reqs, rowReq{from, to.Index, m.Row})
		}
	}
	cfg := leafCfg(4)
	cfg.RowExchangeInterval = 0 // only repair asks for rows
	nw, _ = simnet.New(simnet.Options{Seed: 71, Node: cfg, Topology: simnet.Constant(5 * time.Millisecond), OnSend: onSend})
	// Y = 1000...; its row 0 gets one node per other first digit (3 and 5
	// twice), row 1 only X = 1200, row 2 the nodes 101, 102, 108.
	ids := []string{"1", "3", "38", "5", "58", "7", "9", "b", "d", "f", "12", "101", "102", "108"}
	for _, s := range ids {
		n := nw.AddNodeWithID(hex(s))
		n.RegisterApplication(testAppID, &testApp{idx: n.Index})
	}
	nw.Bootstrap(0)
	for i := 1; i < len(ids); i++ {
		if err := nw.Join(i, 0); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Second)
	}
	nw.RunFor(time.Minute)
	if bad := nw.CheckLeafSets(3); len(bad) > 0 {
		t.Fatal(bad)
	}
	y, x := nw.Node(0), nw.Node(10)
	tb := y.State().Table
	if e, ok := tb.Get(0, 3); !ok || tb.RowFill(0) < 7 || tb.RowFill(1) != 1 || tb.RowFill(2) != 3 || y.State().Leaves.Contains(x.Self().ID) {
		t.Fatalf("unexpected table for Y: row fill %d %d %d, (0,3) %v", tb.RowFill(0), tb.RowFill(1), tb.RowFill(2), e)
	}

	// Case 1: a row-0 entry fails; Y asks another entry of row 0 for row 0.
	e03, _ := tb.Get(0, 3)
	fail, _ := nw.Lookup(e03.ID)
	other := hex("3")
	if e03.ID == other {
		other = hex("38")
	}
	reqs = nil
	nw.Crash(fail.Index)
	if err := nw.RouteFrom(0, core.Message{Key: e03.ID, App: testAppID}); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(10 * time.Second)
	row0 := entryIDs(tb.Row(0, nil))
	t.Run("same row asked", func(t *testing.T) {
		// A hole is first refilled from nodes already known (leaf and
		// neighbourhood sets); only if none fits is the row asked for.
		if e, ok := tb.Get(0, 3); ok && e.ID == other {
			return
		}
		for _, r := range reqs {
			if r.from == 0 && r.row == 0 && r.to != fail.Index && slices.Contains(row0, nw.Node(r.to).Self().ID) {
				return
			}
		}
		t.Errorf("requests %v, want Y (0) asking a row-0 entry for row 0", reqs)
	})
	if tb.Contains(e03.ID) {
		t.Errorf("failed entry still in Y's table")
	}
	t.Run("hole refilled", func(t *testing.T) {
		if e, ok := tb.Get(0, 3); !ok || e.ID != other {
			t.Errorf("hole (0,3) = %v, %v; want the other live node starting with 3, %s", e.ID.Short(), ok, other.Short())
		}
	})

	// Case 2: X, the only row-1 entry, fails. The paper has Y ask an entry
	// of row 2 for row 1; here a row so sparse that its slots are expected
	// to hold under two nodes each (14 nodes: under one) is not asked for
	// at all: the failed node was most likely its slot's only node, and
	// the periodic row exchange fills the hole if anything can (the
	// repair's cost, bench/sim).
	reqs = nil
	nw.Crash(x.Index)
	if err := nw.RouteFrom(0, core.Message{Key: x.Self().ID, App: testAppID}); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(10 * time.Second)
	t.Run("sparse row not asked", func(t *testing.T) {
		for _, r := range reqs {
			if r.from == 0 && r.row == 1 {
				t.Errorf("requests %v, want none from Y for row 1", reqs)
			}
		}
	})
	if tb.Contains(x.Self().ID) {
		t.Error("failed X still in Y's table")
	}
}

// A node declared failed is refused second-hand for DeadRetention; after
// that, nothing but first-hand contact should bring it back. Nodes that
// never used their entry for it still list it in their rows, and periodic
// row exchange offers those rows to nodes that did.
func TestDeadEntriesDoNotReturn(t *testing.T) {
	hex := func(s string) id.ID { return id.MustParse(s + strings.Repeat("0", 32-len(s))) }
	cfg := leafCfg(4)
	nw, _ := simnet.New(simnet.Options{Seed: 72, Node: cfg, Topology: simnet.Constant(5 * time.Millisecond)})
	for _, s := range []string{"1", "3", "38", "5", "58", "7", "9", "b", "d", "f", "12", "101", "102", "108"} {
		n := nw.AddNodeWithID(hex(s))
		n.RegisterApplication(testAppID, &testApp{idx: n.Index})
	}
	nw.Bootstrap(0)
	for i := 1; i < 14; i++ {
		if err := nw.Join(i, 0); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Second)
	}
	nw.RunFor(time.Minute)
	e03, _ := nw.Node(0).State().Table.Get(0, 3)
	fail, _ := nw.Lookup(e03.ID)
	nw.Crash(fail.Index)
	if err := nw.RouteFrom(0, core.Message{Key: e03.ID, App: testAppID}); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(10 * time.Second)
	if nw.Node(0).State().Knows(e03.ID) {
		t.Fatal("the failure was not detected")
	}
	nw.RunFor(20 * time.Minute)
	if nw.Node(0).State().Knows(e03.ID) {
		t.Errorf("node 0 removed the crashed node %s, and has it again", e03.ID.Short())
	}
}

// "a node attempts to contact each member of the neighborhood set
// periodically to see if it is still alive. If a member is not responding,
// the node asks other members for their neighborhood tables, checks the
// distance of each of the newly discovered nodes, and updates its own
// neighborhood set accordingly" (section 2.4).
func TestPaperNeighborhoodSetProbed(t *testing.T) {
	o := newOverlay(t, 81, 40, leafCfg(8), nil)
	x := o.nw.Node(11).Self().ID
	o.nw.Crash(11)
	o.nw.RunFor(30 * time.Minute)
	for _, n := range o.nw.Nodes() {
		if n.Alive() && n.State().Neighbors.Contains(x) {
			t.Errorf("node %d: crashed node still in its neighbourhood set after 30 minutes", n.Index)
		}
	}
}

// "Delivery is guaranteed unless ⌊|L|/2⌋ nodes with adjacent nodeIds fail
// simultaneously" (section 2). Crash |L|/2 − 1 adjacent nodes at once and
// route keys around them at once: every message reaches the live node
// numerically closest to its key.
func TestPaperDeliveryDespiteAdjacentFailures(t *testing.T) {
	// A node whose closest leaves for a key are all dead tries them one by
	// one, each costing a hop timeout and one re-route; with a budget of
	// |L|/2 re-routes the guarantee holds.
	t.Run("MaxReroutes=L/2", func(t *testing.T) {
		cfg := core.SimConfig()
		cfg.MaxReroutes = cfg.LeafSetSize / 2
		if lost, wrong, total := adjacentFailures(t, cfg); lost > 0 || wrong > 0 {
			t.Errorf("%d of %d messages lost, %d misdelivered", lost, total, wrong)
		}
	})
	// The presets must give that budget: with MaxReroutes 4 (the value
	// before it was raised) 4 of these 219 messages were dropped.
	for name, c := range map[string]core.Config{"DefaultConfig": core.DefaultConfig(), "SimConfig": core.SimConfig()} {
		if c.MaxReroutes < c.LeafSetSize/2-1 {
			t.Errorf("%s: MaxReroutes %d < |L|/2-1 = %d", name, c.MaxReroutes, c.LeafSetSize/2-1)
		}
	}
	t.Run("SimConfig", func(t *testing.T) {
		if lost, wrong, total := adjacentFailures(t, core.SimConfig()); lost > 0 || wrong > 0 {
			t.Errorf("%d of %d messages lost, %d misdelivered", lost, total, wrong)
		}
	})
}

func adjacentFailures(t *testing.T, cfg core.Config) (lost, wrong, total int) {
	o := newOverlay(t, 91, 80, cfg, nil)
	nw := o.nw
	half := cfg.LeafSetSize / 2
	live := slices.Clone(nw.Live())
	const start = 40
	for k := range half - 1 {
		n, _ := nw.Lookup(live[start+k])
		nw.Crash(n.Index)
	}
	// Keys spread over the failed arc and a little beyond, from every live
	// node, all in flight together.
	lo, hi := live[start-2].U128(), live[start+half].U128()
	span := hi.Sub(lo)
	rng := nw.Rand()
	var keys []id.ID
	for _, i := range o.liveIdx() {
		for range 3 {
			off := id.U128{Hi: rng.Uint64() % max(span.Hi, 1), Lo: rng.Uint64()}
			key := lo.Add(off).ID()
			payload := []byte{byte(len(keys) >> 8), byte(len(keys))}
			keys = append(keys, key)
			if err := nw.RouteFrom(i, core.Message{Key: key, App: testAppID, Payload: payload}); err != nil {
				t.Fatal(err)
			}
		}
	}
	nw.RunFor(time.Minute)
	first := map[int]int{}
	for _, a := range o.apps {
		for _, m := range a.delivered {
			if len(m.Payload) == 2 {
				k := int(m.Payload[0])<<8 | int(m.Payload[1])
				if _, ok := first[k]; !ok {
					first[k] = a.idx
				}
			}
		}
	}
	for k, key := range keys {
		at, ok := first[k]
		root, _ := nw.Root(key)
		switch {
		case !ok:
			lost++
		case at != root.Index:
			wrong++
		}
	}
	var dropped uint64
	for _, n := range nw.Nodes() {
		dropped += n.Stats().Dropped
	}
	t.Logf("MaxReroutes=%d: %d messages, %d lost (%d dropped by a node), %d delivered away from the root",
		cfg.MaxReroutes, len(keys), lost, dropped, wrong)
	return lost, wrong, len(keys)
}

// MSPastry: "a node forwards a message to the next hop and waits for an
// acknowledgement; if it does not arrive within a timeout, the node ...
// reroutes the message" (per-hop acks, section 3.2). A message whose next
// hop has crashed is still delivered at the root, once.
func TestPaperPerHopAckReroute(t *testing.T) {
	o := newOverlay(t, 95, 60, core.SimConfig(), nil)
	const from = 4
	for trial := range 5 {
		key, path := multiHopKey(t, o, from)
		next := path[1]
		root := path[len(path)-1]
		if next == root {
			continue
		}
		before := o.nw.Node(from).Stats()
		// A leaf next hop is likely the root: it is sent the message once
		// more before the re-route (route.go, retryHop).
		timeouts := uint64(1)
		if o.nw.Node(from).State().Leaves.Contains(o.nw.Node(next).Self().ID) {
			timeouts = 2
		}
		o.nw.Crash(next)
		got := o.route(t, from, key, []byte("around"), 5*time.Second)
		if len(got) != 1 || len(got[root]) != 1 {
			t.Fatalf("trial %d: with next hop %d down, delivered at %v, want once at %d", trial, next, got, root)
		}
		p := pathIdx(o.nw, got[root][0].Path)
		if slices.Contains(p, next) {
			t.Fatalf("trial %d: path %v went through the crashed node", trial, p)
		}
		after := o.nw.Node(from).Stats()
		if after.HopTimeouts != before.HopTimeouts+timeouts || after.Reroutes != before.Reroutes+1 {
			t.Fatalf("trial %d: hop timeouts %d->%d reroutes %d->%d", trial, before.HopTimeouts, after.HopTimeouts, before.Reroutes, after.Reroutes)
		}
		o.nw.RunFor(3 * time.Minute)
	}
}

// MSPastry's shared liveness evidence in leaf-set repair: a node that
// finds a leaf failed tells its leaf set, and the notice carries its leaf
// set, from which most receivers take the failed node's replacement in
// theirs instead of each asking a leaf of its own (Pastry's repair: one
// leaf request and one reply per leaf of the failed node). The leaf sets
// end exact either way.
func TestLeafRepairFromNotices(t *testing.T) {
	var nw *simnet.Network
	requests, notices := 0, 0
	onSend := func(from int, m *core.Message) {
		switch {
		case m.Type == core.MsgLeafRequest:
			requests++
		case m.Type == core.MsgSuspect && len(m.Handles) > 0:
			notices++
		}
	}
	nw, _ = simnet.New(simnet.Options{Seed: 62, Node: leafCfg(8), Topology: simnet.NewPlane(), OnSend: onSend})
	if err := nw.Grow(60, 300*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	for _, x := range []int{10, 25, 40} {
		requests, notices = 0, 0
		left, right := nw.TrueLeaves(nw.Node(x).Self().ID)
		holders := len(left) + len(right) // the failed node's leaves
		nw.Crash(x)
		nw.RunFor(3 * time.Minute)
		if notices == 0 {
			t.Errorf("crash %d: no failure notice carried a leaf set", x)
		}
		if requests >= holders/2 {
			t.Errorf("crash %d: %d leaf requests for %d leaves of the failed node; want most to repair from a notice", x, requests, holders)
		}
		if bad := nw.CheckLeafSets(3); len(bad) > 0 {
			t.Fatalf("crash %d: not repaired: %v", x, bad)
		}
	}
}
