package routing

import (
	"encoding/binary"
	"fmt"
	"slices"
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
	rc    *recycler
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
	// buf and mbuf are the arrays the sides and (when the sides overlap)
	// members are slices of, kept for a recycled snapshot (Exclusive).
	buf, mbuf []Entry
}

// reset empties a superseded snapshot for reuse, keeping its arrays.
func (p *leafSnap) reset() {
	clear(p.buf[:cap(p.buf)])
	clear(p.mbuf[:cap(p.mbuf)])
	*p = leafSnap{buf: p.buf[:0], mbuf: p.mbuf[:0], keys: p.keys[:0]}
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
	// Scratch copies of the sides, on the stack for the usual L <= 32:
	// publish copies them into the new snapshot.
	var lb, rb [17]Entry
	left, right := lb[:0], rb[:0]
	if s.half+1 > len(lb) {
		left, right = make([]Entry, 0, s.half+1), make([]Entry, 0, s.half+1)
	}
	right, addR, outR, dropR := s.insert(append(right, p.right...), e, true)
	left, addL, outL, dropL := s.insert(append(left, p.left...), e, false)
	if !addR && !addL {
		return false, nil
	}
	wasMember := s.Contains(e.ID)
	s.publish(left, right)
	if dropR && !s.Contains(outR.ID) {
		evicted = append(evicted, outR)
	}
	if dropL && !s.Contains(outL.ID) && !containsEntry(evicted, outL.ID) {
		evicted = append(evicted, outL)
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

// insert places e by distance in side, a private copy with room for one
// more entry, and returns it, whether it changed, and the entry that fell
// off the end, if one did.
func (s *LeafSet) insert(side []Entry, e Entry, cw bool) ([]Entry, bool, Entry, bool) {
	d := s.dist(e.ID, cw)
	pos := len(side)
	for i, x := range side {
		if x.ID == e.ID {
			if x == e {
				return side, false, Entry{}, false
			}
			side[i] = e
			return side, true, Entry{}, false
		}
		if pos == len(side) && d.Less(s.dist(x.ID, cw)) {
			pos = i
		}
	}
	if pos == s.half {
		return side, false, Entry{}, false
	}
	side = slices.Insert(side, pos, e)
	if len(side) > s.half {
		out := side[s.half]
		return side[:s.half], true, out, true
	}
	return side, true, Entry{}, false
}

// Remove deletes x from both sides and reports whether it was a member.
// Writer only.
func (s *LeafSet) Remove(x id.ID) bool {
	p := s.snap.Load()
	if p.index(x) < 0 {
		return false
	}
	var lb, rb [16]Entry
	left, right := lb[:0], rb[:0]
	if s.half > len(lb) {
		left, right = make([]Entry, 0, s.half), make([]Entry, 0, s.half)
	}
	s.publish(without(left, p.left, x), without(right, p.right, x))
	return true
}

// without appends side but x to dst.
func without(dst, side []Entry, x id.ID) []Entry {
	for _, e := range side {
		if e.ID != x {
			dst = append(dst, e)
		}
	}
	return dst
}

func (s *LeafSet) publish(left, right []Entry) {
	n := len(left) + len(right)
	p := s.rc.newSnap()
	p.whole = true // index scans every key until the members are known
	if c := max(n, 2*s.half); cap(p.keys) < n {
		if s.rc == nil || !s.rc.on {
			c = n
		}
		p.keys = make([]uint64, 0, c)
		p.buf = make([]Entry, 0, c)
	}
	// Both sides in one array, right then left; the distinct members are
	// that array unless a node is on both sides.
	all := append(append(p.buf[:0], right...), left...)
	p.buf = all
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
		p.members, p.keys = p.mbuf[:0], p.keys[:0]
		for _, e := range all {
			if p.index(e.ID) < 0 {
				p.members = append(p.members, e)
				p.keys = append(p.keys, binary.BigEndian.Uint64(e.ID[8:]))
			}
		}
		p.mbuf = p.members
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
	old := s.snap.Swap(p)
	s.gen++
	s.rc.retireSnap(old)
}

// Ring reports whether the set's two sides overlap: walking either way
// round the ring from this node meets the other side's members, so the
// set holds every node of the overlay (a small one). Safe for concurrent
// readers.
func (s *LeafSet) Ring() bool { return s.snap.Load().ring }

// Generation changes whenever the leaf set is published anew. Writer only.
func (s *LeafSet) Generation() uint64 { return s.gen }
