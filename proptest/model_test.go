package proptest

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// The models in this file are deliberately plain: ids are bit strings for
// digits and math/big integers for the ring, so that they share no
// arithmetic with id (U128, Digit, SharedPrefixLen, Closer). Speed does
// not matter here; obviousness does.

// ringSize is 2^128, the size of the id ring.
var ringSize = new(big.Int).Lsh(big.NewInt(1), id.Bits)

// plainID is an id as the models see it.
type plainID struct {
	id   id.ID
	bits string   // 128 characters '0'/'1', most significant first
	n    *big.Int // the id as a number in [0, 2^128)
}

func plain(x id.ID) plainID {
	var sb strings.Builder
	for _, by := range x {
		fmt.Fprintf(&sb, "%08b", by)
	}
	return plainID{id: x, bits: sb.String(), n: new(big.Int).SetBytes(x[:])}
}

func plainAll(xs []id.ID) []plainID {
	out := make([]plainID, len(xs))
	for i, x := range xs {
		out[i] = plain(x)
	}
	return out
}

func idsOf(ps []plainID) []id.ID {
	out := make([]id.ID, len(ps))
	for i, p := range ps {
		out[i] = p.id
	}
	return out
}

// digit is digit i of x in base 2^b: bits i*b to (i+1)*b-1, read in binary.
func (x plainID) digit(i, b int) int {
	v, err := strconv.ParseUint(x.bits[i*b:(i+1)*b], 2, 64)
	if err != nil {
		panic(err)
	}
	return int(v)
}

// prefixLen counts the leading base-2^b digits x and y share.
func prefixLen(x, y plainID, b int) int {
	n := 0
	for n < id.Bits/b && x.bits[n*b:(n+1)*b] == y.bits[n*b:(n+1)*b] {
		n++
	}
	return n
}

// clockwise is the distance from a to b going clockwise (increasing ids,
// wrapping at 2^128): (b - a) mod 2^128.
func clockwise(a, b plainID) *big.Int {
	d := new(big.Int).Sub(b.n, a.n)
	return d.Mod(d, ringSize) // Mod is Euclidean: never negative
}

// ringDistance is the shorter way round between a and b.
func ringDistance(a, b plainID) *big.Int {
	d1, d2 := clockwise(a, b), clockwise(b, a)
	if d1.Cmp(d2) <= 0 {
		return d1
	}
	return d2
}

// closer reports whether a is numerically closer to key than c; at equal
// distance (one on each side of key) the smaller id is closer, as the
// design fixes the tie-break.
func closer(key, a, c plainID) bool {
	switch ringDistance(key, a).Cmp(ringDistance(key, c)) {
	case -1:
		return true
	case 1:
		return false
	}
	return a.n.Cmp(c.n) < 0
}

// closestSide returns the half ids of others nearest to self going
// clockwise (or counter-clockwise), nearest first. self is not in others.
func closestSide(self plainID, others []plainID, half int, cw bool) []plainID {
	sorted := slices.Clone(others)
	dist := func(x plainID) *big.Int {
		if cw {
			return clockwise(self, x)
		}
		return clockwise(x, self)
	}
	slices.SortFunc(sorted, func(a, b plainID) int { return dist(a).Cmp(dist(b)) })
	return sorted[:min(half, len(sorted))]
}

// modelState is one node's routing state written out plainly.
type modelState struct {
	self        plainID
	b, l        int
	left, right []plainID // leaf set sides, nearest first
	table       map[[2]int]plainID
	neighbors   []plainID
}

// leafMembers lists the distinct leaf-set members.
func (m *modelState) leafMembers() []plainID {
	var out []plainID
	for _, x := range append(slices.Clone(m.left), m.right...) {
		if !slices.ContainsFunc(out, func(y plainID) bool { return y.id == x.id }) {
			out = append(out, x)
		}
	}
	return out
}

// coversAll reports whether the leaf set stands for the whole ring: it
// holds fewer than L distinct nodes, so (absent failures) every node this
// node knows of is in it and the root of any key is among them and self.
func (m *modelState) coversAll() bool { return len(m.leafMembers()) < m.l }

