package routing

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// The benchmark that chose the publication mechanism (see doc.go). The same
// routing-table lookup (prefix length, row, column) is done against three
// ways of sharing the table between one writer and many readers:
//
//   - rowAtomic: one atomic.Pointer per row; a write copies one row (what
//     RoutingTable does);
//   - tableAtomic: one atomic.Pointer to the whole table; a write copies the
//     row and the row index;
//   - rwmutex: rows updated in place under sync.RWMutex.
//
// Each runs with GOMAXPROCS readers, alone and with a writer that replaces an
// entry, then yields, in a loop.

type mechanism interface {
	lookup(k id.U128) (Entry, bool)
	write(row, col int, e Entry)
}

type rowAtomic struct {
	self id.U128
	rows [32]atomic.Pointer[[]slot]
}

func (m *rowAtomic) lookup(k id.U128) (Entry, bool) {
	l := m.self.SharedPrefixLen(k, 4)
	if r := m.rows[l].Load(); r != nil {
		s := &(*r)[k.Digit(l, 4)]
		return s.entry(), s.ok
	}
	return Entry{}, false
}

func (m *rowAtomic) write(row, col int, e Entry) {
	nr := make([]slot, 16)
	if old := m.rows[row].Load(); old != nil {
		copy(nr, *old)
	}
	nr[col] = filled(e)
	m.rows[row].Store(&nr)
}

type tableAtomic struct {
	self id.U128
	t    atomic.Pointer[[32][]slot]
}

func (m *tableAtomic) lookup(k id.U128) (Entry, bool) {
	l := m.self.SharedPrefixLen(k, 4)
	if r := m.t.Load()[l]; r != nil {
		s := &r[k.Digit(l, 4)]
		return s.entry(), s.ok
	}
	return Entry{}, false
}

func (m *tableAtomic) write(row, col int, e Entry) {
	old := m.t.Load()
	nt := *old
	nr := make([]slot, 16)
	copy(nr, old[row])
	nr[col] = filled(e)
	nt[row] = nr
	m.t.Store(&nt)
}

type rwmutex struct {
	self id.U128
	mu   sync.RWMutex
	rows [32][]slot
}

func (m *rwmutex) lookup(k id.U128) (Entry, bool) {
	l := m.self.SharedPrefixLen(k, 4)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.rows[l]; r != nil {
		s := &r[k.Digit(l, 4)]
		return s.entry(), s.ok
	}
	return Entry{}, false
}

func (m *rwmutex) write(row, col int, e Entry) {
	m.mu.Lock()
	if m.rows[row] == nil {
		m.rows[row] = make([]slot, 16)
	}
	m.rows[row][col] = filled(e)
	m.mu.Unlock()
}

func BenchmarkNextHopMechanisms(b *testing.B) {
	s, keys := bench100k()
	ku := make([]id.U128, len(keys))
	for i, k := range keys {
		ku[i] = k.U128()
	}
	type cell struct {
		row, col int
		e        Entry
	}
	var cells []cell
	s.Table.ForEach(func(r, c int, e Entry) bool { cells = append(cells, cell{r, c, e}); return true })
	self := s.Self.ID.U128()
	mechs := []struct {
		name string
		mk   func() mechanism
	}{
		{"rowAtomic", func() mechanism { return &rowAtomic{self: self} }},
		{"tableAtomic", func() mechanism { m := &tableAtomic{self: self}; m.t.Store(&[32][]slot{}); return m }},
		{"rwmutex", func() mechanism { return &rwmutex{self: self} }},
	}
	for _, mc := range mechs {
		for _, writer := range []bool{false, true} {
			name := mc.name + "/readers"
			if writer {
				name += "+writer"
			}
			b.Run(name, func(b *testing.B) {
				m := mc.mk()
				for _, c := range cells {
					m.write(c.row, c.col, c.e)
				}
				var stop atomic.Bool
				done := make(chan struct{})
				if writer {
					go func() {
						defer close(done)
						for i := 0; !stop.Load(); i++ {
							c := cells[i%len(cells)]
							m.write(c.row, c.col, c.e)
							yield()
						}
					}()
				} else {
					close(done)
				}
				b.ReportAllocs()
				b.ResetTimer()
				var seq atomic.Uint64
				b.RunParallel(func(pb *testing.PB) {
					i := int(seq.Add(1) * 977)
					for pb.Next() {
						_, _ = m.lookup(ku[i&4095])
						i++
					}
				})
				b.StopTimer()
				stop.Store(true)
				<-done
			})
		}
	}
}
