package routing

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/pastrynet/pastry/id"
)

// NeighborhoodSet holds the M nodes closest to this node by proximity,
// sorted closest first. Pastry uses it to seed a joining node's routing
// table with nearby nodes and to keep locality when the table is repaired.
type NeighborhoodSet struct {
	self id.ID
	max  int
	snap atomic.Pointer[[]Entry]
	gen  uint64 // writer-only: bumped on every change
	rc   *recycler
}

// NewNeighborhoodSet returns an empty set of capacity m.
func NewNeighborhoodSet(self id.ID, m int) (*NeighborhoodSet, error) {
	s := new(NeighborhoodSet)
	return s, s.init(self, m)
}

func (s *NeighborhoodSet) init(self id.ID, m int) error {
	if m < 0 || m > 1024 {
		return fmt.Errorf("routing: neighbourhood set size %d, want 0 to 1024", m)
	}
	s.self, s.max = self, m
	s.snap.Store(&[]Entry{})
	return nil
}

// Members returns the set, closest first. Shared; read only.
func (s *NeighborhoodSet) Members() []Entry { return *s.snap.Load() }

// Contains reports whether x is a member.
func (s *NeighborhoodSet) Contains(x id.ID) bool {
	for _, e := range *s.snap.Load() {
		if e.ID == x {
			return true
		}
	}
	return false
}

// Consider offers e; nodes of unknown proximity are not admitted. It reports
// whether the set changed. Writer only.
func (s *NeighborhoodSet) Consider(e Entry) bool {
	if e.ID == s.self || e.Prox == UnknownProximity || s.max == 0 {
		return false
	}
	cur := *s.snap.Load()
	// Fast refusals first: this runs for every message a node receives.
	if len(cur) == s.max && e.Prox >= cur[len(cur)-1].Prox && !s.Contains(e.ID) {
		return false
	}
	for _, x := range cur {
		if x == e {
			return false
		}
	}
	// out is built in order and never past M entries (an append past its
	// capacity would copy it, and leave the set with twice its room): the
	// one entry that does not fit, the farthest, is dropped.
	box, out := s.newEntries(min(len(cur)+1, s.max))
	droppedSelf := false
	add := func(y Entry) {
		if len(out) < s.max {
			out = append(out, y)
		} else {
			droppedSelf = y.ID == e.ID
		}
	}
	placed := false
	for _, x := range cur {
		if x.ID == e.ID {
			if x == e {
				s.rc.unused(box)
				return false
			}
			continue // re-placed below by its new proximity
		}
		if !placed && e.Prox < x.Prox {
			add(e)
			placed = true
		}
		add(x)
	}
	if !placed {
		add(e)
	}
	if droppedSelf {
		s.rc.unused(box)
		return false
	}
	s.store(box, out)
	return true
}

// store publishes out as the set. box, when the state recycles, is the
// recycled snapshot out was built in (newNb: room for M entries, which
// out never outgrows); the snapshot replaced is retired.
func (s *NeighborhoodSet) store(box *[]Entry, out []Entry) {
	if box == nil {
		box = &out
	} else {
		*box = out
	}
	old := s.snap.Swap(box)
	s.gen++
	s.rc.retireNb(old)
}

// Generation changes whenever the members change. Writer only.
func (s *NeighborhoodSet) Generation() uint64 { return s.gen }

// Wants reports whether a node x at proximity prox would enter the set:
// it is not a member, its proximity is known, and the set has room or x is
// closer than the farthest member.
func (s *NeighborhoodSet) Wants(x id.ID, prox uint32) bool {
	if x == s.self || prox == UnknownProximity || s.max == 0 {
		return false
	}
	cur := *s.snap.Load()
	// The cheap refusal first: this runs for almost every message received.
	if len(cur) == s.max && prox >= cur[len(cur)-1].Prox {
		return false
	}
	return !s.Contains(x)
}

// Remove deletes x and reports whether it was a member. Writer only.
func (s *NeighborhoodSet) Remove(x id.ID) bool {
	cur := *s.snap.Load()
	i := slices.IndexFunc(cur, func(e Entry) bool { return e.ID == x })
	if i < 0 {
		return false
	}
	box, out := s.newEntries(len(cur) - 1)
	out = append(append(out, cur[:i]...), cur[i+1:]...)
	s.store(box, out)
	return true
}

// newEntries gives an empty slice to build the next snapshot in: a
// reused one of capacity M and its box (exclusive states), else a new one
// of capacity n and a nil box.
func (s *NeighborhoodSet) newEntries(n int) (*[]Entry, []Entry) {
	if box := s.rc.newNb(s.max); box != nil {
		return box, (*box)[:0]
	}
	return nil, make([]Entry, 0, n)
}
