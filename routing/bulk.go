package routing

import (
	"slices"

	"github.com/pastrynet/pastry/id"
)

// Bulk admission. A joining node receives a hundred handles at once; offered
// one by one, each would copy a row, the leaf set and the neighbourhood set
// (about 340 KB of garbage per join, which dominated the simulator's profile
// at 10,000 nodes). These methods give the same result as offering the
// entries one at a time, in order, but publish each structure, and each
// touched row, once.

// ConsiderAll offers every entry to the table; each changed row is copied
// and published once. It reports how many slots changed. Writer only.
func (t *RoutingTable) ConsiderAll(es []Entry) int {
	var rows map[int][]slot
	changed := 0
	for _, e := range es {
		r, c, ok := t.Position(e.ID)
		if !ok {
			continue
		}
		row := rows[r]
		if row == nil {
			row = t.row(r)
		}
		var cur slot
		if row != nil {
			cur = row[c]
		}
		switch {
		case cur.ok && cur.ID == e.ID:
			if cur.entry() == e {
				continue
			}
		case !t.better(e, &cur, r, c):
			continue
		}
		if rows == nil {
			rows = map[int][]slot{}
		}
		if rows[r] == nil { // first change to this row: take a private copy
			nr := t.rc.newRow(t.b)
			copy(nr, row)
			rows[r] = nr
		}
		if !cur.ok {
			t.size++
		}
		s := filled(e)
		if cur.ok && cur.ID == e.ID {
			s.alive = cur.alive
		}
		rows[r][c] = s
		changed++
	}
	for r, row := range rows {
		t.publish(r, row)
	}
	return changed
}

// ConsiderAll offers every entry to the neighbourhood set and publishes
// once. Entries of unknown proximity are not admitted. Writer only.
func (s *NeighborhoodSet) ConsiderAll(es []Entry) bool {
	if s.max == 0 {
		return false
	}
	cur := *s.snap.Load()
	var out []Entry
	var box *[]Entry
	for _, e := range es {
		if e.ID == s.self || e.Prox == UnknownProximity {
			continue
		}
		base := cur
		if out != nil {
			base = out
		}
		if len(base) == s.max && e.Prox >= base[len(base)-1].Prox && !containsEntry(base, e.ID) {
			continue
		}
		if out == nil {
			if box = s.rc.newNb(s.max); box != nil {
				out = append((*box)[:0], cur...)
			} else {
				out = append(make([]Entry, 0, s.max), cur...)
			}
		}
		if i := slices.IndexFunc(out, func(x Entry) bool { return x.ID == e.ID }); i >= 0 {
			if out[i] == e {
				continue
			}
			out = slices.Delete(out, i, i+1)
		}
		pos, _ := slices.BinarySearchFunc(out, e.Prox, func(x Entry, p uint32) int {
			if x.Prox <= p { // equal proximity: the incumbent stays first
				return -1
			}
			return 1
		})
		// A full set loses its farthest member first, so that out never
		// outgrows its M entries of room: e is closer than it (the
		// refusal above), so it is what the insertion would push out.
		if len(out) == s.max {
			out = out[:s.max-1]
		}
		out = slices.Insert(out, pos, e)
	}
	if out == nil || slices.Equal(out, cur) {
		s.rc.unused(box)
		return false
	}
	s.store(box, out)
	return true
}

// ConsiderAll offers every entry to the leaf set and publishes once. It
// returns the entries that became members and the former members pushed
// out. Writer only.
func (s *LeafSet) ConsiderAll(es []Entry) (added, evicted []Entry) {
	p := s.snap.Load()
	// Private copies, edited in place, with room for one overflow entry.
	left := append(make([]Entry, 0, s.half+1), p.left...)
	right := append(make([]Entry, 0, s.half+1), p.right...)
	changed := false
	for _, e := range es {
		if e.ID == s.self.ID {
			continue
		}
		var ch bool
		if right, ch = s.insertInPlace(right, e, true); ch {
			changed = true
		}
		if left, ch = s.insertInPlace(left, e, false); ch {
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	in := func(x id.ID, sides ...[]Entry) bool {
		for _, side := range sides {
			if containsEntry(side, x) {
				return true
			}
		}
		return false
	}
	for _, side := range [][]Entry{right, left} {
		for _, e := range side {
			if !in(e.ID, p.left, p.right) && !containsEntry(added, e.ID) {
				added = append(added, e)
			}
		}
	}
	for _, side := range [][]Entry{p.right, p.left} {
		for _, e := range side {
			if !in(e.ID, left, right) && !containsEntry(evicted, e.ID) {
				evicted = append(evicted, e)
			}
		}
	}
	s.publish(left, right)
	return added, evicted
}

// ConsiderAll offers every entry to all three structures. Writer only.
func (s *State) ConsiderAll(es []Entry) (leafAdded, leafEvicted []Entry) {
	s.Table.ConsiderAll(es)
	s.Neighbors.ConsiderAll(es)
	return s.Leaves.ConsiderAll(es)
}

// insertInPlace is insert on a private slice with capacity half+1.
func (s *LeafSet) insertInPlace(side []Entry, e Entry, cw bool) ([]Entry, bool) {
	d := s.dist(e.ID, cw)
	pos := len(side)
	for i, x := range side {
		if x.ID == e.ID {
			if x == e {
				return side, false
			}
			side[i] = e
			return side, true
		}
		if pos == len(side) && d.Less(s.dist(x.ID, cw)) {
			pos = i
		}
	}
	if pos == s.half {
		return side, false
	}
	side = slices.Insert(side, pos, e)
	if len(side) > s.half {
		side = side[:s.half]
	}
	return side, true
}

// Preview returns the entries of es that would be on a side they are not
// on now if all of es were offered (as ConsiderAll would leave it), without
// changing anything. The core probes only these second-hand candidates. Writer only.
func (s *LeafSet) Preview(es []Entry) []Entry {
	p := s.snap.Load()
	// Scratch copies of the sides, on the stack for the usual L <= 32
	// (this runs for every heartbeat and leaf set received).
	var lb, rb [17]Entry
	left, right := lb[:0], rb[:0]
	if s.half+1 > len(lb) {
		left, right = make([]Entry, 0, s.half+1), make([]Entry, 0, s.half+1)
	}
	left, right = append(left, p.left...), append(right, p.right...)
	for _, e := range es {
		if e.ID != s.self.ID {
			right, _ = s.insertInPlace(right, e, true)
			left, _ = s.insertInPlace(left, e, false)
		}
	}
	var out []Entry
	for _, e := range es {
		newL := containsEntry(left, e.ID) && !containsEntry(p.left, e.ID)
		newR := containsEntry(right, e.ID) && !containsEntry(p.right, e.ID)
		if (newL || newR) && !containsEntry(out, e.ID) {
			out = append(out, e)
		}
	}
	return out
}
