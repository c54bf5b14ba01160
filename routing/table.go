package routing

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pastrynet/pastry/id"
)

// RoutingTable is Pastry's prefix routing table: row r, column d holds a
// node that shares the first r digits with this node and whose digit r is d.
// Rows are allocated when first filled: a node in a 100,000-node overlay with
// b=4 uses about 5 of its 32 rows.
type RoutingTable struct {
	self  id.ID
	selfU id.U128
	b     int
	cols  int
	// rows[r] points at row r's first slot (a row is cols slots, never
	// changed once published), or is nil while the row is empty. Pointing
	// at the array rather than at a slice header saves a dependent load,
	// a cache miss at simulator scale, on every lookup; for b >= 4 the
	// pointers themselves live in inline, in this struct's allocation.
	rows []atomic.Pointer[slot]
	size int // writer-only count of filled slots
	// constrained makes this a constrained table (NewConstrainedTable):
	// a slot takes the node closest to its point, not the nearest by
	// proximity.
	constrained bool
	gen         uint64 // writer-only: bumped on every publish
	rc          *recycler
	inline      [32]atomic.Pointer[slot]
}

// slot is one routing-table cell; ok is false for a hole. Its entry's
// fields are laid out flat rather than as an embedded Entry, so that ok
// sits in what would be Entry's padding: 48 bytes rather than 56, a row of
// 16 slots 768 bytes rather than 896 (the table is the largest part of a
// simulated node's memory).
type slot struct {
	id.Handle
	Prox uint32
	ok   bool
	// alive is the writer's clock time until which the occupant is taken
	// to be alive without a probe (0: never heard from since it took the
	// slot). Written in place by the writer and never read by readers, who
	// copy only the entry and ok.
	alive time.Duration
}

// entry is the slot's entry.
func (s *slot) entry() Entry { return Entry{Handle: s.Handle, Prox: s.Prox} }

// filled is a slot holding e.
func filled(e Entry) slot { return slot{Handle: e.Handle, Prox: e.Prox, ok: true} }

// NewRoutingTable returns an empty table for node self with digits of b bits.
func NewRoutingTable(self id.ID, b int) (*RoutingTable, error) {
	t := new(RoutingTable)
	return t, t.init(self, b)
}

// NewConstrainedTable returns an empty constrained routing table for node
// self (Castro et al., OSDI 2002, section 4.2): slot (r, d) holds the node
// whose id is numerically closest to the slot's point, self's id with
// digit r replaced by d (Point), whatever its proximity. Which node that
// is does not depend on who offered it, so nodes that feed a table only
// their colluders can take a slot only where a colluder is the closest
// node offered: the share of attackers in a constrained table stays the
// share among the candidates, where a proximity table can be made to
// fill its holes with them.
func NewConstrainedTable(self id.ID, b int) (*RoutingTable, error) {
	t, err := NewRoutingTable(self, b)
	if t != nil {
		t.constrained = true
	}
	return t, err
}

// Constrained reports whether t is a constrained table.
func (t *RoutingTable) Constrained() bool { return t.constrained }

// Point is slot (row, col)'s point in a constrained table: self's id with
// digit row replaced by col.
func (t *RoutingTable) Point(row, col int) id.ID { return t.self.WithDigit(row, t.b, col) }

// better reports whether e should take slot (r, c), held by cur: the slot
// is empty, or e is not its occupant and is strictly better (nearer by
// proximity; in a constrained table, numerically closer to the point).
func (t *RoutingTable) better(e Entry, cur *slot, r, c int) bool {
	switch {
	case !cur.ok:
		return true
	case cur.ID == e.ID:
		return false
	case t.constrained:
		return id.Closer(t.Point(r, c), e.ID, cur.ID)
	}
	return e.Prox < cur.Prox
}

// init sets up an empty table in place (it holds pointers into itself).
func (t *RoutingTable) init(self id.ID, b int) error {
	if !id.ValidB(b) {
		return fmt.Errorf("routing: digit width b=%d, want 1, 2, 4 or 8", b)
	}
	t.self, t.selfU, t.b, t.cols = self, self.U128(), b, 1<<uint(b)
	if n := id.Digits(b); n <= len(t.inline) {
		t.rows = t.inline[:n]
	} else {
		t.rows = make([]atomic.Pointer[slot], n)
	}
	return nil
}

