package core_test

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

// The Common API (Dabek et al. 2003) on a settled overlay, against brute
// force over simnet's list of live nodes.

const apiN = 80

func apiOverlay(t *testing.T) *overlay {
	return newOverlay(t, 31, apiN, core.SimConfig(), nil)
}

// keysNear returns keys around node x: its id, points between it and each
// leaf, and just either side of each leaf.
func keysNear(nw *simnet.Network, n *simnet.Host) []id.ID {
	self := n.Self().ID.U128()
	keys := []id.ID{n.Self().ID}
	one := id.U128{Lo: 1}
	for _, e := range n.State().Leaves.Members(nil) {
		u := e.ID.U128()
		keys = append(keys, e.ID, u.Add(one).ID(), u.Sub(one).ID())
		// A third of the way from self to the leaf, along the shorter arc.
		d := u.Sub(self)
		if d.Hi>>63 == 0 {
			keys = append(keys, self.Add(d.Rsh1().Rsh1()).ID())
		} else {
			keys = append(keys, self.Sub(self.Sub(u).Rsh1().Rsh1()).ID())
		}
	}
	return keys
}

// TestReplicaSet: ReplicaSet(key, k) is the k live nodes numerically
// closest to the key, closest first, for every k up to L/2+1, when this node
// is the key's root; and for any key whenever those k nodes are within the
// leaf set. (For a key near the edge of the leaf set's range the k closest
// can lie beyond it, and the node cannot know them.)
func TestReplicaSet(t *testing.T) {
	o := apiOverlay(t)
	half := core.SimConfig().LeafSetSize / 2
	atRoot, inside := 0, 0
	for i := 0; i < apiN; i += 7 {
		n := o.nw.Node(i)
		known := append(entryIDs(n.State().Leaves.Members(nil)), n.Self().ID)
		for _, key := range keysNear(o.nw, n) {
			truth := closest(key, o.nw.Live())
			root, _ := o.nw.Root(key)
			for k := 0; k <= half+1; k++ {
				all := true
				for _, x := range truth[:k] {
					all = all && slices.Contains(known, x)
				}
				if root.Index == i && !all {
					t.Fatalf("node %d is the root of %s, yet the %d closest are not all in its leaf set", i, key.Short(), k)
				}
				if !all {
					continue
				}
				if root.Index == i {
					atRoot++
				} else {
					inside++
				}
				got := handleIDs(n.ReplicaSet(key, k))
				if !slices.Equal(got, truth[:k]) {
					t.Fatalf("node %d key %s k=%d: got %v want %v", i, key.Short(), k, got, truth[:k])
				}
			}
		}
	}
	t.Logf("%d at root, %d elsewhere", atRoot, inside)
	if atRoot < 50 || inside < 500 {
		t.Fatalf("too few cases: %d at the root, %d elsewhere", atRoot, inside)
	}
	// More than there are: everything the leaf set holds, self included.
	n := o.nw.Node(0)
	if got := n.ReplicaSet(n.Self().ID, 1000); len(got) != n.State().Leaves.Len()+1 {
		t.Fatalf("ReplicaSet(k=1000) returned %d, want leaf set + self = %d", len(got), n.State().Leaves.Len()+1)
	}
	if got := n.ReplicaSet(n.Self().ID, -1); len(got) != 0 {
		t.Fatalf("ReplicaSet(k=-1) = %v", got)
	}
}

// TestRange: Range(h, rank) is the arc of keys for which h is among the
// rank+1 closest live nodes. Keys just inside the arc have h among them,
// keys just outside do not (the endpoints themselves are ties).
func TestRange(t *testing.T) {
	o := apiOverlay(t)
	half := core.SimConfig().LeafSetSize / 2
	live := o.nw.Live()
	among := func(key, x id.ID, rank int) bool {
		return slices.Contains(closest(key, live)[:rank+1], x)
	}
	one := id.U128{Lo: 1}
	checked := 0
	for i := 0; i < apiN; i += 5 {
		n := o.nw.Node(i)
		subjects := append([]id.Handle{n.Self()}, handlesOf(n.State().Leaves.Left()[:2])...)
		subjects = append(subjects, handlesOf(n.State().Leaves.Right()[:2])...)
		for si, h := range subjects {
			for rank := range half - 2 {
				lo, hi, ok := n.Range(h, rank)
				if !ok {
					t.Fatalf("node %d: Range(%s, %d) not ok in a full leaf set", i, h, rank)
				}
				l, r := lo.U128(), hi.U128()
				for _, k := range []id.U128{l.Add(one), r.Sub(one), h.ID.U128()} {
					if !among(k.ID(), h.ID, rank) {
						t.Fatalf("node %d subject %d rank %d: key %s inside [%s, %s] but %s is not among the %d closest",
							i, si, rank, k.ID().Short(), lo, hi, h, rank+1)
					}
				}
				for _, k := range []id.U128{l.Sub(one), r.Add(one)} {
					if among(k.ID(), h.ID, rank) {
						t.Fatalf("node %d subject %d rank %d: key %s outside [%s, %s] but %s is among the %d closest",
							i, si, rank, k.ID(), lo, hi, h, rank+1)
					}
				}
				checked++
			}
		}
	}
	// A node not in the leaf set: cannot tell.
	n := o.nw.Node(0)
	for _, x := range o.nw.Nodes() {
		if x.Index != 0 && !n.State().Leaves.Contains(x.Self().ID) {
			if _, _, ok := n.Range(x.Self(), 0); ok {
				t.Fatalf("Range of non-leaf %d claims to know", x.Index)
			}
			break
		}
	}
	if _, _, ok := n.Range(n.Self(), -1); ok {
		t.Fatal("Range with rank -1 is ok")
	}
	t.Logf("%d ranges checked", checked)
}

