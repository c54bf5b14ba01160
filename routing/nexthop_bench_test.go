package routing

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// bench100k is the state of one node in a 100,000-node overlay (b=4, L=16,
// M=32): rows 0-3 full, row 4 mostly full, row 5 sparse, a full leaf set.
var bench100k = sync.OnceValues(func() (*State, []id.ID) {
	r := rng(100)
	all := ids(r, 100000)
	s, err := NewState(id.Handle{ID: all[0]}, 4, 16, 32)
	if err != nil {
		panic(err)
	}
	for _, x := range all[1:] {
		s.Consider(Entry{Handle: id.Handle{ID: x, Addr: "peer"}, Prox: uint32(r.IntN(1 << 20))})
	}
	keys := ids(r, 4096)
	return s, keys
})

func BenchmarkNextHop(b *testing.B) {
	s, keys := bench100k()
	b.ReportMetric(float64(s.Table.Size()), "table_entries")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = s.NextHop(keys[i&4095], nil)
		i++
	}
}

// BenchmarkNextHopParallel runs GOMAXPROCS readers; the "writer" variant adds
// a goroutine that keeps replacing routing-table entries (and republishing
// rows) for the whole run, as the core does under churn. Compare ns/op of the
// two sub-benchmarks: the writer must not slow reads down more than 2x.
func BenchmarkNextHopParallel(b *testing.B) {
	for _, writer := range []bool{false, true} {
		name := "readers"
		if writer {
			name = "readers+writer"
		}
		b.Run(name, func(b *testing.B) {
			s, keys := bench100k()
			var stop atomic.Bool
			var wg sync.WaitGroup
			var writes atomic.Int64
			if writer {
				wg.Add(1)
				go func() {
					defer wg.Done()
					churn(s, &stop, &writes)
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			var seq atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1) * 977)
				for pb.Next() {
					_, _ = s.NextHop(keys[i&4095], nil)
					i++
				}
			})
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			if writer {
				b.ReportMetric(float64(writes.Load())/b.Elapsed().Seconds(), "writes/s")
			}
		})
	}
}

// churn is the concurrent writer: it removes and re-adds routing-table
// entries with new proximities until stopped, yielding between writes so the
// single core it shares with readers is not monopolised on small machines.
func churn(s *State, stop *atomic.Bool, writes *atomic.Int64) {
	var es []Entry
	s.Table.ForEach(func(_, _ int, e Entry) bool { es = append(es, e); return true })
	r := rng(101)
	for i := 0; !stop.Load(); i++ {
		e := es[i%len(es)]
		s.Table.Remove(e.ID)
		e.Prox = uint32(r.IntN(1 << 20))
		s.Table.Consider(e)
		writes.Add(2)
		runtime.Gosched()
	}
}
