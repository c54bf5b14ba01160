package cluster

import (
	"slices"

	"github.com/pastrynet/pastry/id"
)

// Truth is the ground truth of a set of live nodes: their ids, sorted.
type Truth struct{ ids []id.ID }

// NewTruth returns the truth of the live nodes with these ids.
func NewTruth(ids []id.ID) Truth {
	s := slices.Clone(ids)
	slices.SortFunc(s, func(a, b id.ID) int { return a.Cmp(b) })
	return Truth{s}
}

// Len is the number of live nodes.
func (t Truth) Len() int { return len(t.ids) }

// Root is the key's root: the live node whose id is numerically closest
// to it on the ring (ties as the protocol breaks them, id.Closer).
func (t Truth) Root(key id.ID) id.ID {
	n := len(t.ids)
	if n == 0 {
		return id.ID{}
	}
	// The candidates are the ids on either side of the key.
	at, _ := slices.BinarySearchFunc(t.ids, key, func(a, b id.ID) int { return a.Cmp(b) })
	best := t.ids[at%n]
	if c := t.ids[(at-1+n)%n]; id.Closer(key, c, best) {
		best = c
	}
	return best
}

// LeafSetExact reports whether a node's leaf set (left: smaller ids,
// closest first; right: larger) is the true one for a leaf set of half
// nodes per side.
func (t Truth) LeafSetExact(self id.ID, left, right []id.ID, half int) bool {
	n := len(t.ids)
	at, found := slices.BinarySearchFunc(t.ids, self, func(a, b id.ID) int { return a.Cmp(b) })
	if !found {
		return false
	}
	k := min(half, n-1)
	if len(left) != k || len(right) != k {
		return false
	}
	for j := range k {
		if right[j] != t.ids[(at+1+j)%n] || left[j] != t.ids[(at-1-j+n)%n] {
			return false
		}
	}
	return true
}