func handlesOf(es []routing.Entry) []id.Handle {
	out := make([]id.Handle, len(es))
	for i, e := range es {
		out[i] = e.Handle
	}
	return out
}

// TestNeighborSet: NeighborSet(num) is the num nearest nodes in id space,
// alternating sides from the clockwise one, as simnet's true leaf sets give
// them.
func TestNeighborSet(t *testing.T) {
	o := apiOverlay(t)
	l := core.SimConfig().LeafSetSize
	for i := range apiN {
		n := o.nw.Node(i)
		left, right := o.nw.TrueLeaves(n.Self().ID)
		var want []id.ID
		for k := 0; k < len(left) || k < len(right); k++ {
			if k < len(right) {
				want = append(want, right[k])
			}
			if k < len(left) {
				want = append(want, left[k])
			}
		}
		for _, num := range []int{0, 1, 2, 5, l, l + 4} {
			got := handleIDs(n.NeighborSet(num))
			w := want[:min(num, len(want))]
			if !slices.Equal(got, w) {
				t.Fatalf("node %d NeighborSet(%d) = %v, want %v", i, num, got, w)
			}
		}
	}
}

// TestLocalLookup: empty at the key's root; otherwise it starts with the
// next hop the node would route to (the root itself when the key is in the
// leaf set's range), lists distinct live nodes that each make progress (a
// longer shared prefix with the key, or as long and numerically closer), best
// first, and with safe only leaf-set members.
func TestLocalLookup(t *testing.T) {
	o := apiOverlay(t)
	b := core.SimConfig().B
	rng := o.nw.Rand()
	for trial := range 300 {
		i := rng.IntN(apiN)
		n := o.nw.Node(i)
		key := id.Random(rng)
		if trial%3 == 0 {
			ks := keysNear(o.nw, n)
			key = ks[rng.IntN(len(ks))]
		}
		root, _ := o.nw.Root(key)
		st := n.State()
		selfPre := id.SharedPrefixLen(n.Self().ID, key, b)
		progress := func(x id.ID) bool {
			p := id.SharedPrefixLen(x, key, b)
			return p > selfPre || p == selfPre && id.Closer(key, x, n.Self().ID)
		}
		better := func(a, c id.ID) bool {
			pa, pc := id.SharedPrefixLen(a, key, b), id.SharedPrefixLen(c, key, b)
			return pa > pc || pa == pc && id.Closer(key, a, c)
		}
		for _, safe := range []bool{false, true} {
			for _, num := range []int{0, 1, 3, 1000} {
				got := n.LocalLookup(key, num, safe)
				if root.Index == i || num == 0 {
					if len(got) != 0 {
						t.Fatalf("node %d key %s (root %d) num %d: got %v, want nothing", i, key.Short(), root.Index, num, got)
					}
					continue
				}
				next, _ := st.NextHop(key, nil)
				if len(got) == 0 || got[0] != next {
					t.Fatalf("node %d key %s: LocalLookup starts %v, NextHop is %v", i, key.Short(), got, next)
				}
				if st.Leaves.Covers(key) && got[0].ID != root.Self().ID {
					t.Fatalf("node %d key %s in leaf range: first %v, root is %d", i, key.Short(), got[0], root.Index)
				}
				if len(got) > num {
					t.Fatalf("num %d, got %d", num, len(got))
				}
				// Brute force: every live node this node knows (in the
				// leaf set only, if safe) that makes progress, best first.
				var pool []id.ID
				for _, x := range o.nw.Live() {
					if x == next.ID || x == n.Self().ID || !progress(x) {
						continue
					}
					if st.Leaves.Contains(x) || !safe && st.Knows(x) {
						pool = append(pool, x)
					}
				}
				slices.SortFunc(pool, func(a, c id.ID) int {
					if better(a, c) {
						return -1
					}
					return 1
				})
				want := append([]id.ID{next.ID}, pool...)
				want = want[:min(num, len(want))]
				if g := handleIDs(got); !slices.Equal(g, want) {
					t.Fatalf("node %d key %s num %d safe %v:\n got %v\nwant %v", i, key.Short(), num, safe, g, want)
				}
			}
		}
	}
}
