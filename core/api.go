package core

import (
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// The rest of the Common API (Dabek et al. 2003). Like routing state, these
// read lock-free snapshots and may be called from any goroutine.

// ReplicaSet returns up to k nodes (this one included) from the leaf set,
// closest to key first: the nodes that should hold replicas of key when
// k <= L/2+1 and this node is key's root or near it.
func (n *Machine) ReplicaSet(key id.ID, k int) []id.Handle { return n.state.ReplicaSet(key, k) }

// Range returns the key range [lo, hi] for which h is among the rank+1
// closest nodes, as far as this node's leaf set shows; ok is false when it
// cannot tell.
func (n *Machine) Range(h id.Handle, rank int) (lo, hi id.ID, ok bool) {
	return n.state.Range(h.ID, rank)
}

// NeighborSet returns up to num leaf-set members, nearest in id space first
// (alternating sides).
func (n *Machine) NeighborSet(num int) []id.Handle {
	l, r := n.state.Leaves.Left(), n.state.Leaves.Right()
	out := make([]id.Handle, 0, min(num, len(l)+len(r)))
	seen := func(x id.ID) bool {
		for _, h := range out {
			if h.ID == x {
				return true
			}
		}
		return false
	}
	for i := 0; len(out) < num && (i < len(l) || i < len(r)); i++ {
		for _, side := range [][]routing.Entry{r, l} {
			if i < len(side) && len(out) < num && !seen(side[i].ID) {
				out = append(out, side[i].Handle)
			}
		}
	}
	return out
}

// LocalLookup returns up to num nodes that could be the next hop toward
// key, best first: NextHop's choice, then other known nodes that make
// progress (a longer shared prefix, or as long and numerically closer).
// Empty means this node is key's root. safe restricts the answer to
// leaf-set members, whose liveness is actively checked.
func (n *Machine) LocalLookup(key id.ID, num int, safe bool) []id.Handle {
	if num <= 0 {
		return nil
	}
	first, ok := n.state.NextHop(key, nil)
	if !ok {
		return nil
	}
	out := []id.Handle{first}
	b := n.cfg.B
	l := id.SharedPrefixLen(n.self.ID, key, b)
	var cands []routing.Entry
	cands = n.state.Leaves.Members(cands)
	if !safe {
		n.state.Table.ForEach(func(_, _ int, e routing.Entry) bool { cands = append(cands, e); return true })
		cands = append(cands, n.state.Neighbors.Members()...)
	}
	better := func(a, c id.ID) bool { // a ranks before c
		pa, pc := id.SharedPrefixLen(a, key, b), id.SharedPrefixLen(c, key, b)
		return pa > pc || pa == pc && id.Closer(key, a, c)
	}
	var pool []id.Handle
	for _, e := range cands {
		dup := e.ID == first.ID
		for _, h := range pool {
			dup = dup || h.ID == e.ID
		}
		progress := id.SharedPrefixLen(e.ID, key, b) > l || id.SharedPrefixLen(e.ID, key, b) == l && id.Closer(key, e.ID, n.self.ID)
		if !dup && progress {
			pool = append(pool, e.Handle)
		}
	}
	for len(out) < num && len(pool) > 0 {
		bi := 0
		for i := range pool {
			if better(pool[i].ID, pool[bi].ID) {
				bi = i
			}
		}
		out = append(out, pool[bi])
		pool[bi] = pool[len(pool)-1]
		pool = pool[:len(pool)-1]
	}
	return out
}