// row returns row r's published slots, or nil. Safe for concurrent readers.
func (t *RoutingTable) row(r int) []slot {
	if p := t.rows[r].Load(); p != nil {
		return unsafe.Slice(p, t.cols)
	}
	return nil
}

// publish makes row (cols slots, not to be changed afterwards) row r.
func (t *RoutingTable) publish(r int, row []slot) {
	old := t.rows[r].Swap(&row[0])
	t.gen++
	t.rc.retireRow(old)
}

// Generation changes whenever a slot changes (not when Alive or
// UpdateAlive record liveness). Writer only.
func (t *RoutingTable) Generation() uint64 { return t.gen }

// B is the digit width in bits.
func (t *RoutingTable) B() int { return t.b }

// Rows is the number of rows (128/b).
func (t *RoutingTable) Rows() int { return len(t.rows) }

// Cols is the number of columns (2^b).
func (t *RoutingTable) Cols() int { return t.cols }

// Size is the number of filled slots. Writer goroutine only.
func (t *RoutingTable) Size() int { return t.size }

// Position returns the row and column a node with this id would occupy;
// ok is false for the node's own id.
func (t *RoutingTable) Position(x id.ID) (row, col int, ok bool) {
	u := x.U128()
	row = t.selfU.SharedPrefixLen(u, t.b)
	if row >= len(t.rows) {
		return 0, 0, false
	}
	return row, u.Digit(row, t.b), true
}

// Get returns the entry at (row, col). Safe for concurrent readers.
func (t *RoutingTable) Get(row, col int) (Entry, bool) {
	r := t.row(row)
	if r == nil {
		return Entry{}, false
	}
	s := &r[col]
	return s.entry(), s.ok
}

// Row appends row r's filled entries to dst and returns it. Safe for
// concurrent readers.
func (t *RoutingTable) Row(r int, dst []Entry) []Entry {
	return appendRow(t, r, dst, func(s *slot) Entry { return s.entry() })
}

// AppendRowHandles appends the handles of row r's filled entries to dst.
// Safe for concurrent readers.
func (t *RoutingTable) AppendRowHandles(r int, dst []id.Handle) []id.Handle {
	return appendRow(t, r, dst, func(s *slot) id.Handle { return s.Handle })
}

func appendRow[T any](t *RoutingTable, r int, dst []T, get func(*slot) T) []T {
	row := t.row(r)
	for i := range row {
		if row[i].ok {
			dst = append(dst, get(&row[i]))
		}
	}
	return dst
}

// RowFill returns how many slots of row r are filled. Safe for concurrent
// readers.
func (t *RoutingTable) RowFill(r int) int {
	p := t.row(r)
	n := 0
	if p != nil {
		for i := range p {
			if p[i].ok {
				n++
			}
		}
	}
	return n
}

// ForEach calls fn for every filled slot, row by row. Safe for concurrent
// readers; stops early when fn returns false.
func (t *RoutingTable) ForEach(fn func(row, col int, e Entry) bool) {
	for r := range t.rows {
		p := t.row(r)
		if p == nil {
			continue
		}
		for c := range p {
			if s := &p[c]; s.ok && !fn(r, c, s.entry()) {
				return
			}
		}
	}
}

// ForEachIn is ForEach over the slots whose block of ids (the ids that
// would take the slot) meets the clockwise arc from lo to hi, both
// included: the others are skipped without being read. A node's table
// spans several kilobytes of memory, and the leaf set's range, which
// recheckLeaves looks for entries in on every heartbeat, meets only a few
// slots of it. Safe for concurrent readers; stops early when fn returns
// false.
func (t *RoutingTable) ForEachIn(lo, hi id.U128, fn func(row, col int, e Entry) bool) {
	one := id.U128{Lo: 1}
	for r := range t.rows {
		p := t.row(r)
		if p == nil {
			continue
		}
		w := id.Bits - t.b*(r+1) // a slot's block is 2^w ids wide
		width := id.Pow2(w)
		start := t.selfU.Sub(t.selfU.Low(w + t.b)) // column 0's block: self's first r digits, then zeros
		for c := range p {
			end := start.Add(width).Sub(one)
			if id.Between(lo, start, hi) || id.Between(start, lo, end) {
				if s := &p[c]; s.ok && !fn(r, c, s.entry()) {
					return
				}
			}
			start = start.Add(width)
		}
	}
}

