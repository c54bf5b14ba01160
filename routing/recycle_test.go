package routing

import (
	"slices"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// snapshotOf is everything a state's readers can see.
type snapshotOf struct {
	left, right, nbs []Entry
	rows             [][]Entry
}

func seeState(s *State) snapshotOf {
	v := snapshotOf{
		left:  slices.Clone(s.Leaves.Left()),
		right: slices.Clone(s.Leaves.Right()),
		nbs:   slices.Clone(s.Neighbors.Members()),
	}
	for r := range s.Table.Rows() {
		v.rows = append(v.rows, s.Table.Row(r, nil))
	}
	return v
}

func sameView(a, b snapshotOf) bool {
	if !slices.Equal(a.left, b.left) || !slices.Equal(a.right, b.right) || !slices.Equal(a.nbs, b.nbs) || len(a.rows) != len(b.rows) {
		return false
	}
	for i := range a.rows {
		if !slices.Equal(a.rows[i], b.rows[i]) {
			return false
		}
	}
	return true
}

// An exclusive state, which reuses superseded snapshots at Quiesce, holds
// after every change what a state that never reuses one holds, through
// the one-by-one and bulk admissions and removals; and a snapshot taken
// before a change is unchanged until Quiesce.
func TestExclusiveStateMatchesShared(t *testing.T) {
	r := rng(7)
	all := ids(r, 400)
	self := id.Handle{ID: all[0], Addr: "self"}
	shared, err := NewState(self, 4, 16, 8)
	if err != nil {
		t.Fatal(err)
	}
	excl, _ := NewState(self, 4, 16, 8)
	excl.Exclusive()
	entry := func(x id.ID) Entry {
		return Entry{Handle: id.Handle{ID: x, Addr: x.Short()}, Prox: uint32(r.IntN(1000))}
	}
	var known []id.ID
	for step := range 3000 {
		var es []Entry
		switch op := r.IntN(10); {
		case op < 6: // one entry to every structure
			e := entry(all[1+r.IntN(len(all)-1)])
			es = []Entry{e}
			for _, s := range []*State{shared, excl} {
				s.Leaves.Consider(e)
				s.Table.Consider(e)
				s.Neighbors.Consider(e)
			}
			known = append(known, e.ID)
		case op < 8: // a bulk admission
			for range 1 + r.IntN(20) {
				es = append(es, entry(all[1+r.IntN(len(all)-1)]))
			}
			shared.ConsiderAll(es)
			excl.ConsiderAll(es)
		case len(known) > 0: // a removal
			x := known[r.IntN(len(known))]
			for _, s := range []*State{shared, excl} {
				s.Leaves.Remove(x)
				s.Table.Remove(x)
				s.Neighbors.Remove(x)
			}
		}
		if !sameView(seeState(shared), seeState(excl)) {
			t.Fatalf("step %d: the exclusive state differs from the shared one", step)
		}
		if cap(excl.Neighbors.Members()) > 8 || cap(shared.Neighbors.Members()) > 8 {
			t.Fatalf("step %d: neighbourhood set of 8 has room for %d", step, cap(shared.Neighbors.Members()))
		}
		// Quiesce after most steps, not all: snapshots superseded over
		// several changes are reused too.
		if r.IntN(3) > 0 {
			excl.Quiesce()
			shared.Quiesce() // a no-op: not exclusive
		}
	}
}

// A snapshot a reader holds is not reused before Quiesce.
func TestExclusiveSnapshotsKeptUntilQuiesce(t *testing.T) {
	r := rng(8)
	all := ids(r, 100)
	s, _ := NewState(id.Handle{ID: all[0]}, 4, 8, 4)
	s.Exclusive()
	for _, x := range all[1:20] {
		e := Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(100))}
		s.Leaves.Consider(e)
		s.Neighbors.Consider(e)
		s.Table.Consider(e)
	}
	s.Quiesce()
	held := seeState(s)
	left, nbs := s.Leaves.Left(), s.Neighbors.Members()
	row0 := s.Table.row(0)
	for _, x := range all[20:] {
		e := Entry{Handle: id.Handle{ID: x}, Prox: uint32(r.IntN(100))}
		s.Leaves.Consider(e)
		s.Neighbors.Consider(e)
		s.Table.Consider(e)
	}
	var rowNow []Entry
	for i := range row0 {
		if row0[i].ok {
			rowNow = append(rowNow, row0[i].entry())
		}
	}
	if !slices.Equal(left, held.left) || !slices.Equal(nbs, held.nbs) || !slices.Equal(rowNow, held.rows[0]) {
		t.Fatal("a snapshot held by a reader changed before Quiesce")
	}
	s.Quiesce()
}
