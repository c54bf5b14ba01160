package pebblestore

import (
	"fmt"
	"testing"

	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/replication/storetest"
)

// The store benchmarks: Put (signature verified, synced on disk) and Get,
// on MemStore and on Pebble in the test's temporary directory, 1 KiB and
// 64 KiB values. Run them with a count, not a duration (synced writes):
//
//	go test -run='^$' -bench=. -benchtime=200x ./replication/pebblestore/

var sizes = []int{1 << 10, 64 << 10}

func stores(b *testing.B) map[string]func() replication.Store {
	return map[string]func() replication.Store{
		"mem": func() replication.Store { s, _ := replication.NewMemStore(replication.Options{}); return s },
		"pebble": func() replication.Store {
			s, err := Open(b.TempDir(), quiet(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
}

func signedN(b *testing.B, n, size int) []*replication.Record {
	k := storetest.Key(b, 30)
	rs := make([]*replication.Record, n)
	for i := range rs {
		rs[i] = storetest.Mutable(b, k, fmt.Sprint(i), make([]byte, size), 1, 0)
	}
	return rs
}

// eachStore runs fn as a sub-benchmark on every store and value size.
func eachStore(b *testing.B, fn func(b *testing.B, s replication.Store, size int)) {
	for _, name := range []string{"mem", "pebble"} {
		for _, size := range sizes {
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				s := stores(b)[name]()
				defer s.Close()
				fn(b, s, size)
			})
		}
	}
}

func BenchmarkPut(b *testing.B) {
	eachStore(b, func(b *testing.B, s replication.Store, size int) {
		rs := signedN(b, b.N, size)
		b.SetBytes(int64(size))
		b.ResetTimer()
		for i := range b.N {
			if _, err := s.Put(storetest.Now, rs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	eachStore(b, func(b *testing.B, s replication.Store, size int) {
		rs := signedN(b, 256, size)
		for _, r := range rs {
			if _, err := s.Put(storetest.Now, r); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(size))
		b.ResetTimer()
		for i := range b.N {
			if _, ok, err := s.Get(rs[i%len(rs)].Key()); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkOpen opens a store of 10,000 records of 1 KiB: every record
// read back and checked, with and without signatures.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, quiet(b))
	if err != nil {
		b.Fatal(err)
	}
	k := storetest.Key(b, 31)
	for i := range 10_000 {
		r := storetest.Mutable(b, k, fmt.Sprint(i), make([]byte, 1<<10), 1, 0)
		if _, err := s.Put(storetest.Now, r); err != nil {
			b.Fatal(err)
		}
	}
	_ = s.Close()
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprint("signatures=", verify), func(b *testing.B) {
			cfg := quiet(b)
			cfg.VerifySignatures = verify
			for range b.N {
				s, err := Open(dir, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if s.Stats().Records != 10_000 {
					b.Fatal(s.Stats())
				}
				_ = s.Close()
			}
		})
	}
}
