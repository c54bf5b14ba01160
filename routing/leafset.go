package routing

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/pastrynet/pastry/id"
)

// LeafSet holds the L/2 nodes numerically closest to this node on each side
// of the ring: Left (smaller ids, counter-clockwise) and Right (larger ids,
// clockwise), each sorted closest first. In an overlay of fewer than L+1
// nodes the two halves overlap: a node can be on both sides.
type LeafSet struct {
	self  id.Handle
	selfU id.U128
	half  int
	snap  atomic.Pointer[leafSnap]
	gen   uint64 // writer-only: bumped on every publish
}

// leafSnap is an immutable leaf set.
type leafSnap struct {
	left, right []Entry
	// members holds every distinct node, for the routing scan: right then
	// left. Unless the sides overlap (an overlay of L nodes or fewer) it
	// is the one array both sides are slices of, so that a leaf set holds
	// its entries once rather than twice (16 entries, 640 bytes, a node
	// with L = 16).
	members []Entry
	// keys[i] is the low 64 bits of members[i]'s id. Membership tests
	// (every message received makes a few) scan these, one or two cache
	// lines, rather than the members, about ten; a match is checked
	// against the whole id.
	keys []uint64
	// whole is true when the set covers the ring (a side is short, or the
	// sides overlap): every key is then in range.
	whole bool
	// ring is true when the sides overlap: the set holds every node of
	// the overlay (a short side alone may be a leaf not yet replaced).
	ring   bool
	lo, hi id.U128 // farthest left and right ids, when !whole
	// spacing is the mean gap between adjacent ids in the set's range
	// (its span over L), when !whole: an estimate of the overlay's
	// density near this node.
	spacing id.U128
	// rightFull and leftFull: the side holds L/2 nodes; rightReach and
	// leftReach are then the distance to its farthest (for Wants).
	rightFull, leftFull   bool
	rightReach, leftReach id.U128
}

// NewLeafSet returns an empty leaf set of size l (l/2 each side) for self.
func NewLeafSet(self id.Handle, l int) (*LeafSet, error) {
	s := new(LeafSet)
	return s, s.init(self, l)
}

func (s *LeafSet) init(self id.Handle, l int) error {
	if l < 2 || l%2 != 0 || l > 256 {
		return fmt.Errorf("routing: leaf set size %d, want an even number from 2 to 256", l)
	}
	s.self, s.selfU, s.half = self, self.ID.U128(), l/2
	s.publish(nil, nil)
	return nil
}

// Half is L/2, the capacity of each side.
func (s *LeafSet) Half() int { return s.half }

// Left returns the counter-clockwise side, closest first. Shared; read only.
func (s *LeafSet) Left() []Entry { return s.snap.Load().left }

// Right returns the clockwise side, closest first. Shared; read only.
func (s *LeafSet) Right() []Entry { return s.snap.Load().right }

// Len is the number of distinct members.
func (s *LeafSet) Len() int { return len(s.snap.Load().members) }

// Members appends every distinct member to dst.
func (s *LeafSet) Members(dst []Entry) []Entry {
	return append(dst, s.snap.Load().members...)
}

// AppendHandles appends every distinct member's handle to dst.
func (s *LeafSet) AppendHandles(dst []id.Handle) []id.Handle {
	ms := s.snap.Load().members
	for i := range ms {
		dst = append(dst, ms[i].Handle)
	}
	return dst
}

// Contains reports whether x is a member.
func (s *LeafSet) Contains(x id.ID) bool {
	return s.snap.Load().index(x) >= 0
}

// Lookup returns x's entry if x is a member.
func (s *LeafSet) Lookup(x id.ID) (Entry, bool) {
	p := s.snap.Load()
	if i := p.index(x); i >= 0 {
		return p.members[i], true
	}
	return Entry{}, false
}

// index returns x's position in members, or -1.
func (p *leafSnap) index(x id.ID) int {
	// Every member of a set that does not cover the ring lies on the arc
	// from its farthest left to its farthest right member: most nodes
	// asked about (routing-table entries, senders) are refused here,
	// from the snapshot's own fields.
	if !p.whole && !id.Between(p.lo, x.U128(), p.hi) {
		return -1
	}
	k := binary.BigEndian.Uint64(x[8:])
	for i, v := range p.keys {
		if v == k && p.members[i].ID == x {
			return i
		}
	}
	return -1
}

// Complete reports whether both sides are full. A node whose leaf set is not
// complete believes the overlay has fewer than L+1 nodes.
func (s *LeafSet) Complete() bool {
	p := s.snap.Load()
	return len(p.left) == s.half && len(p.right) == s.half
}

// Covers reports whether key lies within the leaf set's range: between the
// farthest left and farthest right members, or anywhere if the set covers
// the ring.
func (s *LeafSet) Covers(key id.ID) bool {
	p := s.snap.Load()
	return p.whole || id.Between(p.lo, key.U128(), p.hi)
}

// Spacing is the mean gap between adjacent ids within the leaf set's range
// (its span over L): an estimate of the overlay's density here. Zero when
// the set covers the ring.
func (s *LeafSet) Spacing() id.U128 { return s.snap.Load().spacing }

