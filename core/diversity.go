package core

import (
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// AddressGrouper is implemented by environments that know where a node's
// address lies, for the admission policy's address diversity
// (Config.MaxPerAddrGroup): AddrGroup returns the address block of h
// (IPv4 /16, IPv6 /32, or any grouping the environment chooses) and
// whether h is limited at all (false: no address known, or one the
// environment exempts, such as loopback). The libp2p runtime reads it
// from the peer's connections and addresses; the simulator's environment
// does not implement it, so simulated runs are unaffected. Called only
// from inside the node's inputs, never concurrently.
type AddressGrouper interface {
	AddrGroup(h id.Handle) (group uint64, ok bool)
}

// The admission policy (see docs/decisions/0070): a node enters the
// routing state only once it has answered (liveness, maintain.go), with a
// handle the transport accepted (identity: the id derives from the key,
// or in certificate mode is the certified one; the puzzle in open mode),
// and, for the routing table and the neighbourhood set, within the
// address diversity bound checked here. The leaf set is exempt: secure
// routing's correctness rests on it holding the numerically closest live
// nodes, whatever their addresses, and the routing failure test checks its
// density; a limit there would let an attacker who shares a block with
// honest nodes push them out, or leave the set inexact.

// grouper returns the environment's AddressGrouper, nil if it has none or
// the policy is off.
func (n *Machine) grouper() AddressGrouper {
	if n.cfg.MaxPerAddrGroup == 0 {
		return nil
	}
	g, _ := n.env.(AddressGrouper)
	return g
}

// tableDiverse reports whether e may take its routing-table slot: its row
// holds fewer than MaxPerAddrGroup entries of e's address block, not
// counting the slot's occupant (which e would replace) or e itself.
func (n *Machine) tableDiverse(g AddressGrouper, e routing.Entry) bool {
	r, c, ok := n.state.Table.Position(e.ID)
	if !ok {
		return true
	}
	grp, limited := g.AddrGroup(e.Handle)
	if !limited {
		return true
	}
	same := 0
	buf := getEntries()
	defer putEntries(buf)
	*buf = n.state.Table.Row(r, (*buf)[:0])
	for _, x := range *buf {
		if x.ID == e.ID {
			return true // already held: a refresh
		}
		if xr, xc, _ := n.state.Table.Position(x.ID); xr == r && xc == c {
			continue
		}
		if xg, ok := g.AddrGroup(x.Handle); ok && xg == grp {
			same++
		}
	}
	return same < n.cfg.MaxPerAddrGroup
}

// neighborsDiverse reports whether e may enter the neighbourhood set: it
// holds fewer than MaxPerAddrGroup members of e's address block.
func (n *Machine) neighborsDiverse(g AddressGrouper, e routing.Entry) bool {
	grp, limited := g.AddrGroup(e.Handle)
	if !limited {
		return true
	}
	same := 0
	for _, x := range n.state.Neighbors.Members() {
		if x.ID == e.ID {
			return true
		}
		if xg, ok := g.AddrGroup(x.Handle); ok && xg == grp {
			same++
		}
	}
	return same < n.cfg.MaxPerAddrGroup
}

// considerDiverse offers e to the routing table and the neighbourhood set
// under the address diversity bound, counting refusals of entries the
// structure would otherwise have taken.
func (n *Machine) considerDiverse(e routing.Entry) {
	if n.state.Constrained != nil {
		// The constrained table is not limited: its slots hold the ids
		// closest to fixed points, which an address bound would bias.
		n.state.Constrained.Consider(e)
	}
	g := n.grouper()
	if g == nil {
		n.state.Table.Consider(e)
		n.state.Neighbors.Consider(e)
		return
	}
	if !n.state.Table.Wants(e) || n.tableDiverse(g, e) {
		n.state.Table.Consider(e)
	} else {
		n.stats.DiversityRejected++
	}
	if !n.state.Neighbors.Wants(e.ID, e.Prox) || n.neighborsDiverse(g, e) {
		n.state.Neighbors.Consider(e)
	} else {
		n.stats.DiversityRejected++
	}
}

// considerAllDiverse is considerDiverse for the tables alone, for entries
// already held elsewhere (repairHole).
func (n *Machine) considerAllDiverse(es []routing.Entry) {
	g := n.grouper()
	limited := false
	for i := 0; g != nil && i < len(es) && !limited; i++ {
		_, limited = g.AddrGroup(es[i].Handle)
	}
	if !limited { // as most simulations: one bulk admission
		n.state.ConsiderTableAll(es)
		return
	}
	if n.state.Constrained != nil {
		n.state.Constrained.ConsiderAll(es)
	}
	for _, e := range es {
		if !n.state.Table.Wants(e) {
			n.state.Table.Consider(e) // a refresh, or nothing
			continue
		}
		if n.tableDiverse(g, e) {
			n.state.Table.Consider(e)
		} else {
			n.stats.DiversityRejected++
		}
	}
}

// tableWants is Table.Wants under the address diversity bound, or the
// constrained table's Wants (not bounded).
func (n *Machine) tableWants(e routing.Entry) bool {
	if n.state.Constrained != nil && n.state.Constrained.Wants(e) {
		return true
	}
	if !n.state.Table.Wants(e) {
		return false
	}
	g := n.grouper()
	return g == nil || n.tableDiverse(g, e)
}

// neighborsWant is Neighbors.Wants under the address diversity bound.
func (n *Machine) neighborsWant(e routing.Entry) bool {
	if !n.state.Neighbors.Wants(e.ID, e.Prox) {
		return false
	}
	g := n.grouper()
	return g == nil || n.neighborsDiverse(g, e)
}