// Contains reports whether x occupies its slot. Safe for concurrent readers.
func (t *RoutingTable) Contains(x id.ID) bool {
	_, ok := t.Lookup(x)
	return ok
}

// Lookup returns x's entry if x occupies its slot. Safe for concurrent
// readers.
func (t *RoutingTable) Lookup(x id.ID) (Entry, bool) {
	if s := t.find(x); s != nil {
		return s.entry(), true
	}
	return Entry{}, false
}

// find returns the slot x occupies, or nil.
func (t *RoutingTable) find(x id.ID) *slot {
	r, c, ok := t.Position(x)
	if !ok {
		return nil
	}
	if p := t.row(r); p != nil {
		if s := &p[c]; s.ok && s.ID == x {
			return s
		}
	}
	return nil
}

// Wants reports whether Consider(e) would take e into its slot: the slot
// is empty, or e is not its occupant and is strictly closer by proximity.
func (t *RoutingTable) Wants(e Entry) bool {
	r, c, ok := t.Position(e.ID)
	if !ok {
		return false
	}
	var cur slot
	if row := t.row(r); row != nil {
		cur = row[c]
	}
	return t.better(e, &cur, r, c)
}

// Consider offers e for its slot. It takes the slot if the slot is empty or
// e is strictly better than the occupant (closer by proximity; in a
// constrained table, numerically closer to the slot's point); it
// refreshes the occupant's proximity if e is the occupant. It reports
// whether the table changed. Writer only.
func (t *RoutingTable) Consider(e Entry) bool {
	r, c, ok := t.Position(e.ID)
	if !ok {
		return false
	}
	var cur slot
	if row := t.row(r); row != nil {
		cur = row[c]
	}
	had := cur.ok
	switch {
	case had && cur.ID == e.ID:
		if cur.Prox == e.Prox && cur.Addr == e.Addr {
			return false
		}
	case !t.better(e, &cur, r, c):
		return false
	}
	s := filled(e)
	if had && cur.ID == e.ID {
		s.alive = cur.alive
	}
	t.set(r, c, s)
	if !had {
		t.size++
	}
	return true
}

// Alive records that x, if it holds its slot, is taken to be alive until
// at least until (first-hand evidence: see slot.alive), and returns its
// entry. Writer only.
func (t *RoutingTable) Alive(x id.ID, until time.Duration) (Entry, bool) {
	if s := t.find(x); s != nil {
		s.alive = max(s.alive, until)
		return s.entry(), true
	}
	return Entry{}, false
}

// UpdateAlive calls fn for every filled slot with the time its entry is
// taken to be alive until (see Alive; 0 if never heard from) and stores
// what fn returns in its place. Writer only; fn must not change the table.
func (t *RoutingTable) UpdateAlive(fn func(e Entry, until time.Duration) time.Duration) {
	for r := range t.rows {
		row := t.row(r)
		for c := range row {
			if s := &row[c]; s.ok {
				s.alive = fn(s.entry(), s.alive)
			}
		}
	}
}

// Remove empties x's slot if x holds it, and reports whether it did.
// Writer only.
func (t *RoutingTable) Remove(x id.ID) bool {
	r, c, ok := t.Position(x)
	if !ok {
		return false
	}
	cur, had := t.Get(r, c)
	if !had || cur.ID != x {
		return false
	}
	t.set(r, c, slot{})
	t.size--
	return true
}

// set copies row r with slot c replaced and publishes the copy.
func (t *RoutingTable) set(r, c int, s slot) {
	row := t.rc.newRow(t.b)
	copy(row, t.row(r))
	row[c] = s
	t.publish(r, row)
}

func unsafeRow(p *slot, n int) []slot { return unsafe.Slice(p, n) }
