package replication

import (
	"slices"
	"sync"

	"github.com/pastrynet/pastry/id"
)

// MemStore is the Store in memory, for the simulator and tests. It is
// deterministic: no goroutine, clock or randomness; the same calls give
// the same answers. It keeps each record's encoding and its keys in one
// sorted slice (an insert moves the keys after it: fine for the
// thousands of records a simulated node holds).
type MemStore struct {
	mu     sync.Mutex
	opts   Options
	items  map[id.ID]memItem
	keys   []id.ID // sorted
	acct   *Accounts
	closed bool
}

type memItem struct {
	e   Entry
	enc []byte
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store with options o.
func NewMemStore(o Options) (*MemStore, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	return &MemStore{opts: o, items: map[id.ID]memItem{}, acct: NewAccounts()}, nil
}

func (s *MemStore) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Put implements Store.
func (s *MemStore) Put(now int64, rec *Record) (bool, error) {
	p, err := Prepare(now, rec, s.opts)
	if err != nil {
		return false, err
	}
	if err := s.lock(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	var old *Entry
	if it, ok := s.items[p.Entry.Key]; ok {
		old = &it.e
		replace, err := SupersedesEntry(it.e, p.Entry)
		if err != nil || !replace {
			return false, err
		}
	}
	if err := s.acct.Admit(old, p.Entry, s.opts); err != nil {
		return false, err
	}
	if old != nil {
		s.acct.Remove(*old)
	} else {
		i, _ := slices.BinarySearchFunc(s.keys, p.Entry.Key, id.ID.Cmp)
		s.keys = slices.Insert(s.keys, i, p.Entry.Key)
	}
	s.items[p.Entry.Key] = memItem{e: p.Entry, enc: p.Enc}
	s.acct.Add(p.Entry)
	return true, nil
}

// Get implements Store.
func (s *MemStore) Get(key id.ID) (*Record, bool, error) {
	if err := s.lock(); err != nil {
		return nil, false, err
	}
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if !ok {
		return nil, false, nil
	}
	r, err := s.decode(it)
	return r, err == nil, err
}

func (s *MemStore) decode(it memItem) (*Record, error) {
	return UnmarshalRecord(it.enc, Limits{MaxValue: MaxValueLimit})
}

// Entry implements Store.
func (s *MemStore) Entry(key id.ID) (Entry, bool, error) {
	if err := s.lock(); err != nil {
		return Entry{}, false, err
	}
	defer s.mu.Unlock()
	it, ok := s.items[key]
	return it.e, ok, nil
}

// each calls fn with the items in [lo, hi] in arc order.
func (s *MemStore) each(lo, hi id.ID, fn func(memItem) bool) {
	for _, seg := range Segments(lo, hi) {
		i, _ := slices.BinarySearchFunc(s.keys, seg[0], id.ID.Cmp)
		for ; i < len(s.keys) && s.keys[i].Cmp(seg[1]) <= 0; i++ {
			if !fn(s.items[s.keys[i]]) {
				return
			}
		}
	}
}

// snapshot returns the items in [lo, hi] in arc order, so that callbacks
// run without the lock and may call the store.
func (s *MemStore) snapshot(lo, hi id.ID) ([]memItem, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var items []memItem
	s.each(lo, hi, func(it memItem) bool { items = append(items, it); return true })
	return items, nil
}

// Range implements Store.
func (s *MemStore) Range(lo, hi id.ID, fn func(*Record) bool) error {
	items, err := s.snapshot(lo, hi)
	for _, it := range items {
		r, err := s.decode(it)
		if err != nil {
			return err
		}
		if !fn(r) {
			break
		}
	}
	return err
}

// Entries implements Store.
func (s *MemStore) Entries(lo, hi id.ID, fn func(Entry) bool) error {
	items, err := s.snapshot(lo, hi)
	for _, it := range items {
		if !fn(it.e) {
			break
		}
	}
	return err
}

// Summary implements Store.
func (s *MemStore) Summary(lo, hi id.ID) (Summary, error) {
	var sum Summary
	err := s.Entries(lo, hi, func(e Entry) bool { sum.Add(e); return true })
	return sum, err
}

// Delete implements Store.
func (s *MemStore) Delete(key id.ID) (bool, error) {
	if err := s.lock(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	return s.remove(key), nil
}

func (s *MemStore) remove(key id.ID) bool {
	it, ok := s.items[key]
	if !ok {
		return false
	}
	delete(s.items, key)
	i, _ := slices.BinarySearchFunc(s.keys, key, id.ID.Cmp)
	s.keys = slices.Delete(s.keys, i, i+1)
	s.acct.Remove(it.e)
	return true
}

// Collect implements Store.
func (s *MemStore) Collect(now int64) (int, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	var gone []id.ID
	for _, k := range s.keys {
		if s.items[k].e.Expired(now) {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		s.remove(k)
	}
	return len(gone), nil
}

// Stats implements Store.
func (s *MemStore) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acct.Stats()
}

// Space implements SpaceReporter.
func (s *MemStore) Space() (used, capacity int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acct.Used(), s.opts.Capacity
}

// Close implements Store.
func (s *MemStore) Close() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