// Wants reports whether offering x would change the set: x is not self
// and, on some side it is not already on, it is closer than the farthest
// node (or that side has room). In an overlay of fewer than L+1 nodes a
// member belongs on both sides, so a member can be wanted too.
func (s *LeafSet) Wants(x id.ID) bool {
	if x == s.self.ID {
		return false
	}
	p := s.snap.Load()
	u := x.U128()
	// Where x would fit, from the snapshot's own fields (no load of the
	// sides' entries); membership only matters where it fits, and is
	// looked up only then.
	fr := !p.rightFull || u.Sub(s.selfU).Less(p.rightReach)
	fl := !p.leftFull || s.selfU.Sub(u).Less(p.leftReach)
	if !fr && !fl {
		return false
	}
	if p.index(x) < 0 { // on neither side
		return true
	}
	return fr && !containsEntry(p.right, x) || fl && !containsEntry(p.left, x)
}

func (s *LeafSet) dist(x id.ID, cw bool) id.U128 {
	if cw {
		return x.U128().Sub(s.selfU)
	}
	return s.selfU.Sub(x.U128())
}

// Consider offers e to the set. It reports whether e was added (to either
// side) and, if the set was full, the nodes pushed out of it entirely.
// Offering a member refreshes its entry. Writer only.
func (s *LeafSet) Consider(e Entry) (added bool, evicted []Entry) {
	if e.ID == s.self.ID {
		return false, nil
	}
	p := s.snap.Load()
	right, addR, outR := s.insert(p.right, e, true)
	left, addL, outL := s.insert(p.left, e, false)
	if !addR && !addL {
		return false, nil
	}
	wasMember := s.Contains(e.ID)
	s.publish(left, right)
	for _, o := range []*Entry{outR, outL} {
		if o != nil && !s.Contains(o.ID) && !containsEntry(evicted, o.ID) {
			evicted = append(evicted, *o)
		}
	}
	return !wasMember, evicted
}

func containsEntry(es []Entry, x id.ID) bool {
	for _, e := range es {
		if e.ID == x {
			return true
		}
	}
	return false
}

// insert returns side with e placed by distance, whether side changed, and
// the entry that fell off the end, if any.
func (s *LeafSet) insert(side []Entry, e Entry, cw bool) ([]Entry, bool, *Entry) {
	d := s.dist(e.ID, cw)
	pos := len(side)
	for i, x := range side {
		if x.ID == e.ID {
			if x == e {
				return side, false, nil
			}
			out := append([]Entry(nil), side...)
			out[i] = e
			return out, true, nil
		}
		if pos == len(side) && d.Less(s.dist(x.ID, cw)) {
			pos = i
		}
	}
	if pos == s.half {
		return side, false, nil
	}
	out := make([]Entry, 0, min(len(side)+1, s.half))
	out = append(out, side[:pos]...)
	out = append(out, e)
	out = append(out, side[pos:]...)
	var dropped *Entry
	if len(out) > s.half {
		d := out[s.half]
		dropped = &d
		out = out[:s.half]
	}
	return out, true, dropped
}

// Remove deletes x from both sides and reports whether it was a member.
// Writer only.
func (s *LeafSet) Remove(x id.ID) bool {
	p := s.snap.Load()
	left, l := without(p.left, x)
	right, r := without(p.right, x)
	if !l && !r {
		return false
	}
	s.publish(left, right)
	return true
}

func without(side []Entry, x id.ID) ([]Entry, bool) {
	for i, e := range side {
		if e.ID == x {
			out := make([]Entry, 0, len(side)-1)
			out = append(out, side[:i]...)
			return append(out, side[i+1:]...), true
		}
	}
	return side, false
}

func (s *LeafSet) publish(left, right []Entry) {
	n := len(left) + len(right)
	p := &leafSnap{keys: make([]uint64, 0, n), whole: true} // whole (index scans every key) until the members are known
	// Both sides in one array, right then left; the distinct members are
	// that array unless a node is on both sides.
	all := make([]Entry, 0, n)
	all = append(append(all, right...), left...)
	p.right, p.left = all[:len(right):len(right)], all[len(right):]
	overlap := false
	for i := range all {
		if p.index(all[i].ID) >= 0 {
			overlap = true
			break
		}
		p.members = all[:i+1]
		p.keys = append(p.keys, binary.BigEndian.Uint64(all[i].ID[8:]))
	}
	if overlap {
		p.members, p.keys = nil, p.keys[:0]
		for _, e := range all {
			if p.index(e.ID) < 0 {
				p.members = append(p.members, e)
				p.keys = append(p.keys, binary.BigEndian.Uint64(e.ID[8:]))
			}
		}
	}
	if p.members == nil {
		p.members = all[:0]
	}
	if p.rightFull = len(right) >= s.half; p.rightFull {
		p.rightReach = s.dist(right[len(right)-1].ID, true)
	}
	if p.leftFull = len(left) >= s.half; p.leftFull {
		p.leftReach = s.dist(left[len(left)-1].ID, false)
	}
	p.whole = overlap || len(left) < s.half || len(right) < s.half
	p.ring = overlap
	if !p.whole {
		p.lo = left[len(left)-1].ID.U128()
		p.hi = right[len(right)-1].ID.U128()
		p.spacing = p.hi.Sub(p.lo).Div(uint64(len(left) + len(right)))
	}
	s.snap.Store(p)
	s.gen++
}

// Ring reports whether the set's two sides overlap: walking either way
// round the ring from this node meets the other side's members, so the
// set holds every node of the overlay (a small one). Safe for concurrent
// readers.
func (s *LeafSet) Ring() bool { return s.snap.Load().ring }

// Generation changes whenever the leaf set is published anew. Writer only.
func (s *LeafSet) Generation() uint64 { return s.gen }
