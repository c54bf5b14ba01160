package routing

import (
	"fmt"

	"github.com/pastrynet/pastry/id"
)

// State is one node's whole routing state.
type State struct {
	Self      id.Handle
	Table     *RoutingTable
	Leaves    *LeafSet
	Neighbors *NeighborhoodSet
	// Constrained is the constrained routing table secure routing uses
	// (NewConstrainedTable), beside the proximity table; nil unless
	// EnableConstrained was called.
	Constrained *RoutingTable
	b           int
	rc          recycler
}

// EnableConstrained gives the state a constrained routing table, filled
// from then on with every entry offered to the proximity table
// (ConsiderTable, Consider) and emptied with it (Remove). Writer only,
// before the state is shared.
func (s *State) EnableConstrained() {
	if s.Constrained == nil {
		s.Constrained, _ = NewConstrainedTable(s.Self.ID, s.b)
		s.Constrained.rc = &s.rc
	}
}

// ConsiderTable offers e to the routing table and, if there is one, to
// the constrained table, and reports whether either changed. Writer only.
func (s *State) ConsiderTable(e Entry) bool {
	changed := s.Table.Consider(e)
	if s.Constrained != nil && s.Constrained.Consider(e) {
		changed = true
	}
	return changed
}

// ConsiderTableAll offers es to the routing table and the constrained
// table, publishing each changed row once. Writer only.
func (s *State) ConsiderTableAll(es []Entry) {
	s.Table.ConsiderAll(es)
	if s.Constrained != nil {
		s.Constrained.ConsiderAll(es)
	}
}

// WantsTable reports whether the routing table or the constrained table
// would take e. Writer only.
func (s *State) WantsTable(e Entry) bool {
	return s.Table.Wants(e) || s.Constrained != nil && s.Constrained.Wants(e)
}

// Mode picks the table a next hop is chosen from (NextHopIn).
type Mode uint8

const (
	// ModeProximity routes through the proximity routing table and the
	// neighbourhood set: Pastry's routing.
	ModeProximity Mode = iota
	// ModeConstrained routes through the constrained table and the leaf
	// set only (secure routing): no entry chosen by proximity, which an
	// attacker can bias, is used. A state without a constrained table
	// routes as ModeProximity.
	ModeConstrained
)

// NewState returns empty routing state for self: digits of b bits, a leaf
// set of size l and a neighbourhood set of size m. The state and its three
// structures are one allocation: every message a node receives looks at
// all of them, and a simulator's hundred thousand nodes spread them over
// gigabytes, so keeping them on adjacent cache lines saves misses.
func NewState(self id.Handle, b, l, m int) (*State, error) {
	blk := new(struct {
		s State
		t RoutingTable
		l LeafSet
		n NeighborhoodSet
	})
	if err := blk.t.init(self.ID, b); err != nil {
		return nil, err
	}
	if err := blk.l.init(self, l); err != nil {
		return nil, err
	}
	if err := blk.n.init(self.ID, m); err != nil {
		return nil, err
	}
	blk.s = State{Self: self, Table: &blk.t, Leaves: &blk.l, Neighbors: &blk.n, b: b}
	blk.t.rc, blk.l.rc, blk.n.rc = &blk.s.rc, &blk.s.rc, &blk.s.rc
	return &blk.s, nil
}

// B is the digit width.
func (s *State) B() int { return s.b }

// Generation changes whenever a member of the table, the leaf set or the
// neighbourhood set changes (it is the sum of their generations). Writer
// only.
func (s *State) Generation() uint64 {
	g := s.Table.Generation() + s.Leaves.Generation() + s.Neighbors.Generation()
	if s.Constrained != nil {
		g += s.Constrained.Generation()
	}
	return g
}

// Knows reports whether x is anywhere in the state.
func (s *State) Knows(x id.ID) bool {
	return s.Leaves.Contains(x) || s.Table.Contains(x) || s.Neighbors.Contains(x) ||
		s.Constrained != nil && s.Constrained.Contains(x)
}

