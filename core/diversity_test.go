package core_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

// addrMix gives node i an address block: a share crowd of the nodes in
// one of hot blocks (hosting providers), the others spread over 4096
// blocks (residential), and every exempt-th node none (loopback or a
// private range, not limited).
func addrMix(crowd float64, hot, exempt int) func(int) (uint64, bool) {
	return func(i int) (uint64, bool) {
		if exempt > 0 && i%exempt == exempt-1 {
			return 0, false
		}
		r := rand.New(rand.NewPCG(uint64(i), 77))
		if r.Float64() < crowd {
			return uint64(r.IntN(hot)), true
		}
		return 1000 + uint64(r.IntN(4096)), true
	}
}

type diversityRun struct {
	rejected            uint64
	tableEntries, neigh int
	// excessTable, excessNeigh: entries beyond 2 of one block in a row or
	// a neighbourhood set (what the bound would refuse).
	excessTable, excessNeigh int
	meanHops                 float64
	wrongRoot, badLeaves     int
	sent                     uint64 // messages sent by all nodes
}

// runDiversity grows an overlay of n nodes whose addresses come from
// groups, with the diversity bound max (0: off), and checks the bound
// on every node's table rows and neighbourhood set.
func runDiversity(t *testing.T, n, max int, groups func(int) (uint64, bool)) diversityRun {
	t.Helper()
	cfg := core.SimConfig()
	cfg.MaxPerAddrGroup = max
	nw, err := simnet.New(simnet.Options{Seed: 21, Node: cfg, Topology: simnet.NewPlane(), AddrGroups: groups})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		h := nw.AddNode()
		if via := nw.Nearest(h.Index); via < 0 {
			if err := nw.Bootstrap(h.Index); err != nil {
				t.Fatal(err)
			}
		} else if err := nw.Join(h.Index, via); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(200 * time.Millisecond)
	}
	nw.RunFor(2 * time.Minute)
	var out diversityRun
	out.badLeaves = len(nw.CheckLeafSets(0))
	index := func(e routing.Entry) int {
		h, ok := nw.Lookup(e.ID)
		if !ok {
			t.Fatalf("entry %s names no node", e.ID)
		}
		return h.Index
	}
	over := func(where string, es []routing.Entry) (excess int) {
		count := map[uint64]int{}
		for _, e := range es {
			if g, ok := groups(index(e)); ok {
				count[g]++
			}
		}
		for g, c := range count {
			if max > 0 && c > max {
				t.Errorf("%s: %d entries of block %d, bound %d", where, c, g, max)
			}
			excess += c - min(c, 2)
		}
		return excess
	}
	var st core.Stats
	for _, h := range nw.Nodes() {
		st.Add(h.Stats())
		tab := h.State().Table
		for r := range tab.Rows() {
			row := tab.Row(r, nil)
			out.tableEntries += len(row)
			out.excessTable += over(fmt.Sprintf("node %d row %d", h.Index, r), row)
		}
		nb := h.State().Neighbors.Members()
		out.neigh += len(nb)
		out.excessNeigh += over(fmt.Sprintf("node %d neighbourhood", h.Index), nb)
	}
	out.rejected = st.DiversityRejected
	for _, c := range st.Sent {
		out.sent += c
	}
	r := rand.New(rand.NewPCG(5, 5))
	hops := 0
	const lookups = 2000
	for range lookups {
		key := id.Random(r)
		from := r.IntN(n)
		path := nw.Path(from, key, 64)
		want, _ := nw.Root(key)
		end := from
		if len(path) > 0 {
			end = path[len(path)-1]
		}
		if end != want.Index {
			out.wrongRoot++
		}
		hops += len(path)
	}
	out.meanHops = float64(hops) / lookups
	return out
}

// TestAddressDiversity: with a realistic mix of addresses (40% of the
// nodes in 8 hosting blocks, the rest spread over 4096 blocks, every 10th
// exempt), no routing-table row and no neighbourhood set holds more than
// 2 entries of one block, the bound refuses entries the same overlay
// takes without it, and leaf sets stay exact and routes reach the roots:
// the leaf set is not filtered.
func TestAddressDiversity(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 200
	}
	mix := addrMix(0.4, 8, 10)
	on := runDiversity(t, n, 2, mix)
	off := runDiversity(t, n, 0, mix)
	t.Logf("n=%d with the bound: %d refusals, %d table entries, %d neighbourhood entries, mean hops %.3f, %d wrong roots, %d inexact leaf sets, %d messages",
		n, on.rejected, on.tableEntries, on.neigh, on.meanHops, on.wrongRoot, on.badLeaves, on.sent)
	t.Logf("n=%d without: %d table entries (%d beyond 2 of a block in a row), %d neighbourhood entries (%d beyond 2 of a block), mean hops %.3f, %d wrong roots, %d inexact leaf sets, %d messages",
		n, off.tableEntries, off.excessTable, off.neigh, off.excessNeigh, off.meanHops, off.wrongRoot, off.badLeaves, off.sent)
	if off.excessTable+off.excessNeigh == 0 {
		t.Error("the mix breaks the bound nowhere without it: the test shows nothing")
	}
	if on.rejected == 0 {
		t.Error("the bound refused nothing")
	}
	if off.rejected != 0 {
		t.Errorf("bound off: %d refusals", off.rejected)
	}
	if on.badLeaves != 0 || on.wrongRoot != 0 {
		t.Errorf("with the bound: %d inexact leaf sets, %d wrong roots of 2000", on.badLeaves, on.wrongRoot)
	}
	// Nodes the bound refuses are not probed again and again (it cost 3x
	// the messages before probes took the bound into account).
	if on.sent > off.sent*11/10 {
		t.Errorf("%d messages with the bound, %d without: more than 10%% more", on.sent, off.sent)
	}
}

// TestAddressDiversityOneBlock: every node in one block (a devnet on one
// host, were loopback not exempt) still makes a working overlay: tables
// keep 2 entries a row and the leaf sets, which carry routing's
// correctness, stay exact.
func TestAddressDiversityOneBlock(t *testing.T) {
	one := func(int) (uint64, bool) { return 7, true }
	r := runDiversity(t, 100, 2, one)
	off := runDiversity(t, 100, 0, one)
	t.Logf("one block, 100 nodes: %d refusals, %d table entries, %d neighbourhood entries, mean hops %.3f, %d wrong roots, %d inexact leaf sets, %d messages (%d without the bound)",
		r.rejected, r.tableEntries, r.neigh, r.meanHops, r.wrongRoot, r.badLeaves, r.sent, off.sent)
	if r.badLeaves != 0 || r.wrongRoot != 0 {
		t.Errorf("%d inexact leaf sets, %d wrong roots", r.badLeaves, r.wrongRoot)
	}
	if r.sent > off.sent*11/10 {
		t.Errorf("%d messages with the bound, %d without: more than 10%% more", r.sent, off.sent)
	}
	if r.tableEntries > 100*2*32 {
		t.Errorf("%d table entries, more than 2 a row", r.tableEntries)
	}
}
