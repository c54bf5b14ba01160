package routing

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// TestReadersDuringWrites runs lock-free readers on other goroutines while
// the single writer changes every structure. Under -race it checks that
// publication is race-free; always, it checks that readers only ever see
// entries that satisfy the invariants, whatever moment they observe.
func TestReadersDuringWrites(t *testing.T) {
	r := rng(12)
	all := ids(r, 3000)
	s, _ := NewState(id.Handle{ID: all[0]}, 4, 16, 32)
	keys := ids(r, 256)
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key := keys[(i+g*31)%len(keys)]
				if h, ok := s.NextHop(key, nil); ok && h.ID == s.Self.ID {
					errs <- "NextHop forwarded to self"
					return
				}
				for _, e := range s.Leaves.Left() {
					if e.ID == s.Self.ID {
						errs <- "self in the leaf set"
						return
					}
				}
				s.Table.ForEach(func(row, col int, e Entry) bool {
					if id.SharedPrefixLen(s.Self.ID, e.ID, 4) != row || e.ID.Digit(row, 4) != col {
						select {
						case errs <- "table entry breaks the prefix invariant":
						default:
						}
						return false
					}
					return true
				})
				_ = s.Neighbors.Members()
			}
		}()
	}
	for round := range 3 {
		for i, x := range all[1:] {
			e := Entry{Handle: id.Handle{ID: x}, Prox: uint32((i * 7919 * (round + 1)) % 100000)}
			if i%3 == round {
				s.Remove(x)
			} else {
				s.Consider(e)
			}
		}
		s.ConsiderAll([]Entry{{Handle: id.Handle{ID: all[1+round]}, Prox: 1}})
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