// ForEachTableNearLeaves calls fn, in ForEach's order, for the routing
// table's entries that may lie within the leaf set's range: every entry
// while the set covers the ring; otherwise those of the slots that meet the
// arc from its farthest left to its farthest right member (ForEachIn). No
// node outside that arc is one the leaf set Wants. Safe for concurrent
// readers; stops early when fn returns false.
func (s *State) ForEachTableNearLeaves(fn func(row, col int, e Entry) bool) {
	ls := s.Leaves.snap.Load()
	if ls.whole {
		s.Table.ForEach(fn)
		return
	}
	s.Table.ForEachIn(ls.lo, ls.hi, fn)
}

// SkipFunc marks nodes that routing must avoid (suspected failed). Nil
// skips nothing.
type SkipFunc func(id.ID) bool

// NextHop is Pastry's routing procedure (Rowstron & Druschel 2001, Table 1).
// It returns the node to forward a message for key to and true, or false
// when this node is the key's root and the message is delivered here.
//
//  1. If key is within the leaf set's range, the numerically closest of the
//     leaf set and this node is the root.
//  2. Otherwise, with l the length of the prefix key shares with this node,
//     forward to routing-table entry (l, digit l of key), if any; except
//     that a neighbouring entry of row l, or the leaf set's last member on
//     the key's side, that is numerically closer to key than that entry,
//     shares at least l digits with key and lies within one mean node
//     spacing of key (the leaf set's span over L) is taken instead: it is
//     probably the key's root. This shortcut (ours, not the paper's) saves
//     the final hop that a proximity-chosen entry in a sparse row would
//     otherwise need, where the root sits just across a digit boundary.
//  3. Otherwise (the rare case) forward to any known node that shares at
//     least l digits with key and is numerically closer to it than this
//     node; this picks the closest such node.
//
// Every step either lengthens the prefix shared with key or keeps it and
// moves numerically closer, until the leaf set's range is reached, so
// routes cannot loop. Nodes for which skip returns true are treated as
// absent. Safe for concurrent readers; it neither locks nor allocates.
// It is NextHopIn with ModeProximity.
func (s *State) NextHop(key id.ID, skip SkipFunc) (id.Handle, bool) {
	return s.nextHop(key, skip, s.Table, false)
}

// NextHopIn is NextHop with the table mode picks: with ModeConstrained,
// steps 2 and 3 use the constrained table instead of the proximity
// table, and step 3 does not look at the neighbourhood set.
func (s *State) NextHopIn(key id.ID, skip SkipFunc, mode Mode) (id.Handle, bool) {
	if mode == ModeConstrained && s.Constrained != nil {
		return s.nextHop(key, skip, s.Constrained, true)
	}
	return s.nextHop(key, skip, s.Table, false)
}

// nextHop is NextHop through table t; secure leaves the neighbourhood
// set out of the rare case.
func (s *State) nextHop(key id.ID, skip SkipFunc, t *RoutingTable, secure bool) (id.Handle, bool) {
	k := key.U128()
	self := s.Self.ID.U128()
	ls := s.Leaves.snap.Load()
	if ls.whole || id.Between(ls.lo, k, ls.hi) {
		best, bestU, found := id.Handle{}, self, false
		for i := range ls.members {
			m := &ls.members[i]
			if u := m.ID.U128(); k.Closer(u, bestU) && (skip == nil || !skip(m.ID)) {
				best, bestU, found = m.Handle, u, true
			}
		}
		return best, found
	}
	l := self.SharedPrefixLen(k, s.b)
	if row := t.row(l); row != nil {
		d := k.Digit(l, s.b)
		if c := &row[d]; c.ok && (skip == nil || !skip(c.ID)) {
			if h, ok := s.nearRoot(k, self, l, d, row, ls, c.ID.U128(), skip); ok {
				return h, true
			}
			return c.Handle, true
		}
	}
	return s.rareCase(k, self, l, ls, skip, t, secure)
}

