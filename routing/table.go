package routing

import (
	"fmt"
	"sync/atomic"

	"github.com/pastrynet/pastry/core/id"
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
	rows  []atomic.Pointer[[]slot]
	size  int // writer-only count of filled slots
}

// slot is one routing-table cell; ok is false for a hole.
type slot struct {
	Entry
	ok bool
}

// NewRoutingTable returns an empty table for node self with digits of b bits.
func NewRoutingTable(self id.ID, b int) (*RoutingTable, error) {
	if !id.ValidB(b) {
		return nil, fmt.Errorf("routing: digit width b=%d, want 1, 2, 4 or 8", b)
	}
	return &RoutingTable{
		self: self, selfU: self.U128(), b: b, cols: 1 << uint(b),
		rows: make([]atomic.Pointer[[]slot], id.Digits(b)),
	}, nil
}

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
	r := t.rows[row].Load()
	if r == nil {
		return Entry{}, false
	}
	s := &(*r)[col]
	return s.Entry, s.ok
}

// Row appends row r's filled entries to dst and returns it. Safe for
// concurrent readers.
func (t *RoutingTable) Row(r int, dst []Entry) []Entry {
	p := t.rows[r].Load()
	if p == nil {
		return dst
	}
	for i := range *p {
		if s := &(*p)[i]; s.ok {
			dst = append(dst, s.Entry)
		}
	}
	return dst
}

// AppendRowHandles appends the handles of row r's filled entries to dst.
// Safe for concurrent readers.
func (t *RoutingTable) AppendRowHandles(r int, dst []Handle) []Handle {
	p := t.rows[r].Load()
	if p == nil {
		return dst
	}
	for i := range *p {
		if s := &(*p)[i]; s.ok {
			dst = append(dst, s.Handle)
		}
	}
	return dst
}

// RowFill returns how many slots of row r are filled. Safe for concurrent
// readers.
func (t *RoutingTable) RowFill(r int) int {
	p := t.rows[r].Load()
	n := 0
	if p != nil {
		for i := range *p {
			if (*p)[i].ok {
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
		p := t.rows[r].Load()
		if p == nil {
			continue
		}
		for c := range *p {
			if s := &(*p)[c]; s.ok && !fn(r, c, s.Entry) {
				return
			}
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
	r, c, ok := t.Position(x)
	if !ok {
		return Entry{}, false
	}
	p := t.rows[r].Load()
	if p == nil {
		return Entry{}, false
	}
	if s := &(*p)[c]; s.ok && s.ID == x {
		return s.Entry, true
	}
	return Entry{}, false
}

// Consider offers e for its slot. It takes the slot if the slot is empty or
// e is strictly closer by proximity than the occupant; it refreshes the
// occupant's proximity if e is the occupant. It reports whether the table
// changed. Writer only.
func (t *RoutingTable) Consider(e Entry) bool {
	r, c, ok := t.Position(e.ID)
	if !ok {
		return false
	}
	cur, had := t.Get(r, c)
	switch {
	case !had:
	case cur.ID == e.ID:
		if cur.Prox == e.Prox && cur.Addr == e.Addr {
			return false
		}
	case e.Prox >= cur.Prox:
		return false
	}
	t.set(r, c, slot{Entry: e, ok: true})
	if !had {
		t.size++
	}
	return true
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
	old := t.rows[r].Load()
	row := make([]slot, t.cols)
	if old != nil {
		copy(row, *old)
	}
	row[c] = s
	t.rows[r].Store(&row)
}