// inLeafRange is the paper's range check L_{-|L|/2} <= D <= L_{|L|/2}: key
// lies on the clockwise arc from the farthest left leaf to the farthest
// right leaf, both ends included.
func (m *modelState) inLeafRange(key plainID) bool {
	if m.coversAll() {
		return true
	}
	lo, hi := m.left[len(m.left)-1], m.right[len(m.right)-1]
	return clockwise(lo, key).Cmp(clockwise(lo, hi)) <= 0
}

// nextHop is the routing procedure of Rowstron & Druschel 2001 (Table 1),
// read directly. It returns the node to forward to and true, or self and
// false when the message is to be delivered here. Nodes skip reports are
// treated as absent.
func (m *modelState) nextHop(key id.ID, skip func(id.ID) bool) (id.ID, bool) {
	d := plain(key)
	usable := func(x plainID) bool { return skip == nil || !skip(x.id) }

	// (1) D within the leaf set's range: forward to the leaf (or self)
	// numerically closest to D.
	if m.inLeafRange(d) {
		best := m.self
		for _, x := range m.leafMembers() {
			if usable(x) && closer(d, x, best) {
				best = x
			}
		}
		return best.id, best.id != m.self.id
	}

	// (2) The routing table: l is the length of the prefix D shares with
	// self; R[l][D_l] shares l+1 digits with D.
	l := prefixLen(d, m.self, m.b)
	if x, ok := m.table[[2]int{l, d.digit(l, m.b)}]; ok && usable(x) {
		// Our shortcut (documented at routing.State.NextHop): the table
		// cells either side of R[l][D_l] and the farthest leaf on D's side
		// may replace it if one is numerically closer to D than it and than
		// self, shares at least l digits with D, and lies within the leaf
		// set's mean spacing of D.
		lo, hi := m.left[len(m.left)-1], m.right[len(m.right)-1]
		spacing := new(big.Int).Div(clockwise(lo, hi), big.NewInt(int64(len(m.left)+len(m.right))))
		var cands []plainID
		for _, c := range []int{d.digit(l, m.b) - 1, d.digit(l, m.b) + 1} {
			if y, ok := m.table[[2]int{l, c}]; ok {
				cands = append(cands, y)
			}
		}
		if closer(d, lo, hi) {
			cands = append(cands, lo)
		} else {
			cands = append(cands, hi)
		}
		best := x
		for _, y := range cands {
			if spacing.Sign() > 0 && usable(y) && closer(d, y, best) && closer(d, y, m.self) &&
				prefixLen(y, d, m.b) >= l && ringDistance(y, d).Cmp(spacing) <= 0 {
				best = y
			}
		}
		return best.id, true
	}

	// (3) The rare case: any known node T (leaf set, table, neighbourhood
	// set) sharing at least l digits with D and numerically closer to D
	// than self. Of those, the closest.
	best := m.self
	var known []plainID
	known = append(known, m.leafMembers()...)
	for _, x := range m.table {
		known = append(known, x)
	}
	known = append(known, m.neighbors...)
	for _, x := range known {
		if usable(x) && prefixLen(x, d, m.b) >= l && closer(d, x, best) {
			best = x
		}
	}
	return best.id, best.id != m.self.id
}

// realTable reads a routing table into the model's form, checking the
// row/column prefix invariant on the way: row r, column c holds a node
// sharing exactly r digits with self whose digit r is c.
func realTable(self plainID, t *routing.RoutingTable) (map[[2]int]plainID, error) {
	out := map[[2]int]plainID{}
	var err error
	b := t.B()
	t.ForEach(func(r, c int, e routing.Entry) bool {
		x := plain(e.ID)
		if got := prefixLen(self, x, b); got != r {
			err = fmt.Errorf("table row %d column %d holds %s, which shares %d digits with self %s", r, c, e.ID, got, self.id)
			return false
		}
		if got := x.digit(r, b); got != c {
			err = fmt.Errorf("table row %d column %d holds %s, whose digit %d is %d", r, c, e.ID, r, got)
			return false
		}
		out[[2]int{r, c}] = x
		return true
	})
	return out, err
}

func entryIDs(es []routing.Entry) []id.ID {
	out := make([]id.ID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// shortIDs formats ids compactly for failure messages.
func shortIDs(xs []id.ID) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.Short()
	}
	return "[" + strings.Join(parts, " ") + "]"
}