// nearRoot is step 2's shortcut: among the entries of row l either side of
// column d and the leaf set's last member on k's side, the one numerically
// closest to k, if it is closer than both cu (the entry at column d) and
// this node, shares at least l digits with k, and lies within one mean node
// spacing of k.
func (s *State) nearRoot(k, self id.U128, l, d int, row []slot, ls *leafSnap, cu id.U128, skip SkipFunc) (id.Handle, bool) {
	sp := ls.spacing
	if sp.IsZero() {
		return id.Handle{}, false
	}
	// Most keys are nowhere near a candidate: the neighbouring columns'
	// entries are at least as far from k as the edges of k's column, and
	// the leaf set's ends are farther than its spacing.
	w := id.Bits - s.b*(l+1) // k's column is 2^w ids wide
	off := k.Low(w)
	if sp.Less(off) && sp.Less(id.Pow2(w).Sub(off)) && sp.Less(k.Sub(ls.hi)) && sp.Less(ls.lo.Sub(k)) {
		return id.Handle{}, false
	}
	// k is outside the leaf set's range: the member nearest to it is the
	// farthest one on its side.
	var cands [3]*id.Handle
	var us [3]id.U128
	n := 0
	if k.Sub(ls.hi).Less(ls.lo.Sub(k)) {
		cands[0], us[0] = &ls.right[len(ls.right)-1].Handle, ls.hi
	} else {
		cands[0], us[0] = &ls.left[len(ls.left)-1].Handle, ls.lo
	}
	n++
	if d > 0 && row[d-1].ok {
		cands[n], us[n] = &row[d-1].Handle, row[d-1].ID.U128()
		n++
	}
	if d+1 < len(row) && row[d+1].ok {
		cands[n], us[n] = &row[d+1].Handle, row[d+1].ID.U128()
		n++
	}
	best, bestU, found := id.Handle{}, cu, false
	for i := range n {
		u := us[i]
		if sp.Less(k.RingDistance(u)) || !k.Closer(u, bestU) || !k.Closer(u, self) ||
			u.SharedPrefixLen(k, s.b) < l || skip != nil && skip(cands[i].ID) {
			continue
		}
		best, bestU, found = *cands[i], u, true
	}
	return best, found
}

// rareCase scans every known node for one with a prefix at least l long that
// is numerically closer to k than this node, and returns the closest.
func (s *State) rareCase(k, self id.U128, l int, ls *leafSnap, skip SkipFunc, t *RoutingTable, secure bool) (id.Handle, bool) {
	best, bestU, found := id.Handle{}, self, false
	consider := func(h *id.Handle) {
		u := h.ID.U128()
		if u.SharedPrefixLen(k, s.b) >= l && k.Closer(u, bestU) && (skip == nil || !skip(h.ID)) {
			best, bestU, found = *h, u, true
		}
	}
	for i := range ls.members {
		consider(&ls.members[i].Handle)
	}
	for r := l; r < len(t.rows); r++ { // rows above l share fewer than l digits with k
		if row := t.row(r); row != nil {
			for c := range row {
				if row[c].ok {
					consider(&row[c].Handle)
				}
			}
		}
	}
	if !secure {
		for _, e := range *s.Neighbors.snap.Load() {
			consider(&e.Handle)
		}
	}
	return best, found
}

// ReplicaSet returns up to k nodes, this one included, from the leaf set,
// ordered by numeric closeness to key (the Common API's replicaSet). It is
// exact when key is within the leaf set's range and k <= L/2+1.
func (s *State) ReplicaSet(key id.ID, k int) []id.Handle {
	if k <= 0 {
		return nil
	}
	cands := append(s.Leaves.Members(make([]Entry, 0, 2*s.Leaves.half+1)), Entry{Handle: s.Self})
	// Selection sort of the k closest: k and the set are small.
	out := make([]id.Handle, 0, min(k, len(cands)))
	for len(out) < cap(out) {
		bi := 0
		for i := 1; i < len(cands); i++ {
			if id.Closer(key, cands[i].ID, cands[bi].ID) {
				bi = i
			}
		}
		out = append(out, cands[bi].Handle)
		cands[bi] = cands[len(cands)-1]
		cands = cands[:len(cands)-1]
	}
	return out
}

// Range returns the arc of keys [lo, hi] (clockwise, both included up to the
// tie-break) for which node x is among the rank+1 numerically closest nodes,
// as far as this node's leaf set can tell (the Common API's range). ok is
// false when x is not self or a leaf, or the leaf set does not reach far
// enough on either side.
func (s *State) Range(x id.ID, rank int) (lo, hi id.ID, ok bool) {
	if rank < 0 {
		return lo, hi, false
	}
	// The ring as this node sees it: left side reversed, self, right side.
	p := s.Leaves.snap.Load()
	if p.whole {
		return s.rangeWhole(x, rank, p)
	}
	ring := make([]id.ID, 0, len(p.left)+len(p.right)+1)
	for i := len(p.left) - 1; i >= 0; i-- {
		ring = append(ring, p.left[i].ID)
	}
	ring = append(ring, s.Self.ID)
	for _, e := range p.right {
		ring = append(ring, e.ID)
	}
	i := indexOf(ring, x)
	if i < 0 || i-rank-1 < 0 || i+rank+1 >= len(ring) {
		return lo, hi, false
	}
	return midpoint(ring[i-rank-1], ring[i]), midpoint(ring[i], ring[i+rank+1]), true
}

// rangeWhole handles an overlay small enough that the leaf set holds every
// node: the ring is the sorted member list.
func (s *State) rangeWhole(x id.ID, rank int, p *leafSnap) (lo, hi id.ID, ok bool) {
	ring := []id.ID{s.Self.ID}
	for _, m := range p.members {
		ring = append(ring, m.ID)
	}
	sortRing(ring, s.Self.ID)
	n := len(ring)
	i := indexOf(ring, x)
	if i < 0 {
		return lo, hi, false
	}
	if rank+1 >= n { // x is among the rank+1 closest to every key
		full := s.Self.ID.U128().Sub(id.U128{Lo: 1}).ID()
		return s.Self.ID, full, true
	}
	prev, next := ring[(i-rank-1+n)%n], ring[(i+rank+1)%n]
	return midpoint(prev, ring[i]), midpoint(ring[i], next), true
}

func indexOf(ring []id.ID, x id.ID) int {
	for i, y := range ring {
		if y == x {
			return i
		}
	}
	return -1
}

// sortRing orders ids clockwise starting at start (insertion sort; small).
func sortRing(ring []id.ID, start id.ID) {
	su := start.U128()
	for i := 1; i < len(ring); i++ {
		for j := i; j > 0 && ring[j].U128().Sub(su).Less(ring[j-1].U128().Sub(su)); j-- {
			ring[j], ring[j-1] = ring[j-1], ring[j]
		}
	}
}

// midpoint is the id halfway clockwise from a to b.
func midpoint(a, b id.ID) id.ID {
	au := a.U128()
	return au.Add(b.U128().Sub(au).Rsh1()).ID()
}

// Consider offers e to all three structures and reports what changed in the
// leaf set (for Update upcalls). Writer only.
func (s *State) Consider(e Entry) (leafAdded bool, leafEvicted []Entry) {
	if e.ID == s.Self.ID {
		return false, nil
	}
	s.ConsiderTable(e)
	s.Neighbors.Consider(e)
	return s.Leaves.Consider(e)
}

// Remove deletes x everywhere and reports whether it was a leaf.
func (s *State) Remove(x id.ID) (wasLeaf bool) {
	s.Table.Remove(x)
	if s.Constrained != nil {
		s.Constrained.Remove(x)
	}
	s.Neighbors.Remove(x)
	return s.Leaves.Remove(x)
}

// String summarises the state, for logs and tests.
func (s *State) String() string {
	return fmt.Sprintf("%s: leaves %d table %d neighbours %d", s.Self, s.Leaves.Len(), s.Table.Size(), len(s.Neighbors.Members()))
}
